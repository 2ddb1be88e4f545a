"""One GPU per worker: the process and Dask executors give each worker a slot, and an
unnumbered CUDA device becomes ``cuda:(slot mod GPUs)`` there. On a CPU machine the
slots are still checked; the CUDA runs need ``-m gpu`` and a GPU."""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any

import pytest
import torch
from torch import nn

from llp.executors import ProcessExecutor, make_executor
from llp.training import Trainer
from tests.conftest import DEVICES, mlp_model_fn, mlp_optimizer_fn
from tests.executors._tasks import trained_where


def trainer_on(device: str, data) -> Trainer:
    return Trainer(mlp_model_fn, mlp_optimizer_fn, nn.CrossEntropyLoss(), data, device=device)


def where_each_worker_trained(executor: cf.Executor, trainer: Trainer) -> dict[int, Any]:
    """``{pid: (slot, device)}`` over enough concurrent calls to reach both workers."""
    futures = [executor.submit(trained_where, trainer) for _ in range(6)]
    seen: dict[int, Any] = {}
    for future in futures:
        slot, device, pid = future.result(timeout=120)
        assert seen.setdefault(pid, (slot, device)) == (slot, device)  # a worker stays put
    return seen


def check_pinning(seen: dict[int, Any], device: str) -> None:
    slots = sorted(slot for slot, _ in seen.values())
    assert slots == [0, 1]  # two workers, two slots
    for slot, where in seen.values():
        if device == "cpu":
            assert where == "cpu"
        else:
            assert where == f"cuda:{slot % torch.cuda.device_count()}"


@pytest.mark.parametrize("device", DEVICES)
def test_process_workers_take_one_slot_each_and_pin_their_gpu(
    device: str, process_executor: ProcessExecutor, make_digits_data
) -> None:
    trainer = trainer_on(device, make_digits_data(200))
    check_pinning(where_each_worker_trained(process_executor, trainer), device)
    # The driver itself keeps the device it was given.
    assert str(trainer.device) == device


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_dask_workers_are_pinned_by_their_names(
    device: str, dask_cluster: Any, make_digits_data
) -> None:
    trainer = trainer_on(device, make_digits_data(200))
    with make_executor("dask", address=dask_cluster.scheduler_address) as executor:
        check_pinning(where_each_worker_trained(executor, trainer), device)
