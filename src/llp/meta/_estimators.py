from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.utils.validation import check_is_fitted, validate_data

from llp.meta._frozen import FrozenForest
from llp.space import INACTIVE, Categorical

if TYPE_CHECKING:
    from llp.space import SearchSpace


def _fit_forest(forest: Any, X: Any, y: Any, sample_weight: Any) -> Any:
    """``forest.fit(X, y, sample_weight=...)`` that leaves the process's warning filters
    as it found them.

    With ``n_jobs`` above one, scikit-learn builds the trees in threads, and each thread
    saves, resets and restores the warning filters, which are global to the process
    before Python 3.14. Threads interleaving there leave the filters changed: filters a
    caller set are lost, and once they are empty every later threaded fit warns that
    ``sklearn.utils.parallel.delayed`` "should be used with" its ``Parallel`` (seen after
    a few hundred fits in one process).
    """
    with _filters_kept():
        return forest.fit(X, y, sample_weight=sample_weight)


@contextmanager
def _filters_kept() -> Iterator[None]:
    """Run the block, then leave the warning filters exactly as it found them: the same
    list, with the same entries.

    ``warnings.catch_warnings`` alone puts back the list it found, but not its entries:
    scikit-learn's tree-building threads rebuild the filters in whichever list is the
    process's at that moment (``resetwarnings`` then ``filterwarnings``), and interleaved
    they can rewrite the caller's list itself (seen in the test suite: the default
    ``'__main__'`` filter came back as a compiled pattern)."""
    kept = cast(list[Any], warnings.filters)  # typeshed says Sequence; it is a list
    entries = list(kept)
    try:
        with warnings.catch_warnings():
            yield
    finally:
        if warnings.filters is not kept or kept != entries:
            kept[:] = entries
            warnings.filters = kept
            with warnings.catch_warnings():  # entering and leaving it tell the warnings
                pass  # machinery that the filters changed


