"""Evaluations on a Dask cluster (``distributed``): a local one, or one reached by address."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llp._checks import check_int
from llp.executors._base import Executor, call_on_worker, relay, slot_from_name
from llp.executors._process import available_cores

if TYPE_CHECKING:
    from types import ModuleType


def import_distributed() -> ModuleType:
    """``distributed``, or an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "Running evaluations on Dask needs the 'distributed' package, which is not "
            'installed. Install it with: pip install "llp[dask]"'
        ) from exc
    return distributed


class DaskExecutor(Executor):
    """Runs evaluations on a Dask cluster through ``distributed``.

    Without ``address`` it starts a ``LocalCluster`` of ``n_workers`` worker processes
    with one thread each, and closes it (and its client) on :meth:`shutdown`. With
    ``address`` it connects a client to that running scheduler and closes only that
    client: the cluster is somebody else's.

    On top of ``Client.submit`` it

    - submits every call as impure (``pure=False``), so running a lost evaluation again
      really runs it instead of returning the cached failure;
    - sends an evaluation function (a trainer with its data) to the workers once,
      with ``Client.scatter``, instead of inside every task (so submit a new function
      object rather than changing the one already submitted);
    - turns a lost worker (``KilledWorker`` once Dask gave up rescheduling the task, a
      closed connection, a task cancelled under us) into
      :class:`~llp.runner.WorkerLostError`, so the runner can run it again;
    - on a cluster it started, limits each worker's PyTorch to ``torch_threads``
      threads;
    - pins a worker with an integer name (a local cluster's 0, 1, ...) to one GPU: a
      study on ``"cuda"`` (or ``"auto"`` with CUDA) runs worker ``i`` on
      ``cuda:(i mod GPUs)``, so ``n_workers`` = ``k`` x the GPUs runs ``k`` evaluations
      side by side on each (:mod:`llp.training._devices`). On a cluster of your own, give
      each worker its GPU with ``CUDA_VISIBLE_DEVICES`` (as dask-cuda does) or integer
      names.

    Parameters
    ----------
    n_workers : int, optional
        Without ``address``: worker processes of the local cluster (defaults to the CPU
        cores available). With ``address``: evaluations kept in flight (defaults to the
        number of worker threads in the cluster when connecting).
    address : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    torch_threads : int, default=1
        Threads each worker's PyTorch may use (local cluster only).
    timeout : float, default=30
        Seconds to wait for the scheduler when connecting.

    Raises
    ------
    ImportError
        If ``distributed`` is not installed (``pip install "llp[dask]"``).
    OSError
        If no scheduler answers at ``address`` within ``timeout``.

    Examples
    --------
    >>> from llp.executors import DaskExecutor
    >>> with DaskExecutor(n_workers=2) as executor:  # doctest: +SKIP
    ...     result = TwoTierProbing(..., executor=executor, n_workers=2).run_hyperband()
    """

    def __init__(
        self,
        n_workers: int | None = None,
        *,
        address: str | None = None,
        torch_threads: int = 1,
        timeout: float = 30.0,
    ) -> None:
        owner = "DaskExecutor"
        if n_workers is not None:
            check_int("n_workers", n_workers, min_value=1, owner=owner)
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise TypeError(
                f"The 'address' parameter of {owner} must be the address of a Dask "
                "scheduler as a str, e.g. 'tcp://10.0.0.5:8786', or None for a local "
                f"cluster. Got {address!r} instead."
            )
        self.torch_threads = check_int("torch_threads", torch_threads, min_value=1, owner=owner)
        distributed = import_distributed()
        self.address = address
        self._cluster: Any = None
        if address is None:
            n = available_cores() if n_workers is None else n_workers
            self._cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
            )
            try:
                self._client = distributed.Client(self._cluster, timeout=timeout)
            except BaseException:
                self._cluster.close()
                raise
        else:
            self._client = distributed.Client(address, timeout=timeout)
            threads = sum(self._client.nthreads().values())
            n = max(1, threads) if n_workers is None else n_workers
        self._n_workers = n
        self._lock = threading.Lock()
        # Each Dask future not yet handed over, and the future the caller holds for it.
        self._running: dict[Any, cf.Future[Any]] = {}
        self._scattered: dict[int, tuple[Any, Any]] = {}
        self._shutdown = False

    @property
    def n_workers(self) -> int:
        return self._n_workers

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (e.g. for its dashboard link)."""
        return self._client

    @property
    def owns_cluster(self) -> bool:
        """Whether this executor started the cluster (and closes it on shutdown)."""
        return self._cluster is not None

    def __repr__(self) -> str:
        where = self.address if self.address is not None else "LocalCluster"
        return f"DaskExecutor(n_workers={self._n_workers}, cluster={where!r})"

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        if self._shutdown:
            raise RuntimeError("cannot submit to a DaskExecutor that was shut down")
        if kwargs:
            raise TypeError(
                "DaskExecutor.submit takes positional arguments only (the runner passes "
                f"none by keyword). Got {sorted(kwargs)}."
            )
        remote_fn = self._scatter(fn)
        threads = self.torch_threads if self.owns_cluster else None
        # Dask futures directly, not Client.get_executor(): its relay raises into the
        # event loop (a traceback on stderr) when a finished task is cancelled before
        # its result is fetched, which a stopped study does.
        inner = self._client.submit(_call, threads, remote_fn, *args, pure=False)
        outer: cf.Future[Any] = cf.Future()
        with self._lock:
            self._running[inner] = outer
        relay(inner, outer, _lost_reason, self._forget_scattered)
        # After the relay's own callback (Dask runs them in order): handed over by then.
        inner.add_done_callback(self._done)
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        with self._lock:
            running = dict(self._running)
        try:
            if cancel_futures:
                self._client.cancel(list(running))
            elif wait and running:
                # Every result handed over (or its error) before the client closes.
                cf.wait(running.values())
        finally:
            self._scattered.clear()
            try:
                self._client.close()
            finally:
                if self._cluster is not None:
                    self._cluster.close()

    def terminate(self) -> None:
        """Stop now: cancel this executor's tasks (running ones included) and close what
        it created."""
        self.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ internals
    def _scatter(self, fn: Callable[..., Any]) -> Any:
        """The evaluation function as data every worker holds (sent once)."""
        with self._lock:
            held = self._scattered.get(id(fn))
            if held is not None:
                return held[1]
        future = self._client.scatter(fn, broadcast=True, hash=False)
        with self._lock:
            # Only the latest function stays on the workers (a runner submits one for a
            # whole study); holding it keeps its id from being reused by another object.
            self._scattered = {id(fn): (fn, future)}
        return future

    def _done(self, future: Any) -> None:
        with self._lock:
            self._running.pop(future, None)

    def _forget_scattered(self) -> None:
        # The lost worker may have held the only copy; send it again with the next call.
        with self._lock:
            self._scattered.clear()


def _call(n_threads: int | None, fn: Callable[..., Any], *args: Any) -> Any:
    """Runs on the Dask worker: its integer name (a ``LocalCluster``'s 0, 1, ...) is its
    slot, which pins it to one GPU."""
    name = import_distributed().get_worker().name
    return call_on_worker(n_threads, slot_from_name(name), fn, *args)


def _lost_reason(exc: BaseException) -> str | None:
    """Why a task failed when its worker, not its code, was the problem."""
    distributed = import_distributed()
    from distributed.comm.core import CommClosedError

    name = type(exc).__name__
    if isinstance(exc, distributed.KilledWorker):
        return f"Dask gave up on the task after the workers running it died ({exc})"
    if isinstance(exc, CommClosedError):
        return f"the connection to a Dask worker or the scheduler closed ({name}: {exc})"
    if isinstance(exc, cf.CancelledError) or name == "FutureCancelledError":
        return f"Dask cancelled the task ({name}: {exc})"
    return None
