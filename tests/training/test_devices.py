"""The trainer on every device: CPU everywhere, CUDA where there is one (``-m gpu``).

Each test runs on the CPU too, so the test itself is checked on every machine; the CUDA
run is skipped, with the reason, where torch sees no CUDA device.
"""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from llp.training import (
    EvaluationStatus,
    Fidelity,
    Trainer,
    evaluation_device,
    pinned_device,
    set_worker_slot,
    worker_slot,
)
from llp.training._devices import is_out_of_memory
from tests.conftest import DEVICES, mlp_model_fn, mlp_optimizer_fn

CONFIG = {"lr": 0.01, "width": 32, "dropout": 0.1}
#: More bytes than any machine has: the allocator refuses at once (CPU and CUDA alike).
IMPOSSIBLE = 2**45


def bn_model_fn(config):
    return nn.Sequential(
        nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10)
    )


class Hungry(nn.Module):
    """A user's model whose forward pass asks for more memory than the device has when
    ``config["hungry"]`` is set (the out-of-memory error comes from user code in training)."""

    def __init__(self, hungry: bool) -> None:
        super().__init__()
        self.hungry = hungry
        self.net = mlp_model_fn({"width": 32})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hungry:
            waste = torch.empty(IMPOSSIBLE, dtype=torch.uint8, device=x.device)
            x = x + waste[:1].float()
        return self.net(x)


def hungry_model_fn(config):
    return Hungry(bool(config.get("hungry")))


@pytest.mark.parametrize("device", DEVICES)
def test_trainer_trains_on_the_device_and_repeats_itself(device, make_digits_data) -> None:
    data = make_digits_data()
    trainer = Trainer(mlp_model_fn, mlp_optimizer_fn, nn.CrossEntropyLoss(), data, device=device)
    model, result = trainer.fit(CONFIG, Fidelity(0.5, 3), trial_id=4)
    assert result.status is EvaluationStatus.COMPLETE, result.failure_reason
    assert model is not None
    assert {p.device.type for p in model.parameters()} == {device}
    assert len(result.curve) == 3 and 0.0 < result.score <= 1.0
    again = trainer.evaluate(CONFIG, Fidelity(0.5, 3), trial_id=4)
    assert again.score == pytest.approx(result.score, abs=1e-6)
    assert [r.val_loss for r in again.curve] == pytest.approx(
        [r.val_loss for r in result.curve], rel=1e-5
    )


@pytest.mark.parametrize("device", DEVICES)
def test_batchnorm_model_and_user_loaders_on_the_device(device, make_digits_data) -> None:
    data = make_digits_data()
    X, y, Xv, yv = data.tensors("cpu")

    def dataset_fn(fraction):
        n = max(1, int(fraction * len(X)))
        return DataLoader(TensorDataset(X[:n], y[:n]), batch_size=32), DataLoader(
            TensorDataset(Xv, yv), batch_size=64
        )

    trainer = Trainer(
        bn_model_fn, mlp_optimizer_fn, nn.CrossEntropyLoss(), dataset_fn, device=device
    )
    model, result = trainer.fit(CONFIG, Fidelity(1.0, 2))
    assert result.status is EvaluationStatus.COMPLETE, result.failure_reason
    assert model is not None and model[1].running_mean.device.type == device
    assert result.n_train == len(X)


@pytest.mark.parametrize("device", DEVICES)
def test_flatness_probes_run_on_the_device(device, make_digits_data) -> None:
    data = make_digits_data()
    trainer = Trainer(
        mlp_model_fn,
        mlp_optimizer_fn,
        nn.CrossEntropyLoss(),
        data,
        device=device,
        measure_flatness=True,
    )
    result = trainer.evaluate(CONFIG, Fidelity(0.5, 2))
    assert result.status is EvaluationStatus.COMPLETE, result.failure_reason
    assert result.landscape and all(v == v for v in result.landscape.values())  # no NaN
    assert result.probe_cost > 0
    assert trainer.probe_set()[0].device.type == device


@pytest.mark.parametrize("device", DEVICES)
def test_out_of_memory_in_user_code_is_a_failed_evaluation_and_frees_the_memory(
    device, make_digits_data
) -> None:
    data = make_digits_data()
    trainer = Trainer(hungry_model_fn, mlp_optimizer_fn, nn.CrossEntropyLoss(), data, device=device)
    trainer.evaluate({"hungry": False}, Fidelity(0.25, 1))  # data and context in place
    before = torch.cuda.memory_allocated() if device == "cuda" else 0
    failed = trainer.evaluate({"hungry": True}, Fidelity(0.25, 1), trial_id=1)
    assert failed.status is EvaluationStatus.FAILED
    assert "out of memory" in failed.failure_reason
    assert "the evaluation's memory was released" in failed.failure_reason
    assert failed.traceback and "forward" in failed.traceback
    if device == "cuda":
        # Nothing of the failed run is left: not its model, not its optimizer state.
        assert torch.cuda.memory_allocated() == before
    ok = trainer.evaluate({"hungry": False}, Fidelity(0.25, 1), trial_id=2)
    assert ok.status is EvaluationStatus.COMPLETE  # the study goes on


def test_out_of_memory_errors_are_recognised() -> None:
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: 9 bytes"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_a_worker_slot_pins_an_unnumbered_cuda_device(monkeypatch) -> None:
    cuda, cuda1 = torch.device("cuda"), torch.device("cuda", 1)
    assert pinned_device(cuda, 0, 2) == torch.device("cuda", 0)
    assert pinned_device(cuda, 3, 2) == torch.device("cuda", 1)
    assert pinned_device(cuda, 7, 1) == torch.device("cuda", 0)  # k workers share one GPU
    assert pinned_device(cuda1, 0, 2) == cuda1  # a numbered device is kept
    assert pinned_device(cuda, None, 2) == cuda  # the driver keeps the default GPU
    assert pinned_device(torch.device("cpu"), 3, 2) == torch.device("cpu")
    assert pinned_device(cuda, 3, 0) == cuda
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    previous = worker_slot()
    try:
        set_worker_slot(3)
        assert evaluation_device(cuda) == torch.device("cuda", 1)
        assert evaluation_device(torch.device("cpu")) == torch.device("cpu")
        set_worker_slot(None)
        assert evaluation_device(cuda) == cuda
    finally:
        set_worker_slot(previous)
    with pytest.raises(ValueError, match="'slot' parameter must be an int >= 0"):
        set_worker_slot(-1)


def test_a_pickled_trainer_leaves_its_device_caches_behind(make_digits_data) -> None:
    # A worker builds its own tensors on its own device; copying the driver's would
    # open a CUDA context on the driver's GPU in every worker.
    data = make_digits_data()
    trainer = Trainer(mlp_model_fn, mlp_optimizer_fn, nn.CrossEntropyLoss(), data, device="cpu")
    trainer.evaluate(CONFIG, Fidelity(0.25, 1))
    trainer.probe_set()
    assert data._tensors and trainer._probe is not None
    copy = pickle.loads(pickle.dumps(trainer))
    assert copy._probe is None and copy.data._tensors == {}
    assert trainer._probe is not None and data._tensors  # the original keeps them
    assert copy.evaluate(CONFIG, Fidelity(0.25, 1)).score == pytest.approx(
        trainer.evaluate(CONFIG, Fidelity(0.25, 1)).score
    )
