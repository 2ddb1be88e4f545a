"""The executor contract (llp.executors.Executor), run against every implementation, and
what each implementation adds: fresh pools after a killed worker, a clear message for
what cannot be pickled, one PyTorch thread per worker, Dask clusters owned or borrowed."""

from __future__ import annotations

import concurrent.futures as cf
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from torch import nn

from llp.executors import (
    InProcessExecutor,
    ProcessExecutor,
    WorkerLostError,
    make_executor,
)
from llp.runner import Runner
from llp.search import Hyperband, RandomSearch
from llp.space import Float, SearchSpace
from llp.store import KnowledgeBase
from llp.training import EvaluationStatus
from llp.two_tier_probing import TwoTierProbing
from tests.conftest import mlp_model_fn, mlp_optimizer_fn
from tests.executors._tasks import (
    FakeEvaluate,
    KillsItsWorker,
    raise_value_error,
    torch_threads,
)

SPACE = SearchSpace([Float("x", 0.0, 1.0)])
CONFIGS = [
    {"lr": lr, "width": w, "optimizer": opt}
    for lr in (1e-3, 3e-2)
    for w in (16, 32)
    for opt in ("sgd", "adam")
]


def outcome(result: Any) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    """What a study measured, up to completion order."""
    rows = sorted(
        (e.trial_id, e.resource, e.status.value, e.score, tuple(sorted(e.config.items())))
        for e in result.evaluations
    )
    return rows, result.best_config


@pytest.fixture(
    params=["inprocess", "process", pytest.param("dask", marks=pytest.mark.slow)],
)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def executor(kind: str, request: pytest.FixtureRequest) -> Iterator[cf.Executor]:
    """A live executor of each kind (process and Dask ones share long-lived workers)."""
    if kind == "inprocess":
        yield InProcessExecutor()
    elif kind == "process":
        yield request.getfixturevalue("process_executor")
    else:
        cluster = request.getfixturevalue("dask_cluster")
        with make_executor("dask", address=cluster.scheduler_address) as borrowed:
            yield borrowed


# ---------------------------------------------------------------------- the contract
def test_results_and_exceptions_come_back_on_the_future(executor: cf.Executor) -> None:
    assert executor.submit(sum, [1, 2, 3]).result(timeout=60) == 6
    failing = executor.submit(raise_value_error, None)
    with pytest.raises(ValueError, match="raised by the evaluation itself"):
        failing.result(timeout=60)
    assert isinstance(failing.exception(), ValueError)  # not a WorkerLostError


def test_every_executor_says_how_many_it_runs_at_once(executor: cf.Executor) -> None:
    n = getattr(executor, "n_workers", None)
    assert isinstance(n, int) and n >= 1


def test_a_study_gives_the_same_results_on_every_executor(executor: cf.Executor) -> None:
    def run(on: cf.Executor | None) -> Any:
        scheduler = Hyperband(SPACE, min_resource=0.1, max_resource=1.0, reduction_factor=3)
        return Runner(scheduler, FakeEvaluate(), executor=on, show_progress=False).run()

    reference = run(None)
    assert outcome(run(executor)) == outcome(reference)


def test_a_killed_worker_is_replaced_and_its_evaluation_run_again(
    kind: str, executor: cf.Executor, tmp_path: Path
) -> None:
    if kind == "inprocess":
        pytest.skip("in-process, the worker is the driver itself")
    evaluate = KillsItsWorker(str(tmp_path), doomed=(2,), times=1)
    scheduler = RandomSearch(SPACE, n_trials=6, seed=0)
    result = Runner(scheduler, evaluate, executor=executor, show_progress=False).run()
    assert result.n_failed == 0 and len(result.evaluations) == 6
    assert evaluate.attempts(2) == 2
    assert result.metadata["retries"] >= 1
    # The executor still works afterwards.
    assert executor.submit(sum, [1, 1]).result(timeout=60) == 2


