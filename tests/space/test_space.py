from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llp.space import Categorical, Condition, Float, Int, SearchSpace
from llp.space._space import INACTIVE, canonical_config_json


def make_space() -> SearchSpace:
    return SearchSpace(
        [
            Float("lr", 1e-4, 1e-1, log=True),
            Float("dropout", 0.0, 0.5),
            Int("width", 16, 256, log=True),
            Int("layers", 1, 4),
            Categorical("optimizer", ("sgd", "adam")),
            Float("momentum", 0.0, 0.99),
            Categorical("batchnorm", (False, True)),
        ],
        conditions=[Condition("momentum", "optimizer", ("sgd",))],
    )


def assert_same_config(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], float):
            assert math.isclose(a[key], b[key], rel_tol=1e-9, abs_tol=1e-12), key
        else:
            assert a[key] == b[key] and type(a[key]) is type(b[key]), key


@given(seed=st.integers(0, 2**31 - 1))
@settings(max_examples=40, deadline=None)
def test_sampled_configs_are_valid_and_round_trip(seed: int) -> None:
    space = make_space()
    for config in space.sample(5, seed=seed):
        assert space.validate(config) == config
        vector = space.encode(config)
        assert vector.shape == (len(space),)
        active = vector[vector != INACTIVE]
        assert ((active >= 0) & (active <= 1)).all()
        assert_same_config(space.decode(vector), config)


@given(vector=st.lists(st.floats(-2, 3, allow_nan=False), min_size=7, max_size=7))
@settings(max_examples=60, deadline=None)
def test_decode_of_any_vector_is_a_legal_config(vector: list[float]) -> None:
    space = make_space()
    config = space.decode(np.array(vector))
    assert space.validate(config) == config
    # Decoding is idempotent through the encoding.
    assert_same_config(space.decode(space.encode(config)), config)


def test_same_seed_same_samples_and_different_seed_differs() -> None:
    space = make_space()
    assert space.sample(8, seed=3) == space.sample(8, seed=3)
    assert space.sample(8, seed=3) != space.sample(8, seed=4)


def test_sampling_respects_log_scale() -> None:
    space = SearchSpace([Float("lr", 1e-5, 1.0, log=True)])
    values = np.array([c["lr"] for c in space.sample(2000, seed=0)])
    # Log-uniform: about a fifth of the draws per decade, so the median is near 10**-2.5.
    assert 10**-3 < np.median(values) < 10**-2
    assert values.min() >= 1e-5 and values.max() <= 1.0


def test_conditional_hyperparameter_is_inactive_and_encoded_as_inactive() -> None:
    space = make_space()
    adam = {
        "lr": 1e-3,
        "dropout": 0.1,
        "width": 32,
        "layers": 2,
        "optimizer": "adam",
        "batchnorm": True,
    }
    assert "momentum" not in space.active_names(adam)
    assert space.encode(adam)[space.names.index("momentum")] == INACTIVE
    sgd = {**adam, "optimizer": "sgd", "momentum": 0.9}
    assert space.encode(sgd)[space.names.index("momentum")] == pytest.approx(0.9 / 0.99)
    drawn = space.sample(200, seed=1)
    assert all(("momentum" in c) == (c["optimizer"] == "sgd") for c in drawn)


def test_configspace_view_has_the_same_hyperparameters_and_conditions() -> None:
    cs = make_space().configspace
    assert set(cs.keys()) == set(make_space().names)
    assert len(cs.conditions) == 1


