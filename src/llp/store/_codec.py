"""Turning records into rows and rows back into the same frozen records.

Everything structured is JSON text (:func:`json.dumps` / :func:`json.loads`), never a
pickle. Floats survive exactly: JSON writes the shortest text that reads back as the
same double, and the float columns are double precision on every backend. A float JSON
cannot hold (a diverged loss, a landscape probe that failed) is written by its name,
``"NaN"``, ``"Infinity"`` or ``"-Infinity"``, as in every llp file (:data:`NONFINITE_NAMES`;
since schema 3, which rewrote the bare ``NaN`` tokens of earlier knowledge bases).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, get_args

import numpy as np

from llp._checks import check_int
from llp._decisions import DECISION_ACTIONS
from llp.space import canonical_config_json
from llp.store._file_records import (
    CURVE_FIELDS,
    MAX_INT32,
    MAX_TEXT,
    DatasetRecord,
    EvaluationRecord,
    ExportAnswer,
    ExportDecision,
    ExportEvaluation,
    check_declared,
    field_names,
    float_from_json,
    floats,
)
from llp.store._records import DecisionRecord, NewAnswer, NewEvaluation
from llp.training import Curve, EvaluationResult, EvaluationStatus, Fidelity, Objective

#: Columns of ``evaluations`` that say what was measured and why; two writes of the
#: same key are "identical" when all of these agree (bookkeeping columns such as
#: ``created_at`` and ``llp_version`` are left out).
COMPARED_COLUMNS: tuple[str, ...] = (
    "status",
    "score",
    "objective",
    "cost",
    "seconds",
    "train_seconds",
    "n_train",
    "seed",
    "curve",
    "landscape",
    "probe_cost",
    "failure_reason",
    "traceback",
    "bracket",
    "rung",
    "reason",
)

_JSON_COLUMNS = frozenset({"curve", "landscape"})


def float_to_json(value: float) -> float | str:
    """A float for strict JSON: non-finite values become their name
    (:data:`NONFINITE_NAMES`)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


#: The objectives a study may have (the store and every file format check it).
OBJECTIVES: tuple[str, ...] = get_args(Objective)

#: The fields of one evaluation record that every llp file format carries (an export's
#: evaluations and the shipped knowledge's): what was trained and what was measured, as
#: JSON. Each format adds its own: an export the search's bookkeeping
#: (:data:`EXPORT_EVALUATION_FIELDS`), the shipped knowledge the record's kind and study.
#: Declared, with each field's type and range, by
#: :class:`llp.store._file_records.EvaluationRecord`.
EVALUATION_FIELDS: tuple[str, ...] = field_names(EvaluationRecord)
#: An export's evaluation: :data:`EVALUATION_FIELDS` and the search's bookkeeping.
EXPORT_EVALUATION_FIELDS: tuple[str, ...] = field_names(ExportEvaluation)
#: The fields of a dataset record every file format carries.
DATASET_FIELDS: tuple[str, ...] = field_names(DatasetRecord)

#: The fields of :class:`EvaluationResult` the store keeps (all of them). A test checks
#: this against the dataclass, so a new field cannot be dropped silently: storing it
#: needs a column and a new schema version.
STORED_RESULT_FIELDS = frozenset(
    {
        "config",
        "fidelity",
        "status",
        "curve",
        "score",
        "objective",
        "cost",
        "seconds",
        "train_seconds",
        "n_train",
        "seed",
        "failure_reason",
        "traceback",
        "landscape",
        "probe_cost",
    }
)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: The deepest nesting of lists and mappings a stored JSON value (settings, a space) may
#: have: a study's settings nest a few levels.
MAX_JSON_DEPTH = 32


