from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from llp.meta import HyperparameterPredictor, PerformanceSurrogate
from llp.space import Categorical, Condition, Float, Int, SearchSpace

SPACE = SearchSpace(
    [
        Float("lr", 1e-5, 1.0, log=True),
        Int("width", 8, 512, log=True),
        Categorical("optimizer", ("sgd", "adam", "rmsprop")),
        Float("momentum", 0.0, 0.99),
    ],
    conditions=[Condition("momentum", "optimizer", ("sgd",))],
)


FOREST_XFAIL = {
    # Bootstrap resampling is not equivalent to repeating rows; scikit-learn's own
    # forests are exempt from this check for the same reason.
    "check_sample_weight_equivalence_on_dense_data": "random forests bootstrap",
    "check_sample_weight_equivalence_on_sparse_data": "random forests bootstrap",
}


@parametrize_with_checks(
    [
        HyperparameterPredictor(n_estimators=10, random_state=0),
        PerformanceSurrogate(n_estimators=10, random_state=0),
    ],
    expected_failed_checks=lambda estimator: FOREST_XFAIL,
)
def test_scikit_learn_estimator_checks(estimator, check) -> None:
    check(estimator)


def make_meta_dataset(n: int = 60, seed: int = 0):
    """Datasets whose best learning rate follows a meta-feature: lr* = 10 ** (-4 + 3 x)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 3))
    configs = []
    for x in X:
        opt = "sgd" if x[1] > 0.5 else "adam"
        config = {"lr": 10 ** (-4 + 3 * x[0]), "width": 64, "optimizer": opt}
        if opt == "sgd":
            config["momentum"] = 0.9
        configs.append(config)
    return X, SPACE.encode_many(configs)


def test_learns_a_log_scale_relation_and_the_categorical_choice() -> None:
    X, Y = make_meta_dataset()
    model = HyperparameterPredictor(SPACE, n_estimators=100, random_state=0).fit(X, Y)
    queries = np.array([[0.1, 0.9, 0.5], [0.9, 0.1, 0.5]])
    low, high = model.predict_configs(queries)
    assert 10**-4.2 < low["lr"] < 10**-2.8 and 10**-1.6 < high["lr"] < 10**-0.4
    assert low["optimizer"] == "sgd" and low["momentum"] == pytest.approx(0.9)
    assert high["optimizer"] == "adam" and "momentum" not in high


def test_sample_weight_pulls_predictions_toward_heavy_examples() -> None:
    X = np.zeros((4, 1))
    Y = SPACE.encode_many(
        [{"lr": v, "width": 64, "optimizer": "adam"} for v in (1e-4, 1e-4, 1e-1, 1e-1)]
    )
    w = np.array([0.01, 0.01, 1.0, 1.0])
    model = HyperparameterPredictor(SPACE, n_estimators=30, random_state=0).fit(X, Y, w)
    assert model.predict_configs(np.zeros((1, 1)))[0]["lr"] > 1e-2


@given(query=st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3))
@settings(max_examples=30, deadline=None)
def test_predictions_stay_inside_the_space(query) -> None:
    model = _fitted_predictor()
    config = model.predict_configs(np.array([query]))[0]
    assert SPACE.validate(config) == config
    vector = model.predict(np.array([query]))
    assert ((vector >= 0) & (vector <= 1)).all()


_CACHE: dict[str, HyperparameterPredictor] = {}


def _fitted_predictor() -> HyperparameterPredictor:
    if "model" not in _CACHE:
        X, Y = make_meta_dataset()
        _CACHE["model"] = HyperparameterPredictor(SPACE, n_estimators=20, random_state=0).fit(X, Y)
    return _CACHE["model"]


def test_uncertainty_is_larger_where_the_past_disagrees() -> None:
    rng = np.random.default_rng(0)
    X = np.repeat([[0.0], [1.0]], 30, axis=0)
    lr = np.where(X[:, 0] == 0, 1e-3, 10 ** rng.uniform(-5, 0, size=60))
    Y = SPACE.encode_many([{"lr": v, "width": 64, "optimizer": "adam"} for v in lr])
    model = HyperparameterPredictor(SPACE, n_estimators=50, min_samples_leaf=5, random_state=0).fit(
        X, Y
    )
    _, std = model.predict_with_std(np.array([[0.0], [1.0]]))
    assert std[1, 0] > std[0, 0]


def test_surrogate_ranks_configurations_on_a_task_with_a_known_answer() -> None:
    # Final score peaks at lr = 1e-2 (encoded 0.6) and falls with distance in log-lr.
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(400, 2))
    y = -((X[:, 0] - 0.6) ** 2) + 0.01 * rng.normal(size=400)
    model = PerformanceSurrogate(n_estimators=100, random_state=0).fit(X, y)
    candidates = np.column_stack([np.linspace(0, 1, 11), np.full(11, 0.5)])
    mean, std = model.predict(candidates, return_std=True)
    truth = -((candidates[:, 0] - 0.6) ** 2)
    from scipy.stats import spearmanr

    assert spearmanr(mean, truth).statistic > 0.9
    assert np.argmax(mean) in (5, 6, 7) and (std >= 0).all()


def test_errors() -> None:
    with pytest.raises(NotFittedError):
        HyperparameterPredictor().predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="one column per hyperparameter of the space \\(4\\)"):
        HyperparameterPredictor(SPACE).fit(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="'n_estimators' parameter of HyperparameterPredictor"):
        HyperparameterPredictor(n_estimators=0).fit(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="'sample_weight' parameter must be a non-negative"):
        HyperparameterPredictor().fit(np.zeros((3, 2)), np.zeros(3), np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="predict_configs needs the 'space'"):
        HyperparameterPredictor(n_estimators=2).fit(
            np.zeros((3, 1)), np.arange(3.0)
        ).predict_configs(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="'n_estimators' parameter of PerformanceSurrogate"):
        PerformanceSurrogate(n_estimators=0).fit(np.zeros((3, 2)), np.zeros(3))


@pytest.mark.parametrize("make", [HyperparameterPredictor, PerformanceSurrogate])
def test_a_fit_puts_back_the_caller_s_filters_even_when_a_thread_rewrote_them(
    make: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An interleaved tree-building thread can rebuild the filters in the caller's own
    # list (empty it, then add its entries with compiled patterns): catch_warnings puts
    # that list back as it is. The fit puts back its entries too.
    import sklearn.ensemble

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="a filter of the caller's")
        callers = warnings.filters
        before = list(callers)
        for forest in (
            sklearn.ensemble.RandomForestRegressor,
            sklearn.ensemble.RandomForestClassifier,
        ):
            original = forest.fit

            def rewriting(self, *args, __fit=original, **kwargs):  # type: ignore[no-untyped-def]
                callers[:] = []  # as a thread's resetwarnings on that list would
                return __fit(self, *args, **kwargs)

            monkeypatch.setattr(forest, "fit", rewriting)
        rng = np.random.default_rng(0)
        X = rng.random((40, 3))
        y = rng.random((40, 2)) if make is HyperparameterPredictor else rng.random(40)
        make(n_estimators=4).fit(X, y)
        assert warnings.filters is callers
        assert warnings.filters == before


@pytest.mark.parametrize("make", [HyperparameterPredictor, PerformanceSurrogate])
def test_threaded_fits_leave_the_warning_filters_as_they_were(
    make: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scikit-learn's tree-building threads save, reset and restore the process's warning
    # filters; interleaved, they leave them changed (here: emptied, as in the worst case).
    import sklearn.ensemble

    for forest in (sklearn.ensemble.RandomForestRegressor, sklearn.ensemble.RandomForestClassifier):
        original = forest.fit

        def emptying(self, *args, __fit=original, **kwargs):  # type: ignore[no-untyped-def]
            fitted = __fit(self, *args, **kwargs)
            warnings.resetwarnings()
            return fitted

        monkeypatch.setattr(forest, "fit", emptying)
    rng = np.random.default_rng(0)
    X, y = (
        rng.random((60, 3)),
        rng.random((60, 2)) if make is HyperparameterPredictor else rng.random(60),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="a filter of the caller's")
        before = list(warnings.filters)
        for _ in range(3):
            make(n_estimators=4, n_jobs=2).fit(X, y)
        assert warnings.filters == before
