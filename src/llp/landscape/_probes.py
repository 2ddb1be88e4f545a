"""Sharpness and curvature probes on a fixed probe set.

Each public function validates its arguments, switches the model to eval mode inside
:func:`~llp.landscape.preserved_model_state` (which restores parameters, buffers and
train/eval flags bit for bit afterwards, also on error) and returns a frozen result with
the value, its cost in forward+backward equivalents (see :mod:`llp.landscape._results`)
and the settings used. Randomness comes only from ``seed`` through a local
``torch.Generator``.

The ``_compute_*`` functions do the work on a :class:`ProbeObjective` so that the tiers
can share a gradient or a base loss between probes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from llp.landscape._objective import (
    STREAM_HUTCHINSON,
    STREAM_POWER_ITERATION,
    STREAM_SHARPNESS,
    ParamDict,
    ProbeObjective,
    dot,
    make_generator,
    norm,
    random_normal_like,
    random_rademacher_like,
    scale,
)
from llp.landscape._results import (
    EigenvalueResult,
    FisherTraceResult,
    GradientNormResult,
    SharpnessResult,
    TraceResult,
    frozen_mapping,
)
from llp.landscape._state import preserved_model_state
from llp.landscape._validation import (
    check_choice,
    check_criterion,
    check_int,
    check_model,
    check_optional_positive_float,
    check_positive_float,
    check_probe_set,
)

NAN = float("nan")

SharpnessKind = Literal["average", "worst"]
_SHARPNESS_KINDS: tuple[str, ...] = ("average", "worst")


def check_probe_arguments(
    model: object, criterion: object, inputs: object, targets: object, *, where: str
) -> None:
    """Validate the four positional arguments every probe takes."""
    check_model(model, where=where)
    check_criterion(criterion, where=where)
    check_probe_set(inputs, targets, where=where)


# --------------------------------------------------------------------------------------
# Computations on a ProbeObjective (shared with the tiers)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerIterationOutcome:
    """Raw output of :func:`compute_power_iteration`."""

    eigenvalue: float
    iterations: int
    converged: bool
    gradient: ParamDict
    loss: float
    cost_fb: float


def compute_power_iteration(
    objective: ProbeObjective, *, tol: float, max_iter: int, seed: int
) -> PowerIterationOutcome:
    """Power iteration on exact HVPs; also returns the gradient and loss of the first HVP."""
    generator = make_generator(seed, STREAM_POWER_ITERATION)
    vector = random_normal_like(objective.params, generator)
    vector = scale(1.0 / norm(vector), vector)
    estimate = NAN
    previous: float | None = None
    converged = False
    gradient: ParamDict = {}
    loss = NAN
    iterations = 0
    for iterations in range(1, max_iter + 1):
        product, grads, loss_now = objective.hvp(vector)
        if iterations == 1:
            gradient, loss = grads, loss_now
        estimate = dot(vector, product)
        product_norm = norm(product)
        if not (math.isfinite(estimate) and math.isfinite(product_norm)):
            estimate = NAN
            break
        if product_norm == 0.0:  # the Hessian vanishes on this vector (e.g. dead ReLUs)
            estimate, converged = 0.0, True
            break
        if previous is not None and abs(estimate - previous) <= tol * abs(estimate):
            converged = True
            break
        previous = estimate
        vector = scale(1.0 / product_norm, product)
    return PowerIterationOutcome(
        eigenvalue=estimate,
        iterations=iterations,
        converged=converged,
        gradient=gradient,
        loss=loss,
        cost_fb=2.0 * iterations,
    )


def compute_average_sharpness(
    objective: ProbeObjective, *, rho: float, n_samples: int, seed: int, base_loss: float
) -> tuple[float, float, float]:
    """Mean antithetic loss increase under ``|w|``-scaled Gaussian noise.

    Returns ``(value, stderr, cost_fb)``; the cost excludes ``base_loss``.
    """
    generator = make_generator(seed, STREAM_SHARPNESS)
    params = objective.params
    magnitudes = {name: p.abs() for name, p in params.items()}
    increases: list[float] = []
    cost = 0.0
    for _ in range(n_samples):
        noise = random_normal_like(params, generator)
        delta = {name: rho * magnitudes[name] * noise[name] for name in params}
        # Antithetic pair: the first-order term g.delta cancels exactly, which removes the
        # dominant source of variance when the gradient is not small.
        up = objective.loss_value({name: params[name] + delta[name] for name in params})
        down = objective.loss_value({name: params[name] - delta[name] for name in params})
        cost += 1.0
        increases.append(0.5 * (up + down) - base_loss)
        if not math.isfinite(increases[-1]):
            return NAN, NAN, cost
    values = np.asarray(increases, dtype=np.float64)
    stderr = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else NAN
    return float(values.mean()), stderr, cost


def compute_worst_sharpness(
    objective: ProbeObjective, *, rho: float, gradient: ParamDict, base_loss: float
) -> tuple[float, float]:
    """Loss increase after one adaptive ascent step of radius ``rho``.

    With ``T = diag(|w|)`` the step is ``rho * T^2 g / ||T g||`` (ASAM), the maximiser of
    the first-order loss change over ``||T^{-1} delta|| <= rho``. Returns
    ``(value, cost_fb)``; the cost excludes the gradient and ``base_loss``.
    """
    params = objective.params
    scaled_gradient = {name: p.abs() * gradient[name] for name, p in params.items()}
    denominator = norm(scaled_gradient)
    if not (math.isfinite(denominator) and math.isfinite(base_loss)):
        return NAN, 0.0
    if denominator == 0.0:  # stationary in the adaptive metric: the step is zero
        return 0.0, 0.0
    step = rho / denominator
    perturbed = {name: p + step * p.abs() * scaled_gradient[name] for name, p in params.items()}
    value = objective.loss_value(perturbed) - base_loss
    return (value if math.isfinite(value) else NAN), 0.5


def compute_hutchinson(
    objective: ProbeObjective, *, n_samples: int, seed: int
) -> tuple[float, float, float]:
    """Hutchinson trace with Rademacher vectors. Returns ``(value, stderr, cost_fb)``."""
    generator = make_generator(seed, STREAM_HUTCHINSON)
    samples: list[float] = []
    for _ in range(n_samples):
        vector = random_rademacher_like(objective.params, generator)
        product, _, _ = objective.hvp(vector)
        samples.append(dot(vector, product))
        if not math.isfinite(samples[-1]):
            return NAN, NAN, 2.0 * len(samples)
    values = np.asarray(samples, dtype=np.float64)
    stderr = float(values.std(ddof=1) / math.sqrt(len(values)))
    return float(values.mean()), stderr, 2.0 * len(samples)


def compute_fisher_trace(objective: ProbeObjective) -> tuple[float, Literal["vmap", "loop"]]:
    """Empirical Fisher trace ``mean_i ||grad l_i||^2`` and the per-example method used."""
    squared_norms, method = objective.per_example_squared_grad_norms()
    value = float(squared_norms.mean())
    return (value if math.isfinite(value) else NAN), method


# --------------------------------------------------------------------------------------
# Public probes
# --------------------------------------------------------------------------------------


def adaptive_sharpness(
    model: nn.Module,
    criterion: Callable[..., Any],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    rho: float = 0.05,
    kind: SharpnessKind = "average",
    n_samples: int = 10,
    seed: int = 0,
) -> SharpnessResult:
    """Adaptive (scale-invariant) sharpness of the probe-set loss.

    Both kinds measure ``L(w + delta) - L(w)`` with a perturbation scaled elementwise by
    ``|w|``, so a layer-wise rescaling of a ReLU network that leaves its function
    unchanged (e.g. ``W1 * 4, b1 * 4, W2 / 4``) leaves the value unchanged too.

    * ``"average"``: ``delta = rho * |w| * z`` with ``z ~ N(0, I)`` (elementwise relative
      noise of standard deviation ``rho``); the value is the mean over ``n_samples``
      random directions of ``(L(w + delta) + L(w - delta)) / 2 - L(w)``. The antithetic
      pair cancels the first-order term and so most of the sampling noise, without
      changing the expectation.
    * ``"worst"``: one ascent step ``delta = rho * |w|^2 g / || |w| g ||`` (the ASAM step,
      the first-order maximiser over the ball ``|| delta / |w| || <= rho``).

    Parameters
    ----------
    model : torch.nn.Module
        The network; evaluated in eval mode, state restored exactly afterwards.
    criterion : callable
        ``criterion(outputs, targets)`` returning a scalar loss (mean reduction keeps
        values comparable across probe-set sizes).
    inputs, targets : torch.Tensor
        The fixed probe set, with the same first dimension.
    rho : float, default=0.05
        Perturbation radius relative to ``|w|``; must be > 0.
    kind : {"average", "worst"}, default="average"
        Average-case (random) or worst-case (one ascent step) sharpness.
    n_samples : int, default=10
        Random directions for ``kind="average"`` (each costs two forward passes); unused
        for ``kind="worst"``. Must be >= 1.
    seed : int, default=0
        Seed of the random directions; the same seed gives the same directions.

    Returns
    -------
    SharpnessResult
        ``cost_fb`` is ``0.5 + n_samples`` for "average" and 1.5 for "worst".

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from llp.landscape import adaptive_sharpness
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> result = adaptive_sharpness(net, nn.CrossEntropyLoss(), x, y, n_samples=4)
    >>> result.cost_fb
    4.5
    """
    where = "adaptive_sharpness"
    check_probe_arguments(model, criterion, inputs, targets, where=where)
    rho = check_positive_float(rho, "rho", where=where)
    check_choice(kind, "kind", _SHARPNESS_KINDS, where=where)
    check_int(n_samples, "n_samples", minimum=1, where=where)
    check_int(seed, "seed", minimum=0, where=where)
    with preserved_model_state(model):
        objective = ProbeObjective(model, criterion, inputs, targets)
        if kind == "average":
            base_loss = objective.loss_value(objective.params)
            value, stderr, cost = compute_average_sharpness(
                objective, rho=rho, n_samples=n_samples, seed=seed, base_loss=base_loss
            )
            cost += 0.5
        else:
            gradient, base_loss = objective.gradient_and_loss()
            value, cost = compute_worst_sharpness(
                objective, rho=rho, gradient=gradient, base_loss=base_loss
            )
            stderr, cost = NAN, cost + 1.0
    settings = {"kind": kind, "rho": rho, "seed": seed, "n_examples": int(inputs.shape[0])}
    if kind == "average":
        settings["n_samples"] = n_samples
    return SharpnessResult(
        value=value,
        stderr=stderr,
        base_loss=base_loss if math.isfinite(base_loss) else NAN,
        cost_fb=cost,
        settings=frozen_mapping(settings),
    )


def top_hessian_eigenvalue(
    model: nn.Module,
    criterion: Callable[..., Any],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    tol: float = 1e-3,
    max_iter: int = 20,
    seed: int = 0,
    learning_rate: float | None = None,
) -> EigenvalueResult:
    """Largest-magnitude eigenvalue of the probe-set loss Hessian by power iteration.

    Each iteration is one exact Hessian-vector product (``torch.func``: ``jvp`` of
    ``grad`` over ``functional_call``, falling back to ``vjp`` of ``grad``). Power
    iteration converges to the eigenvalue of largest *magnitude*; it is returned with its
    sign (the Rayleigh quotient), so near a saddle with a dominant negative direction the
    value is negative. Iteration stops when the relative change of the estimate is
    ``<= tol`` or after ``max_iter`` products.

    Raw ``lambda_max`` mostly tracks the learning rate: full-batch training drives it to
    about ``2 / lr`` (the edge of stability), so values from runs with different learning
    rates are not comparable. ``lr * lambda_max`` (given ``learning_rate``) is, and it is
    reported as ``lr_times_eigenvalue``. Raw ``lambda_max`` is also not invariant to
    function-preserving layer rescalings; use :func:`adaptive_sharpness` for that.

    Parameters
    ----------
    model : torch.nn.Module
        The network; evaluated in eval mode, state restored exactly afterwards.
    criterion : callable
        ``criterion(outputs, targets)`` returning a scalar loss.
    inputs, targets : torch.Tensor
        The fixed probe set, with the same first dimension.
    tol : float, default=1e-3
        Relative tolerance on successive estimates; must be > 0.
    max_iter : int, default=20
        Maximum number of Hessian-vector products; must be >= 1.
    seed : int, default=0
        Seed of the random start vector.
    learning_rate : float or None, default=None
        If given (> 0), ``lr_times_eigenvalue`` is reported.

    Returns
    -------
    EigenvalueResult
        ``cost_fb`` is 2 per iteration.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from llp.landscape import top_hessian_eigenvalue
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> result = top_hessian_eigenvalue(net, nn.CrossEntropyLoss(), x, y, learning_rate=0.1)
    >>> result.cost_fb == 2 * result.iterations
    True
    """
    where = "top_hessian_eigenvalue"
    check_probe_arguments(model, criterion, inputs, targets, where=where)
    tol = check_positive_float(tol, "tol", where=where)
    check_int(max_iter, "max_iter", minimum=1, where=where)
    check_int(seed, "seed", minimum=0, where=where)
    learning_rate = check_optional_positive_float(learning_rate, "learning_rate", where=where)
    with preserved_model_state(model):
        objective = ProbeObjective(model, criterion, inputs, targets)
        outcome = compute_power_iteration(objective, tol=tol, max_iter=max_iter, seed=seed)
    return EigenvalueResult(
        eigenvalue=outcome.eigenvalue,
        iterations=outcome.iterations,
        converged=outcome.converged,
        lr_times_eigenvalue=None if learning_rate is None else learning_rate * outcome.eigenvalue,
        cost_fb=outcome.cost_fb,
        settings=frozen_mapping(
            {
                "tol": tol,
                "max_iter": max_iter,
                "seed": seed,
                "learning_rate": learning_rate,
                "hvp_mode": objective.hvp_mode,
                "n_examples": int(inputs.shape[0]),
            }
        ),
    )


def hutchinson_trace(
    model: nn.Module,
    criterion: Callable[..., Any],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    n_samples: int = 20,
    seed: int = 0,
) -> TraceResult:
    """Hutchinson estimate of the trace of the probe-set loss Hessian.

    ``tr(H) = E[v^T H v]`` for Rademacher ``v`` (entries +-1); the estimate is the mean
    over ``n_samples`` vectors and ``stderr`` its standard error.

    Parameters
    ----------
    model : torch.nn.Module
        The network; evaluated in eval mode, state restored exactly afterwards.
    criterion : callable
        ``criterion(outputs, targets)`` returning a scalar loss.
    inputs, targets : torch.Tensor
        The fixed probe set, with the same first dimension.
    n_samples : int, default=20
        Number of Rademacher vectors; must be >= 2 (for the standard error).
    seed : int, default=0
        Seed of the Rademacher vectors.

    Returns
    -------
    TraceResult
        ``cost_fb`` is 2 per sample.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from llp.landscape import hutchinson_trace
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> hutchinson_trace(net, nn.CrossEntropyLoss(), x, y, n_samples=4).cost_fb
    8.0
    """
    where = "hutchinson_trace"
    check_probe_arguments(model, criterion, inputs, targets, where=where)
    check_int(n_samples, "n_samples", minimum=2, where=where)
    check_int(seed, "seed", minimum=0, where=where)
    with preserved_model_state(model):
        objective = ProbeObjective(model, criterion, inputs, targets)
        value, stderr, cost = compute_hutchinson(objective, n_samples=n_samples, seed=seed)
    return TraceResult(
        value=value,
        stderr=stderr,
        cost_fb=cost,
        settings=frozen_mapping(
            {"n_samples": n_samples, "seed": seed, "n_examples": int(inputs.shape[0])}
        ),
    )


def gradient_norm(
    model: nn.Module,
    criterion: Callable[..., Any],
    inputs: torch.Tensor,
    targets: torch.Tensor,
) -> GradientNormResult:
    """Euclidean norm of the gradient of the probe-set loss.

    Parameters
    ----------
    model : torch.nn.Module
        The network; evaluated in eval mode, state restored exactly afterwards. Its
        ``.grad`` attributes are not touched.
    criterion : callable
        ``criterion(outputs, targets)`` returning a scalar loss.
    inputs, targets : torch.Tensor
        The fixed probe set, with the same first dimension.

    Returns
    -------
    GradientNormResult
        ``cost_fb`` is 1.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from llp.landscape import gradient_norm
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> gradient_norm(net, nn.CrossEntropyLoss(), x, y).value > 0
    True
    """
    check_probe_arguments(model, criterion, inputs, targets, where="gradient_norm")
    with preserved_model_state(model):
        objective = ProbeObjective(model, criterion, inputs, targets)
        gradient, loss = objective.gradient_and_loss()
        value = norm(gradient)
    return GradientNormResult(
        value=value if math.isfinite(value) else NAN,
        loss=loss if math.isfinite(loss) else NAN,
        cost_fb=1.0,
        settings=frozen_mapping({"n_examples": int(inputs.shape[0])}),
    )


def empirical_fisher_trace(
    model: nn.Module,
    criterion: Callable[..., Any],
    inputs: torch.Tensor,
    targets: torch.Tensor,
) -> FisherTraceResult:
    """Trace of the empirical Fisher: ``(1/n) sum_i ||grad_w l(x_i, y_i)||^2``.

    Per-example gradients come from ``torch.func.vmap(torch.func.grad(...))`` in chunks
    of bounded memory, with a per-example loop as fallback for models ``vmap`` cannot
    batch. ``criterion`` is applied to one example at a time, so it must give the
    example's loss for a batch of one (true for the usual mean/sum reductions).

    Parameters
    ----------
    model : torch.nn.Module
        The network; evaluated in eval mode, state restored exactly afterwards.
    criterion : callable
        ``criterion(outputs, targets)`` returning a scalar loss.
    inputs, targets : torch.Tensor
        The fixed probe set, with the same first dimension.

    Returns
    -------
    FisherTraceResult
        ``cost_fb`` is 1 (the arithmetic of one batched backward pass).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from llp.landscape import empirical_fisher_trace
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> empirical_fisher_trace(net, nn.CrossEntropyLoss(), x, y).method
    'vmap'
    """
    check_probe_arguments(model, criterion, inputs, targets, where="empirical_fisher_trace")
    with preserved_model_state(model):
        objective = ProbeObjective(model, criterion, inputs, targets)
        value, method = compute_fisher_trace(objective)
    return FisherTraceResult(
        value=value,
        method=method,
        cost_fb=1.0,
        settings=frozen_mapping({"n_examples": int(inputs.shape[0])}),
    )
