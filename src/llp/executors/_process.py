"""Evaluations in local worker processes."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import importlib.util
import multiprocessing as mp
import os
import pickle
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

from llp._checks import check_int
from llp.executors._base import Executor, prepare_worker_process, relay

StartMethod = Literal["forkserver", "spawn"]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS and Windows
        return max(1, os.cpu_count() or 1)


class ProcessExecutor(Executor):
    """Runs evaluations in ``n_workers`` local processes, one evaluation per process.

    A :class:`concurrent.futures.ProcessPoolExecutor` underneath, with what a PyTorch
    study needs on top of it:

    - workers start with ``forkserver`` (default where the platform has it) or
      ``spawn``, never plain ``fork``: forking a process whose PyTorch has started
      threads can deadlock. With ``forkserver``, PyTorch and the module of the first
      evaluation function are imported once in the server, so a worker (or a
      replacement worker) starts in milliseconds instead of re-importing them;
    - each worker limits PyTorch (and OpenMP/MKL) to ``torch_threads`` threads, so
      ``n`` workers on ``n`` cores do not oversubscribe them;
    - each worker takes a slot (0, 1, ... in the order they start), which pins it to one
      GPU: a study on ``"cuda"`` (or ``"auto"`` with CUDA) runs worker ``i`` on
      ``cuda:(i mod GPUs)``; ``n_workers`` = ``k`` x the GPUs runs ``k`` evaluations
      side by side on each GPU, which a small model needs to keep a large GPU busy
      (:mod:`llp.training._devices`; a numbered device such as ``"cuda:1"`` is kept);
    - a worker killed in the middle of an evaluation (``SIGKILL``, the out-of-memory
      killer, a segfault) fails the futures in flight with
      :class:`~llp.runner.WorkerLostError`, and the next ``submit`` starts a fresh pool
      (a standard pool stays broken for good);
    - the evaluation function is checked to be picklable at its first ``submit``, with
      a message that says what to do when it is not.

    Parameters
    ----------
    n_workers : int, optional
        Worker processes; defaults to the number of CPU cores available.
    start_method : {"forkserver", "spawn"}, optional
        ``"forkserver"`` where available (Linux, macOS), else ``"spawn"``.
    torch_threads : int, default=1
        Threads each worker's PyTorch may use.
    preload : sequence of str, default=()
        More modules for the ``forkserver`` to import once, e.g. the module that
        defines your ``model_fn`` when importing it is slow. The main script, PyTorch
        and the module of the evaluation function are preloaded anyway. The server is
        shared by the whole process: the first pool that starts it decides.

    Attributes
    ----------
    n_pools_started : int
        Pools started so far: 1 plus one per replacement after a lost worker.

    Notes
    -----
    With ``spawn`` or ``forkserver`` a worker imports the functions it runs by name:
    ``model_fn``, ``optimizer_fn`` and ``dataset_fn`` must be defined at module level
    (not lambdas or nested functions), and a script must protect its entry point with
    ``if __name__ == "__main__":``.

    Examples
    --------
    >>> from llp.executors import ProcessExecutor
    >>> with ProcessExecutor(n_workers=2) as executor:  # doctest: +SKIP
    ...     probe = TwoTierProbing(configs, model_fn, data, criterion, optimizer_fn,
    ...                            executor=executor, n_workers=2)
    ...     result = probe.run_successive_halving(0.1, 1.0, 2)
    """

    def __init__(
        self,
        n_workers: int | None = None,
        *,
        start_method: StartMethod | None = None,
        torch_threads: int = 1,
        preload: Sequence[str] = (),
    ) -> None:
        owner = "ProcessExecutor"
        self._n_workers = (
            available_cores()
            if n_workers is None
            else check_int("n_workers", n_workers, min_value=1, owner=owner)
        )
        methods = mp.get_all_start_methods()
        if start_method is None:
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        if start_method not in ("forkserver", "spawn"):
            raise ValueError(
                "The 'start_method' parameter of ProcessExecutor must be 'forkserver' or "
                f"'spawn' ('fork' is unsafe with PyTorch). Got {start_method!r} instead."
            )
        if start_method not in methods:
            raise ValueError(
                f"The 'start_method' parameter of ProcessExecutor must be one of the start "
                f"methods of this platform, {[m for m in methods if m != 'fork']}. "
                f"Got {start_method!r} instead."
            )
        self.start_method: StartMethod = start_method
        self.torch_threads = check_int("torch_threads", torch_threads, min_value=1, owner=owner)
        if isinstance(preload, str) or not all(isinstance(m, str) for m in preload):
            raise TypeError(
                f"The 'preload' parameter of {owner} must be a sequence of module names. "
                f"Got {preload!r} instead."
            )
        self.preload = tuple(preload)
        self.n_pools_started = 0
        self._pool: cf.ProcessPoolExecutor | None = None
        self._generation = 0
        self._broken_generation = -1
        self._lock = threading.Lock()
        self._checked: dict[int, Any] = {}
        self._shutdown = False

    @property
    def n_workers(self) -> int:
        return self._n_workers

    def __repr__(self) -> str:
        return f"ProcessExecutor(n_workers={self._n_workers}, start_method={self.start_method!r})"

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        if self._shutdown:
            raise RuntimeError("cannot submit to a ProcessExecutor that was shut down")
        self._check_picklable(fn)
        outer: cf.Future[Any] = cf.Future()
        for attempt in (1, 2):
            pool, generation = self._live_pool(fn)
            try:
                inner = pool.submit(fn, *args, **kwargs)
            except BrokenProcessPool:
                # A worker died since the last result came back; a fresh pool takes it.
                self._mark_broken(generation)
                if attempt == 2:
                    raise
                continue
            relay(inner, outer, _lost_reason, functools.partial(self._mark_broken, generation))
            return outer
        raise AssertionError("unreachable")  # pragma: no cover

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            pool, self._pool = self._pool, None
            self._checked.clear()
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def terminate(self) -> None:
        """Stop now: cancel queued evaluations and end the worker processes without
        waiting for the running ones (the runner would throw their results away)."""
        with self._lock:
            self._shutdown = True
            pool, self._pool = self._pool, None
            self._checked.clear()
        if pool is None:
            return
        # The standard pool has no public way to stop a running call; its workers run
        # nothing but this executor's calls, so ending them is safe.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=10)
        # The pool's manager thread closes its wake-up pipe once it sees the workers gone.
        # Wait for that here: at interpreter exit, Python 3.11's concurrent.futures wakes
        # every such thread without its lock, and a pipe closed at that moment printed
        # "OSError: Bad file descriptor" after a stopped study.
        if manager is not None and manager is not threading.current_thread():
            manager.join(timeout=10)

    # ------------------------------------------------------------------ internals
    def _live_pool(self, fn: Callable[..., Any]) -> tuple[cf.ProcessPoolExecutor, int]:
        with self._lock:
            if self._pool is not None and self._broken_generation != self._generation:
                return self._pool, self._generation
            old, self._pool = self._pool, None
            if old is not None:
                # Its workers are gone or going; nothing in it can finish any more.
                old.shutdown(wait=False, cancel_futures=True)
            context = mp.get_context(self.start_method)
            if self.start_method == "forkserver":
                # Only read when the (process-wide) server starts: the first pool decides.
                context.set_forkserver_preload(_preload_modules(fn, self.preload))
            self._pool = cf.ProcessPoolExecutor(
                self._n_workers,
                mp_context=context,
                initializer=prepare_worker_process,
                # Workers watch this process: a killed driver leaves no orphans behind.
                # Each worker takes the next slot: one GPU per worker, round the GPUs.
                initargs=(self.torch_threads, os.getpid(), context.Value("i", 0)),
            )
            self._generation += 1
            self.n_pools_started += 1
            return self._pool, self._generation

    def _mark_broken(self, generation: int) -> None:
        with self._lock:
            self._broken_generation = max(self._broken_generation, generation)

    def _check_picklable(self, fn: Callable[..., Any]) -> None:
        if id(fn) in self._checked:
            return
        try:
            pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise TypeError(
                "Evaluations run in worker processes, so the evaluation function and "
                "everything it holds (model_fn, optimizer_fn, criterion, dataset_fn) must be "
                f"picklable, and {type(fn).__name__} is not: {exc}. Define these functions "
                "at module level (not as lambdas or nested functions), or run in-process "
                "(make_executor('inprocess'))."
            ) from exc
        # Only the latest function is remembered (a runner submits one for a whole study);
        # holding it keeps its id from being reused by another object.
        self._checked = {id(fn): fn}


def _lost_reason(exc: BaseException) -> str | None:
    if isinstance(exc, BrokenProcessPool):
        return (
            "the worker process running it died (killed by a signal or the out-of-memory "
            "killer, or crashed in native code)"
        )
    return None


def _preload_modules(fn: Callable[..., Any], extra: Sequence[str]) -> list[str]:
    """What a forkserver imports once, so its workers start without importing it:
    the main script (which ``spawn`` re-imports in every worker, so it must already be
    safe to import), PyTorch if the driver uses it, llp's executors, the module defining
    ``fn`` (or its class) and ``extra``."""
    names = ["__main__"]
    if "torch" in sys.modules:
        # The first optimizer step imports torch._dynamo (and sympy): a second per worker.
        names += ["torch", "torch._dynamo"]
    # The workers' initializer lives here, and this module imports llp.runner.
    names.append(__name__)
    for module in (getattr(fn, "__module__", None), type(fn).__module__, *extra):
        if not module or module in ("__main__", "builtins") or module in names:
            continue
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            names.append(module)
    return names
