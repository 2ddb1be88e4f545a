"""What a study records about its dataset: a content fingerprint and meta-features.

:func:`describe_dataset` reads a :class:`~llp.data.FidelityData` (its fingerprint is
already known) or the training set a ``dataset_fn`` returns at fraction 1.0, streamed
once and never held in memory. A study that has a knowledge base passes ``cached``:
meta-features already stored for the same fingerprint are reused instead of being
computed again (the knowledge base caches them by fingerprint).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from llp._checks import MAX_MAGNITUDE
from llp.features._dataset import DATASET_FEATURES, DatasetFeatureExtractor
from llp.features._inputs import DataSample, sample_of_rows

#: The most a ``dataset_fn``'s training loader may yield when it is read to describe the
#: dataset: llp keeps 32 bytes per example (its hash), not the data, so these bound an
#: endless loader's time and memory, not the size of a real dataset.
MAX_LOADER_ROWS = 2**26
MAX_LOADER_BYTES = 256 * 2**30

#: ``cached(fingerprint)``: the meta-features stored for a dataset, or ``None``.
MetaFeatureCache = Callable[[str], Mapping[str, float] | None]


@dataclass(frozen=True)
class DatasetInfo:
    """What a study records about its dataset: the content fingerprint (the key that lets
    study N+1 find study N), a name, a group and the meta-features."""

    fingerprint: str
    name: str | None
    group: str | None
    n_samples: int | None
    meta_features: Mapping[str, float]
    #: Examples in the validation split (how noisy a validation score is), when known.
    n_val: int | None = None


def _usable(cached: Mapping[str, float] | None) -> bool:
    """Stored meta-features are reused only when they hold every feature this llp
    computes (an older llp may have stored fewer), each finite and of magnitude at most
    ``MAX_MAGNITUDE`` (an older llp stored up to the largest float for overflowing data,
    which the knowledge base no longer takes)."""
    return (
        cached is not None
        and set(DATASET_FEATURES) <= set(cached)
        and all(
            isinstance(cached[name], (int, float)) and abs(cached[name]) <= MAX_MAGNITUDE
            for name in DATASET_FEATURES
        )
    )


def describe_dataset(
    data: Any,
    *,
    name: str | None = None,
    group: str | None = None,
    seed: int = 0,
    cached: MetaFeatureCache | None = None,
    stored_sizes: Callable[[], Collection[int | None]] | None = None,
) -> DatasetInfo:
    """Fingerprint and meta-features of a :class:`~llp.data.FidelityData` or of the
    training set a ``dataset_fn`` returns at fraction 1.0.

    A ``dataset_fn``'s training loader is read once, batch by batch, and never held in
    memory: each row is hashed on its own (:class:`~llp.data.RowFingerprint`, so a
    shuffling loader gives the same key every time), and the meta-features come from a
    seeded sample of at most ``max_samples`` rows, those whose hashes come first (the
    same rows whatever the order and batching), plus every label.

    With ``cached``, meta-features stored for the same fingerprint are reused. Before
    this version, llp keyed a loader's data by a hash of all its rows sorted, read into
    memory at once; ``stored_sizes`` (the example counts of the datasets a knowledge base
    holds) lets a study recorded that way keep its key: when the new key is unknown but
    a stored dataset has as many examples, the loader is read once more the old way, and
    if the knowledge base holds that key, it is the dataset's key (so such a study still
    resumes, and its data is still left out of its own prior).
    """
    from llp.data import FidelityData

    extractor = DatasetFeatureExtractor(seed=seed)
    if isinstance(data, FidelityData):
        n = data.n_train + data.n_val
        stored = cached(data.fingerprint) if cached is not None else None
        features = dict(stored) if stored is not None and _usable(stored) else None
        return DatasetInfo(
            data.fingerprint,
            name,
            group,
            n,
            features if features is not None else extractor.extract_from(data),
            n_val=data.n_val,
        )
    train_loader, val_loader = _full_loaders(data)
    streamed = _read_once(train_loader, max_samples=extractor.max_samples, seed=seed)
    fingerprint = streamed.fingerprint
    stored = cached(fingerprint) if cached is not None else None
    if (
        stored is None
        and cached is not None
        and stored_sizes is not None
        and streamed.n_samples in stored_sizes()
    ):
        older = _sorted_rows_fingerprint(_full_loaders(data)[0])
        if (found := cached(older)) is not None:
            fingerprint, stored = older, found
    return DatasetInfo(
        fingerprint,
        name,
        group,
        streamed.n_samples,
        dict(stored)
        if stored is not None and _usable(stored)
        else extractor._features_of(streamed.sample()),
        n_val=_count_examples(val_loader),
    )


@dataclass(frozen=True)
class _Streamed:
    """What one pass over a training loader keeps: the key, the size, every label and
    the sampled rows (in the order of their sampling keys)."""

    fingerprint: str
    n_samples: int
    n_features: int
    labels: NDArray[Any]
    rows: NDArray[Any]
    positions: NDArray[np.intp]

    def sample(self) -> DataSample:
        return sample_of_rows(self.rows, self.labels, self.positions, n_features=self.n_features)


def _batches(train_loader: Any) -> Iterator[tuple[NDArray[Any], NDArray[Any]]]:
    """The ``(inputs, targets)`` batches of a training loader as numpy arrays, checked
    (tensor pairs, as many targets as inputs, one example and target shape and dtype);
    ``ValueError`` past :data:`MAX_LOADER_ROWS` or :data:`MAX_LOADER_BYTES`."""
    rows = read = 0
    layout: tuple[Any, ...] | None = None
    for batch in train_loader:
        if not (
            isinstance(batch, (tuple, list))
            and len(batch) >= 2
            and all(hasattr(b, "detach") for b in batch[:2])
        ):
            raise TypeError(
                "The train_loader of dataset_fn(1.0) must yield (inputs, targets) tensor "
                f"pairs. Got a {type(batch).__name__} instead."
            )
        x = np.asarray(batch[0].detach().cpu().numpy())
        y = np.asarray(batch[1].detach().cpu().numpy())
        if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
            raise ValueError(
                "The train_loader of dataset_fn(1.0) must yield as many targets as inputs. "
                f"Got {x.shape[0] if x.ndim else 0} inputs and "
                f"{y.shape[0] if y.ndim else 0} targets."
            )
        shapes = (x.shape[1:], x.dtype.str, y.shape[1:], y.dtype.str)
        if layout is None:
            layout = shapes
        elif shapes != layout:
            raise ValueError(
                "The train_loader of dataset_fn(1.0) must yield batches of one example shape "
                f"and one target shape. Got example {shapes[0]} {shapes[1]} and target "
                f"{shapes[2]} {shapes[3]} after {layout[0]} {layout[1]} and {layout[2]} "
                f"{layout[3]}."
            )
        rows += x.shape[0]
        read += x.nbytes + y.nbytes
        if rows > MAX_LOADER_ROWS or read > MAX_LOADER_BYTES:
            raise ValueError(
                f"The train_loader of dataset_fn(1.0) yielded more than {MAX_LOADER_ROWS:,} "
                f"examples or {MAX_LOADER_BYTES / 2**30:.0f} GiB: llp reads it once to "
                "fingerprint the dataset, and stops here (an endless loader, or data too "
                "large for this). Give a finite loader, or a FidelityData."
            )
        yield x, y
    if rows == 0:
        raise ValueError("The train_loader of dataset_fn(1.0) yielded no batches.")


def _read_once(train_loader: Any, *, max_samples: int, seed: int) -> _Streamed:
    """One pass: every row hashed, every label kept, and the ``max_samples`` rows with the
    smallest seeded sampling keys (the first 8 bytes of each row's hash, XOR a mask drawn
    from ``seed``: a uniform sample that does not depend on the order of the rows)."""
    from llp.data import RowFingerprint

    fingerprint = RowFingerprint()
    mask = np.random.default_rng([seed, 1]).integers(0, 2**63, dtype=np.uint64)
    labels: list[NDArray[Any]] = []
    keys = np.empty(0, dtype=np.uint64)
    kept: NDArray[Any] | None = None
    positions = np.empty(0, dtype=np.intp)
    for x, y in _batches(train_loader):
        digests = fingerprint.update(x, y)
        start = fingerprint.n_rows - x.shape[0]
        labels.append(y)
        rows = x.reshape(x.shape[0], -1)
        keys = np.concatenate([keys, digests[:, :8].copy().view(">u8").ravel() ^ mask])
        kept = rows if kept is None else np.concatenate([kept, rows])
        positions = np.concatenate([positions, np.arange(start, fingerprint.n_rows)])
        if keys.shape[0] > 2 * max_samples:
            keep = np.argpartition(keys, max_samples)[:max_samples]
            keys, kept, positions = keys[keep], kept[keep], positions[keep]
    assert kept is not None  # _batches refuses a loader without rows
    order = np.lexsort((positions, keys))[:max_samples]
    return _Streamed(
        fingerprint=fingerprint.hexdigest(),
        n_samples=fingerprint.n_rows,
        n_features=int(kept.shape[1]),
        labels=np.concatenate(labels),
        rows=kept[order],
        positions=positions[order].astype(np.intp),
    )


def _sorted_rows_fingerprint(train_loader: Any) -> str:
    """The key llp gave a loader's data before :class:`~llp.data.RowFingerprint`: every
    row read into memory, sorted, and hashed with :func:`~llp.data.dataset_fingerprint`.
    Kept only to recognise datasets stored that way (see :func:`describe_dataset`)."""
    from llp.data import dataset_fingerprint

    xs, ys = zip(*_batches(train_loader))
    X = np.concatenate(xs).reshape(sum(x.shape[0] for x in xs), -1)
    y = np.concatenate(ys)
    order = np.lexsort(np.column_stack([X, y.reshape(len(y), -1)]).T[::-1])
    return dataset_fingerprint(X[order], y[order])


def _count_examples(loader: Any) -> int | None:
    """Examples a validation loader holds (``len`` of its dataset, else counted)."""
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and hasattr(dataset, "__len__"):
        return len(dataset)
    try:
        return int(sum(len(batch[0]) for batch in loader))
    except Exception:  # an odd loader: the noise rule then falls back to the best score
        return None


def _full_loaders(dataset_fn: Any) -> tuple[Any, Any]:
    """The loaders ``dataset_fn(1.0)`` returns, checked like the trainer does."""
    out = dataset_fn(1.0)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        shown = f"a {type(out).__name__}"
        if isinstance(out, (tuple, list)):
            shown += f" of {len(out)}"
        raise TypeError(
            f"dataset_fn(1.0) must return a pair (train_loader, val_loader). Got {shown} instead."
        )
    if not hasattr(out[0], "__iter__"):
        raise TypeError(
            "dataset_fn(1.0) returned a train_loader that is not iterable "
            f"({type(out[0]).__name__}); it must yield (inputs, targets) batches."
        )
    return out[0], out[1]


__all__ = ["DatasetInfo", "MetaFeatureCache", "describe_dataset"]