def test_submit_after_shutdown_is_refused(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "dask":
        cluster = request.getfixturevalue("dask_cluster")
        own = make_executor("dask", address=cluster.scheduler_address)
    else:
        own = make_executor(kind, n_workers=1)  # type: ignore[arg-type]
    own.submit(sum, [1]).result(timeout=60)
    own.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        own.submit(sum, [1])


# ---------------------------------------------------------------------- local processes
def test_process_workers_use_one_torch_thread_each(process_executor: ProcessExecutor) -> None:
    futures = [process_executor.submit(torch_threads, i) for i in range(6)]
    threads = {f.result(timeout=60)[0] for f in futures}
    assert threads == {1}
    assert process_executor.start_method in ("forkserver", "spawn")


def test_a_job_that_always_kills_its_worker_is_recorded_as_failed_alone(
    process_executor: ProcessExecutor, tmp_path: Path
) -> None:
    """It runs 1 + max_retries times, each retry alone; the jobs that shared a pool with
    it are run again and succeed; the knowledge base holds the failure and its reason."""
    from llp.runner import StudyRecorder

    evaluate = KillsItsWorker(str(tmp_path / "attempts"), doomed=(1,), times=99)
    (tmp_path / "attempts").mkdir()
    kb = KnowledgeBase.open(tmp_path / "kb.db")
    recorder = StudyRecorder.open(
        kb,
        study_name="killer",
        kind="RandomSearch",
        settings={},
        space=None,
        seed=0,
        objective="val_accuracy",
        dataset=None,
        model_family=None,
    )
    runner = Runner(
        RandomSearch(SPACE, n_trials=5, seed=0),
        evaluate,
        executor=process_executor,
        show_progress=False,
        recorder=recorder,
        max_retries=2,
    )
    result = runner.run()
    failed = [e for e in result.evaluations if e.status is EvaluationStatus.FAILED]
    assert [e.trial_id for e in failed] == [1]
    assert evaluate.attempts(1) == 3
    reason = failed[0].result.failure_reason
    assert reason.startswith("worker lost: the worker process running it died")
    assert "lost 3 times; max_retries=2" in reason
    assert failed[0].cost == 0.0 and failed[0].result.curve == ()
    assert result.total_cost == pytest.approx(4 * 1.0)
    stored = kb.evaluations(study="killer")
    assert len(stored) == 5
    assert [s.result.failure_reason for s in stored if not s.result.ok] == [reason]
    kb.close()


def test_a_function_that_cannot_be_pickled_is_refused_with_a_clear_message(
    process_executor: ProcessExecutor, make_digits_data
) -> None:
    probe = TwoTierProbing(
        CONFIGS[:2],
        lambda config: mlp_model_fn(config),
        make_digits_data(200),
        nn.CrossEntropyLoss(),
        mlp_optimizer_fn,
        max_epochs=1,
        show_progress=False,
        executor=process_executor,
        n_workers=2,
    )
    with pytest.raises(TypeError, match=r"must be picklable, and JobEvaluator is not.*lambda"):
        probe.run_successive_halving(0.5, 1.0, 2)


def test_a_real_study_is_identical_with_one_or_two_process_workers(
    process_executor: ProcessExecutor, make_digits_data
) -> None:
    def run(executor: cf.Executor | None, n_workers: int) -> Any:
        probe = TwoTierProbing(
            CONFIGS,
            mlp_model_fn,
            make_digits_data(400, seed=3),
            nn.CrossEntropyLoss(),
            mlp_optimizer_fn,
            max_epochs=2,
            seed=3,
            show_progress=False,
            executor=executor,
            n_workers=n_workers,
        )
        result = probe.run_successive_halving(0.25, 1.0, 2, measure_flatness=True)
        curves = sorted(
            (
                e.trial_id,
                e.resource,
                [(r.train_loss, r.val_loss, r.val_accuracy) for r in e.curve],
                sorted(e.result.landscape.items()),
            )
            for e in result.evaluations
        )
        return outcome(result), curves

    with ProcessExecutor(n_workers=1) as one:
        single = run(one, 1)
    assert run(process_executor, 2) == single
    assert run(None, 1) == single


def test_leaving_with_because_of_an_exception_ends_the_workers_at_once() -> None:
    """Ctrl-C in the driver must not wait for evaluations nobody will read."""
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt), ProcessExecutor(n_workers=2) as executor:
        pids = {executor.submit(os.getpid).result(timeout=60) for _ in range(6)}
        running = [executor.submit(time.sleep, 60) for _ in range(2)]
        time.sleep(0.5)
        raise KeyboardInterrupt
    assert time.perf_counter() - started < 30
    # The pool's own thread notices the ended workers and fails their futures.
    _, not_done = cf.wait(running, timeout=30)
    assert not not_done
    deadline = time.monotonic() + 30
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if _alive(pid)}
        time.sleep(0.05)
    assert not pids, "worker processes outlived the executor"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ---------------------------------------------------------------------- Dask
@pytest.mark.slow
def test_a_dask_executor_by_address_leaves_the_cluster_running(dask_cluster: Any) -> None:
    from distributed import Client

    executor = make_executor("dask", address=dask_cluster.scheduler_address)
    assert executor.n_workers == 2 and not executor.owns_cluster  # type: ignore[attr-defined]
    executor.shutdown()
    with Client(dask_cluster.scheduler_address, timeout=30) as client:
        assert client.submit(sum, [2, 3]).result(timeout=60) == 5


