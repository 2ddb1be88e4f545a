"""Loss-landscape probes: sharpness, curvature and slices on a fixed probe set.

Probes
    :func:`adaptive_sharpness` (scale-invariant, average- or worst-case),
    :func:`top_hessian_eigenvalue` (power iteration on exact Hessian-vector products),
    :func:`hutchinson_trace`, :func:`gradient_norm`, :func:`empirical_fisher_trace`,
    :func:`loss_slice_1d` and :func:`loss_slice_2d` (filter-normalised directions).
Tiers
    :func:`cheap_tier` (at most 20 forward+backward equivalents, for every checkpoint) and
    :func:`full_tier`, both returning a :class:`LandscapeReport` of flat ``landscape_*``
    features.
Training options
    :class:`SAM` (SAM/ASAM around any optimizer) and :class:`SWAController`.

Contract of every probe: it runs in eval mode on the caller's probe set, draws randomness
only from its ``seed`` (a local ``torch.Generator``; the global RNG is untouched), and
restores parameters, buffers and train/eval flags bit for bit afterwards, also when it
raises (:func:`preserved_model_state`). A diverged model gives NaN values, not errors.

Cost convention: ``cost_fb`` counts passes over the whole probe set in forward+backward
equivalents: one forward = 0.5, one forward+backward = 1, one Hessian-vector product = 2.
"""

from __future__ import annotations

from llp.landscape._probes import (
    adaptive_sharpness,
    empirical_fisher_trace,
    gradient_norm,
    hutchinson_trace,
    top_hessian_eigenvalue,
)
from llp.landscape._results import (
    EigenvalueResult,
    FisherTraceResult,
    GradientNormResult,
    LandscapeReport,
    SharpnessResult,
    Slice1DResult,
    Slice2DResult,
    TraceResult,
)
from llp.landscape._sam import SAM
from llp.landscape._slices import loss_slice_1d, loss_slice_2d
from llp.landscape._state import preserved_model_state
from llp.landscape._swa import SWAController
from llp.landscape._tiers import (
    CHEAP_TIER_FEATURES,
    CHEAP_TIER_MAX_COST_FB,
    FULL_TIER_FEATURES,
    LR_TIMES_TOP_EIG_FEATURE,
    cheap_tier,
    full_tier,
)

__all__ = [
    "CHEAP_TIER_FEATURES",
    "CHEAP_TIER_MAX_COST_FB",
    "FULL_TIER_FEATURES",
    "LR_TIMES_TOP_EIG_FEATURE",
    "SAM",
    "EigenvalueResult",
    "FisherTraceResult",
    "GradientNormResult",
    "LandscapeReport",
    "SWAController",
    "SharpnessResult",
    "Slice1DResult",
    "Slice2DResult",
    "TraceResult",
    "adaptive_sharpness",
    "cheap_tier",
    "empirical_fisher_trace",
    "full_tier",
    "gradient_norm",
    "hutchinson_trace",
    "loss_slice_1d",
    "loss_slice_2d",
    "preserved_model_state",
    "top_hessian_eigenvalue",
]
