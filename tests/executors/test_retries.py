"""How the runner handles lost workers, checked with executors that lose evaluations on
purpose (threads, no processes): a lost evaluation runs again, alone, a bounded number of
times, then is recorded as failed with the reason; the study is otherwise unchanged."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from torch import nn

from llp.runner import Runner, WorkerLostError
from llp.search import Job, RandomSearch, SuccessiveHalving
from llp.space import Float, SearchSpace
from llp.store import KnowledgeBase
from llp.training import EvaluationStatus, trial_seed
from llp.two_tier_probing import TwoTierProbing
from tests.conftest import mlp_model_fn, mlp_optimizer_fn

SPACE = SearchSpace([Float("x", 0.0, 1.0)])


class LosingExecutor(cf.Executor):
    """Runs calls on threads, but loses the worker of a job ``losses[trial_id]`` times
    before letting it run. Records when each attempt ran and whether it was lost."""

    def __init__(self, losses: dict[int, int], *, n_workers: int = 2, seconds: float = 0.0):
        self.losses = dict(losses)
        self.n_workers = n_workers
        self.seconds = seconds
        self.attempts: list[tuple[int, float, float, bool]] = []  # trial, start, end, lost
        self._pool = cf.ThreadPoolExecutor(n_workers)
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        job: Job = args[0]
        return self._pool.submit(self._attempt, fn, job)

    def _attempt(self, fn: Callable[[Job], Any], job: Job) -> Any:
        start = time.perf_counter()
        time.sleep(self.seconds)
        with self._lock:
            lost = self.losses.get(job.trial_id, 0) > 0
            if lost:
                self.losses[job.trial_id] -= 1
            self.attempts.append((job.trial_id, start, time.perf_counter(), lost))
        if lost:
            raise WorkerLostError("the test lost this worker")
        return fn(job)

    def tries(self, trial_id: int) -> int:
        return sum(1 for t, *_ in self.attempts if t == trial_id)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def configs(n: int) -> list[dict[str, float]]:
    return [{"x": i / max(n - 1, 1)} for i in range(n)]


def run_sh(evaluate: Callable[[Job], Any], executor: cf.Executor | None = None, **kwargs: Any):
    scheduler = SuccessiveHalving(configs(8), min_resource=0.25, max_resource=1.0)
    return Runner(scheduler, evaluate, executor=executor, show_progress=False, **kwargs).run()


def outcome(result: Any) -> list[tuple[Any, ...]]:
    return sorted((e.trial_id, e.resource, e.status.value, e.score) for e in result.evaluations)


def test_a_lost_evaluation_runs_again_and_the_study_is_unchanged(make_fake_evaluate) -> None:
    evaluate = make_fake_evaluate()
    clean = run_sh(evaluate)
    with LosingExecutor({3: 1, 5: 2}) as executor:
        result = run_sh(evaluate, executor)
    assert outcome(result) == outcome(clean)
    assert result.best_config == clean.best_config
    assert result.metadata["retries"] == 3 and result.n_failed == 0
    runs_of_5 = sum(1 for e in clean.evaluations if e.trial_id == 5)
    assert executor.tries(5) == runs_of_5 + 2  # its first run was lost twice


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_an_evaluation_lost_more_than_max_retries_times_is_recorded_as_failed(
    make_fake_evaluate, max_retries: int
) -> None:
    with LosingExecutor({2: 99}) as executor:
        result = run_sh(make_fake_evaluate(), executor, max_retries=max_retries)
    assert executor.tries(2) == max_retries + 1
    [failed] = [e for e in result.evaluations if e.status is EvaluationStatus.FAILED]
    assert failed.trial_id == 2 and failed.job.rung == 0  # never promoted
    times = "once" if max_retries == 0 else f"{max_retries + 1} times"
    assert failed.result.failure_reason == (
        f"worker lost: the test lost this worker (lost {times}; max_retries={max_retries})"
    )
    assert failed.cost == 0.0 and failed.result.objective == "val_accuracy"
    assert len(result.evaluations) == 8 + 4 + 2


def test_retries_run_one_at_a_time_and_hold_back_new_jobs(make_fake_evaluate) -> None:
    """A job that kills whatever runs beside it must not take another retry down again."""
    scheduler = RandomSearch(SPACE, n_trials=12, seed=0)
    with LosingExecutor({0: 2, 1: 2, 2: 1}, n_workers=3, seconds=0.01) as executor:
        result = Runner(
            scheduler, make_fake_evaluate(), executor=executor, show_progress=False
        ).run()
    assert result.n_failed == 0
    first = {}
    for trial, start, end, _ in executor.attempts:
        first.setdefault(trial, (start, end))
    retries = [
        (start, end)
        for i, (trial, start, end, _) in enumerate(executor.attempts)
        if any(t == trial for t, *_ in executor.attempts[:i])
    ]
    assert len(retries) == 5
    for start, end in retries:
        overlapping = [
            (t, s, e) for t, s, e, _ in executor.attempts if s < end and e > start and s != start
        ]
        # Nothing else started while a retry ran (jobs already running may finish).
        assert all(s < start for _, s, _ in overlapping), overlapping


def test_the_runner_keeps_as_many_jobs_in_flight_as_the_executor_has_workers(
    make_fake_evaluate,
) -> None:
    with LosingExecutor({}, n_workers=3, seconds=0.02) as executor:
        runner = Runner(
            RandomSearch(SPACE, n_trials=9, seed=0), make_fake_evaluate(), executor=executor
        )
        assert runner.n_workers == 3
        runner.show_progress = False
        runner.run()
    events = sorted(
        [(s, 1) for _, s, _, _ in executor.attempts] + [(e, -1) for _, _, e, _ in executor.attempts]
    )
    running, peak = 0, 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 3


def test_a_trainer_study_records_a_lost_evaluation_with_its_objective_and_seed(
    make_digits_data, tmp_path: Path
) -> None:
    db = tmp_path / "kb.db"
    configs_ = [{"lr": 1e-2, "width": w} for w in (8, 16, 32, 64)]
    with LosingExecutor({1: 99}) as executor:
        probe = TwoTierProbing(
            configs_,
            mlp_model_fn,
            make_digits_data(200),
            nn.CrossEntropyLoss(),
            mlp_optimizer_fn,
            max_epochs=1,
            seed=7,
            objective="val_loss",
            show_progress=False,
            storage=db,
            study_name="lossy",
            executor=executor,
            n_workers=2,
        )
        result = probe.run_successive_halving(0.5, 1.0, 2)
    [failed] = [e for e in result.evaluations if e.status is EvaluationStatus.FAILED]
    assert failed.trial_id == 1
    assert failed.result.objective == "val_loss"
    assert failed.result.seed == trial_seed(7, 1)
    with KnowledgeBase.open(db) as kb:
        [stored] = kb.evaluations(study="lossy", status="failed")
    assert stored.result.failure_reason.startswith("worker lost: the test lost this worker")
    # Resuming runs the lost evaluation again (the loss was the worker's, not the
    # configuration's); its result replaces the failure, and the rest is reused.
    probe.executor = None
    again = probe.run_successive_halving(0.5, 1.0, 2)
    [rerun] = [e for e in again.evaluations if not e.reused]
    assert (rerun.trial_id, rerun.resource) == (1, failed.resource)
    assert rerun.status is EvaluationStatus.COMPLETE
    first_round = [e for e in again.evaluations if e.resource == failed.resource]
    assert sum(e.reused for e in first_round) == len(first_round) - 1
    with KnowledgeBase.open(db) as kb:
        assert kb.evaluations(study="lossy", status="failed") == []
        [replaced] = [
            e
            for e in kb.evaluations(study="lossy")
            if e.trial_number == 1 and e.result.fidelity == failed.result.fidelity
        ]
    assert replaced.id == stored.id and replaced.result.score == rerun.score


class BrokenPool(cf.Executor):
    """A standard pool after one of its workers died: it refuses every submit."""

    n_workers = 1

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        raise cf.BrokenExecutor("A child process terminated abruptly")


def test_a_broken_standard_pool_is_reported_with_what_to_use_instead(
    make_fake_evaluate,
) -> None:
    with pytest.raises(
        RuntimeError, match=r"BrokenPool given as 'executor' is broken.*make_executor"
    ):
        run_sh(make_fake_evaluate(), BrokenPool())


def test_an_exception_raised_by_evaluate_itself_ends_the_run_and_cancels_the_rest() -> None:
    started: list[int] = []

    def evaluate(job: Job) -> Any:
        started.append(job.job_id)
        time.sleep(0.05)
        raise KeyError("a bug in evaluate")

    with cf.ThreadPoolExecutor(2) as pool, pytest.raises(KeyError, match="a bug in evaluate"):
        Runner(
            RandomSearch(SPACE, n_trials=50, seed=0),
            evaluate,
            executor=pool,
            n_workers=2,
            show_progress=False,
        ).run()
    assert len(started) <= 4


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"executor": "process"},
            TypeError,
            r"'executor' parameter of Runner must be a concurrent.futures.Executor.*Got str",
        ),
        ({"max_retries": -1}, ValueError, r"'max_retries' parameter of Runner must be an int >= 0"),
        ({"max_retries": 1.5}, TypeError, r"'max_retries' parameter of Runner must be an int"),
        ({"n_workers": 0}, ValueError, r"'n_workers' parameter of Runner must be an int >= 1"),
    ],
)
def test_runner_input_errors(
    make_fake_evaluate, kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        Runner(RandomSearch(SPACE, n_trials=1), make_fake_evaluate(), **kwargs)
