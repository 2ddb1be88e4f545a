"""Parameter checks shared by the public entry points.

Each check raises an error that names the parameter, shows the value and states the rule,
in the style of scikit-learn's parameter validation.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

#: The largest magnitude a stored number may have (a score, a cost, a meta-feature): the
#: meta-model reads stored values as float32 (about 3.4e38), and no score, cost or
#: prediction is anywhere near this. The knowledge base, its files and the dataset
#: meta-features (which clamp to it) share it.
MAX_MAGNITUDE = 1e30


def check_int(name: str, value: Any, *, min_value: int | None = None, owner: str = "") -> int:
    """Return ``value`` as an int or raise naming ``name`` and the rule."""
    where = f" of {owner}" if owner else ""
    rule = f"an int >= {min_value}" if min_value is not None else "an int"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"The '{name}' parameter{where} must be {rule}. Got {value!r} instead.")
    if min_value is not None and value < min_value:
        raise ValueError(f"The '{name}' parameter{where} must be {rule}. Got {value!r} instead.")
    return int(value)


def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    owner: str = "",
) -> float:
    """Return ``value`` as a finite float inside the given interval or raise."""
    where = f" of {owner}" if owner else ""
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    interval = (
        f" in {left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        if low is not None or high is not None
        else ""
    )
    rule = f"a finite float{interval}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"The '{name}' parameter{where} must be {rule}. Got {value!r} instead.")
    v = float(value)
    bad = not math.isfinite(v)
    if low is not None:
        bad = bad or (v < low if low_inclusive else v <= low)
    if high is not None:
        bad = bad or (v > high if high_inclusive else v >= high)
    if bad:
        raise ValueError(f"The '{name}' parameter{where} must be {rule}. Got {value!r} instead.")
    return v


def check_fraction(name: str, value: Any, *, owner: str = "") -> float:
    """A data fraction: a float in (0, 1]."""
    return check_real(name, value, low=0.0, high=1.0, low_inclusive=False, owner=owner)