@pytest.mark.slow
def test_a_dask_executor_without_address_starts_and_closes_its_own_cluster() -> None:
    pytest.importorskip("distributed")
    executor = make_executor("dask", n_workers=1)
    cluster = executor._cluster  # type: ignore[attr-defined]
    assert executor.owns_cluster  # type: ignore[attr-defined]
    assert executor.submit(sum, [4, 5]).result(timeout=60) == 9
    executor.shutdown()
    assert executor.client.status == "closed"  # type: ignore[attr-defined]
    assert cluster.status.name == "closed"


# ---------------------------------------------------------------------- make_executor
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kind": "threads"}, ValueError, r"'kind' parameter of make_executor must be one of"),
        (
            {"kind": "inprocess", "n_workers": 4},
            ValueError,
            r"'n_workers' parameter of make_executor must be 1 for kind='inprocess'.*Got 4",
        ),
        (
            {"kind": "process", "n_workers": 0},
            ValueError,
            r"'n_workers' parameter of make_executor must be an int >= 1. Got 0",
        ),
        (
            {"kind": "process", "n_workers": 2.5},
            TypeError,
            r"'n_workers' parameter of make_executor must be an int >= 1. Got 2.5",
        ),
        (
            {"kind": "process", "address": "tcp://1.2.3.4:8786"},
            ValueError,
            r"'address' parameter of make_executor .* needs kind='dask'",
        ),
    ],
)
def test_make_executor_input_errors(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make_executor(**kwargs)


def test_process_executor_input_errors() -> None:
    with pytest.raises(ValueError, match="'start_method' parameter of ProcessExecutor .* 'fork'"):
        ProcessExecutor(1, start_method="fork")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'torch_threads' parameter of ProcessExecutor"):
        ProcessExecutor(1, torch_threads=0)


def test_dask_without_distributed_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with pytest.raises(ImportError, match=r'pip install "llp\[dask\]"'):
        make_executor("dask", n_workers=1)


def test_make_executor_defaults_to_the_cores_available() -> None:
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    with make_executor("process") as executor:
        assert executor.n_workers == (expected or executor.n_workers)  # type: ignore[attr-defined]
    assert make_executor().n_workers == 1  # type: ignore[attr-defined]


def test_worker_lost_error_is_a_runtime_error() -> None:
    assert issubclass(WorkerLostError, RuntimeError)


def test_probing_classes_keep_as_many_jobs_in_flight_as_the_executor_has_workers(
    monkeypatch,
) -> None:
    import llp.runner._session as session
    import llp.two_tier_probing as ttp
    from llp.runner import Runner

    class TwoWorkers(InProcessExecutor):
        n_workers = 2

    runners: list[Runner] = []

    class SpyRunner(Runner):
        def run(self):  # type: ignore[override]
            runners.append(self)
            raise KeyboardInterrupt  # stop before training anything

    monkeypatch.setattr(session, "Runner", SpyRunner)  # the study session builds it
    probe = ttp.TwoTierProbing(
        [{"width": 8}, {"width": 16}],
        lambda c: nn.Linear(2, 2),
        lambda f: ([], []),
        nn.CrossEntropyLoss(),
        lambda m, c: None,
        executor=TwoWorkers(),
        show_progress=False,
    )
    with pytest.raises(KeyboardInterrupt):
        probe.run_random_search(2)
    assert runners[0].n_workers == 2


def test_workers_of_a_killed_driver_exit_within_seconds(tmp_path) -> None:
    """SIGKILL to the driver (no chance to shut its pool down) used to leave its workers
    training on as orphans for minutes; they watch the driver and exit."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    from llp.executors._base import DRIVER_CHECK_SECONDS

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = (
        "import sys, time\n"
        "from llp.executors import make_executor\n"
        "from tests.executors._tasks import pid_after\n"
        "ex = make_executor('process', n_workers=2)\n"
        "futures = [ex.submit(pid_after, 1.0) for _ in range(2)]\n"
        "print(*sorted({f.result() for f in futures}), flush=True)\n"
        "busy = [ex.submit(pid_after, 600.0) for _ in range(2)]  # mid-evaluation\n"
        "time.sleep(600)\n"
    )
    driver = subprocess.Popen(
        [sys.executable, "-c", script], cwd=root, stdout=subprocess.PIPE, text=True
    )
    workers: list[int] = []
    try:
        workers = [int(p) for p in driver.stdout.readline().split()]
        assert workers, "the driver printed no worker"
        time.sleep(1.0)  # the long evaluations are running
        driver.kill()
        driver.wait(timeout=30)

        def alive(pid: int) -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            # A zombie (exited, not yet reaped by its parent) counts as gone.
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    return fh.read().split(")")[-1].split()[0] != "Z"
            except OSError:
                return False

        deadline = time.monotonic() + 10 * DRIVER_CHECK_SECONDS + 10
        while any(alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(p) for p in workers)
    finally:
        if driver.poll() is None:
            driver.kill()
        for pid in workers:  # never leave them behind, whatever failed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_dask_executor_terminated_with_results_in_flight_logs_no_traceback(
    dask_cluster: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Cancelling tasks whose results are done but not yet fetched made distributed's
    # executor raise inside the event loop: a traceback on a stopped study's stderr.
    import logging

    caplog.set_level(logging.ERROR)
    for _ in range(3):
        executor = make_executor("dask", address=dask_cluster.scheduler_address)
        # Large results: fetching them takes long enough to be cut short.
        futures = [executor.submit(bytes, 20_000_000) for _ in range(12)]
        cf.wait(futures[:1])
        executor.terminate()
        cf.wait(futures, timeout=30)
        for future in futures:
            assert future.done()
            if not future.cancelled() and future.exception() is None:
                assert len(future.result()) == 20_000_000
    time.sleep(0.5)  # the event loop's callbacks run after terminate returns
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


class _FetchFails:
    """A backend future that is done, but whose outcome is lost when read (a Dask result
    cancelled before it was fetched)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def cancel(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def exception(self) -> BaseException | None:
        return None

    def result(self) -> Any:
        raise self.error

    def add_done_callback(self, fn: Any) -> None:
        fn(self)


@pytest.mark.parametrize("lost", [True, False], ids=["lost-worker", "other-error"])
def test_relay_shows_an_outcome_lost_in_transit_instead_of_raising(lost: bool) -> None:
    from llp.executors._base import relay
    from llp.runner import WorkerLostError

    error = ConnectionError("gone")
    outer: cf.Future[Any] = cf.Future()
    relay(_FetchFails(error), outer, lambda exc: "lost" if lost else None)
    raised = outer.exception(timeout=1)
    if lost:
        assert isinstance(raised, WorkerLostError) and raised.__cause__ is error
    else:
        assert raised is error


class _ClosedBackend:
    """A backend future still pending whose client is closed: cancelling it raises (as
    distributed's does, "IOLoop is closed")."""

    def cancel(self) -> bool:
        raise RuntimeError("IOLoop is closed")

    def add_done_callback(self, fn: Any) -> None:
        pass


def test_cancelling_a_call_whose_backend_is_closed_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A study stopped after its Dask client closed cancelled the rest: distributed's
    # cancel raised inside the callback and concurrent.futures logged a traceback.
    import logging

    from llp.executors._base import relay

    caplog.set_level(logging.ERROR)
    outer: cf.Future[Any] = cf.Future()
    relay(_ClosedBackend(), outer, lambda exc: None)
    assert outer.cancel()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.slow
def test_a_dask_executor_shut_down_with_waiting_settles_every_result_first(
    dask_cluster: Any,
) -> None:
    # shutdown(wait=True) must hand every result over before the client closes, even
    # results still being fetched when it is called.
    for _ in range(3):
        executor = make_executor("dask", address=dask_cluster.scheduler_address)
        futures = [executor.submit(bytes, 5_000_000) for _ in range(8)]
        executor.shutdown(wait=True)
        assert all(f.done() for f in futures)
        assert [len(f.result(timeout=0)) for f in futures] == [5_000_000] * 8


def test_terminate_returns_once_the_pools_own_thread_has_ended() -> None:
    # At interpreter exit, Python 3.11 wakes that thread through a pipe without its lock;
    # when the thread closed the pipe at that moment, a stopped study printed "OSError:
    # Bad file descriptor". terminate() waits for it, so nothing is left to race.
    executor = ProcessExecutor(n_workers=2)
    executor.submit(os.getpid).result(timeout=60)
    running = [executor.submit(time.sleep, 60) for _ in range(2)]
    pool = executor._pool
    assert pool is not None
    manager = pool._executor_manager_thread  # type: ignore[attr-defined]
    executor.terminate()
    assert manager is not None and not manager.is_alive()
    _, not_done = cf.wait(running, timeout=30)
    assert not not_done


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_driver_not_yet_reaped_counts_as_gone() -> None:
    """A driver killed while its parent waits for its output first is a zombie: signal 0
    still reaches it, so its workers also read its state (they outlived it before)."""
    import subprocess

    from llp.executors._base import process_alive

    assert process_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while process_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(child.pid)
    os.kill(child.pid, 0)  # a zombie: signal 0 alone would call it alive
    child.wait()
    assert not process_alive(child.pid)