# ---------------------------------------------------------------------- inference
def test_from_configs_infers_types_scales_and_bounds() -> None:
    configs = [
        {"lr": 1e-3, "wd": 0.1, "width": 32, "opt": "adam", "bn": True, "fixed": 5},
        {"lr": 1e-1, "wd": 0.3, "width": 512, "opt": "sgd", "bn": False, "fixed": 5},
        {"lr": 3e-2, "wd": 0.2, "width": 64, "opt": "adam", "bn": True, "fixed": 5},
    ]
    space = SearchSpace.from_configs(configs)
    assert space["lr"] == Float("lr", 1e-3, 1e-1, log=True)
    assert space["wd"] == Float("wd", 0.1, 0.3, log=False)  # spans less than a decade
    assert space["width"] == Int("width", 32, 512, log=True)
    assert space["opt"] == Categorical("opt", ("adam", "sgd"))
    assert space["bn"] == Categorical("bn", (False, True))
    assert space["fixed"] == Categorical("fixed", (5,))
    for config in configs:
        assert space.validate(config) == config


config_values = st.one_of(
    st.floats(1e-6, 1e6, allow_nan=False),
    st.integers(-1000, 1000),
    st.sampled_from(["a", "b", "c"]),
    st.booleans(),
)


@given(
    column_kinds=st.lists(st.sampled_from(["float", "int", "str", "bool"]), min_size=1, max_size=4),
    n=st.integers(1, 6),
    data=st.data(),
)
@settings(max_examples=60, deadline=None)
def test_inferred_space_contains_every_given_config(column_kinds, n, data) -> None:
    strategies = {
        "float": st.floats(1e-6, 1e6, allow_nan=False),
        "int": st.integers(-1000, 1000),
        "str": st.sampled_from(["a", "b", "c"]),
        "bool": st.booleans(),
    }
    configs = [
        {f"k{i}": data.draw(strategies[kind]) for i, kind in enumerate(column_kinds)}
        for _ in range(n)
    ]
    space = SearchSpace.from_configs(configs)
    for config in configs:
        assert space.validate(config) == config
        assert_same_config(space.decode(space.encode(config)), config)


