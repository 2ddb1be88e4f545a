"""Turning the data kinds llp accepts into one seeded row sample.

Whatever the input (arrays, a DataFrame, a torch ``Dataset`` or ``DataLoader``, a
:class:`~llp.data.FidelityData`), the dataset meta-features are computed from a
:class:`DataSample`: at most ``max_samples`` rows drawn without replacement from one seed,
as float64 with NaN for missing cells, plus the labels. Only the drawn rows are converted,
so the cost does not grow with the number of rows (the labels are read in full: one pass
over a 1-D array).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas as pd

Task = Literal["classification", "regression"]
TaskOption = Literal["auto", "classification", "regression"]

#: A float target with at most this many distinct integral values is read as class labels
#: (the same rule as :class:`llp.data.FidelityData`).
MAX_CLASSES_FOR_FLOAT_LABELS = 100


@dataclass(frozen=True)
class DataSample:
    """The rows the meta-features are computed from.

    Attributes
    ----------
    X : ndarray of shape (m, n_features)
        The sampled rows as float64 (a private copy); missing or non-finite cells are NaN.
    categorical_dtype : ndarray of bool or None
        Columns that are categorical by their DataFrame dtype (None for plain arrays).
    y_full : ndarray of shape (n_samples,)
        Every label or target (classification labels as given, regression as float64).
    y_sample : ndarray of shape (m,)
        The labels of the sampled rows.
    n_samples, n_features : int
        The true size of the dataset (images flattened).
    task : {"classification", "regression"}
    """

    X: NDArray[np.float64]
    categorical_dtype: NDArray[np.bool_] | None
    y_full: NDArray[Any]
    y_sample: NDArray[Any]
    n_samples: int
    n_features: int
    task: Task


def sample_rows(n_samples: int, max_samples: int, seed: int) -> NDArray[np.intp] | None:
    """Sorted indices of ``max_samples`` rows drawn without replacement, or ``None`` when
    the data has no more rows than the cap (every row is used, in order).

    The draw depends only on ``(n_samples, max_samples, seed)``, so every input kind holding
    the same data samples the same rows.
    """
    if n_samples <= max_samples:
        return None
    rng = np.random.default_rng([seed, 0])
    return np.sort(rng.choice(n_samples, size=max_samples, replace=False)).astype(np.intp)


# --------------------------------------------------------------------------- arrays
def sample_arrays(X: Any, y: Any, *, task: TaskOption, max_samples: int, seed: int) -> DataSample:
    """Sample from array-likes: numpy arrays, torch tensors, nested lists, or a pandas
    DataFrame for ``X`` (categorical by dtype for non-numeric, category and bool columns)."""
    frame = _as_dataframe(X)
    if frame is not None:
        n, d = _check_feature_shape(frame.shape)
        y_arr = _as_target(y, n)
        resolved = _resolve_task(y_arr, task)
        rows = sample_rows(n, max_samples, seed)
        taken = frame if rows is None else frame.iloc[rows]
        X_s, categorical = _frame_to_float(taken)
        return _make_sample(X_s, categorical, y_arr, rows, n, d, resolved)
    X_arr = _to_numpy(X, name="X")
    n, d = _check_feature_shape(X_arr.shape)
    X_arr = X_arr.reshape(n, d)
    y_arr = _as_target(y, n)
    resolved = _resolve_task(y_arr, task)
    rows = sample_rows(n, max_samples, seed)
    X_s = _rows_to_float(X_arr if rows is None else X_arr[rows])
    return _make_sample(X_s, None, y_arr, rows, n, d, resolved)


def sample_dataframe(
    frame: pd.DataFrame, target: Any, *, task: TaskOption, max_samples: int, seed: int
) -> DataSample:
    """Sample from a DataFrame whose ``target`` column holds the labels."""
    if target is None:
        raise ValueError(
            "The 'target' parameter must name the label column when 'data' is a DataFrame. "
            "Got None instead."
        )
    if target not in frame.columns:
        raise ValueError(
            f"The 'target' parameter must be a column of the DataFrame. Got {target!r}; "
            f"columns: {list(frame.columns)}."
        )
    return sample_arrays(
        frame.drop(columns=[target]), frame[target], task=task, max_samples=max_samples, seed=seed
    )


# --------------------------------------------------------------------------- torch
def sample_torch(data: Any, *, task: TaskOption, max_samples: int, seed: int) -> DataSample:
    """Sample from a torch ``DataLoader`` or map-style ``Dataset`` of ``(x, y)`` pairs.

    A loader is read through its ``dataset`` (the raw examples, not the collated batches).
    A ``TensorDataset`` is read as arrays. Otherwise only the sampled examples are fetched,
    and the labels come from a ``targets`` attribute when the dataset has one of the right
    length (torchvision's convention), else from one pass over every example.
    """
    from torch.utils.data import DataLoader, IterableDataset

    if isinstance(data, DataLoader):
        dataset = data.dataset
        if isinstance(dataset, IterableDataset):
            return _sample_batches(data, task=task, max_samples=max_samples, seed=seed)
    else:
        dataset = data
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        raise TypeError(
            "The 'data' parameter must be a map-style torch Dataset (with __len__ and "
            "__getitem__) or a DataLoader. Got an iterable-style "
            f"{type(dataset).__name__}; wrap it in a DataLoader."
        )
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, tuple) and len(tensors) >= 2:
        return sample_arrays(tensors[0], tensors[1], task=task, max_samples=max_samples, seed=seed)
    n = len(dataset)
    if n == 0:
        raise ValueError("The 'X' parameter is empty: the dataset has 0 examples.")
    rows = sample_rows(n, max_samples, seed)
    wanted = np.arange(n) if rows is None else rows
    targets = getattr(dataset, "targets", None)
    y_full: NDArray[Any] | None = None
    if targets is not None:
        candidate = _to_numpy(targets, name="y")
        if candidate.shape[:1] == (n,):
            y_full = candidate
    xs: list[NDArray[Any]] = []
    if y_full is None:
        selected = np.zeros(n, dtype=bool)
        selected[wanted] = True
        labels: list[Any] = []
        for i in range(n):
            x, label = _example(dataset, i)
            labels.append(label)
            if selected[i]:
                xs.append(x)
        y_full = np.asarray(labels)
    else:
        xs = [_example(dataset, int(i))[0] for i in wanted]
    sizes = {x.size for x in xs}
    if len(sizes) != 1:
        raise ValueError(
            "The 'data' parameter must yield examples of one size. Got flattened sizes "
            f"{sorted(sizes)[:5]}."
        )
    X_s = np.stack(xs)
    n_check, d = _check_feature_shape((n, X_s.shape[1]))
    y_arr = _as_target(y_full, n_check)
    resolved = _resolve_task(y_arr, task)
    return _make_sample(_rows_to_float(X_s), None, y_arr, rows, n, d, resolved)


def _example(dataset: Any, index: int) -> tuple[NDArray[Any], Any]:
    item = dataset[index]
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        raise TypeError(
            f"The 'data' parameter must yield (x, y) pairs. dataset[{index}] is a "
            f"{type(item).__name__} instead."
        )
    x = _to_numpy(item[0], name="X").reshape(-1)
    label = _to_numpy(item[1], name="y")
    return x, label.item() if label.size == 1 else label


def _sample_batches(loader: Any, *, task: TaskOption, max_samples: int, seed: int) -> DataSample:
    # An iterable-style dataset has no random access: read every batch once.
    xs: list[NDArray[Any]] = []
    ys: list[NDArray[Any]] = []
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise TypeError(
                "The 'data' parameter must yield (inputs, targets) batches. Got a "
                f"{type(batch).__name__} instead."
            )
        x = _to_numpy(batch[0], name="X")
        xs.append(x.reshape(x.shape[0], -1))
        ys.append(_to_numpy(batch[1], name="y").reshape(-1))
    if not xs:
        raise ValueError("The 'X' parameter is empty: the DataLoader yielded no batches.")
    return sample_arrays(
        np.concatenate(xs), np.concatenate(ys), task=task, max_samples=max_samples, seed=seed
    )


# --------------------------------------------------------------------------- streams
def sample_of_rows(
    X_rows: Any, y_full: Any, positions: Any, *, n_features: int, task: TaskOption = "auto"
) -> DataSample:
    """A sample already drawn from a stream (``describe_dataset`` draws it while reading a
    loader once): ``X_rows`` the drawn rows, ``positions`` their rows in ``y_full``, which
    holds every label."""
    y_arr = np.asarray(y_full)
    n, d = _check_feature_shape((y_arr.shape[0], n_features))
    y_arr = _as_target(y_arr, n)
    resolved = _resolve_task(y_arr, task)
    X_s = _rows_to_float(np.asarray(X_rows).reshape(len(positions), d))
    rows = np.asarray(positions, dtype=np.intp)
    return _make_sample(X_s, None, y_arr, rows, n, d, resolved)


# --------------------------------------------------------------------------- FidelityData
def sample_fidelity_data(data: Any, *, max_samples: int, seed: int) -> DataSample:
    """Sample from the training pool of a :class:`~llp.data.FidelityData`.

    The validation split is left out (the search never trains on it). When the data was
    standardised, the pool is mapped back to its original scale so the moment features
    match those of the raw arrays.
    """
    X_train, y_train, _, _ = data.arrays
    n = int(X_train.shape[0])
    rows = sample_rows(n, max_samples, seed)
    X_rows = data.inverse_transform(X_train if rows is None else X_train[rows])
    X_s = _rows_to_float(X_rows.reshape(X_rows.shape[0], -1))
    d = int(X_s.shape[1])
    return _make_sample(X_s, None, np.asarray(y_train), rows, n, d, data.task)


# --------------------------------------------------------------------------- helpers
def _make_sample(
    X_s: NDArray[np.float64],
    categorical: NDArray[np.bool_] | None,
    y_arr: NDArray[Any],
    rows: NDArray[np.intp] | None,
    n: int,
    d: int,
    task: Task,
) -> DataSample:
    if task == "regression":
        y_arr = y_arr.astype(np.float64)
    elif y_arr.dtype == object:
        y_arr = y_arr.astype(str)  # mixed label types cannot be sorted into classes
    return DataSample(
        X=X_s,
        categorical_dtype=categorical,
        y_full=y_arr,
        y_sample=y_arr if rows is None else y_arr[rows],
        n_samples=n,
        n_features=d,
        task=task,
    )


def _as_dataframe(X: Any) -> pd.DataFrame | None:
    # Only a DataFrame can come from pandas if pandas was never imported: checking
    # sys.modules keeps `extract_features` on arrays free of the pandas import.
    pd_module = sys.modules.get("pandas")
    if pd_module is not None and isinstance(X, pd_module.DataFrame):
        return X
    return None


def _to_numpy(value: Any, *, name: str) -> NDArray[Any]:
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    elif hasattr(value, "to_numpy") and not isinstance(value, np.ndarray):
        value = value.to_numpy()
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"The '{name}' parameter must be array-like with one row per example. "
            f"Got {type(value).__name__} that numpy cannot read: {exc}"
        ) from exc


def _check_feature_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(
            "The 'X' parameter must have shape (n_samples, n_features) or (n_samples, ...) "
            f"for images, which are flattened. Got shape {tuple(shape)} instead; reshape a "
            "single feature with X.reshape(-1, 1)."
        )
    n = int(shape[0])
    d = int(np.prod(shape[1:]))
    if n < 2:
        raise ValueError(
            f"The 'X' parameter must have at least 2 samples. Got {n} (shape {tuple(shape)})."
        )
    if d == 0:
        raise ValueError(
            f"The 'X' parameter must have at least 1 feature. Got shape {tuple(shape)}."
        )
    return n, d


def _rows_to_float(rows: NDArray[Any]) -> NDArray[np.float64]:
    """Copy rows to float64 with NaN for missing (None, NaN) and non-finite cells."""
    if rows.dtype.kind not in "biuf" and rows.dtype != object:
        raise TypeError(
            f"The 'X' parameter must be numeric. Got dtype {rows.dtype}; pass a pandas "
            "DataFrame to have string columns encoded as categories."
        )
    try:
        out = np.array(rows, dtype=np.float64)  # a copy: the caller's data is never changed
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "The 'X' parameter must be numeric. Got values numpy cannot read as floats; pass "
            "a pandas DataFrame to have string columns encoded as categories."
        ) from exc
    out[~np.isfinite(out)] = np.nan
    return out


def _frame_to_float(frame: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Encode a (sampled) DataFrame: numeric columns as floats, category/string/bool
    columns as category codes (flagged categorical); missing cells become NaN."""
    import pandas as pd

    columns: list[NDArray[np.float64]] = []
    categorical: list[bool] = []
    for name in frame.columns:
        column = frame[name]
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            columns.append(codes)
            categorical.append(True)
        elif pd.api.types.is_bool_dtype(dtype):
            columns.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
            categorical.append(True)
        elif pd.api.types.is_numeric_dtype(dtype):
            columns.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
            categorical.append(False)
        else:
            try:
                codes_int, _ = pd.factorize(column, sort=True)
            except TypeError:  # mixed types that cannot be ordered: order of appearance
                codes_int, _ = pd.factorize(column, sort=False)
            codes = codes_int.astype(np.float64)
            codes[codes_int < 0] = np.nan
            columns.append(codes)
            categorical.append(True)
    X = np.column_stack(columns) if columns else np.empty((len(frame), 0))
    X[~np.isfinite(X)] = np.nan
    return X, np.asarray(categorical, dtype=bool)


def _as_target(y: Any, n: int) -> NDArray[Any]:
    y_arr = _to_numpy(y, name="y")
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:
        y_arr = y_arr.ravel()
    if y_arr.ndim != 1:
        raise ValueError(
            f"The 'y' parameter must be 1-D (one label per sample). Got shape {y_arr.shape} "
            "instead."
        )
    if y_arr.shape[0] != n:
        raise ValueError(
            "The 'X' and 'y' parameters must have the same number of samples. "
            f"Got {n} and {y_arr.shape[0]} instead."
        )
    n_missing = _count_missing_labels(y_arr)
    if n_missing:
        raise ValueError(
            f"The 'y' parameter must not contain missing labels. Got {n_missing} NaN, inf or "
            "None values; drop those samples first."
        )
    return y_arr


def _count_missing_labels(y: NDArray[Any]) -> int:
    if y.dtype.kind in "fc":
        return int((~np.isfinite(y)).sum())
    if y.dtype == object:
        import pandas as pd

        flags = pd.isna(y)
        floats = [v for v in y if isinstance(v, float)]
        return int(np.sum(flags)) + sum(1 for v in floats if math.isinf(v))
    return 0


def _resolve_task(y: NDArray[Any], task: TaskOption) -> Task:
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise TypeError(
                "The 'y' parameter must be numeric when task='regression'. Got dtype "
                f"{y.dtype} instead."
            )
        return "regression"
    if task == "classification" or y.dtype.kind in "biuOUS":
        return "classification"
    if y.dtype.kind == "f":
        integral = bool(np.all(y == np.round(y)))
        if integral and np.unique(y).shape[0] <= MAX_CLASSES_FOR_FLOAT_LABELS:
            return "classification"
        return "regression"
    raise TypeError(f"The 'y' parameter has an unsupported dtype {y.dtype}.")
