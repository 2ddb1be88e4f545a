from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:
    from ConfigSpace import ConfigurationSpace

#: Value an inactive conditional hyperparameter takes in an encoded vector.
INACTIVE = -1.0

# A float range is put on a log scale when its values are positive and span this ratio.
_LOG_SPAN = 10.0


@dataclass(frozen=True)
class Float:
    """A real-valued hyperparameter on ``[low, high]``, sampled uniformly or log-uniformly."""

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_bounds(self.name, self.low, self.high, self.log)


@dataclass(frozen=True)
class Int:
    """An integer hyperparameter on ``[low, high]`` (both included)."""

    name: str
    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(
                    f"The '{bound}' of Int hyperparameter {self.name!r} must be an int. "
                    f"Got {value!r} instead."
                )
        _check_bounds(self.name, self.low, self.high, self.log)


@dataclass(frozen=True)
class Categorical:
    """A hyperparameter taking one of ``choices`` (strings, bools, numbers)."""

    name: str
    choices: tuple[Hashable, ...]

    def __post_init__(self) -> None:
        _check_name(self.name)
        choices = tuple(self.choices)
        object.__setattr__(self, "choices", choices)
        if len(choices) == 0:
            raise ValueError(
                f"The 'choices' of Categorical hyperparameter {self.name!r} must not be empty."
            )
        if len(set(choices)) != len(choices) or len({repr(c) for c in choices}) != len(choices):
            raise ValueError(
                f"The 'choices' of Categorical hyperparameter {self.name!r} must be distinct. "
                f"Got {choices!r} instead."
            )


@dataclass(frozen=True)
class Condition:
    """``child`` is active only when ``parent`` is active and takes one of ``values``."""

    child: str
    parent: str
    values: tuple[Hashable, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        if len(self.values) == 0:
            raise ValueError(f"The 'values' of the condition on {self.child!r} must not be empty.")


Hyperparameter = Union[Float, Int, Categorical]  # noqa: UP007 - a runtime alias on 3.10


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"A hyperparameter name must be a non-empty str. Got {name!r} instead.")


def _check_bounds(name: str, low: float, high: float, log: bool) -> None:
    for bound, value in (("low", low), ("high", high)):
        if not math.isfinite(float(value)):
            raise ValueError(
                f"The '{bound}' of hyperparameter {name!r} must be finite. Got {value!r} instead."
            )
    if not low < high:
        raise ValueError(
            f"Hyperparameter {name!r} has an empty range: 'low' must be < 'high'. "
            f"Got low={low!r}, high={high!r} instead."
        )
    if log and low <= 0:
        raise ValueError(
            f"Hyperparameter {name!r} is on a log scale, so 'low' must be > 0. "
            f"Got low={low!r} instead."
        )