class HyperparameterPredictor(RegressorMixin, BaseEstimator):
    """Predicts good hyperparameters for a dataset from its meta-features.

    One random forest per hyperparameter: a regressor in the space's encoded ``[0, 1]``
    coordinates for floats and ints (so log scales are respected: the encoding is
    log-aware), a classifier over the choices for categoricals. It is meant to be trained
    on the *best* configurations of past datasets (see
    :func:`llp.meta.best_configs_per_dataset`), weighted by how good they were, not on
    every value ever tried. Predictions are clipped into the space.

    A conditional hyperparameter's forest learns only from rows where it was active
    (:data:`llp.space.INACTIVE` entries are ignored); whether it is active in a prediction
    follows from the predicted parent, as :meth:`SearchSpace.decode` decides.

    Parameters
    ----------
    space : SearchSpace or None, default=None
        The space the targets are encoded in. ``None`` treats every target column as a
        plain numeric output (a multi-output forest regressor).
    n_estimators : int, default=200
    min_samples_leaf : int, default=1
    max_features : float, default=1.0
        Share of features each split considers.
    n_jobs : int or None, default=None
        Threads that build each forest, as in scikit-learn (the fitted forests are the
        same whatever it is).
    random_state : int or None, default=None

    Attributes
    ----------
    n_outputs_ : int
    models_ : list
        Per output column, a fitted forest (frozen for prediction:
        :class:`llp.meta._frozen.FrozenForest`) or a float constant (a column with one
        value).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from llp.space import Float, SearchSpace
    >>> space = SearchSpace([Float("lr", 1e-4, 1.0, log=True)])
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> Y = space.encode_many([{"lr": v} for v in (1e-3, 1e-3, 1e-1, 1e-1)])
    >>> model = HyperparameterPredictor(space, n_estimators=20, random_state=0).fit(X, Y)
    >>> model.predict_configs(np.array([[2.5]]))[0]["lr"] > 1e-2
    True
    """

    def __init__(
        self,
        space: SearchSpace | None = None,
        *,
        n_estimators: int = 200,
        min_samples_leaf: int = 1,
        max_features: float = 1.0,
        n_jobs: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.space = space
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.n_jobs = n_jobs
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> HyperparameterPredictor:
        """Fit one forest per target column.

        Parameters
        ----------
        X : array of shape (n_examples, n_features)
            Dataset meta-features (one row per past dataset and good configuration).
        y : array of shape (n_examples, n_hyperparameters) or (n_examples,)
            Encoded configurations (:meth:`SearchSpace.encode`).
        sample_weight : array of shape (n_examples,), optional
            How much each example counts (e.g. its normalised score).
        """
        if self.n_estimators < 1:
            raise ValueError(
                "The 'n_estimators' parameter of HyperparameterPredictor must be an int >= 1. "
                f"Got {self.n_estimators!r} instead."
            )
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True)
        self._single_output = y.ndim == 1
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if self.space is not None and Y.shape[1] != len(self.space):
            raise ValueError(
                f"The 'y' parameter must have one column per hyperparameter of the space "
                f"({len(self.space)}). Got {Y.shape[1]} columns instead."
            )
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if weights is not None and (weights.shape != (X.shape[0],) or (weights < 0).any()):
            raise ValueError(
                "The 'sample_weight' parameter must be a non-negative array with one weight "
                f"per example ({X.shape[0]}). Got shape {weights.shape} instead."
            )
        self.n_outputs_ = Y.shape[1]
        self.models_: list[Any] = []
        for j in range(self.n_outputs_):
            column = Y[:, j]
            rows = np.ones(column.shape[0], dtype=bool)
            if self.space is not None:
                rows = column != INACTIVE
            if not rows.any():
                self.models_.append(0.5)
                continue
            w = None if weights is None else weights[rows]
            choices = self._n_choices(j)
            if choices is not None:
                labels = np.rint(np.clip(column[rows], 0, 1) * max(choices - 1, 1)).astype(int)
                if np.unique(labels).shape[0] == 1:
                    self.models_.append(float(labels[0]) / max(choices - 1, 1))
                    continue
                model: Any = RandomForestClassifier(
                    n_estimators=self.n_estimators,
                    min_samples_leaf=self.min_samples_leaf,
                    max_features=self.max_features,
                    n_jobs=self.n_jobs,
                    random_state=self.random_state,
                )
                _fit_forest(model, X[rows], labels, w)
            else:
                if np.ptp(column[rows]) == 0:
                    self.models_.append(float(column[rows][0]))
                    continue
                model = RandomForestRegressor(
                    n_estimators=self.n_estimators,
                    min_samples_leaf=self.min_samples_leaf,
                    max_features=self.max_features,
                    n_jobs=self.n_jobs,
                    random_state=self.random_state,
                )
                _fit_forest(model, X[rows], column[rows], w)
            self.models_.append(FrozenForest.from_sklearn(model))
        return self

    def _n_choices(self, j: int) -> int | None:
        if self.space is None:
            return None
        hp = self.space.hyperparameters[j]
        return len(hp.choices) if isinstance(hp, Categorical) else None

    def predict(self, X: Any) -> np.ndarray:
        """Predicted encoded configuration for each row of ``X`` (clipped into [0, 1]
        when a space is given)."""
        return self.predict_with_std(X)[0]

    def predict_with_std(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and their uncertainty per column.

        For a numeric column the uncertainty is the spread (standard deviation) of the
        trees' predictions; for a categorical column, one minus the forest's probability
        of the predicted choice.
        """
        check_is_fitted(self, "models_")
        X = validate_data(self, X, reset=False)
        mean = np.empty((X.shape[0], self.n_outputs_))
        std = np.zeros((X.shape[0], self.n_outputs_))
        for j, model in enumerate(self.models_):
            if isinstance(model, float):
                mean[:, j] = model
            elif model.classes_ is not None:
                proba = model.predict_proba(X)
                choices = self._n_choices(j) or 2
                mean[:, j] = model.classes_[proba.argmax(1)] / max(choices - 1, 1)
                std[:, j] = 1.0 - proba.max(1)
            else:
                trees = model.predict_per_tree(X)
                mean[:, j] = trees.mean(0)
                std[:, j] = trees.std(0)
        if self.space is not None:
            mean = np.clip(mean, 0.0, 1.0)
        if self._single_output:
            return mean[:, 0], std[:, 0]
        return mean, std

    def predict_configs(self, X: Any) -> list[dict[str, Any]]:
        """Predicted configurations as dicts, each a legal point of the space."""
        if self.space is None:
            raise ValueError("predict_configs needs the 'space' parameter to be set.")
        mean = self.predict(X).reshape(-1, self.n_outputs_)
        return [self.space.decode(row) for row in mean]


class PerformanceSurrogate(RegressorMixin, BaseEstimator):
    """A random forest predicting a configuration's final validation score, with
    uncertainty from the spread of its trees.

    Its inputs are whatever the caller assembles, typically dataset meta-features, the
    encoded configuration, the fidelity and partial-training features (learning-curve
    shape, landscape) — see :class:`llp.meta.MetaModelTrainer`.

    Parameters
    ----------
    n_estimators : int, default=100
    min_samples_leaf : int, default=3
    max_features : float, default=0.5
    max_rows_per_tree : int or None, default=2000
        Each tree is grown on a bootstrap sample of at most this many rows, which keeps
        the fit time flat once the knowledge base is large (``None``: all rows).
    n_jobs : int or None, default=None
        Parallel tree building, as in scikit-learn.
    random_state : int or None, default=None

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(size=(200, 2)); y = -((X[:, 0] - 0.3) ** 2)
    >>> model = PerformanceSurrogate(n_estimators=50, random_state=0).fit(X, y)
    >>> mean, std = model.predict(np.array([[0.3, 0.5], [0.9, 0.5]]), return_std=True)
    >>> bool(mean[0] > mean[1])
    True
    """

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        min_samples_leaf: int = 3,
        max_features: float = 0.5,
        max_rows_per_tree: int | None = 2000,
        n_jobs: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_rows_per_tree = max_rows_per_tree
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> PerformanceSurrogate:
        if self.n_estimators < 1:
            raise ValueError(
                "The 'n_estimators' parameter of PerformanceSurrogate must be an int >= 1. "
                f"Got {self.n_estimators!r} instead."
            )
        X, y = validate_data(self, X, y, y_numeric=True)
        cap = self.max_rows_per_tree
        max_samples = None if cap is None or X.shape[0] <= cap else cap
        forest = RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_samples=max_samples,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        _fit_forest(forest, X, y, sample_weight)
        #: The fitted forest, frozen for prediction (:class:`llp.meta._frozen.FrozenForest`).
        self.forest_ = FrozenForest.from_sklearn(forest)
        return self

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Mean prediction over the trees (and their standard deviation if asked)."""
        check_is_fitted(self, "forest_")
        X = validate_data(self, X, reset=False)
        trees = self.forest_.predict_per_tree(X)
        if return_std:
            return trees.mean(0), trees.std(0)
        return trees.mean(0)

    @property
    def feature_importances_(self) -> np.ndarray:
        check_is_fitted(self, "forest_")
        return np.asarray(self.forest_.feature_importances_)
