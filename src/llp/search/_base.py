from __future__ import annotations

import abc
import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from llp._checks import check_int, check_real
from llp.training import EvaluationResult, EvaluationStatus, Fidelity, rank_key


@dataclass(frozen=True)
class Decision:
    """One decision of a scheduler, as data (stored with the study; the report and the
    CLI read these fields, and ``reason`` is only the same decision in words).

    Attributes
    ----------
    sequence : int
        Its place among the study's decisions (0, 1, ...): a resumed study makes the
        same decisions in the same order, so the store keeps each once.
    action : str
        One of :data:`DECISION_ACTIONS`.
    rule : str
        The rule that fired: for a proposal how the configuration was found (e.g.
        ``"zero-shot pick"``, ``"expected improvement"``), for a promotion what ranked it
        (``"posterior"`` or ``"checked surrogate"``), for a stop why (``"budget"``, ...).
    reason : str
        The decision in one sentence, for people.
    trial_id : int or None
        The configuration (``None`` for ``"stopped"``).
    bracket, rung : int
        Where in the schedule the decision sends the configuration (``rung`` ``None``
        for ``"stopped"``).
    fraction, epochs
        The fidelity the decision sends it to (a proposal or promotion) or judged it on
        (kept out).
    source : str or None
        Where the configuration came from: ``"prior"``, ``"model"``, ``"local"``,
        ``"random"`` or ``"user"``.
    predicted, uncertainty : float or None
        What the search predicted: the checked surrogate's final percentile rank (1 =
        best) and the spread of its trees, or for a proposal the prior score.
    prior_score : float or None
        The prior's score of the configuration (predicted percentile rank).
    measured : float or None
        The validation score the decision was based on (promotions, kept out).
    posterior, prior_weight : float or None
        The posterior score the decision ranked by, and the weight the prior had in it
        (:mod:`llp.search._evidence`).
    """

    sequence: int
    action: str
    rule: str
    reason: str
    trial_id: int | None = None
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


@dataclass(frozen=True)
class Job:
    """One evaluation a scheduler asks for: train ``config`` at ``fidelity``.

    ``trial_id`` identifies the configuration within the study (a promoted configuration
    keeps its id); ``reason`` says why the scheduler proposed or promoted it, and
    ``decision`` is that decision as data when the scheduler records decisions.
    """

    job_id: int
    trial_id: int
    config: Mapping[str, Any]
    fidelity: Fidelity
    bracket: int
    rung: int
    reason: str
    decision: Decision | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))

    def __reduce__(self) -> tuple[Any, ...]:
        # A mappingproxy cannot be pickled; rebuild from a plain dict (worker processes).
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["config"] = dict(self.config)
        return (functools.partial(type(self), **values), ())


@dataclass(frozen=True)
class Evaluation:
    """A finished job: what was asked (:class:`Job`) and what was measured.

    ``reused`` is true when the result came from the knowledge base (a resumed study)
    rather than from training now.
    """

    job: Job
    result: EvaluationResult
    reused: bool = False

    @property
    def trial_id(self) -> int:
        return self.job.trial_id

    @property
    def config(self) -> Mapping[str, Any]:
        return self.job.config

    @property
    def fidelity(self) -> Fidelity:
        return self.job.fidelity

    @property
    def resource(self) -> float:
        """The data fraction this evaluation trained on."""
        return self.job.fidelity.fraction

    @property
    def status(self) -> EvaluationStatus:
        return self.result.status

    @property
    def score(self) -> float | None:
        return self.result.score

    @property
    def cost(self) -> float:
        return self.result.cost

    @property
    def curve(self) -> Sequence[Any]:
        return self.result.curve


@dataclass(frozen=True)
class Answer:
    """What a study answers at one moment: the evaluation it would return if it stopped.

    ``rule`` names how it was chosen (:data:`BEST_RULE` or ``"posterior"``), ``note``
    says why in one sentence; ``posterior`` and ``prior_weight`` are the posterior rule's
    numbers (``None`` for the best-score rule).
    """

    evaluation: Evaluation
    rule: str
    note: str
    posterior: float | None = None
    prior_weight: float | None = None

    @property
    def trial_id(self) -> int:
        return self.evaluation.trial_id

    @property
    def score(self) -> float:
        return float(self.evaluation.score or 0.0)


#: The rule of :func:`select_best`.
BEST_RULE = "best score at the highest fidelity"


def score_order(evaluation: Evaluation) -> tuple[float, float, int]:
    """Sort key, best first: the higher score, then the lower validation loss
    (:func:`llp.training.tie_loss`), then the lower trial id
    (:func:`llp.training.rank_key`)."""
    return rank_key(evaluation.result, evaluation.trial_id)


def select_best(evaluations: Sequence[Evaluation]) -> Evaluation | None:
    """The best successful evaluation at the highest fidelity any success reached.

    A low-fidelity score is never compared with a high-fidelity one: the winner is the
    top score among the evaluations trained on the most data (then the most epochs).
    Equal scores go to the lower validation loss, then the lower trial id
    (:func:`score_order`).
    """
    ok = [e for e in evaluations if e.status is EvaluationStatus.COMPLETE]
    if not ok:
        return None
    top = max((e.fidelity.fraction, e.fidelity.epochs) for e in ok)
    at_top = [e for e in ok if (e.fidelity.fraction, e.fidelity.epochs) == top]
    return min(at_top, key=score_order)


