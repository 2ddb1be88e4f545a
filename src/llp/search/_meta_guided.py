from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from llp._checks import check_int, check_real
from llp.search._base import (
    Answer,
    Decision,
    Evaluation,
    Job,
    JobCounter,
    Scheduler,
    check_resources,
    format_share,
    rung_resources,
)
from llp.search._evidence import (
    ANSWER_RULE,
    Judgement,
    answer_note,
    judge,
    prior_fit,
    select_answer,
)
from llp.space import SearchSpace, canonical_config_json
from llp.training import EvaluationResult, EvaluationStatus, Fidelity, tie_loss

if TYPE_CHECKING:  # the meta-model (scikit-learn) loads only when a study uses it
    from llp.meta import MetaModelTrainer
    from llp.meta._weights import StudyWeights

#: How the reason of the meta-model's pick begins (reports find the pick by it).
ANCHOR_REASON = "the meta-model's pick"

#: Where a configuration came from: the prior (the meta-model's pick and the best
#: configurations of past studies), a model of this study's measurements, a local move
#: around this study's answer, a uniform draw from the space, or the user's list.
Source = Literal["prior", "model", "local", "random", "user"]
SOURCES: tuple[str, ...] = ("prior", "model", "local", "random", "user")

#: Share of a bracket's new configurations drawn from the prior while it agrees fully
#: with the study's measurements (it scales with :attr:`PriorFit.agreement`): a
#: quarter, the pick included, so a prior that is wrong cannot fill the first bracket.
#: Half cost a wrong prior far more; for a right one it was better on the development
#: tasks and worse on the test tasks (BENCHMARKS.md, "a prior that is wrong on purpose").
PRIOR_SHARE = 0.25
#: Of the rest: shares for the study's model and for local moves (random takes the
#: remainder; without a model, its share is split between them in proportion). They are
#: apportioned by largest remainder, ties to the earlier source (:func:`apportion`): a
#: bracket of one configuration, which starts it on the top rung with no screening, gets
#: the model's, or a local move where there is no model yet, never a uniform draw.
MODEL_SHARE = 0.4
LOCAL_SHARE = 0.3
#: Complete evaluations the study needs before a model of its own measurements proposes.
MIN_MODEL_ROWS = 6
#: Pairs (a configuration measured on a rung and the next) the surrogate must be checked
#: on before it may re-rank promotions.
MIN_CHECK_PAIRS = 6
#: Standard deviation of a local move in the space's unit encoding.
LOCAL_STEP = 0.1


@dataclass(frozen=True)
class _Proposal:
    """A new configuration of a bracket: its trial, where it came from, the rule that
    found it, why (in words), what was predicted for it and its prior score."""

    trial: int
    source: str
    rule: str
    reason: str
    predicted: float | None
    uncertainty: float | None
    prior_score: float | None


@dataclass(frozen=True)
class SurrogateCheck:
    """Did the surrogate rank this study's configurations better than their raw scores?

    Before a promotion from rung ``rung`` of bracket ``bracket``, every configuration the
    study trained on that rung *and* on the next gives a pair; ``surrogate_correlation``
    and ``raw_correlation`` are the Spearman correlations of the next rung's scores with
    the surrogate's predicted final rank and with the raw scores. The surrogate re-ranks
    that promotion only when ``used``: at least :data:`MIN_CHECK_PAIRS` pairs and a
    higher correlation than the raw scores.
    """

    bracket: int
    rung: int
    n_pairs: int
    surrogate_correlation: float
    raw_correlation: float
    used: bool


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement over ``best`` of a Gaussian with ``mean`` and ``std``."""
    from scipy.stats import norm

    std = np.maximum(std, 1e-9)
    z = (mean - best) / std
    return np.asarray((mean - best) * norm.cdf(z) + std * norm.pdf(z))


def apportion(n: int, shares: Sequence[float]) -> list[int]:
    """``n`` items split in proportion to ``shares`` with the largest-remainder rule: each
    share gets the integer part of its quota, then the items left go to the largest
    fractional parts, ties to the earlier share.

    >>> apportion(1, (0.4, 0.3, 0.3)), apportion(2, (0.4, 0.3, 0.3))
    ([1, 0, 0], [1, 1, 0])
    >>> apportion(7, (0.4, 0.3, 0.3))
    [3, 2, 2]
    """
    total = sum(shares)
    if n <= 0 or total <= 0:
        return [0] * len(shares)
    exact = [n * share / total for share in shares]
    counts = [math.floor(x + 1e-9) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: max(0, n - sum(counts))]:
        counts[i] += 1
    return counts


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation; NaN when either side is constant."""
    if len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


def bracket_sizes(n_first: int, n_rungs: int, eta: int) -> list[int]:
    """Configurations each bracket of one Hyperband cycle starts with, the first (which
    starts on the lowest rung) with ``n_first``: bracket ``s = n_rungs - 1, ..., 0``
    starts ``ceil(c (s_max + 1) / (s + 1) eta**s)`` on rung ``s_max - s``, with ``c``
    chosen so the first has ``n_first``.

    >>> bracket_sizes(8, 4, 2)
    [8, 6, 4, 4]
    """
    s_max = n_rungs - 1
    c = n_first / eta**s_max
    return [
        max(1, math.ceil(c * (s_max + 1) / (s + 1) * eta**s - 1e-9)) for s in range(s_max, -1, -1)
    ]


