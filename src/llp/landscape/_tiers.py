"""Two fixed bundles of probes: a cheap tier for every checkpoint, a full tier for a few.

The settings of each tier are module constants, not arguments: features are only
comparable across checkpoints, studies and datasets when they are computed the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from llp.landscape._objective import STREAM_SLICE, ProbeObjective, make_generator, norm
from llp.landscape._probes import (
    NAN,
    check_probe_arguments,
    compute_average_sharpness,
    compute_fisher_trace,
    compute_hutchinson,
    compute_power_iteration,
    compute_worst_sharpness,
)
from llp.landscape._results import (
    LandscapeReport,
    Slice1DResult,
    frozen_mapping,
    readonly_array,
)
from llp.landscape._slices import compute_slice_losses, filter_normalized_direction
from llp.landscape._state import preserved_model_state
from llp.landscape._validation import check_int, check_optional_positive_float

CHEAP_TIER_FEATURES: tuple[str, ...] = (
    "landscape_loss",
    "landscape_grad_norm",
    "landscape_adaptive_sharpness_avg",
    "landscape_hessian_top_eig",
)
"""Feature names of :func:`cheap_tier`, in a fixed order (without the learning-rate one)."""

FULL_TIER_FEATURES: tuple[str, ...] = (
    *CHEAP_TIER_FEATURES,
    "landscape_adaptive_sharpness_worst",
    "landscape_hessian_trace",
    "landscape_hessian_trace_stderr",
    "landscape_fisher_trace",
    "landscape_slice_1d_max_increase",
    "landscape_slice_1d_curvature",
)
"""Feature names of :func:`full_tier`, in a fixed order (without the learning-rate one)."""

LR_TIMES_TOP_EIG_FEATURE = "landscape_lr_times_top_eig"
"""Added to either tier's features when a learning rate is given."""

CHEAP_TIER_MAX_COST_FB = 20.0
"""Upper bound on the cheap tier's cost in forward+backward equivalents."""


@dataclass(frozen=True)
class _CheapTierSettings:
    power_iteration_max_iter: int
    power_iteration_tol: float
    sharpness_rho: float
    sharpness_n_samples: int


@dataclass(frozen=True)
class _FullTierSettings(_CheapTierSettings):
    hutchinson_n_samples: int
    slice_span: float
    slice_n_points: int


# At most 6 HVPs (12 fb; the first also yields the loss and the gradient) plus 6 antithetic
# sharpness directions (6 fb, the base loss is reused) = 18 fb.
_CHEAP = _CheapTierSettings(
    power_iteration_max_iter=6,
    power_iteration_tol=1e-3,
    sharpness_rho=0.05,
    sharpness_n_samples=6,
)

# At most 20 HVPs (40) + 16 Hutchinson HVPs (32) + 16 sharpness directions (16) + the
# worst-case step (0.5, gradient reused) + Fisher (1) + a 21-point slice (10.5) = 100 fb.
_FULL = _FullTierSettings(
    power_iteration_max_iter=20,
    power_iteration_tol=1e-3,
    sharpness_rho=0.05,
    sharpness_n_samples=16,
    hutchinson_n_samples=16,
    slice_span=1.0,
    slice_n_points=21,  # odd, so that alpha = 0 is on the grid
)


def _finite_or_nan(value: float) -> float:
    return value if math.isfinite(value) else NAN


def _slice_summary(alphas: NDArray[np.float64], losses: NDArray[np.float64]) -> tuple[float, float]:
    """Largest loss increase over the slice and the central second difference at 0."""
    middle = len(alphas) // 2
    if not np.all(np.isfinite(losses)):
        return NAN, NAN
    step = float(alphas[middle + 1] - alphas[middle])
    max_increase = float(losses.max() - losses[middle])
    curvature = float((losses[middle + 1] + losses[middle - 1] - 2 * losses[middle]) / step**2)
    return max_increase, curvature


def _validate_tier_arguments(
    model: object,
    criterion: object,
    inputs: object,
    targets: object,
    seed: object,
    learning_rate: object,
    *,
    where: str,
) -> float | None:
    check_probe_arguments(model, criterion, inputs, targets, where=where)
    check_int(seed, "seed", minimum=0, where=where)
    return check_optional_positive_float(learning_rate, "learning_rate", where=where)


