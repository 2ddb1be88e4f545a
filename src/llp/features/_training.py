"""Training-result features: what a partial training run says about a configuration."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from llp._checks import check_int
from llp.features._vector import ordered_vector

if TYPE_CHECKING:
    from llp.training import EvaluationResult

#: The landscape features copied from ``EvaluationResult.landscape``: the cheap tier of
#: :mod:`llp.landscape` (``CHEAP_TIER_FEATURES``) and the learning rate times the top
#: Hessian eigenvalue. Spelled out here so that importing llp.features does not import
#: torch; a test checks them against :mod:`llp.landscape`.
LANDSCAPE_FEATURES: tuple[str, ...] = (
    "landscape_loss",
    "landscape_grad_norm",
    "landscape_adaptive_sharpness_avg",
    "landscape_hessian_top_eig",
    "landscape_lr_times_top_eig",
)

#: Value given to a landscape feature that was not measured or is NaN/inf.
LANDSCAPE_FILL_VALUE = 0.0

#: ``EpochRecord`` fields the features do not read: ``seconds`` is wall time, which
#: depends on the machine; the machine-independent cost is ``EvaluationResult.cost``.
UNUSED_EPOCH_RECORD_FIELDS: frozenset[str] = frozenset({"seconds"})

TRAINING_FEATURES: tuple[str, ...] = (
    "status_complete",
    "resource",
    "epochs",
    "epochs_completed",
    "cost",
    "initial_train_loss",
    "final_train_loss",
    "initial_val_loss",
    "final_val_loss",
    "best_val_loss",
    "initial_val_accuracy",
    "final_val_accuracy",
    "best_val_accuracy",
    "accuracy_missing",
    "train_loss_slope",
    "val_loss_slope",
    "val_accuracy_slope",
    "val_loss_curvature",
    "train_loss_sum",
    "generalization_gap",
    "best_epoch_share",
    "curve_nonfinite",
    *LANDSCAPE_FEATURES,
    "landscape_missing",
)
"""Names of the training-result features, in the fixed order of
:meth:`TrainingResultFeatureExtractor.to_vector`."""


class TrainingResultFeatureExtractor:
    """Features of one evaluation (a configuration trained at one fidelity).

    It reads exactly what :class:`llp.training.Trainer` records: the fidelity, status and
    cost of the :class:`~llp.training.EvaluationResult`, the ``epoch``, ``train_loss``,
    ``val_loss`` and ``val_accuracy`` of every :class:`~llp.training.EpochRecord` of its
    curve (``seconds`` is not used, see :data:`UNUSED_EPOCH_RECORD_FIELDS`), and its
    ``landscape`` mapping. The features (names and order in :data:`TRAINING_FEATURES`):

    Run
        ``status_complete`` (1 complete, 0 failed); ``resource`` (the data fraction);
        ``epochs`` (planned); ``epochs_completed`` (length of the curve); ``cost`` (spent,
        in full-data-epoch equivalents).
    Curve values
        ``initial_*`` and ``final_*`` train loss, val loss and val accuracy (first and last
        epoch), ``best_val_loss`` (minimum) and ``best_val_accuracy`` (maximum).
        ``train_loss_sum``: the sum of the per-epoch training losses (a training-speed
        estimate). ``generalization_gap``: final val loss minus final train loss.
        ``best_epoch_share``: position of the best epoch (highest val accuracy, or lowest
        val loss without accuracy; the first one on ties) divided by the number of epochs,
        so 1 means the run was still improving.
    Curve shape
        ``*_slope``: least-squares slope per epoch over the last ``last_k`` epochs (0 for a
        single epoch). ``val_loss_curvature``: second derivative (``2a``) of a
        least-squares parabola ``a*t**2 + b*t + c`` through the whole val-loss curve; with
        exactly three epochs it equals the second difference; 0 with fewer than three.
    Missing values
        Without accuracy (regression, or a model whose output has no class columns) the
        accuracy features are 0 and ``accuracy_missing`` is 1. A NaN or inf curve value
        (the epoch a run diverged) is replaced by the last finite value of its series (0
        if there is none) and ``curve_nonfinite`` is 1. A feature that overflows float64
        (losses near 1e308) is 0. A failed run with an empty curve has every curve
        feature 0.
    Landscape
        :data:`LANDSCAPE_FEATURES` copied with their ``landscape_*`` names; one that was
        not measured or is NaN/inf becomes :data:`LANDSCAPE_FILL_VALUE` (0.0) and sets
        ``landscape_missing`` to 1.

    Every value is a finite float.

    Parameters
    ----------
    last_k : int, default=3
        Number of final epochs the slopes are fitted to. At least 2.

    Examples
    --------
    >>> from llp.training import EpochRecord, EvaluationResult, EvaluationStatus, Fidelity
    >>> curve = [EpochRecord(1, 1.0, 1.1, 0.5, 0.1), EpochRecord(2, 0.6, 0.8, 0.7, 0.1)]
    >>> result = EvaluationResult(
    ...     config={"lr": 0.1}, fidelity=Fidelity(0.5, 2), status=EvaluationStatus.COMPLETE,
    ...     curve=curve, score=0.7, objective="val_accuracy", cost=1.0, seconds=0.2,
    ...     train_seconds=0.2, n_train=100, seed=0)
    >>> features = TrainingResultFeatureExtractor().extract_features(result)
    >>> round(features["train_loss_slope"], 6), round(features["generalization_gap"], 6)
    (-0.4, 0.2)
    >>> TrainingResultFeatureExtractor.to_vector(features).shape
    (28,)
    """

    def __init__(self, *, last_k: int = 3) -> None:
        self.last_k = last_k

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments."""
        return {"last_k": self.last_k}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_k={self.last_k!r})"

    @staticmethod
    def get_feature_names_out() -> NDArray[np.object_]:
        """:data:`TRAINING_FEATURES` as an array, in the order of :meth:`to_vector`."""
        return np.asarray(TRAINING_FEATURES, dtype=object)

    def extract_features(self, result: EvaluationResult) -> dict[str, float]:
        """Features of one evaluation.

        Parameters
        ----------
        result : EvaluationResult
            As returned by :meth:`llp.training.Trainer.evaluate` (complete or failed).

        Returns
        -------
        dict of str to float
            The features of :data:`TRAINING_FEATURES`, in that order.
        """
        last_k = check_int("last_k", self.last_k, min_value=2, owner=type(self).__name__)
        from llp.training import EvaluationResult, EvaluationStatus

        if not isinstance(result, EvaluationResult):
            raise TypeError(
                "The 'result' parameter must be an llp.training.EvaluationResult. "
                f"Got {type(result).__name__} instead."
            )
        features: dict[str, float] = {
            "status_complete": float(result.status is EvaluationStatus.COMPLETE),
            "resource": float(result.fidelity.fraction),
            "epochs": float(result.fidelity.epochs),
            "epochs_completed": float(len(result.curve)),
            "cost": float(result.cost),
        }
        # Losses near the float64 limit overflow in sums and fits; the result is then
        # replaced by 0 like any other non-finite value, without a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            features.update(curve_features(result.curve, last_k))
        features.update(landscape_features(result.landscape))
        return {name: _finite_or_zero(features[name]) for name in TRAINING_FEATURES}

    @staticmethod
    def to_vector(features: Mapping[str, float]) -> NDArray[np.float64]:
        """The features as a float64 vector in the order of :data:`TRAINING_FEATURES`.

        Raises ``ValueError`` naming the missing keys when a feature is absent.
        """
        return ordered_vector(features, TRAINING_FEATURES)


