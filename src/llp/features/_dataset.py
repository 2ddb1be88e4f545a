"""Dataset meta-features: what the meta-model knows about a dataset before training on it.

Every feature is computed from a seeded sample of at most ``max_samples`` rows (and, for
the pairwise statistics, at most ``max_features`` columns), so extraction costs about the
same for a thousand rows as for a million. Label statistics use every label.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from llp._checks import MAX_MAGNITUDE, check_int
from llp.features._inputs import (
    DataSample,
    TaskOption,
    sample_arrays,
    sample_dataframe,
    sample_fidelity_data,
    sample_torch,
)
from llp.features._vector import ordered_vector

DATASET_FEATURES: tuple[str, ...] = (
    "num_samples",
    "log_num_samples",
    "num_features",
    "log_num_features",
    "samples_per_feature",
    "task_is_regression",
    "num_classes",
    "class_entropy",
    "class_entropy_normalized",
    "class_imbalance",
    "majority_class_share",
    "minority_class_share",
    "feature_mean",
    "feature_mean_spread",
    "feature_std",
    "feature_std_spread",
    "feature_skew",
    "feature_skew_spread",
    "feature_kurtosis",
    "feature_kurtosis_spread",
    "feature_correlation_mean",
    "feature_correlation_std",
    "pca_dims_95",
    "pca_dims_95_ratio",
    "constant_feature_share",
    "categorical_share",
    "missing_rate",
    "landmark_1nn_accuracy",
    "landmark_stump_accuracy",
    "landmark_naive_bayes_accuracy",
)
"""Names of the dataset meta-features, in the fixed order of
:meth:`DatasetFeatureExtractor.to_vector`."""

#: An integral-valued column with at most this many distinct values counts as categorical.
CATEGORICAL_MAX_LEVELS = 10
#: Relative tolerance of "integral-valued": a value that went through float32 (e.g. the
#: standardised pool of a FidelityData, mapped back) still counts as an integer.
INTEGRAL_TOLERANCE = 1e-5
#: Folds of the landmarkers' cross-validation (fewer when the sample has fewer rows).
LANDMARKER_FOLDS = 5
#: Share of the variance the principal components behind ``pca_dims_95`` explain.
PCA_EXPLAINED_VARIANCE = 0.95
#: A column whose observed range is at most this share of its magnitude is constant.
CONSTANT_RELATIVE_RANGE = 1e-12


class DatasetFeatureExtractor:
    """Cheap, seeded meta-features of a dataset, with a cost that stops growing with its size.

    The features (names and order in :data:`DATASET_FEATURES`) are:

    Size
        ``num_samples`` and ``num_features`` (true sizes; images are flattened, so
        ``num_features`` counts pixels), their natural logs, ``samples_per_feature``.
    Labels (every label is used)
        ``task_is_regression`` (0/1); ``num_classes``; ``class_entropy``, the Shannon entropy
        of the class shares in nats; ``class_entropy_normalized``, that entropy divided by
        ``log(num_classes)`` (1 = balanced; 0 with fewer than 2 classes);
        ``class_imbalance``, the largest class share divided by the smallest (1 = balanced);
        ``majority_class_share`` and ``minority_class_share``. For a regression target
        there are no classes: ``num_classes``, both entropies and both shares are 0 and
        ``class_imbalance`` is 1.
    Feature distributions (on the row sample, ignoring missing cells)
        For each column its mean, standard deviation (ddof=0), skewness (population,
        ``m3 / m2**1.5``) and excess kurtosis (population, ``m4 / m2**2 - 3``); a constant
        column has skewness and kurtosis 0. ``feature_mean``, ``feature_std``,
        ``feature_skew`` and ``feature_kurtosis`` are the means of these per-column values
        over all columns, the ``*_spread`` features their standard deviations (ddof=0).
        ``constant_feature_share``: share of constant columns.
    Pairwise structure (on the row sample and at most ``max_features`` sampled columns,
    missing cells imputed with the column mean, constant columns left out)
        ``feature_correlation_mean`` and ``feature_correlation_std``: mean and standard
        deviation of the absolute Pearson correlations of all column pairs (0 with fewer
        than 2 non-constant columns). ``pca_dims_95``: the number of principal components of
        the standardised columns that explain 95 % of their variance, and
        ``pca_dims_95_ratio``, that number over the number of columns examined. Both refer
        to the sampled columns when the data has more than ``max_features`` of them.
    Column kinds (on the row sample)
        ``categorical_share``: share of columns that are categorical, by dtype for a
        DataFrame (category, string, object and bool columns, encoded as category codes for
        every other feature) or, for any numeric column, integral-valued (up to a relative
        :data:`INTEGRAL_TOLERANCE`) with at most :data:`CATEGORICAL_MAX_LEVELS` distinct
        values. ``missing_rate``: share of NaN (or None, or non-finite) cells.
    Landmarkers (classification only; on the row sample, missing cells imputed)
        Accuracy of a 1-nearest-neighbour classifier (Euclidean), a decision stump
        (depth-1 tree) and Gaussian naive Bayes, all on the standardised non-constant
        columns, under a fixed, unseeded
        :data:`LANDMARKER_FOLDS`-fold cross-validation whose folds deal the rows of each
        class out in turn. They are 0 for a regression target and with
        ``landmarkers=False``.

    Every value is a finite float. ``seed`` only chooses the sampled rows and columns: on
    data within both caps, every seed gives the same features.

    Parameters
    ----------
    max_samples : int, default=2000
        Rows sampled (without replacement) for every feature except the label statistics
        and the sizes. At least 10.
    max_features : int, default=200
        Columns sampled for the pairwise correlations and the PCA. At least 2.
    seed : int, default=0
        Seed of the row and column samples.
    landmarkers : bool, default=True
        Fit the three landmarkers (the most expensive part, still a fraction of a second
        at the default cap).

    See Also
    --------
    dataset_fingerprint : the content hash that keys a dataset in the knowledge base.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> features = DatasetFeatureExtractor(seed=0).extract_features(X, y)
    >>> features["num_samples"], features["num_classes"], features["class_imbalance"]
    (150.0, 3.0, 1.0)
    >>> DatasetFeatureExtractor.to_vector(features).shape
    (30,)
    """

    def __init__(
        self,
        *,
        max_samples: int = 2000,
        max_features: int = 200,
        seed: int = 0,
        landmarkers: bool = True,
    ) -> None:
        self.max_samples = max_samples
        self.max_features = max_features
        self.seed = seed
        self.landmarkers = landmarkers

    # ------------------------------------------------------------------ sklearn habits
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments (store them with the features: they define them)."""
        return {
            "max_samples": self.max_samples,
            "max_features": self.max_features,
            "seed": self.seed,
            "landmarkers": self.landmarkers,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @staticmethod
    def get_feature_names_out() -> NDArray[np.object_]:
        """:data:`DATASET_FEATURES` as an array, in the order of :meth:`to_vector`."""
        return np.asarray(DATASET_FEATURES, dtype=object)

    # ------------------------------------------------------------------ public
    def extract_features(
        self, X: Any, y: Any = None, *, task: TaskOption = "auto"
    ) -> dict[str, float]:
        """Meta-features of the dataset ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Numpy array, torch tensor, nested list or pandas DataFrame. Images are
            flattened. NaN (or None) marks a missing cell. Without ``y``: anything
            :meth:`extract_from` reads (a torch ``DataLoader`` or ``Dataset``, an
            ``(X, y)`` tuple, a :class:`llp.data.FidelityData`), as the prototype's
            ``extract_features(train_loader)`` was called.
        y : array-like of shape (n_samples,), optional
            Class labels or regression targets; no missing values.
        task : {"auto", "classification", "regression"}, default="auto"
            ``"auto"`` reads integer, bool and string labels, and floats with at most 100
            distinct integral values, as classes; other floats as regression targets.

        Returns
        -------
        dict of str to float
            The features of :data:`DATASET_FEATURES`, in that order.
        """
        if y is None:
            self._check_params(task)
            features = self._features_of_holder(X, None, task)
            if features is None:
                raise TypeError(
                    f"The 'y' parameter of {type(self).__name__}.extract_features is "
                    "required when X is an array (the labels); without it X must be a torch "
                    "Dataset or DataLoader, an (X, y) tuple or an llp FidelityData. Got X of "
                    f"type {type(X).__name__}."
                )
            return features
        self._check_params(task)
        sample = sample_arrays(X, y, task=task, max_samples=self.max_samples, seed=self.seed)
        return self._features_of(sample)

    def extract_from(
        self, data: Any, target: str | None = None, *, task: TaskOption = "auto"
    ) -> dict[str, float]:
        """Meta-features of whatever holds the data.

        Parameters
        ----------
        data : tuple, DataFrame, torch Dataset or DataLoader, or FidelityData
            an ``(X, y)`` tuple of arrays; a pandas DataFrame with the label column ``target``; a
            map-style torch ``Dataset`` of ``(x, y)`` pairs or a ``DataLoader`` over one
            (read through its dataset: the raw examples, not collated batches; images
            flattened); or an :class:`llp.data.FidelityData`, whose training pool is used
            (mapped back to the original scale if it was standardised; the validation
            split is left out, so ``num_samples`` is the pool size).
        target : str, optional
            The label column of a DataFrame.
        task : {"auto", "classification", "regression"}, default="auto"
            As in :meth:`extract_features`; a FidelityData brings its own task.

        Returns
        -------
        dict of str to float
        """
        self._check_params(task)
        features = self._features_of_holder(data, target, task)
        if features is None:
            raise TypeError(
                "The 'data' parameter must be an (X, y) tuple, a pandas DataFrame (with "
                "target=...), a torch Dataset or DataLoader, or an llp FidelityData. Got "
                f"{type(data).__name__} instead."
            )
        return features

    def _features_of_holder(
        self, data: Any, target: str | None, task: TaskOption
    ) -> dict[str, float] | None:
        """The features of a data holder :meth:`extract_from` reads; None for another type."""
        options = {"max_samples": self.max_samples, "seed": self.seed}
        from llp.data import FidelityData

        if isinstance(data, FidelityData):
            return self._features_of(sample_fidelity_data(data, **options))
        import sys

        pd_module = sys.modules.get("pandas")
        if pd_module is not None and isinstance(data, pd_module.DataFrame):
            return self._features_of(sample_dataframe(data, target, task=task, **options))
        torch_module = sys.modules.get("torch")
        if torch_module is not None and isinstance(
            data, (torch_module.utils.data.Dataset, torch_module.utils.data.DataLoader)
        ):
            return self._features_of(sample_torch(data, task=task, **options))
        if isinstance(data, tuple) and len(data) == 2:
            return self.extract_features(data[0], data[1], task=task)
        return None

    @staticmethod
    def to_vector(features: Mapping[str, float]) -> NDArray[np.float64]:
        """The features as a float64 vector in the order of :data:`DATASET_FEATURES`.

        Raises ``ValueError`` naming the missing keys when a feature is absent; keys that
        are not dataset features are ignored.
        """
        return ordered_vector(features, DATASET_FEATURES)

    # ------------------------------------------------------------------ internals
    def _check_params(self, task: Any) -> None:
        owner = type(self).__name__
        check_int("max_samples", self.max_samples, min_value=10, owner=owner)
        check_int("max_features", self.max_features, min_value=2, owner=owner)
        check_int("seed", self.seed, min_value=0, owner=owner)
        if not isinstance(self.landmarkers, (bool, np.bool_)):
            raise TypeError(
                f"The 'landmarkers' parameter of {owner} must be a bool. "
                f"Got {self.landmarkers!r} instead."
            )
        if task not in ("auto", "classification", "regression"):
            raise ValueError(
                "The 'task' parameter must be one of 'auto', 'classification', "
                f"'regression'. Got {task!r} instead."
            )

    def _features_of(self, sample: DataSample) -> dict[str, float]:
        n, d = sample.n_samples, sample.n_features
        features: dict[str, float] = {
            "num_samples": float(n),
            "log_num_samples": math.log(n),
            "num_features": float(d),
            "log_num_features": math.log(d),
            "samples_per_feature": n / d,
            "task_is_regression": float(sample.task == "regression"),
        }
        features.update(label_statistics(sample.y_full, sample.task))
        X = sample.X
        missing = np.isnan(X)
        # Every column is first divided by its largest magnitude: the statistics below are
        # scale-free or rescaled afterwards, and squares and sums can no longer overflow.
        magnitude = np.where(missing, 0.0, np.abs(X)).max(axis=0)
        magnitude[magnitude == 0] = 1.0
        unit = X / magnitude
        moments = column_moments(unit, missing)
        features.update(moment_summary(moments, magnitude))
        imputed = np.where(missing, moments["mean"], unit)
        columns = sample_columns(d, self.max_features, self.seed)
        features.update(pairwise_structure(imputed, moments, columns))
        features["constant_feature_share"] = float(moments["constant"].mean())
        categorical = integral_low_cardinality(X, missing)
        if sample.categorical_dtype is not None:
            categorical = categorical | sample.categorical_dtype
        features["categorical_share"] = float(categorical.mean())
        features["missing_rate"] = float(missing.mean())
        if self.landmarkers and sample.task == "classification":
            varying = ~moments["constant"]
            standardized = (imputed[:, varying] - moments["mean"][varying]) / moments["std"][
                varying
            ]
            codes = np.unique(sample.y_sample, return_inverse=True)[1].reshape(-1)
            accuracies = landmarker_accuracies(standardized, codes.astype(np.int64))
        else:
            accuracies = (0.0, 0.0, 0.0)
        features["landmark_1nn_accuracy"] = accuracies[0]
        features["landmark_stump_accuracy"] = accuracies[1]
        features["landmark_naive_bayes_accuracy"] = accuracies[2]
        return {name: _finite(features[name]) for name in DATASET_FEATURES}


# --------------------------------------------------------------------------- statistics
def label_statistics(y: NDArray[Any], task: str) -> dict[str, float]:
    """Class count, entropy (nats), normalised entropy, imbalance and extreme shares."""
    if task == "regression":
        return {
            "num_classes": 0.0,
            "class_entropy": 0.0,
            "class_entropy_normalized": 0.0,
            "class_imbalance": 1.0,
            "majority_class_share": 0.0,
            "minority_class_share": 0.0,
        }
    counts = class_counts(y)
    shares = counts / counts.sum()
    entropy = float(-(shares * np.log(shares)).sum())
    k = int(counts.shape[0])
    return {
        "num_classes": float(k),
        "class_entropy": entropy,
        "class_entropy_normalized": entropy / math.log(k) if k > 1 else 0.0,
        "class_imbalance": float(counts.max() / counts.min()),
        "majority_class_share": float(shares.max()),
        "minority_class_share": float(shares.min()),
    }


def class_counts(y: NDArray[Any]) -> NDArray[np.int64]:
    """Examples per class (classes that occur), without sorting when labels are small ints."""
    if y.dtype.kind in "biu" and y.size and y.min() >= 0 and y.max() <= 4 * y.size:
        counts = np.bincount(y.astype(np.int64))
        return counts[counts > 0].astype(np.int64)
    if y.dtype == object:
        y = y.astype(str)
    return np.unique(y, return_counts=True)[1].astype(np.int64)


def column_moments(X: NDArray[np.float64], missing: NDArray[np.bool_]) -> dict[str, NDArray[Any]]:
    """Per-column mean, std, skewness, excess kurtosis and constancy over observed cells.

    A column without observed cells has mean 0 and counts as constant.
    """
    count = (~missing).sum(axis=0)
    safe = np.maximum(count, 1)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = np.where(missing, 0.0, X).sum(axis=0) / safe
        dev = np.where(missing, 0.0, X - mean)
        std = np.sqrt((dev**2).sum(axis=0) / safe)
        high = np.where(missing, -np.inf, X).max(axis=0)
        low = np.where(missing, np.inf, X).min(axis=0)
        magnitude = np.maximum(np.abs(high), np.abs(low))
        constant = (count == 0) | ~(high - low > CONSTANT_RELATIVE_RANGE * magnitude)
        z = dev / np.where(constant, 1.0, std)
        skew = np.where(constant, 0.0, (z**3).sum(axis=0) / safe)
        kurtosis = np.where(constant, 0.0, (z**4).sum(axis=0) / safe - 3.0)
    return {
        "mean": mean,
        "std": np.where(count == 0, 0.0, std),
        "skew": skew,
        "kurtosis": kurtosis,
        "constant": constant,
    }


def moment_summary(
    moments: Mapping[str, NDArray[Any]], magnitude: NDArray[np.float64]
) -> dict[str, float]:
    """Mean over columns of each per-column moment, and its spread (std over columns).

    ``moments`` were computed on the columns divided by ``magnitude``; means and standard
    deviations are scaled back, skewness and kurtosis are scale-free.
    """
    out: dict[str, float] = {}
    with np.errstate(over="ignore", invalid="ignore"):
        for key in ("mean", "std", "skew", "kurtosis"):
            values = moments[key] * magnitude if key in ("mean", "std") else moments[key]
            out[f"feature_{key}"] = float(values.mean())
            out[f"feature_{key}_spread"] = float(values.std())
    return out


def sample_columns(n_features: int, max_features: int, seed: int) -> NDArray[np.intp]:
    """Sorted indices of at most ``max_features`` columns (all of them within the cap)."""
    if n_features <= max_features:
        return np.arange(n_features, dtype=np.intp)
    rng = np.random.default_rng([seed, 1])
    return np.sort(rng.choice(n_features, size=max_features, replace=False)).astype(np.intp)


def pairwise_structure(
    imputed: NDArray[np.float64],
    moments: Mapping[str, NDArray[Any]],
    columns: NDArray[np.intp],
) -> dict[str, float]:
    """Absolute Pearson correlations and the 95 % PCA dimension of the sampled columns."""
    keep = columns[~moments["constant"][columns]]
    out = {
        "feature_correlation_mean": 0.0,
        "feature_correlation_std": 0.0,
        "pca_dims_95": 0.0,
        "pca_dims_95_ratio": 0.0,
    }
    if keep.size == 0:
        return out
    block = imputed[:, keep]
    centred = block - block.mean(axis=0)
    scale = np.sqrt((centred**2).mean(axis=0))
    # Mean imputation can leave a column with a single observed value flat: drop it.
    varying = scale > 0
    if not varying.all():
        centred, scale = centred[:, varying], scale[varying]
    if scale.size == 0:
        return out
    with np.errstate(over="ignore", invalid="ignore"):
        z = centred / scale
        corr = np.clip(z.T @ z / z.shape[0], -1.0, 1.0)
    if scale.size >= 2:
        upper = np.abs(corr[np.triu_indices(scale.size, k=1)])
        out["feature_correlation_mean"] = float(upper.mean())
        out["feature_correlation_std"] = float(upper.std())
    eigenvalues = np.clip(np.linalg.eigvalsh(corr)[::-1], 0.0, None)
    total = eigenvalues.sum()
    if total > 0:
        explained = np.cumsum(eigenvalues) / total
        dims = int(np.argmax(explained >= PCA_EXPLAINED_VARIANCE - 1e-12)) + 1
        out["pca_dims_95"] = float(dims)
        out["pca_dims_95_ratio"] = dims / columns.size
    return out


def integral_low_cardinality(
    X: NDArray[np.float64], missing: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Columns whose observed values are integers (up to :data:`INTEGRAL_TOLERANCE`) with
    at most :data:`CATEGORICAL_MAX_LEVELS` distinct values."""
    observed_any = (~missing).any(axis=0)
    filled = np.where(missing, 0.0, X)
    with np.errstate(invalid="ignore", over="ignore"):
        rounded = np.round(filled)
        close = np.abs(filled - rounded) <= INTEGRAL_TOLERANCE * np.maximum(1.0, np.abs(filled))
    integral = np.all(close, axis=0) & observed_any
    result = np.zeros(X.shape[1], dtype=bool)
    candidates = np.flatnonzero(integral)
    if candidates.size == 0:
        return result
    levels_of = np.where(missing[:, candidates], np.nan, rounded[:, candidates])
    ordered = np.sort(levels_of, axis=0)  # NaN sorts last
    count = (~missing[:, candidates]).sum(axis=0)
    changes = np.diff(ordered, axis=0) != 0
    within = np.arange(1, X.shape[0])[:, None] < count[None, :]
    levels = 1 + (changes & within).sum(axis=0)
    result[candidates] = levels <= CATEGORICAL_MAX_LEVELS
    return result


def landmarker_accuracies(
    X: NDArray[np.float64], codes: NDArray[np.int64]
) -> tuple[float, float, float]:
    """Cross-validated accuracies of 1-NN, a decision stump and Gaussian naive Bayes.

    ``X`` holds the standardised non-constant columns (all three learners see the same
    matrix; the stump and naive Bayes do not depend on the scaling). The folds are fixed,
    not random: rows are ordered by class (stably) and dealt to folds in turn, so each
    fold holds about the same share of every class. Without any varying column every
    learner predicts the majority class of its training folds.
    """
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier

    m = int(codes.shape[0])
    n_folds = min(LANDMARKER_FOLDS, m)
    folds = np.empty(m, dtype=np.int64)
    folds[np.argsort(codes, kind="stable")] = np.arange(m) % n_folds
    correct = np.zeros(3)
    tested = 0
    for fold in range(n_folds):
        test = folds == fold
        train = ~test
        y_train, y_test = codes[train], codes[test]
        if X.shape[1] == 0:
            majority = np.bincount(y_train).argmax()
            correct += float(np.sum(y_test == majority))
        else:
            X_train, X_test = X[train], X[test]
            correct[0] += float(
                np.sum(nearest_neighbour_labels(X_train, y_train, X_test) == y_test)
            )
            models = (DecisionTreeClassifier(max_depth=1, random_state=0), GaussianNB())
            # A column constant inside one training fold gives naive Bayes a zero variance
            # in degenerate samples; its predictions stay defined, so silence numpy.
            with np.errstate(all="ignore"):
                for i, model in enumerate(models, start=1):
                    model.fit(X_train, y_train)
                    correct[i] += float(np.sum(model.predict(X_test) == y_test))
        tested += int(test.sum())
    accuracy = correct / tested
    return float(accuracy[0]), float(accuracy[1]), float(accuracy[2])


def nearest_neighbour_labels(
    X_train: NDArray[np.float64], y_train: NDArray[np.int64], X_test: NDArray[np.float64]
) -> NDArray[np.int64]:
    """Label of each test row's nearest training row (Euclidean; the first on ties)."""
    # ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2; the test row's own norm does not change the
    # argmin. A plain matrix product is several times faster here than scikit-learn's
    # neighbour search at these sizes; test rows go in chunks to bound the memory.
    train_norms = np.einsum("ij,ij->i", X_train, X_train)
    chunk = max(1, 4_000_000 // max(1, X_train.shape[0]))
    labels = np.empty(X_test.shape[0], dtype=np.int64)
    for start in range(0, X_test.shape[0], chunk):
        block = X_test[start : start + chunk]
        distances = train_norms[None, :] - 2.0 * (block @ X_train.T)
        labels[start : start + chunk] = y_train[np.argmin(distances, axis=1)]
    return labels


# --------------------------------------------------------------------------- helpers
def _finite(value: float) -> float:
    # A last guard for overflowing data (values near the float64 limit): the promise is
    # finite floats of magnitude at most MAX_MAGNITUDE (what the knowledge base, its files
    # and the meta-model's float32 inputs hold), and the magnitude, not the exact value,
    # is what a meta-model uses.
    value = float(value)
    if math.isnan(value):
        return 0.0
    return min(max(value, -MAX_MAGNITUDE), MAX_MAGNITUDE)