def json_depth(value: Any) -> int:
    """How deeply lists and mappings nest in ``value`` (0 for a scalar), found without
    recursion (a hostile value may nest deeper than Python's recursion limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def too_deep(value: Any) -> str | None:
    """The rule ``value`` breaks when it nests deeper than :data:`MAX_JSON_DEPTH`."""
    if json_depth(value) <= MAX_JSON_DEPTH:
        return None
    return f"must nest lists and mappings at most {MAX_JSON_DEPTH} levels deep. Got more."


def too_long(text: str) -> str | None:
    """The rule a settings-like JSON ``text`` breaks beyond :data:`MAX_TEXT` characters."""
    if len(text) <= MAX_TEXT:
        return None
    return f"must be at most {MAX_TEXT} characters as JSON. Got {len(text)} characters."


def dumps_json(value: Any, *, name: str, owner: str, bounded: bool = False) -> str:
    """Canonical JSON text of ``value`` (sorted keys, no whitespace) or an error naming
    the parameter: a TypeError for what JSON cannot hold, a ValueError for a value nested
    deeper than :data:`MAX_JSON_DEPTH` or, when ``bounded`` (a study's settings and
    space), longer than :data:`MAX_TEXT` characters."""
    if (rule := too_deep(value)) is not None:
        raise ValueError(f"The '{name}' parameter of {owner} {rule}")
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"The '{name}' parameter of {owner} must hold only JSON values (str, int, "
            f"float, bool, None, lists and mappings with str keys). Got {value!r}: {exc}."
        ) from exc
    if bounded and (rule := too_long(text)) is not None:
        raise ValueError(f"The '{name}' parameter of {owner} {rule}")
    return text


def config_json(config: Mapping[str, Any], *, owner: str) -> str:
    """The canonical text that identifies a trial (see :func:`llp.space.canonical_config_json`)."""
    if not isinstance(config, Mapping):
        raise TypeError(
            f"The 'config' parameter of {owner} must be a mapping. "
            f"Got {type(config).__name__} instead."
        )
    try:
        return canonical_config_json(config)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"The 'config' parameter of {owner} must map str keys to JSON values "
            f"(str, int, float, bool, None). Got {dict(config)!r}: {exc}."
        ) from exc


def check_text(name: str, value: Any, *, owner: str, optional: bool = False) -> str | None:
    """A str without NUL characters (PostgreSQL text cannot hold them), or None if allowed."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        rule = "a str or None" if optional else "a str"
        raise TypeError(f"The '{name}' parameter of {owner} must be {rule}. Got {value!r} instead.")
    if "\x00" in value:
        raise ValueError(
            f"The '{name}' parameter of {owner} must not contain NUL characters ('\\x00'), "
            f"which PostgreSQL cannot store. Got {value!r} instead."
        )
    if len(value) > MAX_TEXT:
        raise ValueError(
            f"The '{name}' parameter of {owner} must be at most {MAX_TEXT} characters. "
            f"Got {len(value)} characters."
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"The '{name}' parameter of {owner} must be valid Unicode text; lone surrogates "
            f"cannot be stored. Got {value!r} instead."
        ) from exc
    return value


#: The ``result`` fields an evaluation's row checks against the declared schema
#: (:class:`llp.store._file_records.ExportEvaluation`), named as the API gives them.
_RESULT_FIELDS = (
    "cost",
    "seconds",
    "train_seconds",
    "probe_cost",
    "score",
    "n_train",
    "seed",
    "failure_reason",
    "traceback",
)


def evaluation_row(item: NewEvaluation, *, owner: str) -> dict[str, Any]:
    """The ``evaluations`` columns that come from ``item`` (no ids, no bookkeeping),
    checked by the declared schema of an exported evaluation
    (:class:`llp.store._file_records.ExportEvaluation`: the same rules an import applies;
    scalars finite, costs and times in [0, ``MAX_COST``], integers within their columns),
    and an accuracy in [0, 1]."""
    r = item.result
    if not isinstance(r, EvaluationResult):
        raise TypeError(
            f"The 'result' parameter of {owner} must be an EvaluationResult. "
            f"Got {type(r).__name__} instead."
        )
    values = check_declared(
        ExportEvaluation,
        {
            **{name: getattr(r, name) for name in _RESULT_FIELDS},
            "epochs": r.fidelity.epochs,
            "bracket": item.bracket,
            "rung": item.rung,
            "reason": item.reason,
        },
        owner=owner,
        names={name: f"result.{name}" for name in (*_RESULT_FIELDS, "epochs")},
    )
    if r.score is not None and r.objective == "val_accuracy" and not 0.0 <= r.score <= 1.0:
        raise ValueError(
            f"The 'result.score' parameter of {owner} must lie in [0, 1] for an accuracy. "
            f"Got {r.score!r} instead."
        )
    # `+ 0.0` turns -0.0 into 0.0: SQLite stores an integral REAL as an integer and
    # would drop the sign, so every backend drops it (the numbers compare equal).
    return {
        "fraction": float(r.fidelity.fraction),
        "epochs": values["epochs"],
        "status": r.status.value,
        "score": None if values["score"] is None else float(values["score"]) + 0.0,
        "objective": str(r.objective),
        "cost": float(values["cost"]) + 0.0,
        "seconds": float(values["seconds"]) + 0.0,
        "train_seconds": float(values["train_seconds"]) + 0.0,
        "n_train": values["n_train"],
        "seed": values["seed"],
        "curve": dumps_json(
            json_floats(
                {name: [getattr(point, name) for point in r.curve] for name in CURVE_FIELDS}
            ),
            name="result.curve",
            owner=owner,
        ),
        "landscape": dumps_json(
            json_floats(dict(r.landscape)), name="result.landscape", owner=owner
        ),
        "probe_cost": float(values["probe_cost"]) + 0.0,
        "failure_reason": values["failure_reason"],
        "traceback": values["traceback"],
        "bracket": values["bracket"],
        "rung": values["rung"],
        "reason": values["reason"],
    }