# --------------------------------------------------------------------------- curve
def curve_features(curve: Sequence[Any], last_k: int) -> dict[str, float]:
    """The curve features of :class:`TrainingResultFeatureExtractor` (see there)."""
    from llp.training import Curve

    if isinstance(curve, Curve):  # column-wise already (every EvaluationResult's curve)
        raw_epochs, raw_train, raw_val, raw_accuracy = (
            curve.column(name) for name in ("epoch", "train_loss", "val_loss", "val_accuracy")
        )
    else:
        raw_epochs = tuple(record.epoch for record in curve)
        raw_train = tuple(record.train_loss for record in curve)
        raw_val = tuple(record.val_loss for record in curve)
        raw_accuracy = tuple(record.val_accuracy for record in curve)
    epochs = np.asarray([float(epoch) for epoch in raw_epochs], dtype=np.float64)
    train, train_bad = _filled(raw_train)
    val, val_bad = _filled(raw_val)
    has_accuracy = bool(curve) and all(a is not None for a in raw_accuracy)
    accuracy, accuracy_bad = _filled(raw_accuracy if has_accuracy else [0.0] * len(curve))
    if not curve:
        zeros = dict.fromkeys(
            (
                "initial_train_loss",
                "final_train_loss",
                "initial_val_loss",
                "final_val_loss",
                "best_val_loss",
                "initial_val_accuracy",
                "final_val_accuracy",
                "best_val_accuracy",
                "train_loss_slope",
                "val_loss_slope",
                "val_accuracy_slope",
                "val_loss_curvature",
                "train_loss_sum",
                "generalization_gap",
                "best_epoch_share",
                "curve_nonfinite",
            ),
            0.0,
        )
        return {**zeros, "accuracy_missing": 1.0}
    tail = slice(-last_k, None)
    best = int(np.argmax(accuracy)) if has_accuracy else int(np.argmin(val))
    return {
        "initial_train_loss": float(train[0]),
        "final_train_loss": float(train[-1]),
        "initial_val_loss": float(val[0]),
        "final_val_loss": float(val[-1]),
        "best_val_loss": float(val.min()),
        "initial_val_accuracy": float(accuracy[0]),
        "final_val_accuracy": float(accuracy[-1]),
        "best_val_accuracy": float(accuracy.max()),
        "accuracy_missing": float(not has_accuracy),
        "train_loss_slope": least_squares_slope(epochs[tail], train[tail]),
        "val_loss_slope": least_squares_slope(epochs[tail], val[tail]),
        "val_accuracy_slope": least_squares_slope(epochs[tail], accuracy[tail]),
        "val_loss_curvature": quadratic_curvature(epochs, val),
        "train_loss_sum": float(train.sum()),
        "generalization_gap": float(val[-1] - train[-1]),
        "best_epoch_share": (best + 1) / len(curve),
        "curve_nonfinite": float(train_bad or val_bad or accuracy_bad),
    }


