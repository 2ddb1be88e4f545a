"""Executors shared by the executor tests, each shut down at the end of the session.

Starting worker processes is the slow part (PyTorch imports in seconds), so a process
pool and a Dask cluster are started once and reused; tests that must own an executor
(to shut it down, or to break it) make their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llp.executors import ProcessExecutor


@pytest.fixture(scope="session")
def process_executor() -> Iterator[ProcessExecutor]:
    """Two local worker processes. The forkserver they start (once per session) imports
    the test helpers, so that later pools start in milliseconds."""
    with ProcessExecutor(
        n_workers=2, preload=["tests.conftest", "tests.executors._tasks"]
    ) as executor:
        yield executor


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """A local Dask cluster of two single-threaded worker processes that gives up on a
    task the first time its worker dies (``allowed-failures: 0``), so that a lost worker
    reaches llp as ``KilledWorker`` instead of being rescheduled by Dask itself."""
    pytest.importorskip("distributed")
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
    try:
        yield cluster
    finally:
        cluster.close()