def test_canonical_json_ignores_key_order_and_numpy_types() -> None:
    a = {"b": np.float64(0.5), "a": np.int64(3)}
    b = {"a": 3, "b": 0.5}
    assert canonical_config_json(a) == canonical_config_json(b)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("configs", "error", "match"),
    [
        ([], ValueError, "must be a non-empty list"),
        ({"lr": 0.1}, TypeError, "must be a list of dicts"),
        ([{"lr": 0.1}, 3], TypeError, r"configs\[1\] is a int"),
        ([{}], ValueError, r"configs\[0\] is empty"),
        ([{"lr": 0.1}, {"lr": 0.2, "wd": 0.1}], ValueError, r"same keys.*extra \['wd'\]"),
        ([{"lr": 0.1, "wd": 1}, {"lr": 0.2}], ValueError, r"same keys.*missing \['wd'\]"),
        ([{"lr": float("nan")}], ValueError, "non-finite"),
        ([{"lr": None}], ValueError, "None"),
        ([{"lr": [0.1]}], TypeError, "unsupported type list"),
        ([{"lr": 0.1}, {"lr": "fast"}], TypeError, "mixes value types"),
    ],
)
def test_from_configs_rejects_unusable_configs(configs, error, match) -> None:
    with pytest.raises(error, match=match):
        SearchSpace.from_configs(configs)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: Float("lr", 0.1, 0.1), ValueError, "empty range"),
        (lambda: Float("lr", 0.0, 1.0, log=True), ValueError, "log scale.*'low' must be > 0"),
        (lambda: Float("lr", float("-inf"), 1.0), ValueError, "must be finite"),
        (lambda: Int("w", 1.5, 3), TypeError, "'low' of Int hyperparameter 'w' must be an int"),
        (lambda: Categorical("opt", ()), ValueError, "must not be empty"),
        (lambda: Categorical("opt", ("a", "a")), ValueError, "must be distinct"),
        (lambda: SearchSpace([]), ValueError, "must not be empty"),
        (lambda: SearchSpace([Float("a", 0, 1), Int("a", 0, 3)]), ValueError, "unique"),
        (
            lambda: SearchSpace([Float("a", 0, 1)], [Condition("a", "b", (1,))]),
            ValueError,
            "parent 'b'",
        ),
        (
            lambda: SearchSpace(
                [Float("m", 0, 1), Categorical("o", ("sgd",))], [Condition("m", "o", ("adam",))]
            ),
            ValueError,
            "can never take",
        ),
        (
            lambda: SearchSpace(
                [Categorical("a", (1, 2)), Categorical("b", (1, 2))],
                [Condition("a", "b", (1,)), Condition("b", "a", (1,))],
            ),
            ValueError,
            "cycle",
        ),
    ],
)
def test_space_construction_errors(make, error, match) -> None:
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (
            {
                "lr": 1e-3,
                "dropout": 0.1,
                "width": 32,
                "layers": 2,
                "optimizer": "adam",
                "batchnorm": True,
                "extra": 1,
            },
            r"keys \['extra'\]",
        ),
        (
            {"lr": 1e-3, "width": 32, "layers": 2, "optimizer": "adam", "batchnorm": True},
            "missing the active hyperparameter 'dropout'",
        ),
        (
            {
                "lr": 10.0,
                "dropout": 0.1,
                "width": 32,
                "layers": 2,
                "optimizer": "adam",
                "batchnorm": True,
            },
            r"'lr' is not legal.*\[0.0001, 0.1\]",
        ),
        (
            {
                "lr": 1e-3,
                "dropout": 0.1,
                "width": 32.5,
                "layers": 2,
                "optimizer": "adam",
                "batchnorm": True,
            },
            "'width' is not legal: it must be an int",
        ),
        (
            {
                "lr": 1e-3,
                "dropout": 0.1,
                "width": 32,
                "layers": 2,
                "optimizer": "rmsprop",
                "batchnorm": True,
            },
            "one of",
        ),
        (
            {
                "lr": 1e-3,
                "dropout": 0.1,
                "width": 32,
                "layers": 2,
                "optimizer": "adam",
                "batchnorm": 1,
            },
            "'batchnorm' is not legal",
        ),
        (
            {
                "lr": 1e-3,
                "dropout": 0.1,
                "width": 32,
                "layers": 2,
                "optimizer": "adam",
                "batchnorm": True,
                "momentum": 0.9,
            },
            "'momentum' is inactive",
        ),
    ],
)
def test_validate_names_the_key_and_the_rule(config, match) -> None:
    with pytest.raises(ValueError, match=match):
        make_space().validate(config)


def test_decode_rejects_wrong_length_and_nan() -> None:
    with pytest.raises(ValueError, match="one entry per hyperparameter"):
        make_space().decode([0.5])
    with pytest.raises(ValueError, match="NaN"):
        make_space().decode([np.nan] * 7)


def test_to_dict_round_trips_through_json() -> None:
    import json

    space = make_space()
    again = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again.hyperparameters == space.hyperparameters
    assert again.conditions == space.conditions


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({}, "'hyperparameters' list"),
        ({"hyperparameters": [{"name": "a"}]}, r"hyperparameters\[0\] must be a mapping"),
        (
            {"hyperparameters": [{"name": "a", "type": "float", "low": 1}]},
            r"hyperparameters\[0\] \(float\) is missing the key 'high'",
        ),
        ({"hyperparameters": [{"name": "a", "type": "complex"}]}, "'type' must be 'float'"),
        ({"hyperparameters": [{"name": "a", "type": "float", "low": 2, "high": 1}]}, "empty range"),
        (
            {
                "hyperparameters": [{"name": "a", "type": "int", "low": 0, "high": 3}],
                "conditions": [{"child": "a"}],
            },
            r"conditions\[0\] must be a mapping",
        ),
    ],
)
def test_from_dict_rejects_malformed_descriptions(data, match) -> None:
    with pytest.raises(ValueError, match=match):
        SearchSpace.from_dict(data)