def least_squares_slope(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Slope of the least-squares line through ``(x, y)``; 0 for fewer than 2 points."""
    if x.size < 2:
        return 0.0
    xc = x - x.mean()
    denominator = float(xc @ xc)
    return float(xc @ (y - y.mean())) / denominator if denominator > 0 else 0.0


def quadratic_curvature(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Second derivative ``2a`` of the least-squares parabola through ``(x, y)``; 0 for
    fewer than 3 points."""
    if x.size < 3:
        return 0.0
    xc = x - x.mean()  # centring keeps the normal equations well conditioned
    design = np.column_stack([xc**2, xc, np.ones_like(xc)])
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    return 2.0 * float(coefficients[0])


def _filled(values: Sequence[float | None]) -> tuple[NDArray[np.float64], bool]:
    """Forward-fill NaN/inf (and None) with the last finite value (0 before the first)."""
    out = np.empty(len(values), dtype=np.float64)
    last, replaced = 0.0, False
    for i, value in enumerate(values):
        if value is not None and math.isfinite(value):
            last = float(value)
        else:
            replaced = True
        out[i] = last
    return out, replaced


# --------------------------------------------------------------------------- landscape
def landscape_features(landscape: Any) -> dict[str, float]:
    """:data:`LANDSCAPE_FEATURES` with fills, plus the ``landscape_missing`` indicator."""
    out: dict[str, float] = {}
    missing = False
    for name in LANDSCAPE_FEATURES:
        value = landscape.get(name)
        if value is None or not math.isfinite(float(value)):
            out[name] = LANDSCAPE_FILL_VALUE
            missing = True
        else:
            out[name] = float(value)
    out["landscape_missing"] = float(missing)
    return out


def _finite_or_zero(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else 0.0
