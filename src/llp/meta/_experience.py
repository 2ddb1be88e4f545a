from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from llp.space import Categorical, Int, SearchSpace
from llp.space._space import INACTIVE, _encode_value
from llp.training import EvaluationResult

#: Other spellings of common hyperparameter names, so knowledge transfers between spaces.
NAME_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "lr": ("learning_rate", "learning-rate", "eta"),
        "weight_decay": ("wd", "l2", "weight-decay"),
        "width": ("hidden_size", "hidden_dim", "hidden_units", "units"),
        "batch_size": ("batch", "batch-size"),
        "dropout": ("dropout_rate", "drop_rate", "p_dropout"),
        "optimizer": ("optim", "opt"),
        "momentum": ("beta1",),
    }
)

#: Model families with a slot of their own in the meta-model's input; others share the
#: last slot. The shipped knowledge's third family, ``"resmlp"``, is one of those others:
#: its prior was measured that way (BENCHMARKS.md), so a new family reads like it.
MODEL_FAMILIES: tuple[str, ...] = ("mlp", "cnn", "other")


@dataclass(frozen=True)
class Experience:
    """One past evaluation as the meta-model learns from it.

    Attributes
    ----------
    dataset : str
        Key of the dataset (its fingerprint).
    group : str or None
        Family of related datasets; leave-one-group-out validation holds out a whole group.
    meta_features : Mapping of str to float
        The dataset's meta-features (:class:`llp.features.DatasetFeatureExtractor`), kept
        as a read-only view: a ``types.MappingProxyType`` is kept as given (the
        evaluations of one dataset share it), any other mapping is copied.
    model_family : str or None
        ``"mlp"``, ``"cnn"``... so the meta-model adapts to the kind of model.
    study : str
        The study it belongs to (scores are compared within a study and fidelity).
    trial : int
        The configuration's number within the study.
    result : EvaluationResult
        What was measured (config, fidelity, curve, landscape, score, status).
    halving : bool, default=False
        The study is one successive-halving bracket (corpus v2's design): a trial that
        stopped on a lower fidelity lost to those that went on, so the meta-model ranks
        every trial (:meth:`MetaModelTrainer.final_ranks`), not only those that reached
        the top fidelity.
    """

    dataset: str
    group: str | None
    meta_features: Mapping[str, float]
    model_family: str | None
    study: str
    trial: int
    result: EvaluationResult
    halving: bool = False

    def __post_init__(self) -> None:
        # A read-only view is kept as given: the evaluations of one dataset share its
        # view (a prior holds tens of thousands), anything else is copied.
        if type(self.meta_features) is not MappingProxyType:
            object.__setattr__(self, "meta_features", MappingProxyType(dict(self.meta_features)))

    @classmethod
    def from_stored(cls, stored: Any, *, group: str | None = None) -> Experience:
        """From a :class:`llp.store.StoredEvaluation` (or anything with its fields)."""
        return cls(
            dataset=str(stored.dataset_fingerprint or stored.study),
            group=group if group is not None else getattr(stored, "dataset_group", None),
            meta_features=stored.meta_features,
            model_family=stored.model_family,
            study=stored.study,
            trial=int(stored.trial_number),
            result=stored.result,
        )


def family_vector(model_family: str | None) -> np.ndarray:
    """One-hot code of the model family over :data:`MODEL_FAMILIES`."""
    vec = np.zeros(len(MODEL_FAMILIES))
    name = (model_family or "other").lower()
    vec[MODEL_FAMILIES.index(name) if name in MODEL_FAMILIES else len(MODEL_FAMILIES) - 1] = 1.0
    return vec


def _lookup(config: Mapping[str, Any], name: str) -> Any:
    if name in config:
        return config[name]
    for alias in NAME_ALIASES.get(name, ()):
        if alias in config:
            return config[alias]
    for canonical, aliases in NAME_ALIASES.items():
        if name in aliases and canonical in config:
            return config[canonical]
    return None


def project_config(config: Mapping[str, Any], space: SearchSpace) -> dict[str, Any]:
    """Carry a configuration from another space into ``space`` as far as it goes.

    Each hyperparameter of ``space`` takes the value of the same name (or a known alias,
    see :data:`NAME_ALIASES`): numbers are clipped into the range (ints rounded), a
    categorical keeps the value only if it is one of its choices. Hyperparameters with no
    usable value, or inactive under the projected parents, are left out.
    """
    out: dict[str, Any] = {}
    for name in space._order:  # parents before children
        if not space.is_active(name, out):
            continue
        value = _lookup(config, name)
        if value is None:
            continue
        hp = space[name]
        if isinstance(hp, Categorical):
            match = [c for c in hp.choices if c == value and type(c) is type(value)]
            if match:
                out[name] = match[0]
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        v = float(value)
        if not math.isfinite(v):
            continue
        v = min(max(v, float(hp.low)), float(hp.high))
        out[name] = round(v) if isinstance(hp, Int) else v
    return {name: out[name] for name in space.names if name in out}


def encode_projected(config: Mapping[str, Any], space: SearchSpace) -> np.ndarray:
    """Encode a (possibly foreign) configuration in ``space``; missing entries are
    :data:`llp.space.INACTIVE`."""
    projected = project_config(config, space)
    vec = np.full(len(space), INACTIVE)
    index = {name: i for i, name in enumerate(space.names)}
    for name, value in projected.items():
        vec[index[name]] = _encode_value(space[name], value)
    return vec
