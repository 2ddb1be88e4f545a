"""Shared fixture factories: small real data (scikit-learn digits) and tiny models."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from llp.data import FidelityData
from llp.search import Job
from llp.training import EpochRecord, EvaluationResult, EvaluationStatus

torch.set_num_threads(1)

#: The marks of a test that needs CUDA: ``-m gpu`` selects them; without a CUDA device
#: they are skipped with the reason.
GPU = (
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs a CUDA device: torch.cuda.is_available() is False on this machine",
    ),
)
#: Run a test on the CPU everywhere and on CUDA where there is one (the CPU run checks
#: the test itself on every machine).
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", marks=GPU, id="cuda")]


@pytest.fixture(scope="session", autouse=True)
def meta_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The fitted meta-models' cache on disk goes to this session's own folder (also
    for the ``llp`` commands tests start), never to the user's."""
    from llp.meta._cache import CACHE_ENV

    folder = tmp_path_factory.mktemp("llp-cache")
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture
def make_digits_data(digits: tuple[np.ndarray, np.ndarray]) -> Callable[..., FidelityData]:
    def make(n: int | None = 600, **kwargs: Any) -> FidelityData:
        X, y = digits
        if n is not None:
            X, y = X[:n], y[:n]
        kwargs.setdefault("standardize", True)
        return FidelityData(X, y, **kwargs)

    return make


def mlp_model_fn(config: Mapping[str, Any]) -> nn.Module:
    width = int(config.get("width", 32))
    return nn.Sequential(
        nn.Linear(64, width),
        nn.ReLU(),
        nn.Dropout(float(config.get("dropout", 0.0))),
        nn.Linear(width, 10),
    )


def mlp_optimizer_fn(model: nn.Module, config: Mapping[str, Any]) -> torch.optim.Optimizer:
    lr = float(config.get("lr", 1e-2))
    if config.get("optimizer", "adam") == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return torch.optim.Adam(model.parameters(), lr=lr)


@pytest.fixture
def model_fn() -> Callable[[Mapping[str, Any]], nn.Module]:
    return mlp_model_fn


@pytest.fixture
def optimizer_fn() -> Callable[[nn.Module, Mapping[str, Any]], torch.optim.Optimizer]:
    return mlp_optimizer_fn


def fake_result(
    job: Job, score: float | None, *, failed: bool = False, val_loss: float | None = None
) -> EvaluationResult:
    """A result as a trainer would record it, without training (for scheduler tests).
    Its validation loss falls as ``1 / epoch``, or ends at ``val_loss`` when given."""
    status = EvaluationStatus.FAILED if failed else EvaluationStatus.COMPLETE
    epochs = job.fidelity.epochs

    def loss(e: int) -> float:
        return val_loss if val_loss is not None and e == epochs else 1.0 / e

    return EvaluationResult(
        config=job.config,
        fidelity=job.fidelity,
        status=status,
        curve=tuple(EpochRecord(e, 1.0 / e, loss(e), score, 0.0) for e in range(1, epochs + 1)),
        score=None if failed else score,
        objective="val_accuracy",
        cost=job.fidelity.cost,
        seconds=0.0,
        train_seconds=0.0,
        n_train=0,
        seed=0,
        failure_reason="synthetic failure" if failed else None,
    )


@pytest.fixture(scope="session")
def make_fake_evaluate() -> Callable[..., Callable[[Job], EvaluationResult]]:
    """``evaluate(job)`` whose score is a smooth function of config and resource."""

    def make(
        fail_when: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> Callable[[Job], EvaluationResult]:
        def evaluate(job: Job) -> EvaluationResult:
            if fail_when is not None and fail_when(job.config):
                return fake_result(job, None, failed=True)
            x = float(job.config["x"])
            score = 0.9 - (x - 0.3) ** 2 + 0.1 * job.fidelity.fraction  # at most 1
            return fake_result(job, score)

        return evaluate

    return make