def bracket_cost(n: int, rungs: Sequence[float], eta: int, epochs: int, start: int = 0) -> float:
    """Training cost of a successive-halving bracket of ``n`` configurations from rung
    ``start`` to the top (the best ``1 / eta``, at least one, promoted each time).

    >>> bracket_cost(4, [0.25, 0.5, 1.0], 2, 10)
    30.0
    """
    total = 0.0
    for k in range(start, len(rungs)):
        total += n * rungs[k] * epochs
        n = max(1, n // eta)
    return total


def affordable_rungs(
    rungs: Sequence[float], epochs: int, budget: float, n_first: int = 1, eta: int = 2
) -> list[float]:
    """``rungs`` without the top ones while one evaluation on the top rung would cost
    more than half of ``budget`` (a race needs at least two there), or while the first
    bracket's ``n_first`` configurations could not be carried to the top rung within
    ``budget`` (a small budget screens its configurations on less data rather than
    screening fewer).

    >>> affordable_rungs([0.125, 0.25, 0.5, 1.0], 10, 8.0)
    [0.125, 0.25]
    >>> affordable_rungs([0.125, 0.25, 0.5, 1.0], 10, 26.7, n_first=8, eta=2)
    [0.125, 0.25]
    """
    out = list(rungs)
    while len(out) > 1 and (
        out[-1] * epochs > budget / 2 or bracket_cost(n_first, out, eta, epochs) > budget + 1e-9
    ):
        out.pop()
    return out


def fit_bracket(
    sizes: Sequence[int],
    position: int,
    remaining: float,
    rungs: Sequence[float],
    eta: int,
    epochs: int,
) -> tuple[int, int] | None:
    """``(start rung, configurations)`` of the next bracket of the cycle from ``position``
    that ``remaining`` can carry to the top rung, shrunk if need be; ``None`` if none
    can."""
    n_rungs = len(rungs)
    for step in range(n_rungs):
        start = (position + step) % n_rungs
        n = sizes[start]
        while n >= 1 and bracket_cost(n, rungs, eta, epochs, start) > remaining + 1e-9:
            n -= 1
        if n >= 1:
            return start, n
    return None


def simulate_brackets(
    n_first: int, rungs: Sequence[float], eta: int, epochs: int, budget: float
) -> list[tuple[int, int]]:
    """The brackets ``(start rung, configurations)`` a study of ``budget`` runs when
    every evaluation costs what it is planned to cost (failures only leave more)."""
    sizes = bracket_sizes(n_first, len(rungs), eta)
    out: list[tuple[int, int]] = []
    remaining = budget
    position = 0
    while (found := fit_bracket(sizes, position, remaining, rungs, eta, epochs)) is not None:
        out.append(found)
        remaining -= bracket_cost(found[1], rungs, eta, epochs, found[0])
        position = found[0] + 1
    return out


class MetaGuidedScheduler(Scheduler):
    """The scheduler behind :meth:`llp.meta_probing.MetaProbing.run_meta_optimization`.

    Hyperband brackets over the rungs, one after another, until the budget is spent:
    the first bracket starts on the lowest rung, the next one rung higher, and so on
    round the cycle (:func:`bracket_sizes`), each shrunk to what the remaining budget can
    carry to the top rung. Every configuration is treated alike:

    - **Promotions** rank a bracket's configurations on a rung by their posterior score
      (:func:`llp.search._evidence.judge`: the measured score shrunk toward the prior's
      prediction by as much as validation noise and this study's agreement with the prior
      warrant), among everything the study trained on that rung. The prior's surrogate
      re-ranks a promotion only after it has ranked this study's own configurations
      better than their raw scores did (:class:`SurrogateCheck`, in
      :attr:`surrogate_checks`).
    - **New configurations** come from the prior (the meta-model's pick first, then the
      best configurations of past studies and the meta-model's suggestions), from a
      model of this study's measurements (a random forest, expected improvement over
      draws and local moves), from local moves around this study's answer, and from
      uniform draws. The first bracket is :data:`PRIOR_SHARE` prior configurations; in
      later ones the prior's share shrinks with its measured agreement
      (:class:`llp.search._evidence.PriorFit`), so a prior the study contradicts
      stops being sampled. The rest of a later bracket is split between the model,
      local moves and draws (:data:`MODEL_SHARE`, :data:`LOCAL_SHARE`, by largest
      remainder): a bracket of one, trained on the top rung unscreened, gets the
      model's proposal, or a local move while there is no model. Each proposal records
      its source.
    - **The answer** after every evaluation is the best posterior score at the highest
      fidelity reached (:func:`llp.search._evidence.select_answer`).
    - **Stopping.** The study stops when the remaining budget cannot train another
      configuration on the top rung, or when the answer's validation accuracy on the top
      rung is perfect; :attr:`stop_reason` says which.
    - **Landscape probes** are paid from the budget. Their cost is unknown until an
      evaluation comes back, so the first evaluation runs alone; the rest of the first
      bracket is then cut to what the budget pays for, and later brackets and
      promotions are planned with the measured probe share.

    Without a prior (``prior_scores`` empty, no portfolio, no fitted surrogate) this is
    Hyperband with model-based and local proposals and raw-score promotions.

    Parameters
    ----------
    space : SearchSpace
    initial_configs : sequence of dict
        The user's configurations, placed in the first bracket after the prior's.
    trainer : MetaModelTrainer, optional
        The prior's meta-model (fitted). Its surrogate gives prior scores of
        configurations proposed during the search and is checked before it re-ranks.
    meta_features : Mapping
        The dataset's meta-features.
    model_family : str or None
    min_resource, max_resource, reduction_factor
        The rungs are :func:`rung_resources`, of which the top ``num_iterations`` are
        used.
    num_iterations : int
        Number of rungs.
    epochs : int
    budget : float, optional
        Training compute the study may spend, in full-data-epoch equivalents (results'
        ``cost + probe_cost``). Defaults to the cost of the first bracket. The top rung is
        lowered (by ``reduction_factor`` at a time) while one evaluation there would
        cost more than half the budget and, without prior configurations, while the
        first bracket could not reach it within the budget (:func:`affordable_rungs`).
    num_initial_configs : int, optional
        Configurations of the first bracket (default: ``len(initial_configs)`` plus the
        prior configurations, at least ``reduction_factor ** (num_iterations - 1)``).
    prior_configs : sequence of dict
        The prior's configurations, best first (the first is the meta-model's pick).
    prior_scores : Mapping[str, float], optional
        Prior score (predicted percentile rank, 1 = best) of configurations by
        :func:`llp.space.canonical_config_json`; others are scored by ``trainer``'s
        surrogate when it has one.
    n_val : int
        Validation examples (the noise model of accuracies); 0: none.
    objective : str
    seed : int
    dataset : str
        Key of the dataset in the meta-model's rows.
    n_candidates : int
        Draws scored per model-based proposal round.
    """

    def __init__(
        self,
        space: SearchSpace,
        initial_configs: Sequence[Mapping[str, Any]] = (),
        *,
        trainer: MetaModelTrainer | None = None,
        meta_features: Mapping[str, float] | None = None,
        model_family: str | None = None,
        min_resource: float,
        max_resource: float,
        reduction_factor: int = 2,
        num_iterations: int = 3,
        epochs: int = 1,
        budget: float | None = None,
        scale_budget_with_probes: bool = False,
        num_initial_configs: int | None = None,
        prior_configs: Sequence[Mapping[str, Any]] = (),
        prior_scores: Mapping[str, float] | None = None,
        n_val: int = 0,
        objective: str = "val_accuracy",
        seed: int = 0,
        dataset: str = "current",
        n_candidates: int = 256,
    ) -> None:
        r_min, r_max, eta = check_resources(
            min_resource, max_resource, reduction_factor, owner="MetaProbing"
        )
        self.num_iterations = check_int(
            "num_iterations", num_iterations, min_value=1, owner="MetaProbing"
        )
        self.space = space
        self.trainer = trainer
        self.meta_features = dict(meta_features or {})
        self.model_family = model_family
        self.eta = eta
        self.epochs = check_int("epochs", epochs, min_value=1, owner="MetaProbing")
        self.seed = seed
        self.dataset = dataset
        self.n_candidates = n_candidates
        self.n_val = int(n_val)
        self.objective = objective
        self._user = [dict(c) for c in initial_configs]
        self._prior_pool = [dict(c) for c in prior_configs]
        self._prior_by_key: dict[str, float] = dict(prior_scores or {})
        all_rungs = rung_resources(r_min, r_max, eta)
        self.rungs = all_rungs[-self.num_iterations :]
        n_first = (
            check_int("num_initial_configs", num_initial_configs, min_value=1, owner="MetaProbing")
            if num_initial_configs is not None
            else max(len(self._user) + len(self._prior_pool[:1]), eta ** (len(self.rungs) - 1))
        )
        self.num_initial_configs = n_first
        if budget is None:
            budget = self._path_cost(n_first, 0)
        self._base_budget = check_real("budget", budget, low=0.0, owner="MetaProbing")
        self._scale_budget = bool(scale_budget_with_probes)
        # A top rung that one evaluation could not afford twice leaves no race at all.
        # Without a prior, a budget that cannot carry the whole first bracket to the top
        # rung screens it on less data rather than screening fewer configurations (the
        # pick of a prior is worth training on more data: BENCHMARKS.md).
        self.rungs = affordable_rungs(
            self.rungs, self.epochs, self._base_budget, 1 if self._prior_pool else n_first, eta
        )
        self._sizes = bracket_sizes(n_first, len(self.rungs), eta)
        self._jobs = JobCounter()
        self._next_trial = 0
        self._seen: dict[str, int] = {}
        self._configs: dict[int, dict[str, Any]] = {}
        self._sources: dict[int, str] = {}
        self.prior_scores: dict[int, float] = {}
        self._queue: list[Job] = []
        self._pending: dict[int, Job] = {}
        self._history: list[Evaluation] = []
        self._spent = 0.0
        self._finished = False
        self._bracket_index = -1
        self._bracket_rung = 0
        self._bracket_start = 0
        self._members: list[int] = []
        #: Every decision so far, as data (:class:`llp.search.Decision`).
        self.decisions: list[Decision] = []
        self._drained = 0
        self.surrogate_checks: list[SurrogateCheck] = []
        #: How much each earlier study of the prior was leaned on at the last bracket
        #: (None before the second bracket, or without earlier studies).
        self.prior_weights: StudyWeights | None = None
        self._study_models: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
        self.stop_reason: str | None = None
        self._messages: list[str] = []
        self._rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))
        self._start_bracket()

    # ------------------------------------------------------------------ protocol
    def ask(self) -> Job | None:
        if self._finished or not self._queue:
            return None
        if not self._history and self._pending:
            # Until one evaluation has come back, what landscape probes cost is unknown:
            # one at a time, so the rest of the first bracket can be fitted to the budget.
            return None
        job = self._queue.pop(0)
        self._pending[job.job_id] = job
        return job

    def tell(self, job: Job, result: EvaluationResult) -> None:
        if self._pending.pop(job.job_id, None) is None:
            raise ValueError(
                f"Job {job.job_id} was not asked by this scheduler or was already told."
            )
        self._spent += float(result.cost) + float(result.probe_cost)
        # Kept in the order the jobs were asked, not finished: every decision then reads
        # the same history whatever order parallel workers finish in.
        bisect.insort(self._history, Evaluation(job, result), key=lambda e: e.job.job_id)
        if len(self._history) == 1:
            self._fit_queue_to_budget()
        if not self._pending and not self._queue:
            self._advance()

    def is_finished(self) -> bool:
        return self._finished

    @property
    def budget(self) -> float:
        """Compute the study may spend, full-data-epoch equivalents. Fixed when given;
        with ``scale_budget_with_probes`` it is the training budget grown by the share
        landscape probes have cost so far (probes then come on top of training)."""
        if self._scale_budget:
            return self._base_budget * (1.0 + self._probe_share())
        return self._base_budget

    @property
    def planned_cost(self) -> float:
        return self.budget

    @property
    def spent(self) -> float:
        """Compute spent so far (training and probes, full-data-epoch equivalents)."""
        return self._spent

    @property
    def iteration(self) -> int:
        return max(self._bracket_index, 0)

    @property
    def anchor_trial(self) -> int | None:
        """Trial id of the meta-model's pick, if the study had one."""
        return 0 if self._prior_pool else None

    def sources(self) -> dict[int, str]:
        """Where each trial's configuration came from (see :data:`SOURCES`)."""
        return dict(self._sources)

    def answer(self) -> Judgement | None:
        """The answer so far (:func:`llp.search._evidence.select_answer`)."""
        return select_answer(
            self._history,
            prior_scores=self.prior_scores,
            n_val=self.n_val,
            objective=self.objective,
        )

    def incumbent(self, evaluations: Sequence[Evaluation]) -> Answer | None:
        """The posterior rule's answer (:func:`llp.search._evidence.select_answer`) with
        its note (:func:`answer_note`)."""
        judged = select_answer(
            evaluations,
            prior_scores=self.prior_scores,
            n_val=self.n_val,
            objective=self.objective,
        )
        if judged is None:
            return None
        return Answer(
            judged.evaluation,
            ANSWER_RULE,
            answer_note(judged, evaluations, self.anchor_trial, self.n_val),
            posterior=judged.posterior,
            prior_weight=judged.prior_weight,
        )

    def drain_messages(self) -> list[str]:
        messages, self._messages = self._messages, []
        return messages

    def drain_decisions(self) -> list[Decision]:
        new = self.decisions[self._drained :]
        self._drained = len(self.decisions)
        return new

    def _decide(self, action: str, rule: str, reason: str, **fields: Any) -> Decision:
        decision = Decision(len(self.decisions), action, rule, reason, **fields)
        self.decisions.append(decision)
        return decision

    def describe_position(self) -> str:
        k = min(self._bracket_rung, len(self.rungs) - 1)
        return (
            f"bracket {self._bracket_index + 1} on {format_share(self.rungs[k])} of the data; "
            f"{self._spent:.1f} of {self.budget:.1f} full-data epochs"
        )

    # ------------------------------------------------------------------ budget
    def _path_cost(self, n: int, start: int) -> float:
        return bracket_cost(n, self.rungs, self.eta, self.epochs, start)

    def _remaining(self) -> float:
        """Budget not yet spent or promised to queued and running jobs. Landscape probes
        are counted as well: each planned job is charged the mean probe cost measured so
        far, and brackets are planned on what is left once that is set aside."""
        jobs = [*self._queue, *self._pending.values()]
        pending = sum(j.fidelity.fraction * j.fidelity.epochs for j in jobs)
        probes = [e.result.probe_cost for e in self._history]
        probe = sum(probes) / len(probes) if probes else 0.0
        return self.budget - self._spent - pending - probe * len(jobs)

    def _probe_share(self) -> float:
        """Measured probe cost per unit of training cost (0 without probes)."""
        training = sum(e.result.cost for e in self._history)
        probes = sum(e.result.probe_cost for e in self._history)
        return probes / training if training > 0 else 0.0

    def _fit_queue_to_budget(self) -> None:
        """After the first result: drop the first bracket's queued configurations that
        the budget cannot pay for once their landscape probes are priced in."""
        dropped = 0
        while self._queue and self._remaining() < -1e-9:
            job = self._queue.pop()
            self._forget(job)
            dropped += 1
        if dropped:
            probe = self._history[0].result.probe_cost
            self._messages.append(
                f"landscape probes cost {probe:.1f} full-data epochs per evaluation: "
                f"{dropped} configurations of the first bracket dropped to stay within "
                f"the budget of {self.budget:.1f}"
            )

    def _forget(self, job: Job) -> None:
        """Drop the proposal of a configuration that was never trained (recorded as a
        ``"dropped"`` decision)."""
        trial = job.trial_id
        config = self._configs.pop(trial)
        self._seen.pop(canonical_config_json(config), None)
        source = self._sources.pop(trial, None)
        self.prior_scores.pop(trial, None)
        self._members = [t for t in self._members if t != trial]
        self._decide(
            "dropped",
            "budget",
            f"dropped before training: the budget of {self.budget:.1f} full-data epochs "
            "cannot pay for it once landscape probes are priced in",
            trial_id=trial,
            bracket=job.bracket,
            rung=job.rung,
            fraction=job.fidelity.fraction,
            epochs=job.fidelity.epochs,
            source=source,
        )

    # ------------------------------------------------------------------ brackets
    def _start_bracket(self) -> None:
        """Open the next bracket of the cycle that the remaining budget can carry to the
        top rung (shrunk if need be), or finish."""
        # Probes cost about the same share of each evaluation's training: plan brackets
        # on the training part of what is left.
        remaining = self._remaining() / (1.0 + self._probe_share())
        found = fit_bracket(
            self._sizes,
            self._bracket_start + 1 if self._bracket_index >= 0 else 0,
            remaining,
            self.rungs,
            self.eta,
            self.epochs,
        )
        if found is None:
            top = self.rungs[-1] * self.epochs
            self._finish(
                "budget",
                f"the remaining budget ({max(remaining, 0.0):.1f} full-data epochs) cannot train "
                f"another configuration on the top rung ({format_share(self.rungs[-1])} of the "
                f"data costs {top:.1f})",
            )
            return
        start, n = found
        self._bracket_start = start
        self._bracket_index += 1
        self._bracket_rung = start
        configs = self._new_configs(n)
        if not configs:
            self._finish("space exhausted", "the search space has no configuration left to try")
            return
        self._members = []
        for p in configs:
            self._members.append(p.trial)
            decision = self._decide(
                "proposed",
                p.rule,
                p.reason,
                trial_id=p.trial,
                bracket=self._bracket_index,
                rung=start,
                fraction=self.rungs[start],
                epochs=self.epochs,
                source=p.source,
                predicted=p.predicted,
                uncertainty=p.uncertainty,
                prior_score=p.prior_score,
            )
            self._enqueue(decision)
        self._messages.append(
            f"bracket {self._bracket_index + 1}: {len(configs)} configurations on "
            f"{format_share(self.rungs[start])} of the data ("
            + ", ".join(
                f"{sum(1 for p in configs if p.source == src)} {src}"
                for src in SOURCES
                if any(p.source == src for p in configs)
            )
            + ")"
        )

    def _finish(self, rule: str, reason: str) -> None:
        self._finished = True
        if self.stop_reason is None:
            self.stop_reason = reason
            self._messages.append(f"stopped: {reason}")
            self._decide("stopped", rule, reason, bracket=max(self._bracket_index, 0))

    def _advance(self) -> None:
        answer = self.answer()
        top = (self.rungs[-1], self.epochs)
        if (
            answer is not None
            and self.objective == "val_accuracy"
            and (answer.evaluation.fidelity.fraction, answer.evaluation.fidelity.epochs) == top
            and float(answer.evaluation.score or 0.0) >= 1.0
        ):
            self._finish(
                "perfect score",
                f"the answer (trial {answer.evaluation.trial_id}) has a perfect validation "
                f"accuracy on {format_share(self.rungs[-1])} of the data: no challenger can "
                "beat it",
            )
            return
        k = self._bracket_rung
        if k + 1 < len(self.rungs):
            promoted = self._promote(k)
            if promoted:
                self._bracket_rung = k + 1
                return
        self._start_bracket()

    def _promote(self, k: int) -> int:
        """Promote the best of the bracket's configurations on rung ``k`` to ``k + 1``;
        returns how many were promoted (as many as the remaining budget allows).

        Equal posteriors (every difference within noise and the prior's line flat) go to
        the earlier trial: a bracket proposes the prior's configurations first, so such a
        tie keeps the prior's order. Breaking it by the measured score instead (as the
        answer does) was measured: better when the prior is wrong, worse when it is
        right, and worse on average (BENCHMARKS.md). Without a prior the posterior is the
        measured score, and equal scores go to the lower validation loss
        (:func:`llp.training.tie_loss`), then the earlier trial."""
        fidelity = (self.rungs[k], self.epochs)
        at_rung = [e for e in self._history if (e.fidelity.fraction, e.fidelity.epochs) == fidelity]
        members = set(self._members)
        mine = [
            e for e in at_rung if e.trial_id in members and e.status is EvaluationStatus.COMPLETE
        ]
        if not mine:
            return 0
        slope = prior_fit(self._history, self.prior_scores).slope
        judged = {
            j.evaluation.trial_id: j
            for j in judge(
                at_rung,
                prior_scores=self.prior_scores,
                n_val=self.n_val,
                objective=self.objective,
                slope=slope,
            )
        }
        surrogate = self._checked_surrogate(k, mine)
        with_prior = bool(self.prior_scores)

        def tie(e: Evaluation) -> float:
            # Without a prior the posterior is the measured score: equal accuracies go to
            # the lower validation loss. With one, equal posteriors keep the prior's order.
            return 0.0 if with_prior else tie_loss(e.result)

        if surrogate is not None:
            order = sorted(
                mine,
                key=lambda e: (
                    -surrogate[e.trial_id][0],
                    -judged[e.trial_id].posterior,
                    tie(e),
                    e.trial_id,
                ),
            )
        else:
            order = sorted(mine, key=lambda e: (-judged[e.trial_id].posterior, tie(e), e.trial_id))
        keep = max(1, len(self._members) // self.eta)
        step = self.rungs[k + 1] * self.epochs * (1.0 + self._probe_share())
        affordable = int((max(self._remaining(), 0.0) + 1e-9) // step) if step > 0 else keep
        keep = min(keep, affordable, len(order))
        target = self.rungs[k + 1]
        rule = "checked surrogate" if surrogate is not None else "posterior"
        for rank, e in enumerate(order):
            j = judged[e.trial_id]
            mean, std = surrogate[e.trial_id] if surrogate is not None else (None, None)
            basis = (
                f"predicted final rank {mean:.2f} ± {std:.2f} by the checked surrogate"
                if mean is not None and std is not None
                else f"rank {rank + 1} by posterior score"
            )
            evidence = (
                f"measured {e.score:.4g} on {format_share(e.fidelity.fraction)}, posterior "
                f"{j.posterior:.4f} (prior weight {j.prior_weight:.2f})"
            )
            promoted = rank < keep
            decision = self._decide(
                "promoted" if promoted else "kept out",
                rule,
                f"promoted to {format_share(target)}: {basis}; {evidence}"
                if promoted
                else f"kept out of {format_share(target)}: {basis}; {evidence}",
                trial_id=e.trial_id,
                bracket=self._bracket_index,
                rung=k + 1 if promoted else k,
                fraction=target if promoted else e.fidelity.fraction,
                epochs=self.epochs,
                source=self._sources.get(e.trial_id),
                predicted=mean,
                uncertainty=std,
                prior_score=self.prior_scores.get(e.trial_id),
                measured=e.score,
                posterior=j.posterior,
                prior_weight=j.prior_weight,
            )
            if promoted:
                self._enqueue(decision)
                self._messages.append(
                    f"  promote trial {e.trial_id}: measured {e.score:.4f}, posterior "
                    f"{j.posterior:.4f} (prior weight {j.prior_weight:.2f})"
                )
        self._members = [e.trial_id for e in order[:keep]]
        return keep

    def _checked_surrogate(
        self, k: int, mine: list[Evaluation]
    ) -> dict[int, tuple[float, float]] | None:
        """The prior surrogate's predicted final rank of the bracket's configurations on
        rung ``k``, if it ranked this study's configurations better than raw scores."""
        trainer = self.trainer
        if trainer is None or trainer.surrogate_ is None or k + 1 >= len(self.rungs):
            return None
        here = (self.rungs[k], self.epochs)
        there = (self.rungs[k + 1], self.epochs)

        def complete_at(fid: tuple[float, int]) -> dict[int, Evaluation]:
            return {
                e.trial_id: e
                for e in self._history
                if (e.fidelity.fraction, e.fidelity.epochs) == fid
                and e.status is EvaluationStatus.COMPLETE
                and e.score is not None
                and math.isfinite(e.score)
            }

        from llp.meta._trainer import _quantiles

        lower, upper = complete_at(here), complete_at(there)
        quantile = dict(
            zip(lower, _quantiles([float(e.score or 0.0) for e in lower.values()]), strict=True)
        )
        wanted = sorted(set(lower) | {e.trial_id for e in mine})
        rows = np.vstack(
            [
                trainer.surrogate_row(
                    self.meta_features,
                    self.model_family,
                    lower[t].config,
                    lower[t].result,
                    float(quantile[t]),
                )
                for t in wanted
            ]
        )
        mean, std = trainer.predict_final(rows)
        predicted = {t: (float(m), float(s)) for t, m, s in zip(wanted, mean, std, strict=True)}
        pairs = [t for t in lower if t in upper]
        used = False
        rho_s = rho_raw = math.nan
        if len(pairs) >= 2:
            target = [float(upper[t].score or 0.0) for t in pairs]
            rho_s = spearman([predicted[t][0] for t in pairs], target)
            rho_raw = spearman([float(lower[t].score or 0.0) for t in pairs], target)
            used = (
                len(pairs) >= MIN_CHECK_PAIRS
                and math.isfinite(rho_s)
                and (not math.isfinite(rho_raw) or rho_s > rho_raw)
            )
        self.surrogate_checks.append(
            SurrogateCheck(self._bracket_index, k, len(pairs), rho_s, rho_raw, used)
        )
        return predicted if used else None

    # ------------------------------------------------------------------ proposals
    def _trial_for(self, config: dict[str, Any], source: str, score: float | None) -> int:
        key = canonical_config_json(config)
        trial = self._seen.get(key)
        if trial is None:
            trial = self._next_trial
            self._next_trial += 1
            self._seen[key] = trial
            self._configs[trial] = config
            self._sources[trial] = source
            if score is not None:
                self.prior_scores[trial] = score
        return trial

    def _prior_scores_of(self, configs: Sequence[Mapping[str, Any]]) -> list[float | None]:
        """Prior score of each configuration: given with the prior, else the prior
        surrogate's predicted final rank (``None`` without a prior)."""
        out: list[float | None] = [
            self._prior_by_key.get(canonical_config_json(c)) for c in configs
        ]
        missing = [i for i, v in enumerate(out) if v is None]
        trainer = self.trainer
        if missing and trainer is not None and trainer.surrogate_ is not None:
            rows = np.vstack(
                [
                    trainer.surrogate_row(self.meta_features, self.model_family, configs[i])
                    for i in missing
                ]
            )
            mean, _ = trainer.predict_final(rows)
            for i, m in zip(missing, mean, strict=True):
                out[i] = float(m)
        return out

    def _enqueue(self, decision: Decision) -> None:
        """Queue the training a proposal or promotion decided."""
        assert decision.trial_id is not None and decision.rung is not None
        self._queue.append(
            Job(
                job_id=self._jobs.take(),
                trial_id=decision.trial_id,
                config=self._configs[decision.trial_id],
                fidelity=Fidelity(self.rungs[decision.rung], self.epochs),
                bracket=self._bracket_index,
                rung=decision.rung,
                reason=decision.reason,
                decision=decision,
            )
        )

    def _fresh(self, configs: Sequence[Mapping[str, Any]], taken: set[str]) -> list[dict]:
        out: list[dict[str, Any]] = []
        for c in configs:
            key = canonical_config_json(c)
            if key not in self._seen and key not in taken:
                taken.add(key)
                out.append(dict(c))
        return out

    def _new_configs(self, n: int) -> list[_Proposal]:
        """``n`` new configurations for a bracket, registered as trials."""
        seed = int(
            np.random.SeedSequence([int(self.seed), self._bracket_index]).generate_state(1)[0]
        )
        taken: set[str] = set()
        # (configuration, source, rule, reason, model's prediction or None)
        chosen: list[tuple[dict[str, Any], str, str, str, tuple[float, float] | None]] = []
        first = self._bracket_index == 0
        if not first:
            self._weigh_earlier_studies()
        has_prior = bool(self._prior_pool) or (
            self.trainer is not None and self.trainer.surrogate_ is not None
        )
        agreement = 1.0 if first else prior_fit(self._history, self.prior_scores).agreement
        share = PRIOR_SHARE * agreement if has_prior else 0.0
        n_prior = min(n, math.ceil(n * share - 1e-9))
        for config in self._prior_candidates(n_prior, taken, seed):
            if first and not chosen and self._prior_pool and config == self._prior_pool[0]:
                item = ("zero-shot pick", f"{ANCHOR_REASON} for this dataset (source: prior)")
            else:
                item = ("prior portfolio", "one of the prior's best configurations (source: prior)")
            chosen.append((config, "prior", *item, None))
        if first:
            for config in self._fresh(self._user, taken)[: n - len(chosen)]:
                chosen.append(
                    (config, "user", "user list", "your configuration (source: user)", None)
                )
        rest = n - len(chosen)
        answer = self.answer()
        if not first:
            random_share = 1.0 - MODEL_SHARE - LOCAL_SHARE
            n_model, n_local, _ = apportion(rest, (MODEL_SHARE, LOCAL_SHARE, random_share))
            proposals = self._model_proposals(n_model, taken, seed)
            for config, why, model in proposals:
                chosen.append((config, "model", "expected improvement", why, model))
            # Fewer than MIN_MODEL_ROWS measurements: no model, its share goes to local
            # moves and draws in proportion (draws take what local moves cannot fill).
            n_local += apportion(n_model - len(proposals), (LOCAL_SHARE, random_share))[0]
            if answer is not None:
                why = (
                    f"a local move around the answer, trial {answer.evaluation.trial_id} "
                    "(source: local)"
                )
                for config in self._local_moves(answer.evaluation.config, n_local, taken):
                    chosen.append((config, "local", "local move", why, None))
        draws = self._fresh(self.space.sample(4 * n + 8, seed=seed), taken)
        for config in draws[: n - len(chosen)]:
            chosen.append(
                (
                    config,
                    "random",
                    "uniform draw",
                    "a uniform draw from the space (source: random)",
                    None,
                )
            )
        scores = self._prior_scores_of([c[0] for c in chosen])
        out: list[_Proposal] = []
        for (config, source, rule, why, modelled), score in zip(chosen, scores, strict=True):
            trial = self._trial_for(config, source, score)
            if score is not None:
                why = f"{why}; prior score {score:.4f}"
            predicted: float | None = score
            uncertainty: float | None = None
            if modelled is not None:
                predicted, uncertainty = modelled
            out.append(_Proposal(trial, source, rule, why, predicted, uncertainty, score))
        return out

    def _weigh_earlier_studies(self) -> None:
        """Weigh the prior's earlier studies by how well each orders this study's
        measurements so far (:func:`llp.meta._weights.rank_weights`) and keep the weights
        in :attr:`prior_weights`: which earlier studies predict this one, and how much.

        They inform; they do not steer. Three ways of steering by them were measured and
        are not used (BENCHMARKS.md, "Transfer from the user's own studies"): the prior's
        configurations ordered by the weighted studies' predictions, uniform draws taken
        from the region of their best configurations, and their weighted predictions as
        the prior's scores."""
        if self.trainer is None:
            return
        if self._study_models is None:
            self._study_models = self.trainer.study_models()
        if not self._study_models:
            return
        from llp.meta._weights import rank_weights

        ok = [
            (e, e.score)
            for e in self._history
            if e.status is EvaluationStatus.COMPLETE
            and e.score is not None
            and math.isfinite(e.score)
        ]
        if len(ok) < 2:
            return
        weights = rank_weights(
            self._study_models,
            np.vstack([self.space.encode(e.config) for e, _ in ok]),
            np.array([score for _, score in ok], dtype=float),
            [(e.fidelity.fraction, e.fidelity.epochs) for e, _ in ok],
            seed=int(self.seed) + self._bracket_index,
        )
        if weights.n_pairs == 0:
            return  # no two measurements on one rung: nothing judged, nothing to report
        self.prior_weights = weights
        self._messages.append(f"earlier studies that predict this one: {weights.describe()}")

    def _prior_candidates(self, n: int, taken: set[str], seed: int) -> list[dict[str, Any]]:
        if n <= 0:
            return []
        out = self._fresh(self._prior_pool, taken)[:n]
        if len(out) < n and self.trainer is not None and self.trainer.surrogate_ is not None:
            suggestions = self.trainer.suggest(
                self.meta_features, self.model_family, 2 * n, seed=seed
            )
            out += self._fresh([s.config for s in suggestions], taken)[: n - len(out)]
        return out

    def _local_moves(
        self, config: Mapping[str, Any], n: int, taken: set[str]
    ) -> list[dict[str, Any]]:
        if n <= 0:
            return []
        centre = np.clip(self.space.encode(config), 0.0, 1.0)
        moves = [
            self.space.decode(
                np.clip(centre + self._rng.normal(0.0, LOCAL_STEP, centre.shape), 0, 1)
            )
            for _ in range(8 * n)
        ]
        return self._fresh(moves, taken)[:n]

    def _model_proposals(
        self, n: int, taken: set[str], seed: int
    ) -> list[tuple[dict[str, Any], str, tuple[float, float]]]:
        """Expected improvement under a random forest fitted on this study's own
        measurements (configuration, data share and prior score in; the score's rank on
        its rung out), over uniform draws and local moves around the best so far."""
        ok = [e for e in self._history if e.status is EvaluationStatus.COMPLETE]
        if n <= 0 or len(ok) < MIN_MODEL_ROWS:
            return []
        from sklearn.ensemble import RandomForestRegressor

        from llp.meta._trainer import _quantiles

        rows, targets = [], []
        by_rung: dict[tuple[float, int], list[Evaluation]] = {}
        for e in self._history:
            by_rung.setdefault((e.fidelity.fraction, e.fidelity.epochs), []).append(e)
        for group in by_rung.values():
            scores = [
                float(e.score)
                if e.status is EvaluationStatus.COMPLETE
                and e.score is not None
                and math.isfinite(e.score)
                else None
                for e in group
            ]
            rows.append(self._model_rows_of([e.config for e in group], group[0].fidelity.fraction))
            targets += [float(q) for q in _quantiles(scores)]
        forest = RandomForestRegressor(
            n_estimators=50, min_samples_leaf=2, random_state=int(seed) % (2**31)
        ).fit(np.vstack(rows), np.array(targets))
        answer = self.answer()
        centres = [answer.evaluation.config] if answer is not None else []
        candidates = self._fresh(self.space.sample(self.n_candidates, seed=seed), set(taken))
        for centre in centres:
            candidates += self._fresh(self._local_moves(centre, 32, set(taken)), set(taken))
        if not candidates:
            return []
        top = self.rungs[-1]
        X = self._model_rows_of(candidates, top)
        per_tree = np.vstack([t.predict(X) for t in forest.estimators_])
        mean, std = per_tree.mean(axis=0), per_tree.std(axis=0)
        seen_rows = self._model_rows_of([e.config for e in ok], top)
        best = float(forest.predict(seen_rows).max())
        ei = expected_improvement(mean, std, best)
        out: list[tuple[dict[str, Any], str, tuple[float, float]]] = []
        for i in np.argsort(-ei, kind="stable"):
            if len(out) >= n:
                break
            key = canonical_config_json(candidates[i])
            if key in taken:
                continue
            taken.add(key)
            out.append(
                (
                    candidates[i],
                    f"proposed by expected improvement {ei[i]:.3g} under a model of this "
                    f"study's measurements (source: model)",
                    (float(mean[i]), float(std[i])),
                )
            )
        return out

    def _model_rows_of(self, configs: Sequence[Mapping[str, Any]], fraction: float) -> np.ndarray:
        scores = self._prior_scores_of(configs)
        return np.vstack(
            [
                np.concatenate(
                    [self.space.encode(c), [math.log2(fraction), -1.0 if s is None else s]]
                )
                for c, s in zip(configs, scores, strict=True)
            ]
        )
