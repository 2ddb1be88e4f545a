"""Dataset meta-features: values, cost cap, determinism, input kinds and input errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import llp.features._dataset as dataset_module
from llp._checks import MAX_MAGNITUDE
from llp.data import FidelityData
from llp.features import DATASET_FEATURES, DatasetFeatureExtractor

# Six rows, two columns, three classes: every statistic below is worked out by hand.
#   a = 0.5 .. 5.5: mean 3, deviations ±0.5, ±1.5, ±2.5, m2 = 35/12, m4 = 707/48
#   b = 0,0,0,0,0,6: mean 1, deviations -1 (x5) and 5, m2 = 5, m3 = 20, m4 = 105
#   cov(a, b) = (2.5 + 1.5 + 0.5 - 0.5 - 1.5 + 12.5) / 6 = 2.5, so r**2 = 2.5**2 / (35/12 * 5)
HAND_X = np.array(
    [[0.5, 0.0], [1.5, 0.0], [2.5, 0.0], [3.5, 0.0], [4.5, 0.0], [5.5, 6.0]], dtype=np.float64
)
HAND_Y = np.array([0, 0, 0, 1, 1, 2])


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    return load_digits(return_X_y=True)


def assert_same_features(left: dict[str, float], right: dict[str, float], rel: float = 0) -> None:
    assert list(left) == list(right) == list(DATASET_FEATURES)
    for name in DATASET_FEATURES:
        assert left[name] == pytest.approx(right[name], rel=rel, abs=rel), name


# --------------------------------------------------------------------------- values
def test_features_match_hand_computed_values() -> None:
    f = DatasetFeatureExtractor().extract_features(HAND_X, HAND_Y)

    assert list(f) == list(DATASET_FEATURES)
    assert (f["num_samples"], f["num_features"]) == (6.0, 2.0)
    assert f["log_num_samples"] == pytest.approx(math.log(6))
    assert f["samples_per_feature"] == 3.0
    assert f["task_is_regression"] == 0.0

    shares = [1 / 2, 1 / 3, 1 / 6]
    entropy = -sum(p * math.log(p) for p in shares)
    assert f["num_classes"] == 3.0
    assert f["class_entropy"] == pytest.approx(entropy)
    assert f["class_entropy_normalized"] == pytest.approx(entropy / math.log(3))
    assert f["class_imbalance"] == pytest.approx(3.0)  # 3 examples of class 0, 1 of class 2
    assert f["majority_class_share"] == pytest.approx(0.5)
    assert f["minority_class_share"] == pytest.approx(1 / 6)

    std_a, std_b = math.sqrt(35 / 12), math.sqrt(5)
    skew_b = 20 / 5**1.5  # a is symmetric: skew 0
    kurt_a, kurt_b = (707 / 48) / (35 / 12) ** 2 - 3, 105 / 25 - 3
    assert f["feature_mean"] == pytest.approx((3 + 1) / 2)
    assert f["feature_mean_spread"] == pytest.approx(1.0)
    assert f["feature_std"] == pytest.approx((std_a + std_b) / 2)
    assert f["feature_std_spread"] == pytest.approx(abs(std_a - std_b) / 2)
    assert f["feature_skew"] == pytest.approx(skew_b / 2)
    assert f["feature_skew_spread"] == pytest.approx(skew_b / 2)
    assert f["feature_kurtosis"] == pytest.approx((kurt_a + kurt_b) / 2)
    assert f["feature_kurtosis_spread"] == pytest.approx(abs(kurt_a - kurt_b) / 2)

    r = 2.5 / (std_a * std_b)
    assert f["feature_correlation_mean"] == pytest.approx(r)
    assert f["feature_correlation_std"] == pytest.approx(0.0)
    # Eigenvalues of the 2x2 correlation matrix are 1 ± r; (1 + r) / 2 < 0.95 needs both.
    assert (1 + r) / 2 < 0.95
    assert (f["pca_dims_95"], f["pca_dims_95_ratio"]) == (2.0, 1.0)

    # b is integral with 2 levels (categorical); a is not integral.
    assert f["categorical_share"] == 0.5
    assert f["missing_rate"] == 0.0
    assert f["constant_feature_share"] == 0.0
    for name in ("landmark_1nn_accuracy", "landmark_stump_accuracy"):
        assert 0.0 <= f[name] <= 1.0


def test_strongly_correlated_columns_need_one_principal_component() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal(200)
    X = np.column_stack([base, 2 * base + 0.01 * rng.standard_normal(200), np.full(200, 3.0)])
    f = DatasetFeatureExtractor().extract_features(X, rng.integers(0, 2, 200))
    assert f["pca_dims_95"] == 1.0
    assert f["pca_dims_95_ratio"] == pytest.approx(1 / 3)
    assert f["feature_correlation_mean"] == pytest.approx(1.0, abs=1e-3)
    assert f["constant_feature_share"] == pytest.approx(1 / 3)


def test_constant_columns_give_finite_features_without_warnings() -> None:
    X = np.column_stack([np.ones(20), np.zeros(20), np.arange(20.0)])
    y = np.arange(20) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = DatasetFeatureExtractor().extract_features(X, y)
    assert all(math.isfinite(v) for v in f.values())
    assert f["feature_correlation_mean"] == f["feature_correlation_std"] == 0.0
    assert f["pca_dims_95"] == 1.0


def test_landmarkers_separate_easy_from_random_labels(make_classification_arrays) -> None:
    X, y = make_classification_arrays(n=400, n_features=4, n_classes=2)
    separable = DatasetFeatureExtractor().extract_features(X + y[:, None] * 5, y)
    noise = DatasetFeatureExtractor().extract_features(
        X, np.random.default_rng(1).integers(0, 2, 400)
    )
    for name in (
        "landmark_1nn_accuracy",
        "landmark_stump_accuracy",
        "landmark_naive_bayes_accuracy",
    ):
        assert separable[name] > 0.95
        assert noise[name] < 0.65


def test_regression_target_has_neutral_class_features(make_classification_arrays) -> None:
    X, _ = make_classification_arrays(n=100)
    y = np.random.default_rng(0).standard_normal(100)
    f = DatasetFeatureExtractor().extract_features(X, y)
    assert f["task_is_regression"] == 1.0
    assert f["num_classes"] == f["class_entropy"] == f["class_entropy_normalized"] == 0.0
    assert f["class_imbalance"] == 1.0
    assert f["majority_class_share"] == f["minority_class_share"] == 0.0
    assert f["landmark_1nn_accuracy"] == f["landmark_naive_bayes_accuracy"] == 0.0
    assert all(math.isfinite(v) for v in f.values())


def test_task_can_be_forced(make_classification_arrays) -> None:
    X, y = make_classification_arrays(n=100)
    as_regression = DatasetFeatureExtractor().extract_features(X, y, task="regression")
    assert as_regression["task_is_regression"] == 1.0
    assert as_regression["num_classes"] == 0.0


def test_without_landmarkers_they_are_zero(make_classification_arrays) -> None:
    X, y = make_classification_arrays()
    f = DatasetFeatureExtractor(landmarkers=False).extract_features(X, y)
    assert f["landmark_stump_accuracy"] == 0.0
    assert f["num_classes"] == 3.0


def test_nan_cells_are_counted_then_imputed() -> None:
    X = HAND_X.copy()
    X[0, 0] = np.nan
    X[2, 1] = np.inf  # non-finite counts as missing too
    f = DatasetFeatureExtractor().extract_features(X, HAND_Y)
    assert f["missing_rate"] == pytest.approx(2 / 12)
    assert f["feature_mean"] == pytest.approx((np.mean(X[1:, 0]) + 6 / 5) / 2)
    assert all(math.isfinite(v) for v in f.values())


@pytest.mark.filterwarnings("error::RuntimeWarning")
@settings(max_examples=30, deadline=None)
@given(
    X=arrays(
        np.float64,
        st.tuples(st.integers(2, 25), st.integers(1, 5)),
        elements=st.floats(allow_nan=True, allow_infinity=True),
    ),
    data=st.data(),
)
def test_every_feature_is_a_finite_float_whatever_the_values(X, data) -> None:
    y = data.draw(arrays(np.int64, X.shape[0], elements=st.integers(0, 3)))
    f = DatasetFeatureExtractor().extract_features(X, y)
    assert list(f) == list(DATASET_FEATURES)
    # Finite and within what the knowledge base and its files hold, whatever the data.
    assert all(isinstance(v, float) and abs(v) <= MAX_MAGNITUDE for v in f.values())
    assert 0.0 <= f["missing_rate"] <= 1.0
    assert f["num_samples"] == X.shape[0]


# --------------------------------------------------------------------------- cost and seeds
def test_row_cap_bounds_what_the_costly_parts_see(monkeypatch) -> None:
    seen: dict[str, tuple[int, ...]] = {}
    real_landmarkers = dataset_module.landmarker_accuracies
    real_moments = dataset_module.column_moments

    def spy_landmarkers(X, codes):
        seen["landmarkers"] = X.shape
        return real_landmarkers(X, codes)

    def spy_moments(X, missing):
        seen["moments"] = X.shape
        return real_moments(X, missing)

    monkeypatch.setattr(dataset_module, "landmarker_accuracies", spy_landmarkers)
    monkeypatch.setattr(dataset_module, "column_moments", spy_moments)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50_000, 6)), rng.integers(0, 3, 50_000)

    f = DatasetFeatureExtractor(max_samples=500).extract_features(X, y)

    assert seen["landmarkers"] == (500, 6)
    assert seen["moments"] == (500, 6)
    assert f["num_samples"] == 50_000.0
    assert f["num_classes"] == 3.0


def test_column_cap_bounds_the_pairwise_statistics(monkeypatch) -> None:
    seen: list[int] = []
    real = dataset_module.pairwise_structure

    def spy(imputed, moments, columns):
        seen.append(columns.size)
        return real(imputed, moments, columns)

    monkeypatch.setattr(dataset_module, "pairwise_structure", spy)
    X = np.random.default_rng(0).standard_normal((40, 300))
    f = DatasetFeatureExtractor(max_features=50).extract_features(X, np.arange(40) % 2)
    assert seen == [50]
    assert f["num_features"] == 300.0
    assert f["pca_dims_95"] <= 50


def test_seed_does_not_matter_within_the_caps(digits) -> None:
    X, y = digits  # 1797 rows x 64 columns: within both default caps
    assert_same_features(
        DatasetFeatureExtractor(seed=0).extract_features(X, y),
        DatasetFeatureExtractor(seed=1).extract_features(X, y),
    )


def test_same_seed_same_features_beyond_the_cap_and_seeds_differ() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20_000, 8)), rng.integers(0, 4, 20_000)
    first = DatasetFeatureExtractor(max_samples=300, seed=3).extract_features(X, y)
    assert_same_features(
        first, DatasetFeatureExtractor(max_samples=300, seed=3).extract_features(X, y)
    )
    other = DatasetFeatureExtractor(max_samples=300, seed=4).extract_features(X, y)
    assert other["feature_mean"] != first["feature_mean"]
    assert other["num_samples"] == first["num_samples"]  # label statistics use every label
    assert other["class_entropy"] == first["class_entropy"]


def test_input_is_not_modified() -> None:
    X = HAND_X.copy()
    X[0, 0] = np.nan
    before = X.copy()
    DatasetFeatureExtractor().extract_features(X, HAND_Y)
    np.testing.assert_array_equal(X, before)


# --------------------------------------------------------------------------- input kinds
def test_dataframe_with_categorical_column_and_nans_matches_its_codes() -> None:
    frame = pd.DataFrame(
        {
            "size": [1.5, np.nan, 3.25, 4.0, np.nan, 6.5, 7.0, 8.5],
            "colour": pd.Categorical(["red", "blue", None, "red", "blue", "red", "red", "blue"]),
            "name": ["x", "y", "x", None, "z", "x", "y", "z"],
            "flag": [True, False, True, True, False, False, True, False],
            "label": ["cat", "dog", "cat", "dog", "cat", "dog", "cat", "cat"],
        }
    )
    extractor = DatasetFeatureExtractor()
    f = extractor.extract_from(frame, target="label")

    # Category codes (sorted categories), NaN for missing; bool as 0/1.
    codes = np.array(
        [
            [1.5, 1, 0, 1],
            [np.nan, 0, 1, 0],
            [3.25, np.nan, 0, 1],
            [4.0, 1, np.nan, 1],
            [np.nan, 0, 2, 0],
            [6.5, 1, 0, 0],
            [7.0, 1, 1, 1],
            [8.5, 0, 2, 0],
        ]
    )
    assert_same_features(f, extractor.extract_features(codes, frame["label"].to_numpy()))
    assert f["missing_rate"] == pytest.approx(4 / 32)
    assert f["categorical_share"] == pytest.approx(3 / 4)
    assert f["num_classes"] == 2.0
    assert_same_features(f, extractor.extract_features(frame.drop(columns="label"), frame["label"]))


def test_integer_coded_dataframe_column_counts_as_categorical_by_dtype() -> None:
    frame = pd.DataFrame(
        {
            "level": pd.Categorical(list(range(12)) * 2),  # 12 levels: too many for the heuristic
            "value": np.linspace(0, 1, 24),
            "y": [0, 1] * 12,
        }
    )
    f = DatasetFeatureExtractor().extract_from(frame, target="y")
    assert f["categorical_share"] == 0.5


def test_dataloader_of_images_gives_the_features_of_the_flat_arrays(digits) -> None:
    X, y = digits
    images = torch.from_numpy(X.reshape(-1, 1, 8, 8).astype(np.float32))
    loader = DataLoader(TensorDataset(images, torch.from_numpy(y)), batch_size=64, shuffle=True)
    extractor = DatasetFeatureExtractor()
    assert_same_features(extractor.extract_from(loader), extractor.extract_features(X, y))
    # The prototype's call: extract_features(train_loader), the labels inside the loader.
    assert_same_features(extractor.extract_features(loader), extractor.extract_features(X, y))
    assert_same_features(extractor.extract_features(loader.dataset), extractor.extract_from(loader))


class PairDataset(Dataset):
    """A map-style dataset of (image, label) pairs, optionally with ``targets``."""

    def __init__(self, X: np.ndarray, y: np.ndarray, *, with_targets: bool) -> None:
        self.X = torch.from_numpy(X.reshape(-1, 1, 8, 8).astype(np.float32))
        self.y = y
        self.reads = 0
        if with_targets:
            self.targets = list(y)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        self.reads += 1
        return self.X[i], int(self.y[i])


@pytest.mark.parametrize("with_targets", [True, False])
def test_map_style_dataset_reads_only_sampled_examples(digits, with_targets) -> None:
    X, y = digits
    dataset = PairDataset(X, y, with_targets=with_targets)
    extractor = DatasetFeatureExtractor(max_samples=300, seed=2)
    f = extractor.extract_from(dataset)
    assert_same_features(f, extractor.extract_features(X, y))
    # With a `targets` attribute only the sampled examples are read.
    assert dataset.reads == (300 if with_targets else len(y))


def test_fidelity_data_uses_its_training_pool_on_the_original_scale(digits) -> None:
    X, y = digits
    standardized = FidelityData(X, y, standardize=True, seed=0)
    raw_pool = FidelityData(X, y, standardize=False, seed=0)
    X_pool, y_pool, _, _ = raw_pool.arrays
    extractor = DatasetFeatureExtractor()
    expected = extractor.extract_features(X_pool, y_pool)
    assert_same_features(extractor.extract_from(raw_pool), expected)
    # Standardisation is undone up to float32 rounding.
    assert_same_features(extractor.extract_from(standardized), expected, rel=1e-6)
    assert expected["num_samples"] == standardized.n_train


def test_pair_and_list_inputs(make_classification_arrays) -> None:
    X, y = make_classification_arrays(n=50)
    extractor = DatasetFeatureExtractor()
    assert_same_features(extractor.extract_from((X, y)), extractor.extract_features(X, y))
    assert_same_features(
        extractor.extract_features(X.tolist(), y.tolist()), extractor.extract_features(X, y)
    )
    assert_same_features(
        extractor.extract_features(torch.from_numpy(X), torch.from_numpy(y)),
        extractor.extract_features(X, y),
    )


def test_string_labels_and_column_vector_y(make_classification_arrays) -> None:
    X, y = make_classification_arrays(n=60)
    names = np.array(["a", "b", "c"])[y]
    extractor = DatasetFeatureExtractor()
    assert_same_features(extractor.extract_features(X, names), extractor.extract_features(X, y))
    assert_same_features(
        extractor.extract_features(X, y.reshape(-1, 1)), extractor.extract_features(X, y)
    )


# --------------------------------------------------------------------------- vectors
def test_to_vector_has_fixed_order_and_width() -> None:
    f = DatasetFeatureExtractor().extract_features(HAND_X, HAND_Y)
    vector = DatasetFeatureExtractor.to_vector(dict(reversed(list(f.items()))))
    assert vector.shape == (len(DATASET_FEATURES),)
    assert vector[DATASET_FEATURES.index("num_classes")] == 3.0
    assert list(DatasetFeatureExtractor.get_feature_names_out()) == list(DATASET_FEATURES)


def test_params_and_repr() -> None:
    extractor = DatasetFeatureExtractor(max_samples=100, seed=4)
    assert extractor.get_params() == {
        "max_samples": 100,
        "max_features": 200,
        "seed": 4,
        "landmarkers": True,
    }
    assert repr(extractor).startswith("DatasetFeatureExtractor(max_samples=100")


# --------------------------------------------------------------------------- errors
X6, Y6 = HAND_X, HAND_Y


@pytest.mark.parametrize(
    ("params", "X", "y", "error", "match"),
    [
        ({}, np.empty((0, 3)), np.empty(0), ValueError, r"'X' parameter must have at least 2"),
        (
            {},
            np.empty((4, 0)),
            np.zeros(4),
            ValueError,
            r"'X' parameter must have at least 1 feature",
        ),
        ({}, X6, Y6[:5], ValueError, r"'X' and 'y' parameters .* same number .* Got 6 and 5"),
        ({}, X6[:, 0], Y6, ValueError, r"'X' parameter must have shape \(n_samples, n_features\)"),
        (
            {},
            X6,
            np.where(Y6 == 2, np.nan, Y6),
            ValueError,
            r"'y' parameter must not contain missing labels. Got 1",
        ),
        (
            {},
            X6,
            np.array([0, 1, None, 0, 1, 0], dtype=object),
            ValueError,
            r"'y' parameter .*missing",
        ),
        ({}, X6, np.zeros((6, 2)), ValueError, r"'y' parameter must be 1-D"),
        ({}, np.array([["a", "b"]] * 6), Y6, TypeError, r"'X' parameter must be numeric"),
        (
            {"max_samples": 5},
            X6,
            Y6,
            ValueError,
            r"'max_samples' parameter of DatasetFeatureExtractor must be an int >= 10. Got 5",
        ),
        ({"max_samples": 20.0}, X6, Y6, TypeError, r"'max_samples' parameter .* must be an int"),
        ({"max_features": 1}, X6, Y6, ValueError, r"'max_features' parameter .* >= 2. Got 1"),
        ({"seed": -1}, X6, Y6, ValueError, r"'seed' parameter .* >= 0. Got -1"),
        (
            {"landmarkers": "yes"},
            X6,
            Y6,
            TypeError,
            r"'landmarkers' parameter .* must be a bool. Got 'yes'",
        ),
    ],
)
def test_input_errors(params, X, y, error, match) -> None:
    with pytest.raises(error, match=match):
        DatasetFeatureExtractor(**params).extract_features(X, y)


def test_task_error() -> None:
    with pytest.raises(ValueError, match=r"'task' parameter must be one of .* Got 'binary'"):
        DatasetFeatureExtractor().extract_features(X6, Y6, task="binary")
    with pytest.raises(TypeError, match=r"'y' parameter must be numeric when task='regression'"):
        DatasetFeatureExtractor().extract_features(X6, np.array(list("abcabc")), task="regression")


def test_extract_from_errors() -> None:
    extractor = DatasetFeatureExtractor()
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    with pytest.raises(TypeError, match=r"'data' parameter must be an \(X, y\) tuple"):
        extractor.extract_from(object())
    # Arrays without labels: the error names the missing parameter.
    with pytest.raises(TypeError, match=r"'y' parameter of DatasetFeatureExtractor"):
        extractor.extract_features(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"'target' parameter must name the label column"):
        extractor.extract_from(frame)
    with pytest.raises(ValueError, match=r"'target' parameter must be a column .* Got 'label'"):
        extractor.extract_from(frame, target="label")


def test_to_vector_errors() -> None:
    with pytest.raises(ValueError, match=r"'features' parameter lacks 30 feature"):
        DatasetFeatureExtractor.to_vector({})
    with pytest.raises(TypeError, match=r"'features' parameter must be a mapping"):
        DatasetFeatureExtractor.to_vector([1.0, 2.0])  # type: ignore[arg-type]


class Stream(IterableDataset):
    def __init__(self, X: np.ndarray, y: np.ndarray) -> None:
        self.X, self.y = X, y

    def __iter__(self):
        for x, label in zip(self.X, self.y):
            yield torch.from_numpy(x), int(label)


def test_loader_over_an_iterable_dataset_reads_every_batch(make_classification_arrays) -> None:
    X, y = make_classification_arrays(n=120)
    extractor = DatasetFeatureExtractor()
    loader = DataLoader(Stream(X, y), batch_size=32)
    assert_same_features(extractor.extract_from(loader), extractor.extract_features(X, y))


def test_torch_input_errors(make_classification_arrays) -> None:
    X, y = make_classification_arrays(n=20)
    extractor = DatasetFeatureExtractor()
    with pytest.raises(TypeError, match=r"'data' parameter must be a map-style torch Dataset"):
        extractor.extract_from(Stream(X, y))

    class Singles(Dataset):
        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int):
            return torch.zeros(2)

    with pytest.raises(TypeError, match=r"'data' parameter must yield \(x, y\) pairs"):
        extractor.extract_from(Singles())


def test_nearest_neighbour_matches_scikit_learn() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    X_train, X_test = rng.standard_normal((400, 6)), rng.standard_normal((150, 6))
    y_train = rng.integers(0, 4, 400)
    expected = KNeighborsClassifier(n_neighbors=1).fit(X_train, y_train).predict(X_test)
    np.testing.assert_array_equal(
        dataset_module.nearest_neighbour_labels(X_train, y_train, X_test), expected
    )
