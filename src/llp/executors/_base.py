"""What every executor of :mod:`llp.executors` promises the runner."""

from __future__ import annotations

import abc
import concurrent.futures as cf
import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from llp.runner import WorkerLostError
from llp.training import set_worker_slot, worker_slot


class Executor(cf.Executor, abc.ABC):
    """Base class of the executors that run a study's evaluations somewhere else.

    It is a :class:`concurrent.futures.Executor`, so the :class:`~llp.runner.Runner`
    (and any code written for the standard library) drives it with ``submit``, futures
    and ``shutdown``; the in-process default, :class:`~llp.runner.InProcessExecutor`,
    keeps the same contract.

    Contract
    --------
    - **Where results go.** ``submit(fn, *args)`` returns a future holding what ``fn``
      returned, or the exception ``fn`` raised, as any executor does. Workers only
      compute: the runner, in the driver process, is the only writer to the knowledge
      base, so nothing a worker does can corrupt it.
    - **Lost workers.** When the worker running a call is lost (killed by a signal or
      the out-of-memory killer, a crash in native code, a Dask worker gone), the future
      fails with :class:`~llp.runner.WorkerLostError`, never with the backend's own
      exception, and the executor replaces what it lost: later ``submit`` calls work.
      The runner decides whether to run the call again.
    - **Size.** :attr:`n_workers` is how many calls it runs at once; the runner keeps
      that many in flight unless told otherwise.
    - **Ownership.** ``shutdown`` (or leaving a ``with`` block) releases what the
      executor created (processes, a Dask client, a local cluster) and nothing it was
      given (a cluster reached by address keeps running). ``submit`` after ``shutdown``
      raises ``RuntimeError``.
    - **Stopping.** :meth:`terminate` stops at once, without waiting for running
      calls; leaving a ``with`` block because of an exception (Ctrl-C included) calls
      it. What the runner recorded before stays recorded; a resumed study reruns only
      the evaluations that were cut short.
    - **Threads.** ``submit`` is called from one thread, the runner's; callbacks of the
      returned futures may run in a background thread.
    - **Determinism.** An executor never changes what a call computes: the same job
      gives the same result in-process, in a worker process or on a Dask worker (each
      worker limits PyTorch to ``torch_threads`` threads).
    """

    @property
    @abc.abstractmethod
    def n_workers(self) -> int:
        """Calls run at once."""

    @abc.abstractmethod
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        """Schedule ``fn(*args, **kwargs)``; see the class contract."""

    @abc.abstractmethod
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Release what this executor created; see the class contract."""

    def terminate(self) -> None:
        """Stop now: cancel the calls not yet started, stop the running ones where the
        backend can, and release what this executor created."""
        self.shutdown(wait=False, cancel_futures=True)

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        # An exception (Ctrl-C, a bug) ends the study: waiting for evaluations whose
        # results nobody will read would only delay it.
        if exc_type is None:
            self.shutdown(wait=True)
        else:
            self.terminate()


class BackendFuture(Protocol):
    """What :func:`relay` reads of a backend's future: a ``concurrent.futures.Future``
    or a ``distributed.Future``."""

    def cancel(self) -> Any: ...
    def cancelled(self) -> bool: ...
    def exception(self) -> BaseException | None: ...
    def result(self) -> Any: ...
    def add_done_callback(self, fn: Callable[[Any], object]) -> Any: ...


def relay(
    inner: BackendFuture,
    outer: cf.Future[Any],
    lost_reason: Callable[[BaseException], str | None],
    on_lost: Callable[[], None] | None = None,
) -> None:
    """Complete ``outer`` with the outcome of ``inner``, turning the exceptions for which
    ``lost_reason`` gives a reason into :class:`WorkerLostError`.

    ``inner`` cancelled by the backend (not through ``outer``) is shown to
    ``lost_reason`` as a ``CancelledError``. ``on_lost`` runs first when a worker was
    lost (to mark what must be replaced). Cancelling ``outer`` cancels ``inner``.
    Reading ``inner``'s outcome never raises out of the callback: an outcome lost on its
    way (a Dask result cancelled before it was fetched) is shown to ``lost_reason``.
    """

    def transfer(done: BackendFuture) -> None:
        # InvalidStateError: outer was cancelled meanwhile (the runner is stopping).
        with contextlib.suppress(cf.InvalidStateError):
            settle(done)

    def settle(done: BackendFuture) -> None:
        if outer.done():
            return
        exc: BaseException
        if done.cancelled():
            exc = cf.CancelledError("the backend cancelled the call")
        else:
            try:
                raised = done.exception()
                value = done.result() if raised is None else None
            except Exception as failure:
                # A Dask future fetches its result when asked; a task cancelled or a
                # connection closed in between surfaces here, not as the call's error.
                raised = failure
            if raised is None:
                outer.set_result(value)
                return
            exc = raised
        reason = lost_reason(exc)
        if reason is None:
            if done.cancelled():
                outer.cancel()
                # cancel() alone does not wake concurrent.futures.wait().
                outer.set_running_or_notify_cancel()
            else:
                outer.set_exception(exc)
            return
        if on_lost is not None:
            on_lost()
        lost = WorkerLostError(reason)
        lost.__cause__ = exc
        outer.set_exception(lost)

    def cancel_inner(done: cf.Future[Any]) -> None:
        if done.cancelled():
            # A backend already shut down (a Dask client closed while the study
            # stopped) cannot cancel, and has nothing left to run: nothing to do.
            with contextlib.suppress(RuntimeError):
                inner.cancel()

    outer.add_done_callback(cancel_inner)
    inner.add_done_callback(transfer)


def limit_torch_threads(n_threads: int) -> None:
    """Keep the numerical libraries of this worker process to ``n_threads`` threads, so
    that ``n`` workers on ``n`` cores do not oversubscribe them.

    The environment variables reach libraries imported later; PyTorch, when already
    imported (a ``forkserver`` preload), is told directly.
    """
    import os
    import sys

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(n_threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n_threads)


#: How often a worker checks that the process that started it is still alive (s).
DRIVER_CHECK_SECONDS = 1.0


def prepare_worker_process(
    n_threads: int, driver_pid: int | None = None, slots: Any | None = None
) -> None:
    """Initializer of llp's worker processes: :func:`limit_torch_threads`, Ctrl-C left to
    the driver (a terminal sends SIGINT to every process of the group; the driver decides
    what stops, and its executor ends the workers), given ``slots`` (a shared counter) the
    next worker slot, which pins the worker to one GPU
    (:func:`llp.training.evaluation_device`), and, given ``driver_pid``, a watch on the
    driver: when it is gone (SIGKILL, a crash) the worker exits within
    :data:`DRIVER_CHECK_SECONDS`, even in the middle of an evaluation, instead of
    training on for minutes as an orphan."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_torch_threads(n_threads)
    if slots is not None:
        with slots.get_lock():
            slot = int(slots.value)
            slots.value += 1
        set_worker_slot(slot)
    if driver_pid is not None:
        threading.Thread(
            target=_exit_when_gone, args=(driver_pid,), name="llp-driver-watch", daemon=True
        ).start()


