"""dataset_fingerprint: a content hash, stable for equal data, changed by any difference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from llp.features import dataset_fingerprint


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((50, 4)), rng.integers(0, 3, 50)


def test_equal_content_gives_the_same_key(data) -> None:
    X, y = data
    key = dataset_fingerprint(X, y)
    assert len(key) == 64 and int(key, 16) >= 0
    assert dataset_fingerprint(X.copy(), y.copy()) == key
    assert dataset_fingerprint(np.asfortranarray(X), y) == key  # memory layout is not content
    assert dataset_fingerprint(torch.from_numpy(X), torch.from_numpy(y)) == key
    assert dataset_fingerprint(pd.DataFrame(X), pd.Series(y)) == key


def test_one_changed_value_changes_the_key(data) -> None:
    X, y = data
    key = dataset_fingerprint(X, y)
    X2 = X.copy()
    X2[17, 2] = np.nextafter(X2[17, 2], np.inf)
    assert dataset_fingerprint(X2, y) != key
    y2 = y.copy()
    y2[3] = (y2[3] + 1) % 3
    assert dataset_fingerprint(X, y2) != key


def test_row_order_shape_and_dtype_are_part_of_the_key(data) -> None:
    X, y = data
    key = dataset_fingerprint(X, y)
    assert dataset_fingerprint(X[::-1], y[::-1]) != key
    assert dataset_fingerprint(X.reshape(50, 2, 2), y) != key
    assert dataset_fingerprint(X.astype(np.float32), y) != key
    # Swapping X and y bytes between the two parts cannot collide either.
    assert dataset_fingerprint(X, y) != dataset_fingerprint(y, X)


def test_string_and_object_labels_hash_their_text() -> None:
    X = np.zeros((3, 1))
    labels = np.array(["a", "b", "a"], dtype=object)
    key = dataset_fingerprint(X, labels)
    assert dataset_fingerprint(X, np.array(["a", "b", "a"], dtype=object)) == key
    assert dataset_fingerprint(X, np.array(["a", "b", "b"], dtype=object)) != key


def test_fingerprint_input_errors() -> None:
    with pytest.raises(ValueError, match=r"'y' parameter must be an array .* Got a scalar 3"):
        dataset_fingerprint(np.zeros((2, 2)), 3)
    with pytest.raises(TypeError, match=r"'X' parameter must hold numbers or strings"):
        dataset_fingerprint(np.zeros(2, dtype=[("a", "i8")]), [0, 1])


def test_an_endless_train_loader_is_refused(monkeypatch) -> None:
    import itertools

    import pytest
    import torch

    import llp.features._describe as describe

    batch = (torch.zeros(64, 8), torch.zeros(64, dtype=torch.long))

    def dataset_fn(fraction: float):
        return itertools.repeat(batch), [batch]  # the train loader never ends

    monkeypatch.setattr(describe, "MAX_LOADER_ROWS", 10_000)  # stands in for 2**26
    with pytest.raises(ValueError, match=r"yielded more than 10,000 examples or 256 GiB: llp"):
        describe.describe_dataset(dataset_fn)


def test_batches_of_different_widths_or_lengths_name_the_loader() -> None:
    import pytest
    import torch

    from llp.features import describe_dataset

    wide = (torch.zeros(4, 8), torch.zeros(4, dtype=torch.long))
    narrow = (torch.zeros(4, 5), torch.zeros(4, dtype=torch.long))
    short = (torch.zeros(4, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"dataset_fn\(1\.0\) must yield batches of one example"):
        describe_dataset(lambda f: ([wide, narrow], [wide]))
    with pytest.raises(ValueError, match=r"as many targets as inputs\. Got 4 inputs and 3"):
        describe_dataset(lambda f: ([short], [wide]))
    doubles = (torch.zeros(4, 8, dtype=torch.float64), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"one example shape and one target shape\. Got example "
                       r"\(8,\) <f8 and target \(\) <i8 after \(8,\) <f4"):  # fmt: skip
        describe_dataset(lambda f: ([wide, doubles], [wide]))


def test_row_fingerprint_ignores_order_and_batching_but_not_content() -> None:
    from llp.data import RowFingerprint

    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((40, 3)).astype(np.float32), rng.integers(0, 3, 40)

    def key(*batches) -> str:
        fp = RowFingerprint()
        for xb, yb in batches:
            fp.update(xb, yb)
        return fp.hexdigest()

    whole = key((X, y))
    order = rng.permutation(40)
    assert key((X[order][:7], y[order][:7]), (X[order][7:], y[order][7:])) == whole
    assert key((torch.from_numpy(X), torch.from_numpy(y))) == whole
    X2 = X.copy()
    X2[5, 1] = np.nextafter(X2[5, 1], np.float32(np.inf))  # float32 on numpy 1.x too
    y2 = y.copy()
    y2[5] = (y2[5] + 1) % 3
    swapped = y.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # the labels of two rows exchanged
    others = {
        key((X2, y)),
        key((X, y2)),
        key((X, swapped)) if y[0] != y[1] else "same labels",
        key((X[:39], y[:39])),  # one row less
        key((np.vstack([X, X[:1]]), np.append(y, y[:1]))),  # one row twice
        key((X.astype(np.float64), y)),
        key((X.reshape(40, 3, 1), y)),
    }
    assert whole not in others and len(others) == 7


def test_row_fingerprint_refuses_batches_of_another_layout_and_no_rows() -> None:
    from llp.data import RowFingerprint

    fp = RowFingerprint()
    fp.update(np.zeros((2, 3), np.float32), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match=r"keep one example shape and dtype across batches"):
        fp.update(np.zeros((2, 3), np.float64), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match=r"as many rows each\. Got shapes \(2, 3\) and \(3,\)"):
        fp.update(np.zeros((2, 3), np.float32), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"needs at least one row"):
        RowFingerprint().hexdigest()


def _loader_fn(X: np.ndarray, y: np.ndarray, *, shuffle: bool, batch_size: int = 50):
    from torch.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))

    def dataset_fn(fraction: float):
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle), [dataset[:10]]

    return dataset_fn


def test_a_shuffling_loader_gets_the_same_key_and_meta_features_every_time() -> None:
    from llp.features import describe_dataset

    rng = np.random.default_rng(2)
    X = rng.standard_normal((3000, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    y[:3] = 2  # a class so rare the 2000-row sample may miss it
    first = describe_dataset(_loader_fn(X, y, shuffle=True), seed=3)
    again = describe_dataset(_loader_fn(X, y, shuffle=True), seed=3)
    in_order = describe_dataset(_loader_fn(X, y, shuffle=False, batch_size=128), seed=3)
    assert first.fingerprint == again.fingerprint == in_order.fingerprint
    assert dict(first.meta_features) == dict(again.meta_features) == dict(in_order.meta_features)
    assert first.n_samples == 3000 and first.meta_features["num_samples"] == 3000.0
    assert first.meta_features["num_classes"] == 3.0  # every label is read, not a sample
    other_seed = describe_dataset(_loader_fn(X, y, shuffle=True), seed=4)
    assert other_seed.fingerprint == first.fingerprint  # the seed picks the sample only


def test_a_loaders_data_is_read_once_and_never_held_in_memory() -> None:
    import tracemalloc

    from llp.features import describe_dataset

    rng = np.random.default_rng(3)

    def peak_of(n_rows: int) -> tuple[int, int]:
        X = rng.standard_normal((n_rows, 200)).astype(np.float32)
        dataset_fn = _loader_fn(X, rng.integers(0, 2, n_rows), shuffle=True, batch_size=4096)
        tracemalloc.start()
        try:
            info = describe_dataset(dataset_fn)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert info.n_samples == n_rows
        return peak, X.nbytes

    peak_of(3000)  # imports done before anything is measured
    small, small_bytes = peak_of(15_000)
    large, large_bytes = peak_of(60_000)
    # Four times the rows (36 MB more data) add only the rows' 32-byte hashes and labels:
    # the sample of 2000 rows is the same size. (The whole set, sorted and widened to
    # float64, used to be held: several times the data.)
    assert large - small < (large_bytes - small_bytes) / 4, (small, large)