def _to_native(value: Any) -> Any:
    """Numpy scalars become the matching Python scalars so configs serialise cleanly."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def canonical_config_json(config: Mapping[str, Any]) -> str:
    """A canonical JSON text of ``config``: sorted keys, native types, no whitespace.

    Two configurations are the same trial exactly when their canonical texts are equal.
    """
    return json.dumps(
        {str(k): _to_native(v) for k, v in config.items()}, sort_keys=True, separators=(",", ":")
    )


class SearchSpace:
    """A search space of float, int and categorical hyperparameters with conditions.

    Parameters
    ----------
    hyperparameters : sequence of Float, Int or Categorical
        The hyperparameters, in the order used by :meth:`encode`.
    conditions : sequence of Condition, default=()
        Activation conditions. A child with several conditions is active when all hold.

    Examples
    --------
    >>> from llp.space import Categorical, Condition, Float, SearchSpace
    >>> space = SearchSpace(
    ...     [Float("lr", 1e-4, 1e-1, log=True), Categorical("optimizer", ("sgd", "adam")),
    ...      Float("momentum", 0.0, 0.99)],
    ...     conditions=[Condition("momentum", "optimizer", ("sgd",))],
    ... )
    >>> [sorted(c) for c in space.sample(2, seed=0)]  # doctest: +SKIP
    """

    def __init__(
        self,
        hyperparameters: Sequence[Hyperparameter],
        conditions: Sequence[Condition] = (),
    ) -> None:
        hps = tuple(hyperparameters)
        if len(hps) == 0:
            raise ValueError("The 'hyperparameters' of a SearchSpace must not be empty.")
        for hp in hps:
            if not isinstance(hp, (Float, Int, Categorical)):
                raise TypeError(
                    f"Every hyperparameter must be a Float, Int or Categorical. Got {hp!r} instead."
                )
        names = [hp.name for hp in hps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Hyperparameter names must be unique. Repeated: {duplicates}.")
        self._hps: tuple[Hyperparameter, ...] = hps
        self._by_name: dict[str, Hyperparameter] = {hp.name: hp for hp in hps}
        self._conditions: tuple[Condition, ...] = tuple(conditions)
        for cond in self._conditions:
            for role, name in (("child", cond.child), ("parent", cond.parent)):
                if name not in self._by_name:
                    raise ValueError(
                        f"The {role} {name!r} of a condition is not a hyperparameter of the "
                        f"space. Known: {names}."
                    )
            parent = self._by_name[cond.parent]
            for value in cond.values:
                if not self._is_legal(parent, value):
                    raise ValueError(
                        f"The condition on {cond.child!r} asks {cond.parent!r} == {value!r}, "
                        f"which {cond.parent!r} can never take."
                    )
        self._order = self._activation_order()
        self._cs: ConfigurationSpace | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_configs(cls, configs: Sequence[Mapping[str, Any]]) -> SearchSpace:
        """Infer a bounded space from a list of configuration dicts.

        Each key becomes a hyperparameter: strings and bools become a
        :class:`Categorical` of the values seen; ints an :class:`Int` and floats a
        :class:`Float` on the observed ``[min, max]``, on a log scale when every value is
        positive and the range spans a decade or more. A key with a single value becomes a
        one-choice :class:`Categorical`, so its type is kept.

        Raises
        ------
        ValueError
            If ``configs`` is empty, the configs do not all have the same keys, or a value
            is missing, non-finite or of an unsupported type.
        """
        if isinstance(configs, Mapping) or not isinstance(configs, Sequence):
            raise TypeError(
                "The 'configs' parameter must be a list of dicts. "
                f"Got {type(configs).__name__} instead."
            )
        if len(configs) == 0:
            raise ValueError("The 'configs' parameter must be a non-empty list of dicts. Got [].")
        for i, config in enumerate(configs):
            if not isinstance(config, Mapping):
                raise TypeError(
                    f"The 'configs' parameter must be a list of dicts; configs[{i}] is a "
                    f"{type(config).__name__}."
                )
            if len(config) == 0:
                raise ValueError(f"configs[{i}] is empty; every config needs at least one key.")
        keys = list(configs[0].keys())
        for i, config in enumerate(configs[1:], start=1):
            if set(config.keys()) != set(keys):
                missing = sorted(set(keys) - set(config.keys()))
                extra = sorted(set(config.keys()) - set(keys))
                raise ValueError(
                    f"All configs must have the same keys: configs[{i}] differs from "
                    f"configs[0] (missing {missing}, extra {extra})."
                )
        hps: list[Hyperparameter] = []
        for key in keys:
            if not isinstance(key, str) or not key:
                raise TypeError(f"Config keys must be non-empty strings. Got {key!r} instead.")
            hps.append(_infer_hyperparameter(key, [_to_native(c[key]) for c in configs]))
        return cls(hps)

    # ------------------------------------------------------------------ plain data
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: ``{"hyperparameters": [...], "conditions": [...]}``."""
        hps: list[dict[str, Any]] = []
        for hp in self._hps:
            if isinstance(hp, Categorical):
                hps.append(
                    {
                        "name": hp.name,
                        "type": "categorical",
                        "choices": [_to_native(c) for c in hp.choices],
                    }
                )
            else:
                hps.append(
                    {
                        "name": hp.name,
                        "type": "float" if isinstance(hp, Float) else "int",
                        "low": _to_native(hp.low),
                        "high": _to_native(hp.high),
                        "log": hp.log,
                    }
                )
        conds = [
            {"child": c.child, "parent": c.parent, "values": list(c.values)}
            for c in self._conditions
        ]
        return {"hyperparameters": hps, "conditions": conds}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Rebuild a space from :meth:`to_dict` output (e.g. read from TOML or JSON).

        Raises
        ------
        ValueError
            Naming the entry and the rule when the description is malformed.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("hyperparameters"), list):
            raise ValueError("A space description must be a mapping with a 'hyperparameters' list.")
        hps: list[Hyperparameter] = []
        for i, item in enumerate(data["hyperparameters"]):
            where = f"hyperparameters[{i}]"
            if not isinstance(item, Mapping) or "name" not in item or "type" not in item:
                raise ValueError(f"{where} must be a mapping with 'name' and 'type'.")
            kind = item["type"]
            try:
                if kind == "categorical":
                    hps.append(Categorical(item["name"], tuple(item["choices"])))
                elif kind in ("float", "int"):
                    make = Float if kind == "float" else Int
                    hps.append(
                        make(
                            item["name"],
                            item["low"],
                            item["high"],
                            log=bool(item.get("log", False)),
                        )
                    )
                else:
                    raise ValueError(
                        f"'type' must be 'float', 'int' or 'categorical'. Got {kind!r}."
                    )
            except KeyError as exc:
                raise ValueError(f"{where} ({kind}) is missing the key {exc}.") from None
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}: {exc}") from None
        conditions = []
        for i, item in enumerate(data.get("conditions", []) or []):
            if not isinstance(item, Mapping) or not {"child", "parent", "values"} <= set(item):
                raise ValueError(
                    f"conditions[{i}] must be a mapping with 'child', 'parent' and 'values'."
                )
            conditions.append(Condition(item["child"], item["parent"], tuple(item["values"])))
        return cls(hps, conditions)

    # ------------------------------------------------------------------ properties
    @property
    def hyperparameters(self) -> tuple[Hyperparameter, ...]:
        """The hyperparameters, in encoding order."""
        return self._hps

    @property
    def names(self) -> tuple[str, ...]:
        """The hyperparameter names, in encoding order."""
        return tuple(hp.name for hp in self._hps)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return self._conditions

    def __getitem__(self, name: str) -> Hyperparameter:
        return self._by_name[name]

    def __len__(self) -> int:
        return len(self._hps)

    def __repr__(self) -> str:
        return f"SearchSpace({list(self._hps)!r}, conditions={list(self._conditions)!r})"

    @property
    def configspace(self) -> ConfigurationSpace:
        """The equivalent :class:`ConfigSpace.ConfigurationSpace` (built on first use)."""
        if self._cs is None:
            self._cs = self._build_configspace()
        return self._cs

    # ------------------------------------------------------------------ activity
    def is_active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Whether hyperparameter ``name`` is active given the (partial) ``config``."""
        for cond in self._conditions:
            if cond.child != name:
                continue
            if not self.is_active(cond.parent, config):
                return False
            if cond.parent not in config or not any(
                _same_value(config[cond.parent], v) for v in cond.values
            ):
                return False
        return True

    def active_names(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        """Names of the hyperparameters active in ``config``, in encoding order."""
        return tuple(name for name in self.names if self.is_active(name, config))

    # ------------------------------------------------------------------ validation
    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``config`` against the space and return it with native Python values.

        Raises
        ------
        ValueError
            Naming the key and the rule when a key is unknown, an active key is missing,
            an inactive key is present or a value is out of range or not a legal choice.
        """
        if not isinstance(config, Mapping):
            raise TypeError(f"A config must be a dict. Got {type(config).__name__} instead.")
        unknown = sorted(set(config) - set(self.names))
        if unknown:
            raise ValueError(
                f"Config has keys {unknown} that are not hyperparameters of the space "
                f"{list(self.names)}."
            )
        out: dict[str, Any] = {}
        for name in self._order:
            active = self.is_active(name, config)
            if not active:
                if name in config:
                    raise ValueError(
                        f"Hyperparameter {name!r} is inactive for this config (its condition "
                        "does not hold) and must be left out."
                    )
                continue
            if name not in config:
                raise ValueError(f"Config is missing the active hyperparameter {name!r}.")
            hp = self._by_name[name]
            value = _to_native(config[name])
            if not self._is_legal(hp, value):
                raise ValueError(
                    f"Value {value!r} of hyperparameter {name!r} is not legal: {_describe(hp)}."
                )
            out[name] = _coerce(hp, value)
        return {name: out[name] for name in self.names if name in out}

    @staticmethod
    def _is_legal(hp: Hyperparameter, value: Any) -> bool:
        if isinstance(hp, Categorical):
            return any(_same_value(value, c) for c in hp.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value):
            return False
        if isinstance(hp, Int) and float(value) != round(float(value)):
            return False
        tol = 1e-12 * max(1.0, abs(hp.high))
        return hp.low - tol <= value <= hp.high + tol

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, *, seed: int) -> list[dict[str, Any]]:
        """Draw ``n`` configurations; the same ``seed`` gives the same configurations."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"The 'n' parameter must be an int >= 0. Got {n!r} instead.")
        if n == 0:
            return []
        cs = self.configspace
        cs.seed(int(seed))
        drawn = [cs.sample_configuration()] if n == 1 else cs.sample_configuration(size=int(n))
        return [self._from_configspace(dict(c)) for c in drawn]

    # ------------------------------------------------------------------ encoding
    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """Encode ``config`` as a float vector, one entry per hyperparameter.

        Floats and ints map to ``[0, 1]`` (log-aware), a categorical to
        ``index / (n_choices - 1)`` (0 for a single choice), and an inactive
        hyperparameter to :data:`INACTIVE` (-1).
        """
        valid = self.validate(config)
        vec = np.full(len(self._hps), INACTIVE, dtype=np.float64)
        for i, hp in enumerate(self._hps):
            if hp.name in valid:
                vec[i] = _encode_value(hp, valid[hp.name])
        return vec

    def encode_many(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode several configurations into a ``(len(configs), len(space))`` array."""
        if len(configs) == 0:
            return np.zeros((0, len(self._hps)))
        return np.vstack([self.encode(c) for c in configs])

    def decode(self, vector: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """Turn a vector (e.g. a model's prediction) back into a legal configuration.

        Entries are clipped into ``[0, 1]``; ints and categoricals are rounded to the
        nearest legal value; hyperparameters whose conditions fail are left out.
        """
        vec = np.asarray(vector, dtype=np.float64).ravel()
        if vec.shape[0] != len(self._hps):
            raise ValueError(
                f"The 'vector' must have one entry per hyperparameter ({len(self._hps)}). "
                f"Got {vec.shape[0]} entries instead."
            )
        if np.isnan(vec).any():
            raise ValueError("The 'vector' must not contain NaN.")
        index = {hp.name: i for i, hp in enumerate(self._hps)}
        config: dict[str, Any] = {}
        for name in self._order:
            if not self.is_active(name, config):
                continue
            hp = self._by_name[name]
            config[name] = _decode_value(hp, float(vec[index[name]]))
        return {name: config[name] for name in self.names if name in config}

    # ------------------------------------------------------------------ internals
    def _activation_order(self) -> list[str]:
        """Names ordered so that every parent comes before its children."""
        parents: dict[str, set[str]] = {hp.name: set() for hp in self._hps}
        for cond in self._conditions:
            parents[cond.child].add(cond.parent)
        order: list[str] = []
        placed: set[str] = set()
        while len(order) < len(self._hps):
            ready = [n for n in self.names if n not in placed and parents[n] <= placed]
            if not ready:
                cycle = sorted(n for n in self.names if n not in placed)
                raise ValueError(f"The conditions form a cycle among {cycle}.")
            order.extend(ready)
            placed.update(ready)
        return order

    def _build_configspace(self) -> ConfigurationSpace:
        from ConfigSpace import (
            AndConjunction,
            ConfigurationSpace,
            EqualsCondition,
            InCondition,
        )
        from ConfigSpace import (
            Categorical as CSCategorical,
        )
        from ConfigSpace import (
            Float as CSFloat,
        )
        from ConfigSpace import (
            Integer as CSInteger,
        )

        cs = ConfigurationSpace()
        for hp in self._hps:
            if isinstance(hp, Float):
                cs.add(CSFloat(hp.name, (float(hp.low), float(hp.high)), log=hp.log))
            elif isinstance(hp, Int):
                cs.add(CSInteger(hp.name, (int(hp.low), int(hp.high)), log=hp.log))
            else:
                # ConfigSpace holds the choice's index; values map back through it, so
                # bools, ints and strings keep their Python types.
                cs.add(CSCategorical(hp.name, list(range(len(hp.choices)))))
        by_child: dict[str, list[Any]] = {}
        for cond in self._conditions:
            child, parent = cs[cond.child], cs[cond.parent]
            values = [self._cs_value(self._by_name[cond.parent], v) for v in cond.values]
            made = (
                EqualsCondition(child, parent, values[0])
                if len(values) == 1
                else InCondition(child, parent, values)
            )
            by_child.setdefault(cond.child, []).append(made)
        for conds in by_child.values():
            cs.add(conds[0] if len(conds) == 1 else AndConjunction(*conds))
        return cs

    @staticmethod
    def _cs_value(hp: Hyperparameter, value: Any) -> Any:
        if isinstance(hp, Categorical):
            return next(i for i, c in enumerate(hp.choices) if _same_value(value, c))
        return value

    def _from_configspace(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for hp in self._hps:
            if hp.name not in values:
                continue
            raw = _to_native(values[hp.name])
            if isinstance(hp, Categorical):
                out[hp.name] = hp.choices[int(raw)]
            else:
                out[hp.name] = _coerce(hp, raw)
        return out


def _same_value(a: Any, b: Any) -> bool:
    """Equality that keeps ``True`` apart from ``1`` and ``"1"`` apart from ``1``."""
    a, b = _to_native(a), _to_native(b)
    return (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


def _coerce(hp: Hyperparameter, value: Any) -> Any:
    if isinstance(hp, Float):
        return float(min(max(float(value), hp.low), hp.high))
    if isinstance(hp, Int):
        return int(min(max(round(float(value)), hp.low), hp.high))
    return next(c for c in hp.choices if _same_value(value, c))


def _describe(hp: Hyperparameter) -> str:
    if isinstance(hp, Categorical):
        return f"it must be one of {list(hp.choices)!r}"
    kind = "an int" if isinstance(hp, Int) else "a finite number"
    scale = ", log scale" if hp.log else ""
    return f"it must be {kind} in [{hp.low!r}, {hp.high!r}]{scale}"


def _encode_value(hp: Hyperparameter, value: Any) -> float:
    if isinstance(hp, Categorical):
        if len(hp.choices) == 1:
            return 0.0
        index = next(i for i, c in enumerate(hp.choices) if _same_value(value, c))
        return index / (len(hp.choices) - 1)
    low, high, v = float(hp.low), float(hp.high), float(value)
    if isinstance(hp, Int):
        # Ints are widened by half a step on each side so every integer owns an
        # equal-width cell of [0, 1] and decoding rounds back to the same integer.
        low, high = low - 0.4999, high + 0.4999
    if hp.log:
        low, high, v = math.log(low), math.log(high), math.log(v)
    return min(max((v - low) / (high - low), 0.0), 1.0)


def _decode_value(hp: Hyperparameter, unit: float) -> Any:
    u = min(max(unit, 0.0), 1.0)
    if isinstance(hp, Categorical):
        if len(hp.choices) == 1:
            return hp.choices[0]
        return hp.choices[round(u * (len(hp.choices) - 1))]
    low, high = float(hp.low), float(hp.high)
    if isinstance(hp, Int):
        low, high = low - 0.4999, high + 0.4999
    if hp.log:
        value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        value = low + u * (high - low)
    return _coerce(hp, value)


def _infer_hyperparameter(key: str, values: list[Any]) -> Hyperparameter:
    kinds = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise ValueError(
                    f"Config key {key!r} has the non-finite value {v!r}; values must be finite."
                )
            kinds.add("float")
        elif isinstance(v, str):
            kinds.add("str")
        elif v is None:
            raise ValueError(
                f"Config key {key!r} has the value None; every config needs a value for it."
            )
        else:
            raise TypeError(
                f"Config key {key!r} has a value of unsupported type {type(v).__name__} "
                f"({v!r}); use str, bool, int or float."
            )
    if kinds <= {"int", "float"} and kinds:
        low, high = min(values), max(values)
        if low == high:
            return Categorical(key, (values[0],))
        log = low > 0 and high / low >= _LOG_SPAN
        if kinds == {"int"}:
            return Int(key, int(low), int(high), log=log)
        return Float(key, float(low), float(high), log=log)
    if len(kinds) == 1:
        seen: list[Any] = []
        for v in values:
            if not any(_same_value(v, s) for s in seen):
                seen.append(v)
        if kinds == {"bool"}:
            seen = sorted(seen)
        return Categorical(key, tuple(seen))
    raise TypeError(
        f"Config key {key!r} mixes value types {sorted(kinds)}; one key must hold one type."
    )
