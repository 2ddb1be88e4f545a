"""Records the knowledge base returns and accepts. All are frozen: read, never modified."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from llp.training import EvaluationResult, Fidelity


def _read_only(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset the knowledge base has seen, identified by its fingerprint.

    Attributes
    ----------
    id : int
        Row id, what :meth:`KnowledgeBase.get_or_create_study` takes as ``dataset_id``.
    fingerprint : str
        Content hash of the dataset; the same data gives the same fingerprint.
    name : str or None
        A human-readable name.
    group : str or None
        A family of related datasets (e.g. ``"openml-cc18"``), for grouped validation
        of the meta-model.
    n_samples : int or None
    meta_features : Mapping of str to float
        Dataset meta-features (read-only view).
    created_at : datetime.datetime
        When the dataset was first stored (UTC).
    """

    id: int
    fingerprint: str
    name: str | None
    group: str | None
    n_samples: int | None
    meta_features: Mapping[str, float]
    created_at: datetime.datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "meta_features", _read_only(self.meta_features))


@dataclass(frozen=True)
class StudyRecord:
    """One search on one dataset: how it was scheduled and seeded.

    Attributes
    ----------
    id : int
        Row id, what :meth:`KnowledgeBase.record_evaluation` takes as ``study_id``.
    name : str
        Unique name; asking for the same name again resumes the study.
    dataset_id : int or None
    scheduler : str
        Name of the scheduler (e.g. ``"SuccessiveHalving"``).
    settings : Mapping
        The scheduler's settings (read-only view of the stored JSON object).
    space : Mapping or None
        A JSON description of the search space, when one was given.
    seed : int
    objective : str
        What the scores of the study measure (``"val_accuracy"`` or ``"val_loss"``).
    model_family : str or None
        A label for the kind of model searched (e.g. ``"mlp"``), used to pool knowledge.
    created_at : datetime.datetime
        When the study was first stored (UTC).
    llp_version : str
        The llp version that created the study.
    """

    id: int
    name: str
    dataset_id: int | None
    scheduler: str
    settings: Mapping[str, Any]
    space: Mapping[str, Any] | None
    seed: int
    objective: str
    model_family: str | None
    created_at: datetime.datetime
    llp_version: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", _read_only(self.settings))
        if self.space is not None:
            object.__setattr__(self, "space", _read_only(self.space))


@dataclass(frozen=True)
class NewEvaluation:
    """One evaluation to write with :meth:`KnowledgeBase.record_evaluations`.

    The fields are the keyword arguments of :meth:`KnowledgeBase.record_evaluation`.

    Attributes
    ----------
    trial_number : int
        The scheduler's trial id: one configuration within the study.
    config : Mapping
        The configuration of the trial.
    result : EvaluationResult
        What was measured.
    bracket, rung : int, default=0
        Where in the schedule the evaluation ran.
    reason : str, default=""
        Why the scheduler proposed or promoted the configuration.
    """

    trial_number: int
    config: Mapping[str, Any]
    result: EvaluationResult
    bracket: int = 0
    rung: int = 0
    reason: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.config, Mapping):
            raise TypeError(
                "The 'config' parameter of NewEvaluation must be a mapping. "
                f"Got {type(self.config).__name__} instead."
            )
        object.__setattr__(self, "config", _read_only(self.config))


@dataclass(frozen=True)
class StoredEvaluation:
    """An evaluation read back from the knowledge base, with where it comes from.

    Attributes
    ----------
    id : int
        Row id of the evaluation.
    study : str
        Name of the study.
    dataset_fingerprint : str or None
        Fingerprint of the study's dataset (``None`` if the study has no dataset).
    meta_features : Mapping of str to float
        The dataset's meta-features (empty without a dataset).
    model_family : str or None
    trial_number : int
    bracket, rung : int
    reason : str
    result : EvaluationResult
        The evaluation exactly as it was recorded.
    llp_version : str
        The llp version that wrote the evaluation.
    created_at : datetime.datetime
        When it was written (UTC).
    """

    id: int
    study: str
    dataset_fingerprint: str | None
    meta_features: Mapping[str, float]
    model_family: str | None
    trial_number: int
    bracket: int
    rung: int
    reason: str
    result: EvaluationResult
    llp_version: str
    created_at: datetime.datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "meta_features", _read_only(self.meta_features))

    @property
    def config(self) -> Mapping[str, Any]:
        """The configuration of the trial (read-only view)."""
        return self.result.config

    @property
    def fidelity(self) -> Fidelity:
        return self.result.fidelity


@dataclass(frozen=True)
class DecisionRecord:
    """One decision of a study's scheduler, as stored (``decisions`` table).

    The fields are those of :class:`llp.search.Decision` (see there), with the trial as
    ``trial_number``; :meth:`KnowledgeBase.record_decisions` writes them and
    :meth:`KnowledgeBase.decisions` reads them back. ``created_at`` is ``None`` on a
    record not yet stored.
    """

    sequence: int
    action: str
    rule: str
    reason: str
    trial_number: int | None = None
    bracket: int = 0
    rung: int | None = None
    fraction: float | None = None
    epochs: int | None = None
    source: str | None = None
    predicted: float | None = None
    uncertainty: float | None = None
    prior_score: float | None = None
    measured: float | None = None
    posterior: float | None = None
    prior_weight: float | None = None
    created_at: datetime.datetime | None = None


@dataclass(frozen=True)
class AnswerRecord:
    """The study's answer after one of its evaluations (``answers`` table).

    Attributes
    ----------
    after_evaluation_id : int
        The evaluation after which this was the answer.
    evaluation_id : int
        The evaluation that is the answer.
    trial_number : int
    fraction, epochs
        The answer's fidelity.
    score : float
        Its measured validation score there.
    config : Mapping
        Its configuration.
    rule, note : str
        How it was chosen (e.g. ``"posterior"``) and why, in one sentence.
    posterior, prior_weight : float or None
        The posterior rule's numbers (``None`` for other rules).
    created_at : datetime.datetime
    """

    after_evaluation_id: int
    evaluation_id: int
    trial_number: int
    fraction: float
    epochs: int
    score: float
    config: Mapping[str, Any]
    rule: str
    note: str
    posterior: float | None
    prior_weight: float | None
    created_at: datetime.datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", _read_only(self.config))


@dataclass(frozen=True)
class NewAnswer:
    """The answer to store after an evaluation (:meth:`KnowledgeBase.record_evaluation`,
    :meth:`KnowledgeBase.record_answer`): the evaluation of trial ``trial_number`` at
    ``(fraction, epochs)``, already stored, chosen by ``rule`` for the reason ``note``."""

    trial_number: int
    fraction: float
    epochs: int
    rule: str
    note: str
    posterior: float | None = None
    prior_weight: float | None = None
