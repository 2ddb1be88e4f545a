from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from llp._checks import check_int
from llp.search._base import Job, JobCounter, Scheduler, check_resources, rung_resources
from llp.search._successive_halving import SuccessiveHalving
from llp.space import SearchSpace
from llp.training import EvaluationResult


class Hyperband(Scheduler):
    """Hyperband (Li et al., 2018): successive-halving brackets with different trade-offs
    between many configurations on little data and few on much.

    With ``s_max = len(rung_resources(...)) - 1``, bracket ``s = s_max, ..., 0`` starts
    ``ceil((s_max + 1) / (s + 1) * eta**s)`` configurations at ``max_resource / eta**s``.
    Configurations are drawn from ``space`` (bracket ``b`` with seed ``seed + b``);
    ``initial_configs`` are used first. A bracket may start while the previous one waits
    for results, so parallel workers stay busy; brackets are independent, so results do not
    depend on that overlap.

    Parameters
    ----------
    space : SearchSpace
    min_resource, max_resource : float
    reduction_factor : int, default=3
    epochs : int, default=1
    seed : int, default=0
    initial_configs : sequence of dict, default=()
        Configurations to place in the first brackets before sampling.
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        min_resource: float,
        max_resource: float,
        reduction_factor: int = 3,
        epochs: int = 1,
        seed: int = 0,
        initial_configs: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise TypeError(
                f"The 'space' parameter of Hyperband must be a SearchSpace. Got "
                f"{type(space).__name__} instead."
            )
        self.min_resource, self.max_resource, self.reduction_factor = check_resources(
            min_resource, max_resource, reduction_factor, owner="Hyperband"
        )
        self.epochs = check_int("epochs", epochs, min_value=1, owner="Hyperband")
        self.seed = check_int("seed", seed, owner="Hyperband")
        self.space = space
        eta = self.reduction_factor
        s_max = len(rung_resources(self.min_resource, self.max_resource, eta)) - 1
        self.s_max = s_max
        pool = [space.validate(c) for c in initial_configs]
        counter = JobCounter()
        self._brackets: list[SuccessiveHalving] = []
        next_trial = 0
        for b, s in enumerate(range(s_max, -1, -1)):
            n = math.ceil((s_max + 1) / (s + 1) * eta**s - 1e-9)
            configs = pool[:n]
            pool = pool[n:]
            configs += space.sample(n - len(configs), seed=_bracket_seed(self.seed, b))
            bracket_min = self.max_resource / eta**s
            self._brackets.append(
                SuccessiveHalving(
                    configs,
                    min_resource=bracket_min,
                    max_resource=self.max_resource,
                    reduction_factor=eta,
                    epochs=self.epochs,
                    bracket=b,
                    first_trial_id=next_trial,
                    job_counter=counter,
                )
            )
            next_trial += n
        self._owner: dict[int, SuccessiveHalving] = {}

    @property
    def brackets(self) -> tuple[SuccessiveHalving, ...]:
        return tuple(self._brackets)

    def ask(self) -> Job | None:
        for bracket in self._brackets:
            if bracket.is_finished():
                continue
            job = bracket.ask()
            if job is not None:
                self._owner[job.job_id] = bracket
                return job
        return None

    def tell(self, job: Job, result: EvaluationResult) -> None:
        bracket = self._owner.pop(job.job_id, None)
        if bracket is None:
            raise ValueError(
                f"Job {job.job_id} was not asked by this scheduler or was already told."
            )
        bracket.tell(job, result)

    def is_finished(self) -> bool:
        return all(b.is_finished() for b in self._brackets)

    @property
    def planned_cost(self) -> float:
        return sum(b.planned_cost for b in self._brackets)

    @property
    def n_planned_jobs(self) -> int:
        return sum(b.n_planned_jobs for b in self._brackets)

    def describe_position(self) -> str:
        for b, bracket in enumerate(self._brackets):
            if not bracket.is_finished():
                return f"bracket {b + 1}/{len(self._brackets)}, {bracket.describe_position()}"
        return "done"


def _bracket_seed(seed: int, bracket: int) -> int:
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, bracket]).generate_state(1)[0])
