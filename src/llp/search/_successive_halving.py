from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llp._checks import check_int
from llp.search._base import (
    Job,
    JobCounter,
    Scheduler,
    check_resources,
    format_share,
    rank_for_promotion,
    rung_resources,
)
from llp.training import EvaluationResult, Fidelity


class SuccessiveHalving(Scheduler):
    """Synchronous successive halving over data fractions.

    All configurations are trained on the bottom rung's fraction; the best
    ``1 / reduction_factor`` of them (failed evaluations never) are retrained on
    ``reduction_factor`` times more data, and so on up to ``max_resource``. Each rung
    waits for all its evaluations before promoting, so the outcome does not depend on the
    order results arrive in.

    Parameters
    ----------
    configs : sequence of dict
        The configurations of the bottom rung.
    min_resource, max_resource : float
        Smallest and largest data fraction, in (0, 1]. The rungs are
        :func:`rung_resources` ``(min_resource, max_resource, reduction_factor)``.
    reduction_factor : int, default=2
        Keep the top ``1 / reduction_factor`` at each rung (>= 2).
    epochs : int, default=1
        Epochs of training at every rung.
    bracket : int, default=0
        Bracket number recorded on the jobs (Hyperband runs several).
    first_trial_id : int, default=0
        Trial id of ``configs[0]``; the others follow consecutively.

    Examples
    --------
    >>> sh = SuccessiveHalving([{"lr": 0.1}, {"lr": 0.01}, {"lr": 0.001}, {"lr": 1e-4}],
    ...                        min_resource=0.25, max_resource=1.0, reduction_factor=2)
    >>> sh.rungs, sh.rung_sizes
    ([0.25, 0.5, 1.0], [4, 2, 1])
    """

    def __init__(
        self,
        configs: Sequence[Mapping[str, Any]],
        *,
        min_resource: float,
        max_resource: float,
        reduction_factor: int = 2,
        epochs: int = 1,
        bracket: int = 0,
        first_trial_id: int = 0,
        job_counter: JobCounter | None = None,
    ) -> None:
        self.min_resource, self.max_resource, self.reduction_factor = check_resources(
            min_resource, max_resource, reduction_factor, owner="SuccessiveHalving"
        )
        if len(configs) == 0:
            raise ValueError(
                "The 'configs' parameter of SuccessiveHalving must be a non-empty list."
            )
        self.epochs = check_int("epochs", epochs, min_value=1, owner="SuccessiveHalving")
        self.bracket = bracket
        self._jobs = job_counter or JobCounter()
        self.rungs = rung_resources(self.min_resource, self.max_resource, self.reduction_factor)
        sizes = [len(configs)]
        for _ in self.rungs[1:]:
            sizes.append(max(1, sizes[-1] // self.reduction_factor))
        self.rung_sizes = sizes
        self._rung = 0
        self._queue: list[tuple[int, dict[str, Any], str]] = [
            (first_trial_id + i, dict(c), "initial configuration") for i, c in enumerate(configs)
        ]
        self._pending: dict[int, Job] = {}
        self._done: list[tuple[Job, EvaluationResult]] = []
        self._finished = False

    # ------------------------------------------------------------------ protocol
    def ask(self) -> Job | None:
        if self._finished or not self._queue:
            return None
        trial_id, config, reason = self._queue.pop(0)
        job = Job(
            job_id=self._jobs.take(),
            trial_id=trial_id,
            config=config,
            fidelity=Fidelity(self.rungs[self._rung], self.epochs),
            bracket=self.bracket,
            rung=self._rung,
            reason=reason,
        )
        self._pending[job.job_id] = job
        return job

    def tell(self, job: Job, result: EvaluationResult) -> None:
        if self._pending.pop(job.job_id, None) is None:
            raise ValueError(
                f"Job {job.job_id} was not asked by this scheduler or was already told."
            )
        self._done.append((job, result))
        if not self._pending and not self._queue:
            self._advance()

    def is_finished(self) -> bool:
        return self._finished

    @property
    def planned_cost(self) -> float:
        return sum(n * r * self.epochs for n, r in zip(self.rung_sizes, self.rungs))

    @property
    def n_planned_jobs(self) -> int:
        return sum(self.rung_sizes)

    def describe_position(self) -> str:
        rung = min(self._rung, len(self.rungs) - 1)
        return f"rung {rung + 1}/{len(self.rungs)} on {format_share(self.rungs[rung])} of the data"

    @property
    def current_rung(self) -> int:
        return self._rung

    # ------------------------------------------------------------------ internals
    def _advance(self) -> None:
        """Promote the top of the finished rung, or finish."""
        ranked = rank_for_promotion(self._done)
        self._done = []
        if self._rung + 1 >= len(self.rungs) or not ranked:
            self._finished = True
            return
        keep = self.rung_sizes[self._rung + 1]
        from_resource = self.rungs[self._rung]
        n_ranked = len(ranked)
        self._rung += 1
        self._queue = [
            (
                job.trial_id,
                dict(job.config),
                f"promoted from rung {job.rung + 1} ({format_share(from_resource)} of the data): "
                f"rank {i + 1} of {n_ranked} with score {result.score:.4g}",
            )
            for i, (job, result) in enumerate(ranked[:keep])
        ]