def cheap_tier(
    model: nn.Module,
    criterion: Callable[..., Any],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    seed: int = 0,
    learning_rate: float | None = None,
) -> LandscapeReport:
    """Cheap landscape features, at most 20 forward+backward equivalents in total.

    Computes, sharing passes where they coincide:

    * ``landscape_hessian_top_eig``: power iteration, at most 6 exact HVPs (12 fb) with
      relative tolerance 1e-3; a short run, so an estimate rather than a converged value
      (:attr:`LandscapeReport.diagnostics` says whether it converged);
    * ``landscape_loss`` and ``landscape_grad_norm``: free by-products of the first HVP;
    * ``landscape_adaptive_sharpness_avg``: 6 antithetic ``|w|``-scaled random directions
      with ``rho = 0.05`` (6 fb, the base loss is reused);
    * ``landscape_lr_times_top_eig`` when ``learning_rate`` is given.

    Non-finite values (a diverged model) become NaN features; nothing raises.

    Parameters
    ----------
    model : torch.nn.Module
        The network; evaluated in eval mode, state restored exactly afterwards.
    criterion : callable
        ``criterion(outputs, targets)`` returning a scalar loss.
    inputs, targets : torch.Tensor
        The fixed probe set, with the same first dimension; use the same one for every
        configuration of a study.
    seed : int, default=0
        Seed of all random directions.
    learning_rate : float or None, default=None
        The run's learning rate, for ``landscape_lr_times_top_eig``.

    Returns
    -------
    LandscapeReport
        ``features`` holds :data:`CHEAP_TIER_FEATURES` (plus the learning-rate one);
        ``cost_fb <= 20``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from llp.landscape import CHEAP_TIER_FEATURES, cheap_tier
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> report = cheap_tier(net, nn.CrossEntropyLoss(), x, y, learning_rate=0.1)
    >>> report.cost_fb <= 20 and all(name in report.features for name in CHEAP_TIER_FEATURES)
    True
    """
    learning_rate = _validate_tier_arguments(
        model, criterion, inputs, targets, seed, learning_rate, where="cheap_tier"
    )
    with preserved_model_state(model):
        objective = ProbeObjective(model, criterion, inputs, targets)
        power = compute_power_iteration(
            objective,
            tol=_CHEAP.power_iteration_tol,
            max_iter=_CHEAP.power_iteration_max_iter,
            seed=seed,
        )
        sharpness, _, sharpness_cost = compute_average_sharpness(
            objective,
            rho=_CHEAP.sharpness_rho,
            n_samples=_CHEAP.sharpness_n_samples,
            seed=seed,
            base_loss=power.loss,
        )
        gradient_norm = norm(power.gradient)
    features = {
        "landscape_loss": power.loss,
        "landscape_grad_norm": gradient_norm,
        "landscape_adaptive_sharpness_avg": sharpness,
        "landscape_hessian_top_eig": power.eigenvalue,
    }
    return _report(
        tier="cheap",
        features=features,
        learning_rate=learning_rate,
        cost_fb=power.cost_fb + sharpness_cost,
        settings={**asdict(_CHEAP), "seed": seed, "n_examples": int(inputs.shape[0])},
        diagnostics={
            "power_iteration_iterations": power.iterations,
            "power_iteration_converged": power.converged,
            "hvp_mode": objective.hvp_mode,
        },
    )


