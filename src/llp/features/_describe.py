"""What a study records about its dataset: a content fingerprint and meta-features.

:func:`describe_dataset` reads a :class:`~llp.data.FidelityData` (its fingerprint is
already known) or the training set a ``dataset_fn`` returns at fraction 1.0. A study
that has a knowledge base passes ``cached``: meta-features already stored for the same
fingerprint are reused instead of being computed again (the knowledge base caches them
by fingerprint).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llp.features._dataset import DATASET_FEATURES, DatasetFeatureExtractor

#: The most a ``dataset_fn``'s training loader may yield when it is read to describe the
#: dataset (an endless loader would otherwise grow memory until the process dies).
MAX_LOADER_BYTES = 4 * 2**30

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
    computes (an older llp may have stored fewer)."""
    return cached is not None and set(DATASET_FEATURES) <= set(cached)


def describe_dataset(
    data: Any,
    *,
    name: str | None = None,
    group: str | None = None,
    seed: int = 0,
    cached: MetaFeatureCache | None = None,
) -> DatasetInfo:
    """Fingerprint and meta-features of a :class:`~llp.data.FidelityData` or of the
    training set a ``dataset_fn`` returns at fraction 1.0 (read once). With ``cached``,
    meta-features stored for the same fingerprint are reused."""
    import numpy as np

    from llp.data import FidelityData, dataset_fingerprint

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
    xs, ys = [], []
    read = 0
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
        xs.append(np.asarray(batch[0].detach().cpu().numpy()))
        ys.append(np.asarray(batch[1].detach().cpu().numpy()))
        read += xs[-1].nbytes + ys[-1].nbytes
        if read > MAX_LOADER_BYTES:
            raise ValueError(
                f"The train_loader of dataset_fn(1.0) yielded more than "
                f"{MAX_LOADER_BYTES / 2**30:.0f} GiB: llp reads it once, whole, to "
                "fingerprint the dataset, and stops here rather than exhaust memory (an "
                "endless loader, or data too large for this). Give a finite loader, or a "
                "FidelityData."
            )
    if not xs:
        raise ValueError("The train_loader of dataset_fn(1.0) yielded no batches.")
    try:
        X = np.concatenate(xs).reshape(sum(x.shape[0] for x in xs), -1)
        y = np.concatenate(ys)
    except ValueError as exc:
        shapes = sorted({tuple(x.shape[1:]) for x in xs})
        raise ValueError(
            "The train_loader of dataset_fn(1.0) must yield batches of one example shape "
            f"and one target shape. Got example shapes {shapes[:4]} ({exc})."
        ) from exc
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            "The train_loader of dataset_fn(1.0) must yield as many targets as inputs. Got "
            f"{X.shape[0]} inputs and {y.shape[0]} targets."
        )
    # Loaders may shuffle: order the rows so the same data gets the same fingerprint.
    order = np.lexsort(np.column_stack([X, y.reshape(len(y), -1)]).T[::-1])
    fingerprint = dataset_fingerprint(X[order], y[order])
    stored = cached(fingerprint) if cached is not None else None
    return DatasetInfo(
        fingerprint,
        name,
        group,
        int(X.shape[0]),
        dict(stored)
        if stored is not None and _usable(stored)
        else extractor.extract_features(X, y),
        n_val=_count_examples(val_loader),
    )


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
