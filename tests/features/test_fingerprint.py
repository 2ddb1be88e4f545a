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


def test_an_endless_train_loader_is_refused_before_it_exhausts_memory(monkeypatch) -> None:
    import itertools

    import pytest
    import torch

    import llp.features._describe as describe

    batch = (torch.zeros(64, 8), torch.zeros(64, dtype=torch.long))

    def dataset_fn(fraction: float):
        return itertools.repeat(batch), [batch]  # the train loader never ends

    monkeypatch.setattr(describe, "MAX_LOADER_BYTES", 1_000_000)  # stands in for 4 GiB
    with pytest.raises(ValueError, match=r"yielded more than 0 GiB: llp reads it once, whole"):
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
