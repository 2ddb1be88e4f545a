from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llp._checks import check_fraction, check_int
from llp.search._base import Job, JobCounter, Scheduler
from llp.space import SearchSpace
from llp.training import EvaluationResult, Fidelity


class RandomSearch(Scheduler):
    """Evaluate ``n_trials`` configurations, each once, at one fidelity.

    The configurations are ``initial_configs`` first, then draws from ``space`` with
    ``seed``. Every job is available at once, so any number of workers can run them.

    Parameters
    ----------
    space : SearchSpace
    n_trials : int
    resource : float, default=1.0
        Data fraction every configuration trains on.
    epochs : int, default=1
    seed : int, default=0
    initial_configs : sequence of dict, default=()
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        n_trials: int,
        resource: float = 1.0,
        epochs: int = 1,
        seed: int = 0,
        initial_configs: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.n_trials = check_int("n_trials", n_trials, min_value=1, owner="RandomSearch")
        self.resource = check_fraction("resource", resource, owner="RandomSearch")
        self.epochs = check_int("epochs", epochs, min_value=1, owner="RandomSearch")
        self.seed = check_int("seed", seed, owner="RandomSearch")
        configs = [space.validate(c) for c in initial_configs][: self.n_trials]
        self._n_initial = len(configs)
        configs += space.sample(self.n_trials - len(configs), seed=self.seed)
        self._queue = list(enumerate(configs))
        self._pending: dict[int, Job] = {}
        self._jobs = JobCounter()

    def ask(self) -> Job | None:
        if not self._queue:
            return None
        trial_id, config = self._queue.pop(0)
        job = Job(
            job_id=self._jobs.take(),
            trial_id=trial_id,
            config=config,
            fidelity=Fidelity(self.resource, self.epochs),
            bracket=0,
            rung=0,
            reason="initial configuration" if trial_id < self._n_initial else "random sample",
        )
        self._pending[job.job_id] = job
        return job

    def tell(self, job: Job, result: EvaluationResult) -> None:
        if self._pending.pop(job.job_id, None) is None:
            raise ValueError(
                f"Job {job.job_id} was not asked by this scheduler or was already told."
            )

    def is_finished(self) -> bool:
        return not self._queue and not self._pending

    @property
    def planned_cost(self) -> float:
        return self.n_trials * self.resource * self.epochs

    @property
    def n_planned_jobs(self) -> int:
        return self.n_trials

    def describe_position(self) -> str:
        return f"{self.n_trials - len(self._queue)}/{self.n_trials} sampled"
