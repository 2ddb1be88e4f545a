"""Search spaces: float (linear/log), int, categorical and conditional hyperparameters.

Built on ConfigSpace; :meth:`SearchSpace.from_configs` infers a bounded space from a plain
list of configuration dicts, and :meth:`SearchSpace.encode` turns a configuration into the
numeric vector the meta-model consumes.
"""

from __future__ import annotations

from llp.space._space import (
    INACTIVE,
    Categorical,
    Condition,
    Float,
    Int,
    SearchSpace,
    canonical_config_json,
)

__all__ = [
    "INACTIVE",
    "Categorical",
    "Condition",
    "Float",
    "Int",
    "SearchSpace",
    "canonical_config_json",
]
