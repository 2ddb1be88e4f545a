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

#: What every evaluation has, whatever its curve.
RUN_FEATURES: tuple[str, ...] = (
    "status_complete",
    "resource",
    "epochs",
    "epochs_completed",
    "cost",
)

#: The curve features, in the order of :func:`curve_feature_matrix`'s columns.
CURVE_FEATURES: tuple[str, ...] = (
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
)

TRAINING_FEATURES: tuple[str, ...] = (
    *RUN_FEATURES,
    *CURVE_FEATURES,
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
        row = self.transform([result])[0]
        return dict(zip(TRAINING_FEATURES, map(float, row), strict=True))

    def transform(self, results: Sequence[EvaluationResult]) -> NDArray[np.float64]:
        """The features of many evaluations at once: one row per result, the columns in
        the order of :data:`TRAINING_FEATURES` (row ``i`` equals
        ``to_vector(extract_features(results[i]))``).

        A meta-model learns from tens of thousands of evaluations; this computes their
        curve features with one array operation per curve length instead of one per
        evaluation. Raises ``TypeError`` naming the position of anything that is not an
        :class:`~llp.training.EvaluationResult`.
        """
        last_k = check_int("last_k", self.last_k, min_value=2, owner=type(self).__name__)
        from llp.training import EvaluationResult, EvaluationStatus

        for i, result in enumerate(results):
            if not isinstance(result, EvaluationResult):
                raise TypeError(
                    "The 'result' parameter must be an llp.training.EvaluationResult. "
                    f"Got {type(result).__name__} instead (at position {i})."
                )
        out = np.zeros((len(results), len(TRAINING_FEATURES)))
        if not len(results):
            return out
        out[:, _RUN_COLUMNS] = [
            (
                result.status is EvaluationStatus.COMPLETE,
                result.fidelity.fraction,
                result.fidelity.epochs,
                len(result.curve),
                result.cost,
            )
            for result in results
        ]
        # Losses near the float64 limit overflow in sums and fits; the result is then
        # replaced by 0 like any other non-finite value, without a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            out[:, _CURVE_COLUMNS] = curve_feature_matrix(
                [result.curve for result in results], last_k
            )
        out[:, _LANDSCAPE_COLUMNS] = [landscape_row(result.landscape) for result in results]
        return np.where(np.isfinite(out), out, 0.0)

    @staticmethod
    def to_vector(features: Mapping[str, float]) -> NDArray[np.float64]:
        """The features as a float64 vector in the order of :data:`TRAINING_FEATURES`.

        Raises ``ValueError`` naming the missing keys when a feature is absent.
        """
        return ordered_vector(features, TRAINING_FEATURES)


# --------------------------------------------------------------------------- curve
def curve_features(curve: Sequence[Any], last_k: int) -> dict[str, float]:
    """The curve features of :class:`TrainingResultFeatureExtractor` (see there) of one
    curve (a :class:`~llp.training.Curve` or a sequence of epoch records)."""
    row = curve_feature_matrix([curve], last_k)[0]
    return dict(zip(CURVE_FEATURES, map(float, row), strict=True))


def curve_feature_matrix(curves: Sequence[Sequence[Any]], last_k: int) -> NDArray[np.float64]:
    """:data:`CURVE_FEATURES` of many curves: one row per curve. Curves of one length
    are computed together."""
    out = np.zeros((len(curves), len(CURVE_FEATURES)))
    by_length: dict[int, list[int]] = {}
    for i, curve in enumerate(curves):
        by_length.setdefault(len(curve), []).append(i)
    for length, rows in by_length.items():
        if length == 0:
            out[rows, CURVE_FEATURES.index("accuracy_missing")] = 1.0
        else:
            out[rows] = _same_length_curves([_columns(curves[i]) for i in rows], length, last_k)
    return out


def _columns(curve: Sequence[Any]) -> tuple[tuple[Any, ...], ...]:
    """Epochs, train loss, val loss and val accuracy of a curve, one tuple each."""
    from llp.training import Curve

    names = ("epoch", "train_loss", "val_loss", "val_accuracy")
    if isinstance(curve, Curve):  # column-wise already (every EvaluationResult's curve)
        return tuple(curve.column(name) for name in names)
    return tuple(tuple(getattr(record, name) for record in curve) for name in names)


