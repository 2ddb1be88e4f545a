from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llp._digest import short_digest
from llp.search import Answer, Decision, Job
from llp.training import EvaluationResult, Objective

if TYPE_CHECKING:
    from llp.store import DecisionRecord, KnowledgeBase, NewAnswer


@dataclass(frozen=True)
class DatasetInfo:
    """What a study records about its dataset: the content fingerprint (the key that lets
    study N+1 find study N), a name, a group and the meta-features."""

    fingerprint: str
    name: str | None
    group: str | None
    n_samples: int | None
    meta_features: Mapping[str, float]
    #: Examples in the validation split (how noisy a validation score is), when known.
    n_val: int | None = None


def describe_dataset(
    data: Any, *, name: str | None = None, group: str | None = None, seed: int = 0
) -> DatasetInfo:
    """Fingerprint and meta-features of a :class:`~llp.data.FidelityData` or of the
    training set a ``dataset_fn`` returns at fraction 1.0 (read once)."""
    import numpy as np

    from llp.data import FidelityData, dataset_fingerprint
    from llp.features import DatasetFeatureExtractor

    extractor = DatasetFeatureExtractor(seed=seed)
    if isinstance(data, FidelityData):
        n = data.n_train + data.n_val
        return DatasetInfo(
            data.fingerprint, name, group, n, extractor.extract_from(data), n_val=data.n_val
        )
    train_loader, val_loader = _full_loaders(data)
    xs, ys = [], []
    for batch in train_loader:
        if not (
            isinstance(batch, (tuple, list))
            and len(batch) >= 2
            and all(hasattr(b, "detach") for b in batch[:2])
        ):
            raise TypeError(
                "The train_loader of dataset_fn(1.0) must yield (inputs, targets) tensor "
                f"pairs. Got a {type(batch).__name__} instead."
            )
        xs.append(np.asarray(batch[0].detach().cpu().numpy()))
        ys.append(np.asarray(batch[1].detach().cpu().numpy()))
    if not xs:
        raise ValueError("The train_loader of dataset_fn(1.0) yielded no batches.")
    X = np.concatenate(xs).reshape(sum(x.shape[0] for x in xs), -1)
    y = np.concatenate(ys)
    # Loaders may shuffle: order the rows so the same data gets the same fingerprint.
    order = np.lexsort(np.column_stack([X, y.reshape(len(y), -1)]).T[::-1])
    fingerprint = dataset_fingerprint(X[order], y[order])
    return DatasetInfo(
        fingerprint,
        name,
        group,
        int(X.shape[0]),
        extractor.extract_features(X, y),
        n_val=_count_examples(val_loader),
    )


def _count_examples(loader: Any) -> int | None:
    """Examples a validation loader holds (``len`` of its dataset, else counted)."""
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and hasattr(dataset, "__len__"):
        return len(dataset)
    try:
        return int(sum(len(batch[0]) for batch in loader))
    except Exception:  # an odd loader: the noise rule then falls back to the best score
        return None


def _full_loaders(dataset_fn: Any) -> tuple[Any, Any]:
    """The loaders ``dataset_fn(1.0)`` returns, checked like the trainer does."""
    out = dataset_fn(1.0)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        shown = f"a {type(out).__name__}"
        if isinstance(out, (tuple, list)):
            shown += f" of {len(out)}"
        raise TypeError(
            f"dataset_fn(1.0) must return a pair (train_loader, val_loader). Got {shown} instead."
        )
    if not hasattr(out[0], "__iter__"):
        raise TypeError(
            "dataset_fn(1.0) returned a train_loader that is not iterable "
            f"({type(out[0]).__name__}); it must yield (inputs, targets) batches."
        )
    return out[0], out[1]


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