def _exit_when_gone(pid: int) -> None:
    while True:
        time.sleep(DRIVER_CHECK_SECONDS)
        if not process_alive(pid):
            os._exit(1)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs. A killed process whose parent has not reaped
    it yet (a zombie: a driver started by a program that waits for its output before it
    waits for it) still answers signal 0, so on Linux its state is read as well."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS): signal 0 is all there is
        return True
    return state not in (b"Z", b"X")


def call_on_worker(
    n_threads: int | None, slot: int | None, fn: Callable[..., Any], *args: Any
) -> Any:
    """``fn(*args)`` on a worker llp did not start itself with an initializer (Dask's):
    first :func:`limit_torch_threads` (unless ``n_threads`` is ``None``: a cluster that
    is not llp's keeps its own settings) and, once per process, the worker ``slot``
    (:func:`llp.training.evaluation_device`). The arguments were unpickled before the
    call, so PyTorch is imported by now if they hold a trainer; setting the limit is
    cheap enough to do on every call."""
    if n_threads is not None:
        limit_torch_threads(n_threads)
    if slot is not None and worker_slot() is None:
        set_worker_slot(slot)
    return fn(*args)


def slot_from_name(name: Any) -> int | None:
    """A worker slot from a worker's name: its integer name (a Dask ``LocalCluster``
    names its workers 0, 1, ...), else ``None`` (the worker keeps the default GPU).

    >>> slot_from_name(3), slot_from_name("7"), slot_from_name("tcp://10.0.0.1:4000")
    (3, 7, None)
    """
    if isinstance(name, bool):
        return None
    if isinstance(name, int):
        return name if name >= 0 else None
    if isinstance(name, str) and name.isdigit():
        return int(name)
    return None
