"""Feature mappings as fixed-width vectors for the meta-model."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray


def ordered_vector(features: Mapping[str, float], names: tuple[str, ...]) -> NDArray[np.float64]:
    """``features[name]`` for every name of ``names``, in that order, as float64."""
    if not isinstance(features, Mapping):
        raise TypeError(
            "The 'features' parameter must be a mapping of feature names to floats. "
            f"Got {type(features).__name__} instead."
        )
    absent = [name for name in names if name not in features]
    if absent:
        raise ValueError(
            f"The 'features' parameter lacks {len(absent)} feature(s): {absent[:5]}"
            f"{' ...' if len(absent) > 5 else ''}. Build it with the matching extractor."
        )
    return np.asarray([float(features[name]) for name in names], dtype=np.float64)