def full_tier(
    model: nn.Module,
    criterion: Callable[..., Any],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    seed: int = 0,
    learning_rate: float | None = None,
) -> LandscapeReport:
    """All landscape features, at most 100 forward+backward equivalents in total.

    Computes, sharing passes where they coincide:

    * ``landscape_hessian_top_eig``: power iteration to relative tolerance 1e-3, at most
      20 exact HVPs (40 fb); ``landscape_loss`` and ``landscape_grad_norm`` come free
      with the first HVP;
    * ``landscape_adaptive_sharpness_avg``: 16 antithetic directions, ``rho = 0.05``
      (16 fb);
    * ``landscape_adaptive_sharpness_worst``: one ASAM ascent step, ``rho = 0.05``,
      reusing the gradient (0.5 fb);
    * ``landscape_hessian_trace`` and ``landscape_hessian_trace_stderr``: Hutchinson
      with 16 Rademacher vectors (32 fb);
    * ``landscape_fisher_trace``: empirical Fisher trace from per-example gradients (1 fb);
    * ``landscape_slice_1d_max_increase`` and ``landscape_slice_1d_curvature``: largest
      loss increase over a 21-point filter-normalised slice with span 1, and its central
      second difference at 0 (10.5 fb); the slice itself is in
      :attr:`LandscapeReport.slice_1d`;
    * ``landscape_lr_times_top_eig`` when ``learning_rate`` is given.

    The feature names shared with :func:`cheap_tier` mean the same quantities, estimated
    with more samples or iterations. Non-finite values become NaN; nothing raises.

    Parameters
    ----------
    model : torch.nn.Module
        The network; evaluated in eval mode, state restored exactly afterwards.
    criterion : callable
        ``criterion(outputs, targets)`` returning a scalar loss.
    inputs, targets : torch.Tensor
        The fixed probe set, with the same first dimension.
    seed : int, default=0
        Seed of all random directions.
    learning_rate : float or None, default=None
        The run's learning rate, for ``landscape_lr_times_top_eig``.

    Returns
    -------
    LandscapeReport
        ``features`` holds :data:`FULL_TIER_FEATURES` (plus the learning-rate one).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from llp.landscape import FULL_TIER_FEATURES, full_tier
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> report = full_tier(net, nn.CrossEntropyLoss(), x, y)
    >>> tuple(report.features) == FULL_TIER_FEATURES
    True
    """
    learning_rate = _validate_tier_arguments(
        model, criterion, inputs, targets, seed, learning_rate, where="full_tier"
    )
    span, n_points = _FULL.slice_span, _FULL.slice_n_points
    alphas = np.linspace(-span, span, n_points, dtype=np.float64)
    with preserved_model_state(model):
        objective = ProbeObjective(model, criterion, inputs, targets)
        power = compute_power_iteration(
            objective,
            tol=_FULL.power_iteration_tol,
            max_iter=_FULL.power_iteration_max_iter,
            seed=seed,
        )
        average, _, average_cost = compute_average_sharpness(
            objective,
            rho=_FULL.sharpness_rho,
            n_samples=_FULL.sharpness_n_samples,
            seed=seed,
            base_loss=power.loss,
        )
        worst, worst_cost = compute_worst_sharpness(
            objective, rho=_FULL.sharpness_rho, gradient=power.gradient, base_loss=power.loss
        )
        trace, trace_stderr, trace_cost = compute_hutchinson(
            objective, n_samples=_FULL.hutchinson_n_samples, seed=seed
        )
        fisher, fisher_method = compute_fisher_trace(objective)
        direction = filter_normalized_direction(
            objective.params, make_generator(seed, STREAM_SLICE)
        )
        losses = compute_slice_losses(objective, [direction], [(float(a),) for a in alphas])
        gradient_norm = norm(power.gradient)
    max_increase, curvature = _slice_summary(alphas, losses)
    features = {
        "landscape_loss": power.loss,
        "landscape_grad_norm": gradient_norm,
        "landscape_adaptive_sharpness_avg": average,
        "landscape_hessian_top_eig": power.eigenvalue,
        "landscape_adaptive_sharpness_worst": worst,
        "landscape_hessian_trace": trace,
        "landscape_hessian_trace_stderr": trace_stderr,
        "landscape_fisher_trace": fisher,
        "landscape_slice_1d_max_increase": max_increase,
        "landscape_slice_1d_curvature": curvature,
    }
    n_examples = int(inputs.shape[0])
    slice_1d = Slice1DResult(
        alphas=readonly_array(alphas),
        losses=readonly_array(losses),
        cost_fb=0.5 * n_points,
        settings=frozen_mapping(
            {"span": span, "n_points": n_points, "seed": seed, "n_examples": n_examples}
        ),
    )
    return _report(
        tier="full",
        features=features,
        learning_rate=learning_rate,
        cost_fb=power.cost_fb + average_cost + worst_cost + trace_cost + 1.0 + slice_1d.cost_fb,
        settings={**asdict(_FULL), "seed": seed, "n_examples": n_examples},
        diagnostics={
            "power_iteration_iterations": power.iterations,
            "power_iteration_converged": power.converged,
            "hvp_mode": objective.hvp_mode,
            "fisher_method": fisher_method,
        },
        slice_1d=slice_1d,
    )


def _report(
    *,
    tier: Literal["cheap", "full"],
    features: dict[str, float],
    learning_rate: float | None,
    cost_fb: float,
    settings: dict[str, object],
    diagnostics: dict[str, object],
    slice_1d: Slice1DResult | None = None,
) -> LandscapeReport:
    if learning_rate is not None:
        features[LR_TIMES_TOP_EIG_FEATURE] = learning_rate * features["landscape_hessian_top_eig"]
    return LandscapeReport(
        features=frozen_mapping({name: _finite_or_nan(v) for name, v in features.items()}),
        cost_fb=cost_fb,
        tier=tier,
        settings=frozen_mapping({**settings, "learning_rate": learning_rate}),
        diagnostics=frozen_mapping(diagnostics),
        slice_1d=slice_1d,
    )
