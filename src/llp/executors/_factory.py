"""``make_executor``: the one place that turns a kind of executor into an executor."""

from __future__ import annotations

import concurrent.futures as cf
from typing import Literal

from llp._checks import check_int

ExecutorKind = Literal["inprocess", "process", "dask"]

_KINDS = ("inprocess", "process", "dask")


def make_executor(
    kind: ExecutorKind = "inprocess",
    *,
    n_workers: int | None = None,
    address: str | None = None,
) -> cf.Executor:
    """An executor to pass as ``executor=`` to :class:`~llp.two_tier_probing.TwoTierProbing`,
    :class:`~llp.meta_probing.MetaProbing` or :class:`~llp.runner.Runner`.

    Parameters
    ----------
    kind : {"inprocess", "process", "dask"}, default="inprocess"
        - ``"inprocess"``: one evaluation at a time in this process
          (:class:`~llp.runner.InProcessExecutor`);
        - ``"process"``: local worker processes (:class:`ProcessExecutor`);
        - ``"dask"``: a Dask cluster (:class:`DaskExecutor`): a local cluster, or the
          running scheduler at ``address``. Needs ``pip install "llp[dask]"``.
    n_workers : int, optional
        Evaluations run at once. ``"inprocess"``: 1 (the only value it accepts);
        ``"process"`` and a local Dask cluster: worker processes, by default one per CPU
        core available; Dask by ``address``: evaluations kept in flight, by default the
        cluster's worker threads.
    address : str, optional
        Address of a running Dask scheduler (``kind="dask"`` only), e.g.
        ``"tcp://10.0.0.5:8786"``.

    Returns
    -------
    concurrent.futures.Executor
        It has an ``n_workers`` attribute, which the runner keeps in flight. Close it
        with ``shutdown()`` or a ``with`` block: that stops the processes or the local
        cluster it started (never a cluster given by address).

    Examples
    --------
    >>> from llp.executors import make_executor
    >>> with make_executor("inprocess") as executor:
    ...     executor.submit(sum, [1, 2]).result()
    3
    >>> with make_executor("process", n_workers=2) as executor:  # doctest: +SKIP
    ...     result = TwoTierProbing(..., executor=executor, n_workers=2).run_hyperband()
    """
    if kind not in _KINDS:
        raise ValueError(
            f"The 'kind' parameter of make_executor must be one of {_KINDS}. Got {kind!r} instead."
        )
    if n_workers is not None:
        check_int("n_workers", n_workers, min_value=1, owner="make_executor")
    if address is not None and kind != "dask":
        raise ValueError(
            "The 'address' parameter of make_executor is the address of a Dask scheduler "
            f"and needs kind='dask'. Got address={address!r} with kind={kind!r}."
        )
    if kind == "inprocess":
        if n_workers not in (None, 1):
            raise ValueError(
                "The 'n_workers' parameter of make_executor must be 1 for kind='inprocess', "
                f"which runs one evaluation at a time. Got {n_workers!r}; use "
                "kind='process' for several local workers."
            )
        from llp.runner import InProcessExecutor

        return InProcessExecutor()
    if kind == "process":
        from llp.executors._process import ProcessExecutor

        return ProcessExecutor(n_workers)
    from llp.executors._dask import DaskExecutor

    return DaskExecutor(n_workers, address=address)
