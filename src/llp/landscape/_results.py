"""Frozen result records of the landscape probes.

Cost convention (shared by every probe and by the tiers): ``cost_fb`` counts passes over
the *whole probe set* in forward+backward equivalents,

* one forward pass = 0.5,
* one forward+backward pass (a gradient) = 1,
* one exact Hessian-vector product = 2.

Per-example gradients (``vmap(grad)`` or the fallback loop) over the probe set count as 1:
they do the same arithmetic as one batched backward pass. The count measures arithmetic,
not wall time; the benchmark ``benchmarks/landscape_cost.py`` reports both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

_V = TypeVar("_V")


def frozen_mapping(values: Mapping[str, _V]) -> Mapping[str, _V]:
    """A read-only copy of ``values``."""
    return MappingProxyType(dict(values))


def readonly_array(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """A read-only float64 copy of ``values``."""
    array = np.array(values, dtype=np.float64, copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class GradientNormResult:
    """Euclidean norm of the probe-set loss gradient.

    Attributes
    ----------
    value : float
        ``||grad L(w)||_2`` over all trainable parameters (NaN for a diverged model).
    loss : float
        ``L(w)`` on the probe set.
    cost_fb : float
        Cost in forward+backward equivalents (see the module docstring); 1.
    settings : Mapping[str, object]
        The settings used.
    """

    value: float
    loss: float
    cost_fb: float
    settings: Mapping[str, object] = field(default_factory=lambda: frozen_mapping({}))


@dataclass(frozen=True)
class FisherTraceResult:
    """Trace of the empirical Fisher, ``(1/n) sum_i ||grad l_i(w)||^2``.

    Attributes
    ----------
    value : float
        The trace (NaN for a diverged model).
    method : {"vmap", "loop"}
        How the per-example gradients were computed.
    cost_fb : float
        Cost in forward+backward equivalents; 1.
    settings : Mapping[str, object]
        The settings used.
    """

    value: float
    method: Literal["vmap", "loop"]
    cost_fb: float
    settings: Mapping[str, object] = field(default_factory=lambda: frozen_mapping({}))


@dataclass(frozen=True)
class SharpnessResult:
    """Adaptive (scale-invariant) sharpness ``L(w + delta) - L(w)``.

    Attributes
    ----------
    value : float
        Average-case: mean loss increase over random perturbations; worst-case: loss
        increase after one adaptive ascent step. NaN for a diverged model.
    stderr : float
        Standard error of ``value`` over the random directions (average-case with at
        least two directions); NaN otherwise.
    base_loss : float
        ``L(w)`` on the probe set.
    cost_fb : float
        Cost in forward+backward equivalents.
    settings : Mapping[str, object]
        The settings used (``kind``, ``rho``, ``n_samples``, ``seed``).
    """

    value: float
    stderr: float
    base_loss: float
    cost_fb: float
    settings: Mapping[str, object] = field(default_factory=lambda: frozen_mapping({}))


@dataclass(frozen=True)
class EigenvalueResult:
    """Largest-magnitude Hessian eigenvalue from power iteration.

    Attributes
    ----------
    eigenvalue : float
        The Rayleigh quotient of the last iterate: the eigenvalue of largest magnitude,
        with its sign (NaN for a diverged model).
    iterations : int
        Hessian-vector products done.
    converged : bool
        Whether the relative change of the estimate fell below ``tol``.
    lr_times_eigenvalue : float or None
        ``learning_rate * eigenvalue`` when a learning rate was given.
    cost_fb : float
        Cost in forward+backward equivalents: 2 per iteration.
    settings : Mapping[str, object]
        The settings used.
    """

    eigenvalue: float
    iterations: int
    converged: bool
    lr_times_eigenvalue: float | None
    cost_fb: float
    settings: Mapping[str, object] = field(default_factory=lambda: frozen_mapping({}))

    @property
    def value(self) -> float:
        """Alias of :attr:`eigenvalue`, so that every result has a ``value``."""
        return self.eigenvalue


@dataclass(frozen=True)
class TraceResult:
    """Hutchinson estimate of the Hessian trace.

    Attributes
    ----------
    value : float
        Mean of ``v^T H v`` over Rademacher vectors ``v`` (NaN for a diverged model).
    stderr : float
        Standard error of that mean (sample standard deviation / sqrt(n_samples)).
    cost_fb : float
        Cost in forward+backward equivalents: 2 per sample.
    settings : Mapping[str, object]
        The settings used.
    """

    value: float
    stderr: float
    cost_fb: float
    settings: Mapping[str, object] = field(default_factory=lambda: frozen_mapping({}))


@dataclass(frozen=True, eq=False)
class Slice1DResult:
    """Loss along one filter-normalised random direction, ``L(w + alpha d)``.

    Attributes
    ----------
    alphas : numpy.ndarray
        Step sizes, shape ``(n_points,)``, read-only.
    losses : numpy.ndarray
        Probe-set losses, shape ``(n_points,)``, read-only.
    cost_fb : float
        Cost in forward+backward equivalents: 0.5 per point.
    settings : Mapping[str, object]
        The settings used.
    """

    alphas: NDArray[np.float64]
    losses: NDArray[np.float64]
    cost_fb: float
    settings: Mapping[str, object] = field(default_factory=lambda: frozen_mapping({}))


@dataclass(frozen=True, eq=False)
class Slice2DResult:
    """Loss on a plane of two filter-normalised random directions.

    ``losses[i, j] = L(w + alphas[i] d1 + betas[j] d2)``.

    Attributes
    ----------
    alphas, betas : numpy.ndarray
        Step sizes along ``d1`` and ``d2``, shape ``(n_points,)``, read-only.
    losses : numpy.ndarray
        Probe-set losses, shape ``(n_points, n_points)``, read-only.
    cost_fb : float
        Cost in forward+backward equivalents: 0.5 per grid point.
    settings : Mapping[str, object]
        The settings used.
    """

    alphas: NDArray[np.float64]
    betas: NDArray[np.float64]
    losses: NDArray[np.float64]
    cost_fb: float
    settings: Mapping[str, object] = field(default_factory=lambda: frozen_mapping({}))


@dataclass(frozen=True, eq=False)
class LandscapeReport:
    """Landscape features of one checkpoint, as computed by a tier.

    Attributes
    ----------
    features : Mapping[str, float]
        Flat ``landscape_*`` feature names to values (NaN where the model diverged).
    cost_fb : float
        Total cost in forward+backward equivalents over the probe set.
    tier : {"cheap", "full"}
        Which tier produced the report.
    settings : Mapping[str, object]
        The settings of every probe in the tier, and the probe-set size.
    diagnostics : Mapping[str, object]
        How the computation went (power-iteration count and convergence, HVP mode,
        per-example gradient method); not features.
    slice_1d : Slice1DResult or None
        The 1-D loss slice of the full tier, for plotting; None for the cheap tier.
    """

    features: Mapping[str, float]
    cost_fb: float
    tier: Literal["cheap", "full"]
    settings: Mapping[str, object]
    diagnostics: Mapping[str, object] = field(default_factory=lambda: frozen_mapping({}))
    slice_1d: Slice1DResult | None = None
