"""1-D and 2-D loss slices along filter-normalised random directions (Li et al., 2018)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from llp.landscape._objective import STREAM_SLICE, ParamDict, ProbeObjective, make_generator
from llp.landscape._probes import check_probe_arguments
from llp.landscape._results import Slice1DResult, Slice2DResult, frozen_mapping, readonly_array
from llp.landscape._state import preserved_model_state
from llp.landscape._validation import check_int, check_positive_float

# Keeps the division finite for an all-zero random filter; it never changes a real one.
_TINY = 1e-12


def filter_normalized_direction(params: ParamDict, generator: torch.Generator) -> ParamDict:
    """A random direction with each filter scaled to the norm of the matching weight filter.

    For every parameter with two or more dimensions (linear rows, convolution output
    filters), a Gaussian direction is drawn and each slice along dimension 0 is rescaled
    to the Euclidean norm of the same slice of the weight. One-dimensional parameters
    (biases, BatchNorm weights and biases) get a zero direction, as in Li et al. (2018).
    Filter normalisation removes the scale ambiguity of ReLU networks, so slices of
    differently scaled but equivalent networks look alike.
    """
    direction: ParamDict = {}
    for name, weight in params.items():
        if weight.ndim <= 1:
            direction[name] = torch.zeros_like(weight)
            continue
        noise = torch.randn(weight.shape, generator=generator, dtype=weight.dtype)
        noise = noise.to(weight.device)
        rows = noise.reshape(weight.shape[0], -1)
        weight_norms = weight.reshape(weight.shape[0], -1).norm(dim=1, keepdim=True)
        noise_norms = rows.norm(dim=1, keepdim=True).clamp_min(_TINY)
        direction[name] = (rows * (weight_norms / noise_norms)).reshape(weight.shape)
    return direction


def compute_slice_losses(
    objective: ProbeObjective,
    directions: Sequence[ParamDict],
    coefficients: Sequence[tuple[float, ...]],
) -> NDArray[np.float64]:
    """``L(w + sum_k c_k d_k)`` for each coefficient tuple, one forward pass each."""
    params = objective.params
    losses = np.empty(len(coefficients), dtype=np.float64)
    for index, coefficient in enumerate(coefficients):
        point = {name: p.clone() for name, p in params.items()}
        for c, direction in zip(coefficient, directions, strict=True):
            for name in point:
                point[name].add_(direction[name], alpha=c)
        losses[index] = objective.loss_value(point)
    return losses


def _grid(span: float, n_points: int) -> NDArray[np.float64]:
    return np.linspace(-span, span, n_points, dtype=np.float64)


def loss_slice_1d(
    model: nn.Module,
    criterion: Callable[..., Any],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    span: float = 1.0,
    n_points: int = 21,
    seed: int = 0,
) -> Slice1DResult:
    """Probe-set loss along one filter-normalised random direction.

    Evaluates ``L(w + alpha * d)`` for ``alpha`` in ``linspace(-span, span, n_points)``,
    with ``d`` from :func:`filter_normalized_direction` (so ``alpha = 1`` moves each filter
    by its own norm). An odd ``n_points`` includes ``alpha = 0``.

    Parameters
    ----------
    model : torch.nn.Module
        The network; evaluated in eval mode, state restored exactly afterwards.
    criterion : callable
        ``criterion(outputs, targets)`` returning a scalar loss.
    inputs, targets : torch.Tensor
        The fixed probe set, with the same first dimension.
    span : float, default=1.0
        Largest ``|alpha|``; must be > 0.
    n_points : int, default=21
        Number of points; must be >= 2.
    seed : int, default=0
        Seed of the direction; :func:`loss_slice_2d` with the same seed uses the same
        first direction.

    Returns
    -------
    Slice1DResult
        ``alphas`` and ``losses`` as read-only numpy arrays; ``cost_fb`` is
        ``0.5 * n_points``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from llp.landscape import loss_slice_1d
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> result = loss_slice_1d(net, nn.CrossEntropyLoss(), x, y, n_points=5)
    >>> result.alphas.tolist()
    [-1.0, -0.5, 0.0, 0.5, 1.0]
    """
    where = "loss_slice_1d"
    check_probe_arguments(model, criterion, inputs, targets, where=where)
    span = check_positive_float(span, "span", where=where)
    check_int(n_points, "n_points", minimum=2, where=where)
    check_int(seed, "seed", minimum=0, where=where)
    alphas = _grid(span, n_points)
    with preserved_model_state(model):
        objective = ProbeObjective(model, criterion, inputs, targets)
        direction = filter_normalized_direction(
            objective.params, make_generator(seed, STREAM_SLICE)
        )
        losses = compute_slice_losses(objective, [direction], [(float(a),) for a in alphas])
    return Slice1DResult(
        alphas=readonly_array(alphas),
        losses=readonly_array(losses),
        cost_fb=0.5 * n_points,
        settings=frozen_mapping(
            {"span": span, "n_points": n_points, "seed": seed, "n_examples": int(inputs.shape[0])}
        ),
    )


def loss_slice_2d(
    model: nn.Module,
    criterion: Callable[..., Any],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    span: float = 1.0,
    n_points: int = 11,
    seed: int = 0,
) -> Slice2DResult:
    """Probe-set loss on the plane of two filter-normalised random directions.

    ``losses[i, j] = L(w + alphas[i] * d1 + betas[j] * d2)`` with both grids equal to
    ``linspace(-span, span, n_points)``. Random directions in many dimensions are nearly
    orthogonal, so they are not orthogonalised.

    Parameters
    ----------
    model : torch.nn.Module
        The network; evaluated in eval mode, state restored exactly afterwards.
    criterion : callable
        ``criterion(outputs, targets)`` returning a scalar loss.
    inputs, targets : torch.Tensor
        The fixed probe set, with the same first dimension.
    span : float, default=1.0
        Largest ``|alpha|`` and ``|beta|``; must be > 0.
    n_points : int, default=11
        Points per axis; must be >= 2. The cost grows with its square.
    seed : int, default=0
        Seed of the directions.

    Returns
    -------
    Slice2DResult
        ``alphas``, ``betas`` and the ``(n_points, n_points)`` loss grid as read-only
        numpy arrays; ``cost_fb`` is ``0.5 * n_points**2``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from llp.landscape import loss_slice_2d
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> loss_slice_2d(net, nn.CrossEntropyLoss(), x, y, n_points=3).losses.shape
    (3, 3)
    """
    where = "loss_slice_2d"
    check_probe_arguments(model, criterion, inputs, targets, where=where)
    span = check_positive_float(span, "span", where=where)
    check_int(n_points, "n_points", minimum=2, where=where)
    check_int(seed, "seed", minimum=0, where=where)
    axis = _grid(span, n_points)
    with preserved_model_state(model):
        objective = ProbeObjective(model, criterion, inputs, targets)
        generator = make_generator(seed, STREAM_SLICE)
        first = filter_normalized_direction(objective.params, generator)
        second = filter_normalized_direction(objective.params, generator)
        coefficients = [(float(a), float(b)) for a in axis for b in axis]
        losses = compute_slice_losses(objective, [first, second], coefficients)
    return Slice2DResult(
        alphas=readonly_array(axis),
        betas=readonly_array(axis),
        losses=readonly_array(losses.reshape(n_points, n_points)),
        cost_fb=0.5 * n_points * n_points,
        settings=frozen_mapping(
            {"span": span, "n_points": n_points, "seed": seed, "n_examples": int(inputs.shape[0])}
        ),
    )
