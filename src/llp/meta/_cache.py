"""Fitted meta-models kept on disk, so a new process does not fit the same prior again.

Fitting the prior's forests on the shipped knowledge takes seconds, and every study start
and every ``llp predict`` fits the same ones from the same experiences. After a fit,
:class:`~llp.meta.MetaModelTrainer` writes its models here, keyed by a digest of
everything the fit depends on (the experiences, the settings, llp's cache format and
scikit-learn's version); a later process with the same key reads them back instead of
fitting, and the experiences' final ranks with them (ranking every study of the prior
again took more time than reading the models back). What is stored is plain arrays
(:class:`~llp.meta._frozen.FrozenForest`, the ranks) and JSON in one ``.npz`` file, read
with ``allow_pickle=False`` and checked on read; a file that cannot be read is ignored
(the models are fitted again and the file replaced).

Where: the cache folder of :mod:`llp._cache` (``$LLP_CACHE_DIR``; empty turns it off). At most
:data:`MAX_ENTRIES` fits are kept, the least recently used dropped first. The cache is an
optimisation only: when it cannot be written (a read-only home, a full disk) nothing
fails.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from llp._cache import CACHE_ENV, UNREADABLE, cache_dir, read_arrays, touch, write_arrays
from llp.meta._estimators import HyperparameterPredictor, PerformanceSurrogate
from llp.meta._frozen import ARRAY_NAMES, FrozenForest

if TYPE_CHECKING:
    from llp.space import SearchSpace

#: Version of the file layout (part of every key). 2: with the final ranks.
FORMAT = 2
#: Fits kept at most.
MAX_ENTRIES = 8


def key_salt() -> str:
    """What, besides the experiences and settings, a fit depends on."""
    import sklearn

    return f"llp-meta-cache-{FORMAT}/scikit-learn-{sklearn.__version__}"


def save(
    key: str,
    predictor: HyperparameterPredictor | None,
    surrogate: PerformanceSurrogate | None,
    skipped: Mapping[str, int],
    ranks: tuple[np.ndarray, np.ndarray],
) -> Path | None:
    """Write one fit, with the final ranks of the experiences it was fitted on
    (``MetaModelTrainer._rank_table``); returns its file, or ``None`` when the cache is
    off or cannot be written (never raises for that)."""
    folder = cache_dir()
    if folder is None:
        return None
    arrays: dict[str, np.ndarray] = {"r.position": ranks[0], "r.rank": ranks[1]}
    meta: dict[str, Any] = {"format": FORMAT, "key": key, "skipped": dict(skipped)}
    if predictor is not None:
        models: list[dict[str, Any]] = []
        for j, model in enumerate(predictor.models_):
            if isinstance(model, FrozenForest):
                models.append({"kind": "forest", "n_features_in": model.n_features_in_})
                arrays.update({f"p{j}.{n}": v for n, v in model.arrays().items()})
            else:
                models.append({"kind": "constant", "value": float(model)})
        meta["predictor"] = {
            "params": {k: v for k, v in predictor.get_params().items() if k != "space"},
            "n_features_in": int(predictor.n_features_in_),
            "n_outputs": int(predictor.n_outputs_),
            "single_output": bool(predictor._single_output),
            "models": models,
        }
    if surrogate is not None:
        arrays.update({f"s.{n}": v for n, v in surrogate.forest_.arrays().items()})
        meta["surrogate"] = {
            "params": surrogate.get_params(),
            "n_features_in": int(surrogate.n_features_in_),
        }
    arrays["meta"] = np.array(json.dumps(meta))
    return write_arrays(folder / f"{key}.npz", arrays, compressed=True, keep=MAX_ENTRIES)


def load(
    key: str, space: SearchSpace
) -> (
    tuple[
        HyperparameterPredictor | None,
        PerformanceSurrogate | None,
        dict[str, int],
        tuple[np.ndarray, np.ndarray],
    ]
    | None
):
    """The fit stored under ``key`` (what :func:`save` was given), or ``None`` when there
    is none or it cannot be read."""
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        arrays = read_arrays(path)
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") != FORMAT or meta.get("key") != key:
            return None
        predictor = _predictor(meta.get("predictor"), arrays, space)
        surrogate = _surrogate(meta.get("surrogate"), arrays)
        skipped = {str(k): int(v) for k, v in dict(meta.get("skipped", {})).items()}
        ranks = (arrays["r.position"], arrays["r.rank"])
        if ranks[0].dtype.kind != "i" or ranks[1].dtype.kind != "f":
            raise TypeError("final ranks of another type")
    except UNREADABLE:
        return None  # a damaged or foreign file: fitted again and replaced
    touch(path)
    return predictor, surrogate, skipped, ranks


def _forest(arrays: Mapping[str, np.ndarray], prefix: str, n_features_in: int) -> FrozenForest:
    return FrozenForest({n: arrays[f"{prefix}.{n}"] for n in ARRAY_NAMES}, n_features_in)


def _predictor(
    meta: Any, arrays: Mapping[str, np.ndarray], space: SearchSpace
) -> HyperparameterPredictor | None:
    if meta is None:
        return None
    model = HyperparameterPredictor(space, **meta["params"])
    models: list[Any] = []
    for j, entry in enumerate(meta["models"]):
        if entry["kind"] == "forest":
            models.append(_forest(arrays, f"p{j}", int(entry["n_features_in"])))
        elif entry["kind"] == "constant":
            models.append(float(entry["value"]))
        else:
            raise ValueError(f"unknown model kind {entry['kind']!r}")
    if len(models) != int(meta["n_outputs"]) or len(models) != len(space):
        raise ValueError("the stored predictor does not fit this space")
    model.models_ = models
    model.n_outputs_ = int(meta["n_outputs"])
    model.n_features_in_ = int(meta["n_features_in"])
    model._single_output = bool(meta["single_output"])
    return model


def _surrogate(meta: Any, arrays: Mapping[str, np.ndarray]) -> PerformanceSurrogate | None:
    if meta is None:
        return None
    model = PerformanceSurrogate(**meta["params"])
    model.n_features_in_ = int(meta["n_features_in"])
    model.forest_ = _forest(arrays, "s", model.n_features_in_)
    return model


__all__ = ["CACHE_ENV", "FORMAT", "MAX_ENTRIES", "cache_dir", "load", "save"]
