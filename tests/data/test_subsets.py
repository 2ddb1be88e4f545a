from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from llp.data import (
    FidelityData,
    NestedStratifiedOrder,
    stratified_holdout,
    stratified_nested_subsets,
)

labels = st.lists(st.integers(0, 4), min_size=10, max_size=300).filter(lambda y: len(set(y)) >= 2)
fractions = st.lists(st.floats(0.01, 1.0), min_size=2, max_size=6)


@given(y=labels, fracs=fractions, seed=st.integers(0, 2**31 - 1))
@settings(max_examples=80, deadline=None)
def test_subsets_are_nested_and_stratified(y: list[int], fracs: list[float], seed: int) -> None:
    y_arr = np.array(y)
    fracs = sorted(fracs)
    subsets = stratified_nested_subsets(y_arr, fracs, seed=seed)
    for small, large in itertools.pairwise(subsets):
        assert set(small.tolist()) <= set(large.tolist())
    for frac, subset in zip(fracs, subsets):
        assert len(set(subset.tolist())) == len(subset)  # no duplicates
        for cls in np.unique(y_arr):
            n_c = int((y_arr == cls).sum())
            expected = min(n_c, max(1, round(frac * n_c)))
            assert int((y_arr[subset] == cls).sum()) == expected


def test_same_seed_same_subsets_different_seed_different() -> None:
    y = np.repeat(np.arange(3), 40)
    a = NestedStratifiedOrder(y, seed=1).indices(0.3)
    b = NestedStratifiedOrder(y, seed=1).indices(0.3)
    c = NestedStratifiedOrder(y, seed=2).indices(0.3)
    assert np.array_equal(a, b)
    assert not np.array_equal(np.sort(a), np.sort(c))


def test_subset_order_interleaves_classes() -> None:
    y = np.repeat([0, 1], [90, 10])
    order = NestedStratifiedOrder(y, seed=0).indices(1.0)
    # Any prefix of the order keeps roughly the class balance.
    assert 0 < (y[order[:20]] == 1).sum() <= 4


def test_continuous_targets_are_stratified_by_quantile() -> None:
    y = np.linspace(0.0, 1.0, 1000)
    subset = stratified_nested_subsets(y, [0.1], seed=0)[0]
    assert len(subset) == pytest.approx(100, abs=10)
    # Every decile of the target is represented.
    assert len(np.unique(np.floor(y[subset] * 10).clip(0, 9))) == 10


@given(y=labels, seed=st.integers(0, 1000), val_fraction=st.floats(0.05, 0.5))
@settings(max_examples=50, deadline=None)
def test_holdout_is_a_disjoint_stratified_partition(y, seed, val_fraction) -> None:
    y_arr = np.array(y)
    train, val = stratified_holdout(y_arr, val_fraction=val_fraction, seed=seed)
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted([*train.tolist(), *val.tolist()]) == list(range(len(y_arr)))
    for cls in np.unique(y_arr):
        if (y_arr == cls).sum() >= 2:
            assert (y_arr[train] == cls).any() and (y_arr[val] == cls).any()


# ---------------------------------------------------------------------- FidelityData
def test_fidelity_data_never_trains_on_validation(make_digits_data) -> None:
    data = make_digits_data(n=None, seed=3)
    X_train, _, X_val, _ = data.arrays
    train_rows = {row.tobytes() for row in X_train[data.train_indices(1.0)]}
    # Digits has a few duplicated images; nearly all validation rows are unseen.
    overlap = sum(row.tobytes() in train_rows for row in X_val)
    assert overlap <= 5
    assert data.n_train + data.n_val == 1797


def test_fidelity_data_follows_the_dataset_fn_contract(make_digits_data) -> None:
    data = make_digits_data(batch_size=32)
    train_loader, val_loader = data(0.25)
    assert isinstance(train_loader, DataLoader)
    assert len(train_loader.dataset) == len(data.train_indices(0.25))
    assert len(val_loader.dataset) == data.n_val
    xb, yb = next(iter(train_loader))
    assert xb.shape == (32, 64) and yb.dtype == torch.int64


def test_standardisation_uses_training_pool_statistics(digits) -> None:
    X, y = digits
    data = FidelityData(X, y, standardize=True, seed=0)
    X_train, _, X_val, _ = data.arrays
    spread = X_train.std(axis=0)
    assert np.allclose(X_train.mean(axis=0), 0.0, atol=1e-5)
    assert np.allclose(spread[spread > 0], 1.0, atol=1e-4)
    # The validation set is transformed with the same statistics, not its own.
    assert not np.allclose(X_val.mean(axis=0), 0.0, atol=1e-3)
    # transform() prepares new rows exactly like the training pool was prepared.
    train_idx, _ = stratified_holdout(y, val_fraction=0.2, seed=0)
    np.testing.assert_allclose(data.transform(X[train_idx]), X_train, atol=1e-5)
    with pytest.raises(ValueError, match=r"examples of shape \(64,\)"):
        data.transform(X[:, :10])


