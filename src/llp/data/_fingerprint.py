"""A content hash that identifies a dataset in the knowledge base."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Bumped whenever the hashed byte layout changes, so old and new keys never collide.
FINGERPRINT_VERSION = "llp-dataset-fingerprint-v1"


def dataset_fingerprint(X: Any, y: Any) -> str:
    """SHA-256 of a dataset's content: the key of a dataset in the knowledge base.

    The hash covers, for ``X`` and then ``y``: the shape, the dtype and every value in row
    order. It is therefore sensitive to one changed value, to the order of the rows and to
    the dtype (``X`` as int64 and as float64 are two datasets), and stable across
    processes and machines of the same byte order. Unlike the meta-features it reads all
    the data (hashing runs at several hundred MB/s).

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Numpy array, torch tensor, pandas DataFrame or nested list.
    y : array-like of shape (n_samples,)
        Labels or targets.

    Returns
    -------
    str
        64 hexadecimal characters.

    Examples
    --------
    >>> import numpy as np
    >>> X, y = np.arange(6.0).reshape(3, 2), np.array([0, 1, 0])
    >>> key = dataset_fingerprint(X, y)
    >>> len(key), key == dataset_fingerprint(X.copy(), y.copy())
    (64, True)
    >>> X[2, 1] = 7.0
    >>> key == dataset_fingerprint(X, y)
    False
    """
    digest = hashlib.sha256(FINGERPRINT_VERSION.encode())
    for name, value in (("X", X), ("y", y)):
        array = _as_hashable(value, name)
        header = f"|{name}|{array.shape}|{array.dtype.str}|"
        digest.update(header.encode())
        # A byte view of the contiguous array: no copy of large data.
        digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def _as_hashable(value: Any, name: str) -> NDArray[Any]:
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    elif hasattr(value, "to_numpy") and not isinstance(value, np.ndarray):
        value = value.to_numpy()
    array = np.asarray(value)
    if array.dtype == object:
        # Object arrays hold pointers; hash the text of each value instead.
        array = array.astype(str)
    if array.dtype.kind not in "biufcUSMm":
        raise TypeError(
            f"The '{name}' parameter must hold numbers or strings to be fingerprinted. "
            f"Got dtype {array.dtype} instead."
        )
    if array.ndim == 0:
        raise ValueError(
            f"The '{name}' parameter must be an array with one entry per sample. "
            f"Got a scalar {value!r} instead."
        )
    return array


#: The version of :class:`RowFingerprint`'s layout (hashed first, as above).
ROW_FINGERPRINT_VERSION = "llp-dataset-rows-fingerprint-v1"


class RowFingerprint:
    """An order-free content hash of a dataset read in batches, in constant memory per
    row: the key of a dataset that arrives through a (possibly shuffling) loader.

    Each row ``(x, y)`` is hashed on its own (SHA-256 of its bytes); the key is the
    SHA-256 of the layout (the shape and dtype of one ``x`` and one ``y``, the number of
    rows) followed by the row digests in sorted order. So the same rows in any order and
    in any batching give the same key, while one changed value, one row more or less, a
    duplicated row or another dtype gives another. Only the 32-byte digests are kept,
    not the data. Unlike :func:`dataset_fingerprint` (which hashes arrays in row order),
    it never needs the whole dataset in memory.

    Examples
    --------
    >>> import numpy as np
    >>> X, y = np.arange(12.0).reshape(6, 2), np.array([0, 1, 0, 1, 0, 1])
    >>> a, b = RowFingerprint(), RowFingerprint()
    >>> _ = a.update(X[:4], y[:4]), a.update(X[4:], y[4:])
    >>> _ = b.update(X[::-1], y[::-1])
    >>> a.hexdigest() == b.hexdigest(), a.n_rows
    (True, 6)
    """

    def __init__(self) -> None:
        self._digests: list[NDArray[np.uint8]] = []
        self._layout: tuple[tuple[int, ...], str, tuple[int, ...], str] | None = None
        #: Rows read so far.
        self.n_rows = 0

    def update(self, X: Any, y: Any) -> NDArray[np.uint8]:
        """Add a batch: ``X`` of shape ``(b, ...)`` and ``y`` of shape ``(b, ...)``, numpy
        arrays or tensors. Every batch must have the first batch's example shape and
        dtype (``ValueError`` otherwise). Returns the batch's row digests, ``(b, 32)``."""
        x_arr, y_arr = _as_hashable(X, "X"), _as_hashable(y, "y")
        if x_arr.ndim == 0 or y_arr.ndim == 0 or x_arr.shape[0] != y_arr.shape[0]:
            raise ValueError(
                "The 'X' and 'y' parameters must hold as many rows each. Got shapes "
                f"{x_arr.shape} and {y_arr.shape}."
            )
        layout = (x_arr.shape[1:], x_arr.dtype.str, y_arr.shape[1:], y_arr.dtype.str)
        if self._layout is None:
            self._layout = layout
        elif layout != self._layout:
            raise ValueError(
                "The 'X' and 'y' parameters must keep one example shape and dtype across "
                f"batches. Got example {layout[0]} {layout[1]} and target {layout[2]} "
                f"{layout[3]} after {self._layout[0]} {self._layout[1]} and "
                f"{self._layout[2]} {self._layout[3]}."
            )
        n = x_arr.shape[0]
        x_rows = np.ascontiguousarray(x_arr).reshape(n, -1).view(np.uint8)
        y_rows = np.ascontiguousarray(y_arr).reshape(n, -1).view(np.uint8)
        digests = np.empty((n, 32), dtype=np.uint8)
        for i in range(n):
            row = hashlib.sha256(x_rows[i])
            row.update(y_rows[i])
            digests[i] = np.frombuffer(row.digest(), dtype=np.uint8)
        self._digests.append(digests)
        self.n_rows += n
        return digests

    def hexdigest(self) -> str:
        """64 hexadecimal characters (``ValueError`` before any row was added)."""
        if self._layout is None or self.n_rows == 0:
            raise ValueError("RowFingerprint.hexdigest needs at least one row. Got none.")
        digests = np.concatenate(self._digests)
        self._digests = [digests]  # the batches' arrays are released
        words = digests.view(">u8")  # (n, 4): sorting these sorts the digests' bytes
        order = np.lexsort(words.T[::-1])
        x_shape, x_dtype, y_shape, y_dtype = self._layout
        header = f"{ROW_FINGERPRINT_VERSION}|{self.n_rows}|X{x_shape}{x_dtype}|y{y_shape}{y_dtype}|"
        digest = hashlib.sha256(header.encode())
        for start in range(0, self.n_rows, 2**16):  # no sorted copy of every digest at once
            digest.update(digests[order[start : start + 2**16]].tobytes())
        return digest.hexdigest()
