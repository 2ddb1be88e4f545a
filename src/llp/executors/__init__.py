"""Where evaluations run: the :class:`concurrent.futures.Executor` seam of the runner.

- in this process, one at a time (:class:`InProcessExecutor`, the default);
- in local worker processes (:class:`ProcessExecutor`);
- on a Dask cluster (:class:`DaskExecutor`): a ``LocalCluster`` started for the study,
  or a running scheduler by address (``pip install "llp[dask]"``).

:func:`make_executor` builds any of them from a kind. Whatever the executor, the runner
in the driver process is the only writer to the knowledge base, keeps ``n_workers``
evaluations in flight, and runs an evaluation whose worker was lost again (a bounded
number of times, then records it as failed with the reason).

Examples
--------
>>> from llp.executors import make_executor
>>> executor = make_executor("process", n_workers=2)  # doctest: +SKIP
>>> probe = TwoTierProbing(configs, model_fn, data, criterion, optimizer_fn,
...                        executor=executor, n_workers=2)  # doctest: +SKIP
>>> result = probe.run_successive_halving(0.1, 1.0, 2)  # doctest: +SKIP
>>> executor.shutdown()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llp.executors._base import Executor
from llp.executors._factory import ExecutorKind, make_executor
from llp.executors._process import ProcessExecutor
from llp.runner import InProcessExecutor, WorkerLostError

if TYPE_CHECKING:
    from llp.executors._dask import DaskExecutor

__all__ = [
    "DaskExecutor",
    "Executor",
    "ExecutorKind",
    "InProcessExecutor",
    "ProcessExecutor",
    "WorkerLostError",
    "make_executor",
]


def __getattr__(name: str) -> Any:
    # DaskExecutor's module is light, but keep `import llp.executors` free of Dask's
    # import machinery until it is asked for.
    if name == "DaskExecutor":
        from llp.executors._dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module 'llp.executors' has no attribute {name!r}")