def test_string_labels_are_encoded_and_images_keep_their_shape(digits) -> None:
    X, y = digits
    names = np.array([f"digit-{v}" for v in y])
    data = FidelityData(X.reshape(-1, 1, 8, 8), names, seed=0)
    assert data.n_classes == 10 and data.input_shape == (1, 8, 8)
    assert data.classes_[0] == "digit-0"
    assert data.encode_labels(["digit-3"]).tolist() == [3]
    with pytest.raises(ValueError, match="were not seen in training"):
        data.encode_labels(["seven"])


def test_from_dataframe_one_hot_encodes_categorical_columns() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"a": rng.normal(size=40), "color": rng.choice(["r", "g", "b"], 40), "label": [0, 1] * 20}
    )
    data = FidelityData.from_dataframe(df, target="label", seed=0)
    assert data.input_shape == (4,)
    with pytest.raises(ValueError, match="'target' column 'nope' is not in the DataFrame"):
        FidelityData.from_dataframe(df, target="nope")


def test_from_dataframe_drops_identifier_columns_and_bounds_memory(monkeypatch) -> None:
    import llp.data._fidelity_data as module

    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "id": [f"user-{i}" for i in range(n)],  # 300 values: dropped
            "city": rng.choice([f"c{i}" for i in range(100)], n),  # 100 values: kept
            "label": [0, 1, 2] * 100,
        }
    )
    with pytest.warns(UserWarning, match=r"Dropped text columns with more than 100 distinct "):
        data = FidelityData.from_dataframe(df, target="label", seed=0)
    assert data.dropped_columns == ("id",)
    assert data.input_shape == (1 + df["city"].nunique(),)
    assert FidelityData(df[["a"]].to_numpy(), df["label"]).dropped_columns == ()
    with pytest.raises(ValueError, match="no usable feature columns"), pytest.warns(UserWarning):
        FidelityData.from_dataframe(df[["id", "label"]], target="label")
    # The encoded size is checked before the allocation.
    monkeypatch.setattr(module, "MAX_ENCODED_BYTES", 1000)
    with pytest.raises(
        ValueError, match=r"would take 0\.0 GiB once encoded \(300 rows x \d+ columns"
    ):
        FidelityData.from_dataframe(df.drop(columns=["id"]), target="label")


def test_from_torch_dataset_reads_every_example() -> None:
    X = torch.randn(30, 5)
    y = torch.arange(30) % 3
    data = FidelityData.from_torch_dataset(TensorDataset(X, y), seed=0)
    assert data.n_train + data.n_val == 30 and data.n_classes == 3


def test_regression_targets_are_detected() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    data = FidelityData(X, X[:, 0] * 2.5 + 0.1, seed=0)
    assert data.task == "regression" and data.n_classes is None


@pytest.mark.parametrize(
    ("X", "y", "kwargs", "error", "match"),
    [
        (np.zeros((10, 2)), np.zeros(10), {}, ValueError, "single class"),
        (np.zeros((10, 2)), np.arange(9), {}, ValueError, "same number of samples. Got 10 and 9"),
        (np.zeros((0, 2)), np.zeros(0), {}, ValueError, "empty"),
        ([], [], {}, ValueError, "'X' parameter is empty"),
        (np.zeros(10), np.arange(10) % 2, {}, ValueError, r"shape \(n_samples, n_features"),
        (np.full((10, 2), np.nan), np.arange(10) % 2, {}, ValueError, "20 NaN or inf"),
        (np.array([["a", "b"]] * 10), np.arange(10) % 2, {}, TypeError, "must be numeric"),
        (
            np.zeros((10, 2)),
            np.arange(10) % 2,
            {"val_fraction": 1.0},
            ValueError,
            r"'val_fraction' parameter of FidelityData must be a finite float in \(0.0, 1.0\)",
        ),
        (
            np.zeros((10, 2)),
            np.arange(10) % 2,
            {"batch_size": 0},
            ValueError,
            "'batch_size' parameter of FidelityData must be an int >= 1",
        ),
        (np.zeros((10, 2)), np.arange(10) % 2, {"task": "ranking"}, ValueError, "'task'"),
        (np.zeros((10, 2)), np.array([0] * 9 + [1]), {}, ValueError, "at least 2 examples"),
        (
            np.zeros((10, 2)),
            np.array([0.0] * 5 + [np.nan] * 5),
            {"task": "classification"},
            ValueError,
            "NaN or inf labels",
        ),
    ],
)
def test_bad_data_is_rejected_with_a_clear_message(X, y, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        FidelityData(X, y, **kwargs)


def test_bad_fraction_is_rejected(make_digits_data) -> None:
    data = make_digits_data()
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"'fraction' parameter must be a finite float in \(0"):
            data.train_indices(bad)
