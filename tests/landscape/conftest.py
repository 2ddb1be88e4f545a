"""Factories for the landscape tests: tiny seeded models and probe sets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

ProbeSet = tuple[torch.Tensor, torch.Tensor]


@pytest.fixture
def make_probe_set() -> Callable[..., ProbeSet]:
    """``make_probe_set(n=64, n_features=5, n_classes=3, seed=0) -> (inputs, targets)``."""

    def factory(
        n: int = 64,
        n_features: int = 5,
        n_classes: int = 3,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> ProbeSet:
        generator = torch.Generator().manual_seed(seed)
        inputs = torch.randn(n, n_features, generator=generator, dtype=dtype)
        targets = torch.randint(0, n_classes, (n,), generator=generator)
        return inputs, targets

    return factory


@pytest.fixture
def make_mlp() -> Callable[..., nn.Sequential]:
    """``make_mlp(n_features=5, hidden=16, n_classes=3, seed=0, activation=nn.ReLU)``."""

    def factory(
        n_features: int = 5,
        hidden: int = 16,
        n_classes: int = 3,
        seed: int = 0,
        activation: type[nn.Module] = nn.ReLU,
        dtype: torch.dtype = torch.float32,
    ) -> nn.Sequential:
        # Parameter init reads the global RNG; fork it so tests never disturb each other.
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = nn.Sequential(
                nn.Linear(n_features, hidden), activation(), nn.Linear(hidden, n_classes)
            )
        return model.to(dtype)

    return factory


@pytest.fixture
def make_bn_dropout_model(
    make_probe_set: Callable[..., ProbeSet],
) -> Callable[..., nn.Sequential]:
    """An MLP with BatchNorm and Dropout in train mode with non-trivial running stats,
    one submodule in eval mode and one frozen parameter, to exercise every kind of state."""

    def factory(seed: int = 0) -> nn.Sequential:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = nn.Sequential(
                nn.Linear(5, 16),
                nn.BatchNorm1d(16),
                nn.ReLU(),
                nn.Dropout(0.3),
                nn.Linear(16, 3),
            )
            model.train()
            inputs, _ = make_probe_set(n=32, seed=seed + 100)
            for _ in range(3):
                model(inputs)
        model[2].eval()  # a mixed train/eval tree must come back as it was
        model[1].bias.requires_grad_(False)
        return model

    return factory


@pytest.fixture
def make_cnn() -> Callable[..., nn.Sequential]:
    """A small CNN on 1x8x8 images with BatchNorm: conv-bn-relu-pool-linear."""

    def factory(seed: int = 0) -> nn.Sequential:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return nn.Sequential(
                nn.Conv2d(1, 4, 3, padding=1),
                nn.BatchNorm2d(4),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(4 * 4 * 4, 3),
            )

    return factory
