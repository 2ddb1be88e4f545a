from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llp.search import Job
from llp.training import EvaluationResult, Objective

if TYPE_CHECKING:
    from llp.store import KnowledgeBase


@dataclass(frozen=True)
class DatasetInfo:
    """What a study records about its dataset: the content fingerprint (the key that lets
    study N+1 find study N), a name, a group and the meta-features."""

    fingerprint: str
    name: str | None
    group: str | None
    n_samples: int | None
    meta_features: Mapping[str, float]


def default_study_name(
    kind: str, dataset: DatasetInfo | None, settings: Mapping[str, Any], seed: int
) -> str:
    """A deterministic study name: the same search on the same data with the same
    settings gets the same name, so running it again resumes it."""
    digest = hashlib.sha256(
        json.dumps({"settings": settings, "seed": seed}, sort_keys=True, default=str).encode()
    ).hexdigest()[:8]
    data = dataset.fingerprint.split(":")[-1][:10] if dataset else "nodata"
    return f"{kind}-{data}-{digest}"


class StudyRecorder:
    """Writes a study's evaluations to a knowledge base and finds those already there.

    The :class:`Runner` is its only caller, which makes the runner the only writer of a
    study. Evaluations are keyed by (trial, fraction, epochs): a resumed study reuses each
    finished one instead of running it again, and never records one twice.
    """

    def __init__(self, knowledge_base: KnowledgeBase, study_id: int, study_name: str) -> None:
        self.knowledge_base = knowledge_base
        self.study_id = study_id
        self.study_name = study_name

    @classmethod
    def open(
        cls,
        storage: Any,
        *,
        study_name: str | None,
        kind: str,
        settings: Mapping[str, Any],
        space: Mapping[str, Any] | None,
        seed: int,
        objective: Objective,
        dataset: DatasetInfo | None,
        model_family: str | None,
    ) -> StudyRecorder:
        """Open ``storage`` (path, URL or :class:`KnowledgeBase`) and get or create the
        study; a study of the same name with other settings is an error."""
        from llp.store import KnowledgeBase

        kb = storage if isinstance(storage, KnowledgeBase) else KnowledgeBase.open(storage)
        dataset_id = None
        if dataset is not None:
            dataset_id = kb.upsert_dataset(
                dataset.fingerprint,
                name=dataset.name,
                group=dataset.group,
                n_samples=dataset.n_samples,
                meta_features=dataset.meta_features,
            )
        name = study_name or default_study_name(kind, dataset, settings, seed)
        study = kb.get_or_create_study(
            name,
            scheduler=kind,
            settings=settings,
            space=space,
            seed=seed,
            objective=objective,
            dataset_id=dataset_id,
            model_family=model_family,
        )
        return cls(kb, study.id, name)

    def lookup(self, job: Job) -> EvaluationResult | None:
        """The stored result of ``job`` if this study already finished it."""
        return self.knowledge_base.find_evaluation(
            self.study_id,
            trial_number=job.trial_id,
            config=dict(job.config),
            fraction=job.fidelity.fraction,
            epochs=job.fidelity.epochs,
        )

    def record(self, job: Job, result: EvaluationResult) -> None:
        self.knowledge_base.record_evaluation(
            self.study_id,
            trial_number=job.trial_id,
            config=dict(job.config),
            result=result,
            bracket=job.bracket,
            rung=job.rung,
            reason=job.reason,
        )
