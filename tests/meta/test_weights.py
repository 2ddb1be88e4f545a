"""Ranking-loss weights of earlier studies (llp.meta._weights): the studies that order this
study's measurements best carry the weight, and this study's own measurements take over
when they order themselves better."""

from __future__ import annotations

import numpy as np
import pytest

from llp.meta._weights import (
    THIS_STUDY,
    StudyWeights,
    discordant_pairs,
    kernel_predict,
    leave_one_out,
    rank_weights,
)


def test_kernel_predict_returns_the_nearest_rows_value_at_a_measured_point() -> None:
    X = np.array([[0.0, 0.0], [1.0, 1.0]])
    y = np.array([0.2, 0.9])
    assert kernel_predict(X, y, X) == pytest.approx([0.2, 0.9], abs=1e-6)
    # Half way, both count alike.
    assert kernel_predict(X, y, np.array([[0.5, 0.5]]))[0] == pytest.approx(0.55)


def test_discordant_pairs_count_within_groups_with_half_for_predicted_ties() -> None:
    measured = np.array([1.0, 2.0, 3.0, 1.0, 2.0])
    groups = np.array([0, 0, 0, 1, 1])
    assert discordant_pairs(np.array([1.0, 2.0, 3.0, 5.0, 9.0]), measured, groups)[0] == 0
    assert discordant_pairs(np.array([3.0, 2.0, 1.0, 9.0, 5.0]), measured, groups)[0] == 4
    assert discordant_pairs(np.array([1.0, 1.0, 3.0, 0.0, 0.0]), measured, groups)[0] == 1.0
    # Rows are models, scored each.
    both = np.array([[1.0, 2.0, 3.0, 5.0, 9.0], [3.0, 2.0, 1.0, 9.0, 5.0]])
    assert list(discordant_pairs(both, measured, groups)) == [0.0, 4.0]
    # Pairs tied in the measurements do not count.
    assert discordant_pairs(np.array([2.0, 1.0]), np.array([0.5, 0.5]), np.array([0, 0]))[0] == 0


def test_leave_one_out_never_sees_the_point_it_predicts() -> None:
    X = np.array([[0.0], [0.01], [1.0]])
    y = np.array([0.0, 1.0, 5.0])
    out = leave_one_out(X, y, np.array([0, 0, 0]))
    assert out[0] == pytest.approx(1.0, abs=1e-3)  # its twin's value, not its own
    assert out[1] == pytest.approx(0.0, abs=1e-3)


def line_study(slope: float, n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 1))
    return X, slope * X[:, 0]


def test_the_earlier_study_that_orders_this_one_right_carries_the_weight() -> None:
    models = {"agrees": line_study(1.0), "disagrees": line_study(-1.0, seed=1)}
    X = np.array([[0.1], [0.5], [0.9]])
    y = np.array([0.2, 0.6, 0.7])  # rising, as "agrees" predicts
    weights = rank_weights(models, X, y, [0, 0, 0], seed=0)
    assert sum(weights.weights.values()) == pytest.approx(1.0)
    assert weights.weights["agrees"] > 0.5 > weights.weights["disagrees"]
    assert weights.n_pairs == 3
    assert next(iter(weights.earlier)) == "agrees"
    assert weights.describe().startswith("agrees ")


def test_this_studys_own_measurements_take_over_when_no_earlier_study_orders_them() -> None:
    models = {"wrong": line_study(-1.0)}
    rng = np.random.default_rng(4)
    X = rng.uniform(size=(30, 1))
    y = X[:, 0] + rng.normal(0, 0.01, 30)  # rising: "wrong" orders every pair backwards
    weights = rank_weights(models, X, y, [0] * 30, seed=0)
    assert weights.weights[THIS_STUDY] == pytest.approx(1.0)
    assert weights.earlier == {}


def test_without_pairs_to_compare_the_earlier_studies_share_alike() -> None:
    models = {"a": line_study(1.0), "b": line_study(-1.0)}
    one_each = rank_weights(models, np.array([[0.1], [0.9]]), np.array([0.5, 0.7]), [0, 1])
    assert one_each.weights == {"a": 0.5, "b": 0.5, THIS_STUDY: 0.0} and one_each.n_pairs == 0
    alone = rank_weights({}, np.array([[0.1], [0.9]]), np.array([0.5, 0.7]), [0, 0])
    assert alone.weights == {THIS_STUDY: 1.0}


def test_weights_are_reproducible_from_the_seed() -> None:
    models = {f"s{i}": line_study((-1) ** i * 0.5, seed=i) for i in range(6)}
    rng = np.random.default_rng(9)
    X, y = rng.uniform(size=(10, 1)), rng.uniform(size=10)
    groups = [i % 2 for i in range(10)]
    assert rank_weights(models, X, y, groups, seed=3) == rank_weights(models, X, y, groups, seed=3)


def test_to_json_and_describe_name_the_largest_weights() -> None:
    weights = StudyWeights({"a": 0.5, "b": 0.2, "c": 0.1, "d": 0.05, THIS_STUDY: 0.15}, 7)
    assert weights.to_json() == {
        "earlier": {"a": 0.5, "b": 0.2, "c": 0.1, "d": 0.05},
        "this_study": 0.15,
        "n_pairs": 7,
    }
    assert weights.describe() == "a 0.50, b 0.20, c 0.10, 1 more 0.05, this study 0.15"
