"""The search space and the model families the shipped knowledge is measured on.

The families read the same five hyperparameters under the same names, so what the
meta-model learns about a learning rate on tabular data carries over to signals and
images. The builders are public: :class:`llp.meta_probing.MetaProbing`, the command line
and the benchmarks reuse them, and a user who searches with them gets the full benefit of
the shipped corpus (same space, same architectures).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llp.space import Categorical, Float, Int, SearchSpace

if TYPE_CHECKING:
    import torch
    from torch import nn

#: The space the shipped corpus samples its fixed design from; shared by both families.
DEFAULT_SPACE = SearchSpace(
    [
        Float("lr", 1e-4, 1.0, log=True),
        Float("weight_decay", 1e-6, 1e-2, log=True),
        Int("width", 16, 256, log=True),
        Float("dropout", 0.0, 0.5),
        Categorical("optimizer", ("sgd", "adam")),
    ]
)

#: Momentum of the ``"sgd"`` choice (not searched: one less dimension, and 0.9 is the
#: value nearly every tuned SGD setting of these models ends up near).
SGD_MOMENTUM = 0.9


def _width(config: Mapping[str, Any], owner: str) -> int:
    width = config.get("width")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(
            f"The config of {owner} must hold 'width', an int >= 1. Got {width!r} instead."
        )
    return width


def _dropout(config: Mapping[str, Any], owner: str) -> float:
    p = config.get("dropout", 0.0)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(
            f"The config of {owner} must hold 'dropout', a float in [0, 1). Got {p!r} instead."
        )
    return float(p)


def _positive(name: str, value: Any, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"The '{name}' parameter of {owner} must be an int >= 1. Got {value!r} instead."
        )
    return value


def make_mlp(config: Mapping[str, Any], n_features: int, n_classes: int) -> nn.Module:
    """The ``"mlp"`` family: two hidden layers of ``width`` units for tabular data.

    ``Linear(n_features, width) → ReLU → Dropout(dropout) → Linear(width, width) → ReLU →
    Linear(width, n_classes)``. Feed it standardised features (e.g.
    ``FidelityData(..., standardize=True)``) and train it with cross-entropy.

    Parameters
    ----------
    config : mapping
        A configuration of :data:`DEFAULT_SPACE` (``width`` and ``dropout`` are read).
    n_features : int
        Input width (after one-hot encoding).
    n_classes : int

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> config = DEFAULT_SPACE.sample(1, seed=0)[0]
    >>> make_mlp(config, n_features=4, n_classes=3)(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """
    from torch import nn

    owner = "make_mlp"
    width = _width(config, owner)
    return nn.Sequential(
        nn.Linear(_positive("n_features", n_features, owner), width),
        nn.ReLU(),
        nn.Dropout(_dropout(config, owner)),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, _positive("n_classes", n_classes, owner)),
    )


def make_cnn(config: Mapping[str, Any], input_shape: Sequence[int], n_classes: int) -> nn.Module:
    """The ``"cnn"`` family: two convolution blocks of ``width`` channels, then a linear
    classifier; 1-D for signals ``(channels, length)``, 2-D for images
    ``(channels, height, width)``.

    Each block is ``Conv(k=3, padding=1) → ReLU → MaxPool(2)``; the pooled maps are
    flattened, dropped out with ``dropout`` and read by one ``Linear`` layer. A side
    shorter than 4 is padded by the pooling (``ceil_mode``), so 8×8 digits and 40-sample
    MNIST-1D signals both fit.

    Parameters
    ----------
    config : mapping
        A configuration of :data:`DEFAULT_SPACE`; ``width`` is the channel count.
    input_shape : sequence of int
        Shape of one example without the batch dimension, e.g. ``(1, 40)`` or ``(1, 8, 8)``.
    n_classes : int

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> config = DEFAULT_SPACE.sample(1, seed=0)[0]
    >>> make_cnn(config, (1, 8, 8), n_classes=10)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """
    from torch import nn

    owner = "make_cnn"
    shape = tuple(input_shape)
    if len(shape) not in (2, 3) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape
    ):
        raise ValueError(
            f"The 'input_shape' parameter of {owner} must be (channels, length) or "
            f"(channels, height, width) of ints >= 1. Got {input_shape!r} instead."
        )
    width = _width(config, owner)
    n_classes = _positive("n_classes", n_classes, owner)
    conv: type[nn.Conv1d] | type[nn.Conv2d]
    pool: type[nn.MaxPool1d] | type[nn.MaxPool2d]
    conv, pool = (nn.Conv1d, nn.MaxPool1d) if len(shape) == 2 else (nn.Conv2d, nn.MaxPool2d)
    sides = [math.ceil(math.ceil(s / 2) / 2) for s in shape[1:]]  # two ceil-mode poolings
    flat = width
    for side in sides:
        flat *= side
    return nn.Sequential(
        conv(shape[0], width, kernel_size=3, padding=1),
        nn.ReLU(),
        pool(2, ceil_mode=True),
        conv(width, width, kernel_size=3, padding=1),
        nn.ReLU(),
        pool(2, ceil_mode=True),
        nn.Flatten(),
        nn.Dropout(_dropout(config, owner)),
        nn.Linear(flat, n_classes),
    )


def make_resmlp(config: Mapping[str, Any], n_features: int, n_classes: int) -> nn.Module:
    """The ``"resmlp"`` family: a residual MLP for tabular data, two pre-norm blocks.

    ``Linear(n_features, width)``, then twice ``x + Linear(width, width)(Dropout(ReLU(
    LayerNorm(x))))``, then ``LayerNorm → ReLU → Linear(width, n_classes)``. The
    normalisation is per example (``LayerNorm``), so batches of one example train as
    well as any. Reads the same ``width`` and ``dropout`` as :func:`make_mlp`.

    Parameters
    ----------
    config : mapping
        A configuration of :data:`DEFAULT_SPACE` (``width`` and ``dropout`` are read).
    n_features : int
    n_classes : int

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> config = DEFAULT_SPACE.sample(1, seed=0)[0]
    >>> make_resmlp(config, n_features=4, n_classes=3)(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """
    from torch import nn

    owner = "make_resmlp"
    width = _width(config, owner)
    dropout = _dropout(config, owner)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.LayerNorm(width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, width)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.body(x)

    return nn.Sequential(
        nn.Linear(_positive("n_features", n_features, owner), width),
        Block(),
        Block(),
        nn.LayerNorm(width),
        nn.ReLU(),
        nn.Linear(width, _positive("n_classes", n_classes, owner)),
    )


def _non_negative(config: Mapping[str, Any], key: str, default: float | None) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(
            f"The config of make_optimizer must hold '{key}', a float >= 0. Got {value!r} instead."
        )
    return float(value)


def make_optimizer(model: nn.Module, config: Mapping[str, Any]) -> torch.optim.Optimizer:
    """SGD with momentum :data:`SGD_MOMENTUM` or Adam, with ``lr`` and ``weight_decay``.

    Parameters
    ----------
    model : torch.nn.Module
    config : mapping
        A configuration of :data:`DEFAULT_SPACE` (``lr``, ``weight_decay``, ``optimizer``).

    Returns
    -------
    torch.optim.Optimizer
    """
    import torch

    name = config.get("optimizer")
    lr = _non_negative(config, "lr", None)
    weight_decay = _non_negative(config, "weight_decay", 0.0)
    if name == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=lr, momentum=SGD_MOMENTUM, weight_decay=weight_decay
        )
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(
        f"The config of make_optimizer must hold 'optimizer', one of 'sgd', 'adam'. "
        f"Got {name!r} instead."
    )


__all__ = [
    "DEFAULT_SPACE",
    "SGD_MOMENTUM",
    "make_cnn",
    "make_mlp",
    "make_optimizer",
    "make_resmlp",
]