#: Columns of a decision that hold numbers (``None`` when not known).
DECISION_FLOATS = (
    "fraction",
    "predicted",
    "uncertainty",
    "prior_score",
    "measured",
    "posterior",
    "prior_weight",
)


def bounded_int(name: str, value: Any, owner: str, *, low: int) -> int:
    """An int in ``[low, MAX_INT32]`` (what a 32-bit column holds on every backend)."""
    number = check_int(name, value, min_value=low, owner=owner)
    if number > MAX_INT32:
        raise ValueError(
            f"The '{name}' parameter of {owner} must be at most {MAX_INT32}. Got {value!r}."
        )
    return number


def decision_row(item: DecisionRecord, *, owner: str) -> dict[str, Any]:
    """The ``decisions`` columns of ``item`` (without ``study_id`` and ``created_at``),
    checked by the declared schema of an exported decision
    (:class:`llp.store._file_records.ExportDecision`) and against the known actions."""
    values = check_declared(
        ExportDecision,
        {
            name: getattr(item, "trial_number" if name == "trial" else name)
            for name in field_names(ExportDecision)
        },
        owner=owner,
        names={"trial": "trial_number"},
    )
    if values["action"] not in DECISION_ACTIONS:
        raise ValueError(
            f"The 'action' parameter of {owner} must be one of "
            f"{', '.join(map(repr, DECISION_ACTIONS))}. Got {values['action']!r} instead."
        )
    row = {("trial_number" if name == "trial" else name): v for name, v in values.items()}
    for name in DECISION_FLOATS:
        row[name] = None if row[name] is None else float(row[name])
    return row


def answer_row(item: NewAnswer, *, owner: str) -> dict[str, Any]:
    """The checked ``answers`` columns of ``item`` that it gives itself (the declared
    schema of an exported answer, :class:`llp.store._file_records.ExportAnswer`)."""
    values = check_declared(
        ExportAnswer,
        {name: getattr(item, name) for name in ("rule", "note", "posterior", "prior_weight")},
        owner=owner,
    )
    for name in ("posterior", "prior_weight"):
        values[name] = None if values[name] is None else float(values[name])
    return values


def differing_columns(stored: Mapping[Any, Any], new: Mapping[str, Any]) -> list[str]:
    """Names of the :data:`COMPARED_COLUMNS` in which a stored row and a new row differ."""
    differ = []
    for column in COMPARED_COLUMNS:
        a, b = stored[column], new[column]
        if a == b:
            continue
        if column in _JSON_COLUMNS and isinstance(a, str):
            # Text written by another llp version may be formatted differently.
            a = dumps_json(json_floats(json.loads(a)), name=column, owner="the knowledge base")
            if a == b:
                continue
        differ.append(column)
    return differ


def json_floats(value: Any) -> Any:
    """``value`` (a curve's columns, a landscape) with every non-finite float written by
    its name (:func:`float_to_json`), in the lists and mappings it holds."""
    if isinstance(value, float):
        return float_to_json(value)
    if isinstance(value, Mapping):
        return {k: json_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_floats(v) for v in value]
    return value


def curve_from_json(text: str) -> Curve:
    """The learning curve stored column-wise as ``{"epoch": [...], "train_loss": [...]}``
    (non-finite values by name since schema 3, as bare tokens before)."""
    columns = json.loads(text)
    epoch, train_loss, val_loss, val_accuracy, seconds = (columns[n] for n in CURVE_FIELDS)
    return Curve.from_columns(
        epoch,
        floats(train_loss),
        floats(val_loss),
        [None if v is None else float_from_json(v) for v in val_accuracy],
        floats(seconds),
    )


def landscape_from_json(text: str) -> dict[str, float]:
    """The landscape features stored as ``{"name": value}``."""
    values = json.loads(text)
    return dict(zip(values, floats(list(values.values()))))


def result_from_row(row: Mapping[Any, Any], config: Mapping[str, Any]) -> EvaluationResult:
    """Rebuild the :class:`EvaluationResult` stored in an ``evaluations`` row."""
    return EvaluationResult(
        config=config,
        fidelity=Fidelity(row["fraction"], row["epochs"]),
        status=EvaluationStatus(row["status"]),
        curve=curve_from_json(row["curve"]),
        score=row["score"],
        objective=row["objective"],
        cost=row["cost"],
        seconds=row["seconds"],
        train_seconds=row["train_seconds"],
        n_train=row["n_train"],
        seed=row["seed"],
        failure_reason=row["failure_reason"],
        traceback=row["traceback"],
        landscape=landscape_from_json(row["landscape"]),
        probe_cost=row["probe_cost"],
    )
