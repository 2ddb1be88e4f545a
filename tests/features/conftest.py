"""Factories for the feature tests: seeded synthetic datasets and hand-made results."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pytest

from llp.training import EpochRecord, EvaluationResult, EvaluationStatus, Fidelity

Curve = Sequence[tuple[float, float, float | None]]


@pytest.fixture
def make_classification_arrays() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``make(n=300, n_features=5, n_classes=3, seed=0) -> (X, y)``: shifted Gaussian blobs."""

    def make(
        n: int = 300, n_features: int = 5, n_classes: int = 3, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        y = rng.integers(0, n_classes, size=n)
        X = rng.standard_normal((n, n_features)) + y[:, None] * 0.8
        return X, y

    return make


@pytest.fixture
def make_result() -> Callable[..., EvaluationResult]:
    """``make(curve, *, fraction=0.5, epochs=None, landscape=None, failed=False)``.

    ``curve`` lists ``(train_loss, val_loss, val_accuracy)`` per epoch, numbered from 1.
    """

    def make(
        curve: Curve,
        *,
        fraction: float = 0.5,
        epochs: int | None = None,
        landscape: Mapping[str, float] | None = None,
        failed: bool = False,
    ) -> EvaluationResult:
        records = tuple(
            EpochRecord(i + 1, train, val, acc, 0.01) for i, (train, val, acc) in enumerate(curve)
        )
        planned = epochs if epochs is not None else max(len(records), 1)
        final = records[-1].val_accuracy if records else None
        score = None if failed else (final if final is not None else -records[-1].val_loss)
        return EvaluationResult(
            config={"lr": 0.1},
            fidelity=Fidelity(fraction, planned),
            status=EvaluationStatus.FAILED if failed else EvaluationStatus.COMPLETE,
            curve=records,
            score=score,
            objective="val_accuracy" if final is not None else "val_loss",
            cost=fraction * len(records),
            seconds=0.1,
            train_seconds=0.1,
            n_train=100,
            seed=0,
            failure_reason="diverged" if failed else None,
            landscape=dict(landscape or {}),
        )

    return make
