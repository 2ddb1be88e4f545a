from __future__ import annotations

import numpy as np

from llp._checks import check_fraction


def _strata(y: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Stratum of each example: the class, or a quantile bin of a continuous target."""
    if y.dtype.kind in "iub" or y.dtype.kind in "OUS":
        _, codes = np.unique(y, return_inverse=True)
        return codes.ravel()
    edges = np.unique(np.quantile(y, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, y, side="right").ravel()


class NestedStratifiedOrder:
    """Nested, stratified subsets of a label vector, fixed by one seed.

    Each stratum (class, or quantile bin for a continuous target) is shuffled once with
    ``seed``. ``indices(fraction)`` takes the first ``max(1, round(fraction * n_c))``
    members of every stratum ``c``; since that count grows with ``fraction``, the subset
    at 0.1 lies inside the subset at 0.2, and so on, and each subset keeps the class
    proportions of the whole (every class keeps at least one example).

    Parameters
    ----------
    y : array of shape (n_samples,)
        Labels or continuous targets.
    seed : int
        Seed of the shuffles.
    """

    def __init__(self, y: np.ndarray, *, seed: int) -> None:
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"The 'y' parameter must be 1-D. Got shape {y.shape} instead.")
        if y.shape[0] == 0:
            raise ValueError("The 'y' parameter must not be empty.")
        rng = np.random.default_rng(seed)
        strata = _strata(y)
        self._n = int(y.shape[0])
        self._members: list[np.ndarray] = []
        for code in np.unique(strata):
            members = np.flatnonzero(strata == code)
            self._members.append(members[rng.permutation(members.shape[0])])
        # Rank of each example within its stratum, as a fraction: sorting by it
        # interleaves the strata so the returned order is itself stratified.
        self._position = np.empty(self._n, dtype=np.float64)
        for members in self._members:
            self._position[members] = (np.arange(members.shape[0]) + 0.5) / members.shape[0]

    @property
    def n_samples(self) -> int:
        return self._n

    def count(self, fraction: float) -> int:
        """Number of examples in the subset at ``fraction``."""
        return sum(self._take(m.shape[0], fraction) for m in self._members)

    def indices(self, fraction: float) -> np.ndarray:
        """Indices of the subset at ``fraction`` (0 < fraction <= 1), stratum-interleaved."""
        check_fraction("fraction", fraction)
        chosen = np.concatenate([m[: self._take(m.shape[0], fraction)] for m in self._members])
        return chosen[np.argsort(self._position[chosen], kind="stable")]

    @staticmethod
    def _take(n_members: int, fraction: float) -> int:
        return min(n_members, max(1, round(fraction * n_members)))


def stratified_nested_subsets(
    y: np.ndarray, fractions: list[float] | tuple[float, ...], *, seed: int
) -> list[np.ndarray]:
    """Index arrays of nested stratified subsets of ``y``, one per fraction.

    For increasing fractions every subset contains the previous one.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0] * 50 + [1] * 50)
    >>> small, large = stratified_nested_subsets(y, [0.1, 0.5], seed=0)
    >>> set(small) <= set(large), np.bincount(y[small]).tolist()
    (True, [5, 5])
    """
    order = NestedStratifiedOrder(y, seed=seed)
    return [order.indices(f) for f in fractions]


def stratified_holdout(
    y: np.ndarray, *, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into a training pool and a stratified held-out validation set.

    Every class with at least two examples keeps at least one on each side.
    """
    y = np.asarray(y)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(
            f"The 'val_fraction' parameter must be a float in (0, 1). Got {val_fraction!r} instead."
        )
    rng = np.random.default_rng(seed)
    strata = _strata(y)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for code in np.unique(strata):
        members = np.flatnonzero(strata == code)
        members = members[rng.permutation(members.shape[0])]
        n_val = round(val_fraction * members.shape[0])
        if members.shape[0] >= 2:
            n_val = min(max(n_val, 1), members.shape[0] - 1)
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