def _same_length_curves(
    columns: list[tuple[tuple[Any, ...], ...]], length: int, last_k: int
) -> NDArray[np.float64]:
    epochs = np.array([c[0] for c in columns], dtype=np.float64)
    train, train_bad = _filled([c[1] for c in columns])
    val, val_bad = _filled([c[2] for c in columns])
    # Accuracy counts as recorded only when every epoch has it (None: not measured).
    has_accuracy = np.array([None not in c[3] for c in columns])
    accuracy, accuracy_bad = _filled(
        [c[3] if has else (0.0,) * length for c, has in zip(columns, has_accuracy, strict=True)]
    )
    tail = slice(-last_k, None)
    best = np.where(has_accuracy, accuracy.argmax(axis=1), val.argmin(axis=1))
    features = {
        "initial_train_loss": train[:, 0],
        "final_train_loss": train[:, -1],
        "initial_val_loss": val[:, 0],
        "final_val_loss": val[:, -1],
        "best_val_loss": val.min(axis=1),
        "initial_val_accuracy": accuracy[:, 0],
        "final_val_accuracy": accuracy[:, -1],
        "best_val_accuracy": accuracy.max(axis=1),
        "accuracy_missing": ~has_accuracy,
        "train_loss_slope": least_squares_slopes(epochs[:, tail], train[:, tail]),
        "val_loss_slope": least_squares_slopes(epochs[:, tail], val[:, tail]),
        "val_accuracy_slope": least_squares_slopes(epochs[:, tail], accuracy[:, tail]),
        "val_loss_curvature": quadratic_curvatures(epochs, val),
        "train_loss_sum": train.sum(axis=1),
        "generalization_gap": val[:, -1] - train[:, -1],
        "best_epoch_share": (best + 1) / length,
        "curve_nonfinite": train_bad | val_bad | accuracy_bad,
    }
    return np.column_stack([features[name] for name in CURVE_FEATURES]).astype(np.float64)


def least_squares_slopes(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per row, the slope of the least-squares line through ``(x[i], y[i])``; 0 with
    fewer than 2 columns or when a row's ``x`` is constant."""
    if x.shape[1] < 2:
        return np.zeros(len(x))
    xc = x - x.mean(axis=1, keepdims=True)
    denominator = np.einsum("ij,ij->i", xc, xc)
    numerator = np.einsum("ij,ij->i", xc, y - y.mean(axis=1, keepdims=True))
    positive = denominator > 0
    return np.divide(numerator, denominator, out=np.zeros(len(x)), where=positive)


def quadratic_curvatures(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per row, the second derivative ``2a`` of the least-squares parabola ``a*t**2 +
    b*t + c`` through ``(x[i], y[i])``; 0 with fewer than 3 columns."""
    out = np.zeros(len(x))
    if x.shape[1] < 3:
        return out
    # Rows usually share their epochs (1, 2, ...): one solve per distinct x.
    distinct, which = np.unique(x, axis=0, return_inverse=True)
    for k, row in enumerate(distinct):
        xc = row - row.mean()  # centring keeps the fit well conditioned
        design = np.column_stack([xc**2, xc, np.ones_like(xc)])
        rows = which.reshape(-1) == k
        coefficients, *_ = np.linalg.lstsq(design, y[rows].T, rcond=None)
        out[rows] = 2.0 * coefficients[0]
    return out


def _filled(rows: list[Sequence[float | None]]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Per row, NaN/inf (and None) forward-filled with the last finite value (0 before
    the first), and whether any was replaced."""
    values = np.array(rows, dtype=np.float64)  # None becomes NaN
    finite = np.isfinite(values)
    last = np.where(finite, np.arange(values.shape[1]), -1)
    np.maximum.accumulate(last, axis=1, out=last)
    taken = np.take_along_axis(values, np.maximum(last, 0), axis=1)
    filled: NDArray[np.float64] = np.where(last >= 0, taken, 0.0)
    replaced: NDArray[np.bool_] = ~np.all(finite, axis=1, keepdims=False)
    return filled, replaced


# --------------------------------------------------------------------------- landscape
def landscape_features(landscape: Any) -> dict[str, float]:
    """:data:`LANDSCAPE_FEATURES` with fills, plus the ``landscape_missing`` indicator."""
    names = (*LANDSCAPE_FEATURES, "landscape_missing")
    return dict(zip(names, landscape_row(landscape), strict=True))


def landscape_row(landscape: Mapping[str, Any]) -> tuple[float, ...]:
    """:func:`landscape_features`' values, in its order."""
    if not landscape:  # most evaluations measure none
        return _NO_LANDSCAPE
    values: list[float] = []
    missing = False
    for name in LANDSCAPE_FEATURES:
        value = landscape.get(name)
        if value is None or not math.isfinite(float(value)):
            values.append(LANDSCAPE_FILL_VALUE)
            missing = True
        else:
            values.append(float(value))
    return (*values, float(missing))


_NO_LANDSCAPE = (LANDSCAPE_FILL_VALUE,) * len(LANDSCAPE_FEATURES) + (1.0,)

#: Where the parts of a row go in :data:`TRAINING_FEATURES`.
_RUN_COLUMNS = [TRAINING_FEATURES.index(n) for n in RUN_FEATURES]
_CURVE_COLUMNS = [TRAINING_FEATURES.index(n) for n in CURVE_FEATURES]
_LANDSCAPE_COLUMNS = [
    TRAINING_FEATURES.index(n) for n in (*LANDSCAPE_FEATURES, "landscape_missing")
]
