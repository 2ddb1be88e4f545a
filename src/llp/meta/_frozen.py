"""Fitted random forests as plain arrays: kept without pickles, predicted in numpy.

scikit-learn grows the meta-model's forests; :class:`FrozenForest` keeps only what
prediction needs, as arrays (each tree's children, split feature and threshold, where a
missing value goes, and its node values), and walks the trees in numpy. It gives the same
numbers as the forest it was made from (thresholds compare the inputs cast to float32, as
scikit-learn's trees do; a NaN goes where the fitted tree sends it), so the meta-model
predicts the same whether it was fitted in this process or read back from
:mod:`llp.meta._cache`, and the arrays can be stored in a ``.npz`` file that is read with
``allow_pickle=False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: The arrays of one forest, by name (every tree's nodes concatenated; ``offsets[t]`` is
#: where tree ``t`` starts).
ARRAY_NAMES = (
    "offsets",
    "left",
    "right",
    "feature",
    "threshold",
    "missing_left",
    "value",
    "classes",
    "importances",
)


#: (tree, row) pairs :meth:`FrozenForest.leaf_values` walks at once.
_PAIRS_AT_ONCE = 1 << 20


class FrozenForest:
    """The trees of a fitted ``RandomForestRegressor`` (one output) or
    ``RandomForestClassifier``, for prediction only.

    Attributes
    ----------
    n_features_in_ : int
    classes_ : ndarray or None
        The classifier's classes (``None`` for a regressor).
    feature_importances_ : ndarray
        The forest's impurity-based importances, as scikit-learn computed them.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], n_features_in: int) -> None:
        self._a = {name: np.asarray(arrays[name]) for name in ARRAY_NAMES}
        self.n_features_in_ = int(n_features_in)
        self._check()
        classes = self._a["classes"]
        self.classes_ = classes if classes.size else None
        self.feature_importances_ = self._a["importances"].astype(float)

    # ------------------------------------------------------------------ making
    @classmethod
    def from_sklearn(cls, forest: Any) -> FrozenForest:
        """Freeze a fitted scikit-learn random forest (one output)."""
        is_classifier = hasattr(forest, "classes_")
        if int(getattr(forest, "n_outputs_", 1)) != 1:
            raise ValueError("FrozenForest holds forests with one output.")
        parts: dict[str, list[np.ndarray]] = {
            n: [] for n in ("left", "right", "feature", "threshold", "missing_left", "value")
        }
        offsets = [0]
        for tree in forest.estimators_:
            t = tree.tree_
            value = np.asarray(t.value, dtype=float)[:, 0, :]
            if is_classifier:
                # Leaf class frequencies (counts in older scikit-learn, shares in newer).
                total = value.sum(axis=1, keepdims=True)
                value = value / np.where(total > 0, total, 1.0)
            parts["left"].append(np.asarray(t.children_left, dtype=np.int32))
            parts["right"].append(np.asarray(t.children_right, dtype=np.int32))
            parts["feature"].append(np.asarray(t.feature, dtype=np.int32))
            parts["threshold"].append(np.asarray(t.threshold, dtype=float))
            missing = getattr(t, "missing_go_to_left", None)
            parts["missing_left"].append(
                np.zeros(t.node_count, dtype=np.uint8)
                if missing is None
                else np.asarray(missing, dtype=np.uint8)
            )
            parts["value"].append(value)
            offsets.append(offsets[-1] + int(t.node_count))
        arrays = {name: np.concatenate(chunks) for name, chunks in parts.items()}
        arrays["offsets"] = np.asarray(offsets, dtype=np.int64)
        arrays["classes"] = (
            np.asarray(forest.classes_) if is_classifier else np.zeros(0, dtype=np.int64)
        )
        arrays["importances"] = np.asarray(forest.feature_importances_, dtype=float)
        return cls(arrays, int(forest.n_features_in_))

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that :meth:`__init__` takes back (see :data:`ARRAY_NAMES`)."""
        return dict(self._a)

    def _check(self) -> None:
        """Refuse arrays that are not a forest of well-formed trees (a damaged or forged
        file must not loop or index out of range): every child comes after its parent
        within its tree, every split feature exists, and the shapes agree."""
        a = self._a
        offsets = a["offsets"].astype(np.int64)
        n = int(offsets[-1]) if offsets.size else 0
        if offsets.size < 2 or offsets[0] != 0 or (np.diff(offsets) < 1).any():
            raise ValueError("not a forest: bad tree offsets")
        for name in ("left", "right", "feature", "threshold", "missing_left"):
            if a[name].shape != (n,):
                raise ValueError(f"not a forest: {name} has shape {a[name].shape}, not ({n},)")
        if a["value"].ndim != 2 or a["value"].shape[0] != n:
            raise ValueError("not a forest: bad node values")
        tree_of = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
        start, end = offsets[:-1][tree_of], offsets[1:][tree_of]
        node = np.arange(n)
        leaf = a["left"] == -1
        for side in ("left", "right"):
            child = a[side].astype(np.int64) + start
            ok = leaf | ((child > node) & (child < end))
            if not ok.all() or (leaf != (a[side] == -1)).any():
                raise ValueError(f"not a forest: bad {side} children")
        if ((a["feature"] < 0) | (a["feature"] >= self.n_features_in_))[~leaf].any():
            raise ValueError("not a forest: a split on a feature that does not exist")
        classes = a["classes"]
        if classes.size and a["value"].shape[1] != classes.size:
            raise ValueError("not a forest: class values and classes disagree")
        if a["importances"].shape != (self.n_features_in_,):
            raise ValueError("not a forest: bad feature importances")

    # ------------------------------------------------------------------ predicting
    def leaf_values(self, X: np.ndarray) -> np.ndarray:
        """``(n_trees, n_rows, k)``: each tree's value at the leaf each row reaches."""
        a = self._a
        X32 = np.asarray(X, dtype=np.float32)
        n_rows = X32.shape[0]
        offsets = a["offsets"].astype(np.int64)
        n_trees = offsets.size - 1
        rows_at_once = max(1, _PAIRS_AT_ONCE // max(n_trees, 1))
        if n_rows > rows_at_once:  # a few arrays of (tree, row) pairs in memory at most
            return np.concatenate(
                [
                    self.leaf_values(X32[start : start + rows_at_once])
                    for start in range(0, n_rows, rows_at_once)
                ],
                axis=1,
            )
        # Every (tree, row) pair walks down its tree together with the others: one step
        # of all of them per level, rather than each tree's walk in turn.
        base = np.repeat(offsets[:-1], n_rows)
        row = np.tile(np.arange(n_rows), n_trees)
        node = base.copy()
        walking = np.arange(node.size)
        while walking.size:
            at = node[walking]
            left = a["left"][at]
            inner = left != -1
            walking, at, left = walking[inner], at[inner], left[inner]
            if not walking.size:
                break
            x = X32[row[walking], a["feature"][at]].astype(float)
            go_left = np.where(np.isnan(x), a["missing_left"][at] == 1, x <= a["threshold"][at])
            child = np.where(go_left, left, a["right"][at]).astype(np.int64)
            node[walking] = child + base[walking]
        return a["value"][node].reshape(n_trees, n_rows, a["value"].shape[1])

    def predict_per_tree(self, X: np.ndarray) -> np.ndarray:
        """``(n_trees, n_rows)`` predictions of a regressor's trees."""
        return self.leaf_values(X)[:, :, 0]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """A classifier's class probabilities: the mean of its trees' leaf shares."""
        return self.leaf_values(X).mean(axis=0)


__all__ = ["ARRAY_NAMES", "FrozenForest"]
