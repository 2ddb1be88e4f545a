from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llp._digest import short_digest
from llp.features import DatasetInfo
from llp.search import Answer, Decision, Job
from llp.training import EvaluationResult, Objective

if TYPE_CHECKING:
    from llp.store import DecisionRecord, KnowledgeBase, NewAnswer


def configs_digest(configs: Any) -> str:
    """A short digest of a list of configurations (order-sensitive), stored with a study's
    settings so that resuming it with other configurations is refused."""
    from llp.space import canonical_config_json

    text = "\n".join(canonical_config_json(c) for c in configs)
    return short_digest(text, 16)


def default_study_name(
    kind: str, dataset: DatasetInfo | None, settings: Mapping[str, Any], seed: int
) -> str:
    """A deterministic study name: the same search on the same data with the same
    settings gets the same name, so running it again resumes it."""
    digest = short_digest(
        json.dumps({"settings": settings, "seed": seed}, sort_keys=True, default=str)
    )
    data = dataset.fingerprint.split(":")[-1][:10] if dataset else "nodata"
    return f"{kind}-{data}-{digest}"


class StudyRecorder:
    """Writes a study's evaluations to a knowledge base and finds those already there.

    The :class:`Runner` is its only caller, which makes the runner the only writer of a
    study. Evaluations are keyed by (trial, fraction, epochs): a resumed study reuses each
    finished one instead of running it again, and never records one twice.
    """

    def __init__(
        self,
        knowledge_base: KnowledgeBase,
        study_id: int,
        study_name: str,
        created_at: Any = None,
    ) -> None:
        self.knowledge_base = knowledge_base
        self.study_id = study_id
        self.study_name = study_name
        #: When the study was first created (a resumed study keeps its first date).
        self.created_at = created_at

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
        create_only: bool = False,
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
            create_only=create_only,
        )
        return cls(kb, study.id, name, study.created_at)

    def lookup(self, job: Job) -> EvaluationResult | None:
        """The stored result of ``job`` if this study already finished it. A failure
        recorded because its worker was lost is not a result of the configuration: the
        job runs again, and its new result replaces the failure in the store."""
        stored = self.knowledge_base.find_evaluation(
            self.study_id,
            trial_number=job.trial_id,
            config=dict(job.config),
            fraction=job.fidelity.fraction,
            epochs=job.fidelity.epochs,
        )
        return None if stored is not None and stored.worker_lost else stored

    def record(
        self,
        job: Job,
        result: EvaluationResult,
        *,
        stored: bool = False,
        decisions: Sequence[Decision] = (),
        answer: Answer | None = None,
    ) -> None:
        """Store a finished evaluation (unless ``stored``: a resumed study took it from
        the store), the decisions made once it was known and the study's answer after
        it, in one transaction."""
        records = [decision_record(d) for d in decisions]
        new_answer = None if answer is None else answer_record(answer)
        kb = self.knowledge_base
        if not stored:
            kb.record_evaluation(
                self.study_id,
                trial_number=job.trial_id,
                config=dict(job.config),
                result=result,
                bracket=job.bracket,
                rung=job.rung,
                reason=job.reason,
                decisions=records,
                answer=new_answer,
            )
            return
        with kb.transaction():  # one write for the step, as for a new evaluation
            kb.record_decisions(self.study_id, records)
            if new_answer is not None:
                after = (job.trial_id, job.fidelity.fraction, job.fidelity.epochs)
                kb.record_answer(self.study_id, after=after, answer=new_answer)

    def record_decisions(self, decisions: Sequence[Decision]) -> None:
        """Store decisions made before any evaluation (the first proposals)."""
        if decisions:
            self.knowledge_base.record_decisions(
                self.study_id, [decision_record(d) for d in decisions]
            )


def decision_record(decision: Decision) -> DecisionRecord:
    """A scheduler's :class:`~llp.search.Decision` as the store's record."""
    from llp.store import DecisionRecord

    own = set(DecisionRecord.__dataclass_fields__) - {"trial_number", "created_at"}
    return DecisionRecord(**{f: getattr(decision, f) for f in own}, trial_number=decision.trial_id)


def answer_record(answer: Answer) -> NewAnswer:
    """A scheduler's :class:`~llp.search.Answer` as the store's record."""
    from llp.store import NewAnswer

    fidelity = answer.evaluation.fidelity
    return NewAnswer(
        trial_number=answer.trial_id,
        fraction=fidelity.fraction,
        epochs=fidelity.epochs,
        rule=answer.rule,
        note=answer.note,
        posterior=answer.posterior,
        prior_weight=answer.prior_weight,
    )
