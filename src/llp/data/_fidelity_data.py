from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from llp._checks import check_int, check_real
from llp.data._fingerprint import dataset_fingerprint
from llp.data._subsets import NestedStratifiedOrder, stratified_holdout

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader, Dataset

Task = Literal["classification", "regression"]

#: Text or category columns with more distinct values than this are dropped by
#: :meth:`FidelityData.from_dataframe` (identifier-like; one-hot would cost rows x values).
MAX_CATEGORIES = 100
#: The most memory :meth:`FidelityData.from_dataframe` lets the encoded table take.
MAX_ENCODED_BYTES = 2**30


class FidelityData:
    """Data held by llp as tensors: nested fidelity subsets and a held-out validation split.

    The examples are split once, stratified and seeded, into a training pool and a
    validation set that the search never trains on. ``train_indices(fraction)`` gives
    nested stratified subsets of the pool (see :class:`NestedStratifiedOrder`), the same for
    every configuration of a study. Calling the object follows the
    ``dataset_fn(fraction) -> (train_loader, val_loader)`` contract, so it can be passed
    wherever a ``dataset_fn`` is expected; llp's trainer recognises it and batches by index
    slicing on tensors instead of going through a ``DataLoader``.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Features; images may keep their shape (e.g. ``(n, 1, 8, 8)``).
    y : array-like of shape (n_samples,)
        Class labels (ints, strings or bools) or continuous targets.
    val_fraction : float, default=0.2
        Share of the examples held out for validation.
    batch_size : int, default=64
        Training mini-batch size (a config key ``batch_size`` overrides it per trial).
    standardize : bool, default=False
        Scale each feature to zero mean and unit variance using the training pool only.
    task : {"auto", "classification", "regression"}, default="auto"
        ``"auto"`` treats integer, bool and string labels as classes and other floats as
        regression targets.
    seed : int, default=0
        Seed of the split and of the subset order.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> data = FidelityData(X, y, standardize=True, seed=0)
    >>> data.n_classes, len(data.train_indices(0.1)) < len(data.train_indices(0.2))
    (10, True)
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        *,
        val_fraction: float = 0.2,
        batch_size: int = 64,
        standardize: bool = False,
        task: Literal["auto", "classification", "regression"] = "auto",
        seed: int = 0,
    ) -> None:
        check_real(
            "val_fraction",
            val_fraction,
            low=0.0,
            high=1.0,
            low_inclusive=False,
            high_inclusive=False,
            owner="FidelityData",
        )
        self.batch_size = check_int("batch_size", batch_size, min_value=1, owner="FidelityData")
        self.seed = check_int("seed", seed, owner="FidelityData")
        if task not in ("auto", "classification", "regression"):
            raise ValueError(
                "The 'task' parameter of FidelityData must be one of 'auto', "
                f"'classification', 'regression'. Got {task!r} instead."
            )
        X_arr = _as_feature_array(X)
        y_arr = np.asarray(y)
        if y_arr.ndim == 2 and y_arr.shape[1] == 1:
            y_arr = y_arr.ravel()
        if y_arr.ndim != 1:
            raise ValueError(f"The 'y' parameter must be 1-D. Got shape {y_arr.shape} instead.")
        if X_arr.shape[0] != y_arr.shape[0]:
            raise ValueError(
                "The 'X' and 'y' parameters must have the same number of samples. "
                f"Got {X_arr.shape[0]} and {y_arr.shape[0]} instead."
            )
        if X_arr.shape[0] < 4:
            raise ValueError(
                f"The data must have at least 4 samples. Got {X_arr.shape[0]} instead."
            )
        #: Content hash of the examples as given (the knowledge base's dataset key).
        self.fingerprint = dataset_fingerprint(X_arr, y_arr)
        #: Columns :meth:`from_dataframe` dropped (identifier-like text columns).
        self.dropped_columns: tuple[str, ...] = ()
        self.task: Task = _infer_task(y_arr) if task == "auto" else task
        if self.task == "classification":
            if y_arr.dtype.kind == "f" and not np.isfinite(y_arr).all():
                raise ValueError("The 'y' parameter contains NaN or inf labels.")
            if y_arr.dtype == object and any(v is None for v in y_arr):
                raise ValueError("The 'y' parameter contains missing (None) labels.")
            try:
                classes, codes = np.unique(y_arr, return_inverse=True)
            except TypeError as exc:  # labels of several types cannot be ordered
                kinds = sorted({type(v).__name__ for v in y_arr.tolist()})
                raise TypeError(
                    f"The 'y' parameter mixes labels of types {kinds}; give every label the "
                    "same type (e.g. all str or all int)."
                ) from exc
            if classes.shape[0] < 2:
                raise ValueError(
                    "The 'y' parameter has a single class "
                    f"({classes[0]!r}); classification needs at least 2 classes."
                )
            counts = np.bincount(codes)
            if counts.min() < 2:
                rare = [classes[i] for i in np.flatnonzero(counts < 2)]
                raise ValueError(
                    f"Every class needs at least 2 examples (one to train, one to validate). "
                    f"Classes with fewer: {rare!r}."
                )
            self.classes_: np.ndarray | None = classes
            y_codes: np.ndarray = codes.astype(np.int64)
        else:
            if y_arr.dtype.kind not in "biuf":
                example = y_arr.ravel()[:1].tolist()[0] if y_arr.size else None
                raise TypeError(
                    f"The 'y' parameter holds labels of dtype {y_arr.dtype} (e.g. {example!r}), "
                    "which cannot be regression targets; use task='classification' (or "
                    "'auto') for class labels."
                )
            y_codes = y_arr.astype(np.float32)
            if not np.isfinite(y_codes).all():
                raise ValueError("The 'y' parameter contains NaN or inf targets.")
            self.classes_ = None
        train_idx, val_idx = stratified_holdout(y_codes, val_fraction=val_fraction, seed=self.seed)
        X_train, X_val = X_arr[train_idx], X_arr[val_idx]
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None
        if standardize:
            self._mean = X_train.mean(axis=0, keepdims=True)
            std = X_train.std(axis=0, keepdims=True)
            std[std == 0] = 1.0
            self._std = std
            X_train, X_val = (X_train - self._mean) / std, (X_val - self._mean) / std
        self._X_train = np.ascontiguousarray(X_train, dtype=np.float32)
        self._X_val = np.ascontiguousarray(X_val, dtype=np.float32)
        self._y_train = y_codes[train_idx]
        self._y_val = y_codes[val_idx]
        self._order = NestedStratifiedOrder(self._y_train, seed=self.seed)
        self._tensors: dict[str, tuple[torch.Tensor, ...]] = {}

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(cls, X: Any, y: Any, **kwargs: Any) -> FidelityData:
        """Same as the constructor; reads better next to the other ``from_*`` methods."""
        return cls(X, y, **kwargs)

    @classmethod
    def from_dataframe(
        cls,
        df: pd.DataFrame,
        *,
        target: str,
        max_categories: int = MAX_CATEGORIES,
        **kwargs: Any,
    ) -> FidelityData:
        """Build from a DataFrame: ``target`` is the label column; string and category
        columns are one-hot encoded, bool columns become 0/1.

        A string or category column with more than ``max_categories`` distinct values
        (an identifier, a name, free text) is dropped with a warning, and named in
        :attr:`dropped_columns`: one-hot encoding it would take rows x values of memory
        (30,000 unique ids: 3.6 GB as float32) for a feature no model can use. Encode
        such a column yourself if it matters. A table whose encoding would still exceed
        :data:`MAX_ENCODED_BYTES` is refused before the allocation.
        """
        import warnings

        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"The 'df' parameter must be a pandas DataFrame. Got {type(df)}.")
        if target not in df.columns:
            raise ValueError(
                f"The 'target' column {target!r} is not in the DataFrame. "
                f"Columns: {list(df.columns)}."
            )
        y = df[target].to_numpy()
        features = df.drop(columns=[target])
        if features.shape[1] == 0:
            raise ValueError("The DataFrame has no feature columns besides the target.")
        categorical = [
            c
            for c in features.columns
            if features[c].dtype == object
            or isinstance(features[c].dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(features[c].dtype)
        ]
        missing = [c for c in features.columns if features[c].isna().any()]
        if missing:
            raise ValueError(
                f"Feature columns {missing} have missing values; impute or drop them first."
            )
        cardinality = {c: int(features[c].nunique()) for c in categorical}
        dropped = [c for c in categorical if cardinality[c] > max_categories]
        if dropped:
            shown = ", ".join(f"{c!r} ({cardinality[c]} values)" for c in dropped)
            warnings.warn(
                f"Dropped text columns with more than {max_categories} distinct values: "
                f"{shown}; one-hot encoding them would cost rows x values of memory for "
                "identifier-like features. Encode them yourself if they matter.",
                UserWarning,
                stacklevel=2,
            )
            features = features.drop(columns=dropped)
            categorical = [c for c in categorical if c not in dropped]
            if features.shape[1] == 0:
                raise ValueError(
                    "The DataFrame has no usable feature columns: every one was a text "
                    f"column with more than {max_categories} distinct values ({dropped})."
                )
        width = features.shape[1] - len(categorical) + sum(cardinality[c] for c in categorical)
        needed = features.shape[0] * width * 4
        if needed > MAX_ENCODED_BYTES:
            raise ValueError(
                f"The DataFrame would take {needed / 2**30:.1f} GiB once encoded "
                f"({features.shape[0]} rows x {width} columns as float32), more than the "
                f"{MAX_ENCODED_BYTES / 2**30:.0f} GiB llp allows; subsample it or drop "
                "columns first."
            )
        encoded = pd.get_dummies(features, columns=categorical, dtype=np.float32)
        data = cls(encoded.to_numpy(dtype=np.float32), y, **kwargs)
        data.dropped_columns = tuple(dropped)
        return data

    @classmethod
    def from_torch_dataset(cls, dataset: Dataset[Any], **kwargs: Any) -> FidelityData:
        """Build from a map-style torch ``Dataset`` of ``(x, y)`` pairs (read once)."""
        import torch

        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(
                "The 'dataset' parameter must be a map-style torch Dataset with __len__ and "
                f"__getitem__. Got {type(dataset).__name__} instead."
            )
        xs, ys = [], []
        for i in range(len(dataset)):
            item = dataset[i]
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise TypeError(
                    f"dataset[{i}] must be an (x, y) pair. Got {type(item).__name__} instead."
                )
            x, t = item
            xs.append(torch.as_tensor(x).numpy())
            ys.append(torch.as_tensor(t).numpy())
        return cls(np.stack(xs), np.stack(ys), **kwargs)

    # ------------------------------------------------------------------ properties
    @property
    def n_train(self) -> int:
        """Size of the training pool (fraction 1.0)."""
        return int(self._y_train.shape[0])

    @property
    def n_val(self) -> int:
        return int(self._y_val.shape[0])

    @property
    def n_classes(self) -> int | None:
        return None if self.classes_ is None else int(self.classes_.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. ``(64,)`` or ``(1, 8, 8)``."""
        return tuple(int(s) for s in self._X_train.shape[1:])

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(X_train, y_train, X_val, y_val)`` after the split (and standardisation)."""
        return self._X_train, self._y_train, self._X_val, self._y_val

    def transform(self, X: Any) -> np.ndarray:
        """Prepare new examples (e.g. a test set) exactly as the training pool was
        prepared: float32, standardised with the training pool's statistics if asked."""
        arr = _as_feature_array(X)
        if arr.shape[1:] != self._X_train.shape[1:]:
            raise ValueError(
                f"The 'X' parameter must have examples of shape {self.input_shape}. "
                f"Got {tuple(arr.shape[1:])} instead."
            )
        if self._mean is not None and self._std is not None:
            arr = (arr - self._mean) / self._std
        return np.ascontiguousarray(arr, dtype=np.float32)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Undo the standardisation (if any): examples back on their original scale."""
        arr = np.asarray(X, dtype=np.float64)
        if self._mean is None or self._std is None:
            return arr
        return arr * self._std + self._mean

    def encode_labels(self, y: Any) -> np.ndarray:
        """Map labels to the class indices the models are trained on."""
        y_arr = np.asarray(y).ravel()
        if self.classes_ is None:
            return y_arr.astype(np.float32)
        index = np.searchsorted(self.classes_, y_arr)
        index = np.clip(index, 0, len(self.classes_) - 1)
        unknown = self.classes_[index] != y_arr
        if unknown.any():
            raise ValueError(
                f"The labels {sorted(set(y_arr[unknown].tolist()))!r} were not seen in training."
            )
        return index.astype(np.int64)

    # ------------------------------------------------------------------ subsets
    def train_indices(self, fraction: float) -> np.ndarray:
        """Indices into the training pool of the nested stratified subset at ``fraction``."""
        return self._order.indices(fraction)

    def __getstate__(self) -> dict[str, Any]:
        # The tensor cache stays behind: a worker process builds its own on its own
        # device (copying CUDA tensors would open a context on the driver's GPU there).
        state = self.__dict__.copy()
        state["_tensors"] = {}
        return state

    def tensors(
        self, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(X_train, y_train, X_val, y_val)`` as tensors on ``device`` (cached)."""
        import torch

        key = str(device)
        if key not in self._tensors:
            self._tensors[key] = tuple(
                torch.from_numpy(a).to(device)
                for a in (self._X_train, self._y_train, self._X_val, self._y_val)
            )
        X_train, y_train, X_val, y_val = self._tensors[key]
        return X_train, y_train, X_val, y_val

    def __call__(self, fraction: float) -> tuple[DataLoader[Any], DataLoader[Any]]:
        """``dataset_fn`` contract: loaders over the subset at ``fraction`` and the
        validation set."""
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        X_train, y_train, X_val, y_val = self.tensors("cpu")
        idx = torch.from_numpy(self.train_indices(fraction))
        generator = torch.Generator().manual_seed(self.seed)
        train = DataLoader(
            TensorDataset(X_train[idx], y_train[idx]),
            batch_size=self.batch_size,
            shuffle=True,
            generator=generator,
        )
        val = DataLoader(TensorDataset(X_val, y_val), batch_size=1024)
        return train, val

    def __repr__(self) -> str:
        return (
            f"FidelityData(n_train={self.n_train}, n_val={self.n_val}, task={self.task!r}, "
            f"n_classes={self.n_classes}, input_shape={self.input_shape})"
        )