def best_answer(evaluations: Sequence[Evaluation]) -> Answer | None:
    """:func:`select_best` as an :class:`Answer`, with its note."""
    best = select_best(evaluations)
    if best is None:
        return None
    fidelity = best.fidelity
    note = (
        f"trial {best.trial_id} is the answer: the best score ({best.score:.4f}) on the most "
        f"data any configuration completed ({format_share(fidelity.fraction)}, "
        f"{fidelity.epochs} epochs)"
    )
    return Answer(best, BEST_RULE, note)


class Scheduler(abc.ABC):
    """Decides which configuration to train at which fidelity next (ask/tell).

    Contract
    --------
    - ``ask()`` returns the next :class:`Job`, or ``None`` when nothing can start until
      pending jobs are told; it never returns a job twice.
    - ``tell(job, result)`` must be called exactly once for every job ``ask()`` returned,
      in any order. Telling an unknown or already told job raises ``ValueError``.
    - ``is_finished()`` is true once no job will ever be asked again and every asked job
      has been told.
    - All randomness comes from the ``seed`` given at construction: the same seed and the
      same results give the same jobs, whatever order results arrive in within a rung.
    - Schedulers are not thread-safe; the runner is their only caller.
    - ``planned_cost`` is the compute (full-data-epoch equivalents) the schedule spends
      when no evaluation fails, or ``None`` when it cannot be known in advance.
    """

    @abc.abstractmethod
    def ask(self) -> Job | None:
        """The next job to run, or ``None`` if the scheduler is waiting for results."""

    @abc.abstractmethod
    def tell(self, job: Job, result: EvaluationResult) -> None:
        """Report the result of a job returned by :meth:`ask`."""

    @abc.abstractmethod
    def is_finished(self) -> bool:
        """Whether the schedule is complete."""

    @property
    def planned_cost(self) -> float | None:
        return None

    @property
    def n_planned_jobs(self) -> int | None:
        """Number of jobs the full schedule runs when nothing fails (None if unknown)."""
        return None

    def describe_position(self) -> str:
        """A short human-readable position in the schedule, for progress displays."""
        return ""

    def drain_messages(self) -> list[str]:
        """Decisions worth showing a person (e.g. what a meta-model predicted), each
        returned once; the runner prints them above the progress bar."""
        return []

    def drain_decisions(self) -> list[Decision]:
        """Decisions made since the last call, as data (:class:`Decision`), in the order
        they were made; the runner stores them with the study. Schedulers that do not
        record decisions return none."""
        return []

    def incumbent(self, evaluations: Sequence[Evaluation]) -> Answer | None:
        """The study's answer given the evaluations finished so far (``None`` before
        any succeeded). The runner asks after every evaluation and stores what it
        gets, so every surface shows the same answer. Default: :func:`best_answer`."""
        return best_answer(evaluations)


def check_resources(
    min_resource: Any, max_resource: Any, reduction_factor: Any, *, owner: str
) -> tuple[float, float, int]:
    """Validate the multi-fidelity parameters shared by the schedulers."""
    eta = check_int("reduction_factor", reduction_factor, min_value=2, owner=owner)
    r_min = check_real(
        "min_resource", min_resource, low=0.0, high=1.0, low_inclusive=False, owner=owner
    )
    r_max = check_real(
        "max_resource", max_resource, low=0.0, high=1.0, low_inclusive=False, owner=owner
    )
    if r_min > r_max:
        raise ValueError(
            f"The 'min_resource' parameter of {owner} must be <= 'max_resource'. "
            f"Got min_resource={min_resource!r} > max_resource={max_resource!r} instead."
        )
    return r_min, r_max, eta


def rung_resources(min_resource: float, max_resource: float, reduction_factor: int) -> list[float]:
    """Data fractions of the rungs: ``max_resource / eta**k`` for ``k = s, ..., 0``.

    ``s = floor(log_eta(max_resource / min_resource))``, so the top rung is exactly
    ``max_resource``, consecutive rungs differ by exactly ``reduction_factor`` and the
    bottom rung is the smallest such fraction that is still ``>= min_resource``.

    Examples
    --------
    >>> rung_resources(0.1, 0.5, 2)
    [0.125, 0.25, 0.5]
    >>> rung_resources(1 / 9, 1.0, 3)
    [0.1111111111111111, 0.3333333333333333, 1.0]
    """
    ratio = max_resource / min_resource
    s = math.floor(math.log(ratio) / math.log(reduction_factor) + 1e-9)
    return [max_resource / reduction_factor ** (s - k) for k in range(s + 1)]


def format_share(fraction: float) -> str:
    """A data fraction as a percentage for people, to three significant digits:
    0.5 -> '50%', 0.125 -> '12.5%', 0.0625 -> '6.25%', 1/3 -> '33.3%'."""
    return f"{100.0 * fraction:.3g}%"


def rank_for_promotion(
    results: Sequence[tuple[Job, EvaluationResult]],
) -> list[tuple[Job, EvaluationResult]]:
    """Successful results best first (equal scores by the lower validation loss, then
    the lower trial id: :func:`score_order`); failed ones are dropped."""
    ok = [(j, r) for j, r in results if r.status is EvaluationStatus.COMPLETE]
    return sorted(ok, key=lambda jr: rank_key(jr[1], jr[0].trial_id))


class JobCounter:
    """Hands out increasing job ids, shared by the brackets of one scheduler."""

    def __init__(self) -> None:
        self._next = 0

    def take(self) -> int:
        value = self._next
        self._next += 1
        return value