def _as_feature_array(X: Any) -> np.ndarray:
    try:
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
            if non_numeric:
                raise ValueError(
                    f"The 'X' DataFrame has non-numeric columns {non_numeric}; use "
                    "FidelityData.from_dataframe(df, target=...) to one-hot encode them."
                )
            X = X.to_numpy()
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    if hasattr(X, "detach") and hasattr(X, "cpu"):
        X = X.detach().cpu().numpy()
    if isinstance(X, Sequence) and len(X) == 0:
        raise ValueError("The 'X' parameter is empty; it needs at least 4 samples.")
    try:
        arr = np.asarray(X)
    except ValueError as exc:  # rows of different lengths
        raise ValueError(
            "The 'X' parameter must be a rectangular array of shape (n_samples, "
            f"n_features, ...); its rows differ in length ({exc})."
        ) from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"The 'X' parameter must be numeric. Got dtype {arr.dtype} instead; encode "
            "categorical features first (FidelityData.from_dataframe does it)."
        )
    if arr.ndim < 2:
        raise ValueError(
            f"The 'X' parameter must have shape (n_samples, n_features, ...). Got shape "
            f"{arr.shape} instead."
        )
    if arr.shape[0] == 0 or arr[0].size == 0:
        raise ValueError(f"The 'X' parameter is empty (shape {arr.shape}).")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        raise ValueError(
            f"The 'X' parameter contains {n_bad} NaN or inf values; impute or drop them first."
        )
    return arr


def _infer_task(y: np.ndarray) -> Task:
    if y.dtype.kind in "biuOUS":
        return "classification"
    if y.dtype.kind == "f":
        finite = y[np.isfinite(y)]
        if finite.size and np.all(finite == np.round(finite)) and np.unique(finite).size <= 100:
            return "classification"
        return "regression"
    raise TypeError(f"The 'y' parameter has an unsupported dtype {y.dtype}.")
