"""The declared schema of the records llp writes to files.

One evaluation record (:class:`EvaluationRecord`: what was trained and what was
measured) is carried by every llp file format: the shipped knowledge
(:mod:`llp.knowledge`, one JSON line per record) and, with the search's bookkeeping,
``llp kb export`` files. The types below declare each field's type and range
(:mod:`msgspec` checks them while it parses, and its error names the field and the rule:
``Expected `int` >= 0 - at `$.trial```); the readers add the checks that span fields or
records (a complete evaluation has a finite score, a curve's columns have one length, a
study is listed before its evaluations...). Field lists derive from these types
(:func:`field_names`), so the formats cannot drift apart.

Non-finite floats, which JSON cannot hold, are written by name: ``"NaN"``,
``"Infinity"``, ``"-Infinity"`` (:data:`NonFinite`; :data:`llp.store._codec.NONFINITE_NAMES`
reads them back). Format 1 of the shipped knowledge wrote ``null`` instead, read as NaN.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
import msgspec.inspect
import numpy as np

from llp._checks import MAX_MAGNITUDE
from llp.training import Curve, EvaluationResult, EvaluationStatus, Fidelity, Objective

#: Largest compute (full-data epochs) or time (seconds) one evaluation may report.
MAX_COST = 1e9
#: The range of the store's integer columns (64-bit signed).
MAX_INT = 2**63 - 1
#: The largest value of the store's 32-bit integer columns (trial numbers, epochs, ...).
MAX_INT32 = 2**31 - 1
#: The longest name (study, dataset, group, scheduler, fingerprint, configuration key).
MAX_NAME = 1000
#: The longest text (a reason, a failure reason, a traceback, a note).
MAX_TEXT = 1_000_000

#: How every llp file format writes a float JSON cannot hold: its name as a string.
NONFINITE_NAMES: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
NonFinite = Literal["NaN", "Infinity", "-Infinity"]
# A curve is stored column-wise, one list per EpochRecord field.
CURVE_FIELDS: tuple[str, ...] = Curve.FIELDS
#: A finite number the meta-model can read as float32.
Finite = Annotated[float, msgspec.Meta(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
#: A float that may be non-finite (a loss, a landscape feature); ``None`` in format 1.
AnyFloat = Finite | NonFinite | None
#: A loss or landscape feature as the knowledge base keeps it: any float, a diverging
#: run's too (beyond ``MAX_MAGNITUDE``; the meta-model skips such rows), non-finite ones
#: by name. What an export carries, so that whatever the store holds imports.
StoredFloat = float | NonFinite | None
#: A configuration value: JSON scalars only.
ConfigValue = bool | int | Finite | str | None

NonNegativeInt = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT)]
Int32 = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT32)]
PositiveInt32 = Annotated[int, msgspec.Meta(ge=1, le=MAX_INT32)]
Int64 = Annotated[int, msgspec.Meta(ge=-MAX_INT - 1, le=MAX_INT)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_COST)]
Fraction = Annotated[float, msgspec.Meta(gt=0.0, le=1.0)]
#: A name: not blank, no NUL character, at most MAX_NAME characters.
#: (Both patterns run in linear time, whatever the string.)
_NAME_PATTERN = r"^\s*[^\s\x00][^\x00]*\Z"
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME, pattern=_NAME_PATTERN)]
#: A text: no NUL character, at most MAX_TEXT characters.
_TEXT_PATTERN = r"^[^\x00]*\Z"
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT, pattern=_TEXT_PATTERN)]
_FINGERPRINT_PATTERN = "^[0-9a-f]{64}$"
Fingerprint = Annotated[str, msgspec.Meta(pattern=_FINGERPRINT_PATTERN)]
#: How a broken pattern is said to a user.
_PATTERN_WORDS = {
    _NAME_PATTERN: "a text that is not blank and holds no NUL character",
    _TEXT_PATTERN: "a text without NUL characters",
    _FINGERPRINT_PATTERN: "64 hex digits",
}


class CurveRecord(msgspec.Struct, forbid_unknown_fields=True):
    """A learning curve, column-wise: one list per :class:`llp.training.EpochRecord`
    field."""

    epoch: list[PositiveInt32]
    train_loss: list[AnyFloat]
    val_loss: list[AnyFloat]
    val_accuracy: list[Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None]
    seconds: list[NonNegative]


class EvaluationRecord(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One configuration trained at one fidelity, as every llp file carries it."""

    trial: Int32
    config: dict[Name, ConfigValue]
    fraction: Fraction
    epochs: PositiveInt32
    status: Literal["complete", "failed"]
    score: Finite | None
    objective: Objective
    cost: NonNegative
    seconds: NonNegative
    train_seconds: NonNegative
    n_train: NonNegativeInt
    seed: Int64
    curve: CurveRecord
    landscape: dict[Name, AnyFloat]
    probe_cost: NonNegative
    failure_reason: Text | None


class DatasetRecord(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A dataset as every llp file carries it: its identity and meta-features (a
    knowledge base may not know its name, group or size). Its key is any name the store
    accepts: llp's own are 64 hex digits (:data:`Fingerprint`, what the shipped knowledge
    requires), but a dataset recorded through the Python API may be keyed otherwise, and
    its export must import."""

    fingerprint: Name
    name: Name | None
    group: Name | None
    n_samples: NonNegativeInt | None
    meta_features: dict[Name, Finite]


def float_from_json(value: Any) -> float:
    """A float as llp's files and its store write it: a number, or the name of a
    non-finite one (:data:`NONFINITE_NAMES`; a bare JSON token, read by Python as a
    float, passes too)."""
    return NONFINITE_NAMES[value] if type(value) is str else float(value)


_FLOAT_ONLY = frozenset({float})


def floats(values: list[Any]) -> list[float]:
    """A column of :data:`AnyFloat` as floats: names and nulls (format 1) become floats."""
    if set(map(type, values)) <= _FLOAT_ONLY:
        return values
    return [float("nan") if v is None else float_from_json(v) for v in values]


def evaluation_result(
    record: EvaluationRecord,
    config: Mapping[str, Any],
    fidelity: Fidelity | None = None,
    *,
    traceback: str | None = None,
) -> EvaluationResult:
    """The :class:`llp.training.EvaluationResult` of an evaluation record, after the checks
    that span its fields (each field's own type and range were checked when it was
    parsed): a complete evaluation has a score, an accuracy lies in [0, 1], a failed one
    has a reason, and the curve's columns have one length, at most ``epochs``, with
    epochs numbered 1, 2, ... Raises ``ValueError`` naming the field."""
    status = EvaluationStatus(record.status)
    score = record.score
    if status is EvaluationStatus.COMPLETE:
        if score is None:
            raise ValueError("'score' must be a finite number for a complete evaluation. Got None")
        if record.objective == "val_accuracy" and not 0.0 <= score <= 1.0:
            raise ValueError(f"'score' must lie in [0.0, 1.0] for an accuracy. Got {score!r}")
    curve = record.curve
    lengths = [len(getattr(curve, key)) for key in CURVE_FIELDS]
    if len(set(lengths)) != 1 or lengths[0] > record.epochs:
        raise ValueError(
            f"the curve's columns must have one equal length <= epochs ({record.epochs}). "
            f"Got lengths {lengths}"
        )
    if curve.epoch != list(range(1, len(curve.epoch) + 1)):
        raise ValueError(f"curve['epoch'] must be 1, 2, ... Got {curve.epoch!r}")
    return EvaluationResult(
        config=config,
        fidelity=fidelity or Fidelity(record.fraction, record.epochs),
        status=status,
        curve=Curve.from_columns(
            curve.epoch,
            floats(curve.train_loss),
            floats(curve.val_loss),
            curve.val_accuracy,
            curve.seconds,
        ),
        score=score,
        objective=record.objective,
        cost=record.cost,
        seconds=record.seconds,
        train_seconds=record.train_seconds,
        n_train=record.n_train,
        seed=record.seed,
        failure_reason=record.failure_reason,
        traceback=traceback,
        landscape=dict(zip(record.landscape, floats(list(record.landscape.values())))),
        probe_cost=record.probe_cost,
    )


# ---------------------------------------------------------------------------- exports
class ExportCurve(CurveRecord, forbid_unknown_fields=True):
    """A learning curve of an export: its losses as the knowledge base keeps them
    (:data:`StoredFloat`)."""

    train_loss: list[StoredFloat]
    val_loss: list[StoredFloat]


class ExportEvaluation(EvaluationRecord, forbid_unknown_fields=True, kw_only=True):
    """An evaluation of an ``llp kb export`` file: :class:`EvaluationRecord`, with its
    curve's losses and landscape features as the knowledge base keeps them
    (:data:`StoredFloat`: a diverging run's are stored, and must travel), and the search's
    bookkeeping."""

    curve: ExportCurve
    landscape: dict[Name, StoredFloat]
    traceback: Text | None
    bracket: Int32
    rung: Int32
    reason: Text
    llp_version: Text | None
    created_at: Text | None


class ExportDataset(DatasetRecord, forbid_unknown_fields=True, kw_only=True):
    """A dataset of an ``llp kb export`` file."""

    created_at: Text | None


class ExportKey(msgspec.Struct, forbid_unknown_fields=True):
    """Which evaluation of its study a record names: trial, data share, epochs."""

    trial: Int32
    fraction: Fraction
    epochs: PositiveInt32


class ExportDecision(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A decision of a study's scheduler (:class:`llp.store.DecisionRecord`; the store
    checks its action against the known ones)."""

    sequence: Int32
    action: Name
    rule: Name
    reason: Text
    trial: Int32 | None
    bracket: Int32
    rung: Int32 | None
    fraction: Fraction | None
    epochs: PositiveInt32 | None
    source: Name | None
    predicted: Finite | None
    uncertainty: Finite | None
    prior_score: Finite | None
    measured: Finite | None
    posterior: Finite | None
    prior_weight: Finite | None


class ExportAnswer(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The study's answer after one of its evaluations."""

    after: ExportKey
    answer: ExportKey
    rule: Name
    note: Text
    posterior: Finite | None
    prior_weight: Finite | None


class ExportStudy(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A study of an ``llp kb export`` file. Its evaluations are
    :class:`ExportEvaluation` records, each read on its own (so that an error names the
    study and the evaluation); decisions and answers come with format 2."""

    name: Name
    dataset: Name | None
    scheduler: Name
    settings: dict[str, Any]
    space: dict[str, Any] | None
    seed: Int64
    objective: Objective
    model_family: Name | None
    created_at: Text | None
    llp_version: Text | None
    evaluations: list[Any]
    decisions: list[ExportDecision] = msgspec.field(default_factory=list)
    answers: list[ExportAnswer] = msgspec.field(default_factory=list)


class ExportDocument(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The top of an ``llp kb export`` file: its format, then its datasets and studies
    (each read on its own, so that an error names the record)."""

    format: str
    format_version: PositiveInt32
    llp_version: Text | None
    exported_at: Text | None
    source: Text | None
    datasets: list[Any]
    studies: list[Any]


# ----------------------------------------------------------------- shipped knowledge
class KnowledgeCounts(msgspec.Struct, forbid_unknown_fields=True):
    """How many records of each kind a shipped-knowledge file holds."""

    datasets: NonNegativeInt
    studies: NonNegativeInt
    evaluations: NonNegativeInt


class KnowledgeHeader(msgspec.Struct, tag_field="kind", tag="header", forbid_unknown_fields=True):
    """The first line of a shipped-knowledge file."""

    format: str
    format_version: PositiveInt32
    llp_version: str
    created: str
    space: dict[str, Any]
    design: dict[str, Any]
    families: dict[str, Any]
    meta_features: dict[str, Any]
    preprocessing: str
    command: str
    build: dict[str, Any]
    counts: KnowledgeCounts


class KnowledgeDataset(
    DatasetRecord, tag_field="kind", tag="dataset", forbid_unknown_fields=True, kw_only=True
):
    """A dataset of the shipped knowledge: :class:`DatasetRecord`, always named, grouped
    and counted, and its source."""

    fingerprint: Fingerprint
    name: Name
    group: Name
    n_samples: NonNegativeInt
    source: Text


class KnowledgeStudy(msgspec.Struct, tag_field="kind", tag="study", forbid_unknown_fields=True):
    """A study of the shipped knowledge: one dataset searched with one model family."""

    name: Name
    dataset: Fingerprint
    model_family: Name | None
    objective: Objective


class KnowledgeEvaluation(
    EvaluationRecord, tag_field="kind", tag="evaluation", forbid_unknown_fields=True, kw_only=True
):
    """An evaluation of the shipped knowledge: :class:`EvaluationRecord` and its study."""

    study: Name


KnowledgeRecord = KnowledgeHeader | KnowledgeDataset | KnowledgeStudy | KnowledgeEvaluation


def schema_error(exc: msgspec.ValidationError) -> str:
    """The message of a schema violation, with its patterns said in words: it names the
    rule and the field (``... - at `$.study```)."""
    text = str(exc)
    for pattern, words in _PATTERN_WORDS.items():
        text = text.replace(f"matching regex {pattern!r}", words)
    return text


@dataclass(frozen=True)
class _Check:
    """The check of one declared type: ``test(value)`` is ``True`` (of the type and within
    its range), ``False`` (the right type, out of range) or ``None`` (the wrong type);
    ``words`` says the rule; ``key`` and ``item`` are a mapping's checks of its keys and
    values (to name a bad entry)."""

    test: Callable[[Any], bool | None]
    words: str
    key: _Check | None = None
    item: _Check | None = None


#: Per record type and field, the field's check, made the first time it is checked.
_FIELD_CHECKS: dict[tuple[type, str], _Check] = {}


def _field_check(record_type: type[msgspec.Struct], name: str) -> _Check:
    found = _FIELD_CHECKS.get((record_type, name))
    if found is None:
        info = msgspec.inspect.type_info(record_type)
        assert isinstance(info, msgspec.inspect.StructType)
        (declared,) = [f.type for f in info.fields if f.name == name]
        found = _FIELD_CHECKS[(record_type, name)] = _check_of(declared)
    return found


def _bounds(t: Any) -> str:
    parts = [
        f"{word} {bound:g}" if isinstance(bound, float) else f"{word} {bound}"
        for word, bound in ((">", t.gt), (">=", t.ge), ("<", t.lt), ("<=", t.le))
        if bound is not None
    ]
    return (" " + " and ".join(parts)) if parts else ""


def _check_of(t: Any) -> _Check:
    """The check of a declared type ``t`` (:mod:`msgspec.inspect`), with its words."""
    mi = msgspec.inspect
    if isinstance(t, mi.UnionType):
        members = [_check_of(member) for member in t.types]
        some = " or ".join(
            m.words for m, member in zip(members, t.types) if not isinstance(member, mi.NoneType)
        )
        optional = any(isinstance(member, mi.NoneType) for member in t.types)

        def union(value: Any) -> bool | None:
            verdict = None
            for check in members:
                this = check.test(value)
                if this:
                    return True
                if this is False:
                    verdict = False
            return verdict

        return _Check(union, some + (", or None" if optional else ""))
    if isinstance(t, mi.NoneType):
        return _Check(lambda value: True if value is None else None, "None")
    if isinstance(t, (mi.IntType, mi.FloatType)):
        low, high = t.ge if t.ge is not None else t.gt, t.le if t.le is not None else t.lt
        low_open, high_open = t.ge is None, t.le is None
        is_int = isinstance(t, mi.IntType)
        kinds = int if is_int else (int, float)

        def number(value: Any) -> bool | None:
            # A bool is an int to Python, never a number in a record.
            if isinstance(value, bool) or not isinstance(value, kinds):
                return None
            if isinstance(value, float) and not math.isfinite(value):
                return False
            return (low is None or (value > low if low_open else value >= low)) and (
                high is None or (value < high if high_open else value <= high)
            )

        return _Check(number, ("an int" if is_int else "a finite number") + _bounds(t))
    if isinstance(t, mi.LiteralType):
        values = frozenset(t.values)
        return _Check(
            lambda value: (value in values) if isinstance(value, str) else None,
            "one of " + ", ".join(map(repr, t.values)),
        )
    if isinstance(t, mi.StrType):
        pattern = None if t.pattern is None else re.compile(t.pattern)
        longest = t.max_length
        words = "a str"
        if t.pattern is not None:
            words += f" ({_PATTERN_WORDS.get(t.pattern, f'matching {t.pattern!r}')})"
        if longest is not None:
            words += f" of at most {longest} characters"

        def text(value: Any) -> bool | None:
            if not isinstance(value, str):
                return None
            return (longest is None or len(value) <= longest) and (
                pattern is None or pattern.search(value) is not None
            )

        return _Check(text, words)
    if isinstance(t, mi.DictType):
        key, item = _check_of(t.key_type), _check_of(t.value_type)

        def mapping(value: Any) -> bool | None:
            if not isinstance(value, Mapping):
                return None
            verdict: bool | None = True
            for k, v in value.items():
                for this in (key.test(k), item.test(_plain(v))):
                    if this is None:
                        return None
                    if this is False:
                        verdict = False
            return verdict

        return _Check(mapping, f"a mapping of {key.words} to {item.words}", key, item)
    raise TypeError(f"check_declared cannot check a field of type {t!r}")  # pragma: no cover


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def _shown(value: Any) -> str:
    """``value`` as an error message shows it: a long text by its length only."""
    if isinstance(value, str) and len(value) > 200:
        return f"a text of {len(value)} characters"
    return repr(value)


def check_declared(
    record_type: type[msgspec.Struct],
    values: Mapping[str, Any],
    *,
    owner: str,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``values`` (by field of ``record_type``) checked against each field's declared type
    and range, the same rules a file's record is parsed by, for a value given through the
    Python API; NumPy scalars become Python ones. A value of the wrong type raises
    ``TypeError``, one out of range ``ValueError``, both naming the parameter (``names``
    maps a field to it where the API calls it otherwise) and the rule, e.g. ``The
    'sequence' parameter of KnowledgeBase.record_decisions must be an int >= 0 and <=
    2147483647. Got -1 instead.``"""
    out: dict[str, Any] = {}
    for name, value in values.items():
        value = _plain(value)
        parameter = (names or {}).get(name, name)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"The '{parameter}' parameter of {owner} must be valid Unicode text; lone "
                    f"surrogates cannot be stored. Got {_shown(value)} instead."
                ) from exc
        check = _field_check(record_type, name)
        verdict = check.test(value)
        if verdict is not True:
            shown = f"{_shown(value)} instead"
            if check.key is not None and check.item is not None and isinstance(value, Mapping):
                key, item = check.key, check.item
                shown = next(
                    f"{_shown(k)}: {_shown(v)} in it"
                    for k, v in value.items()
                    if key.test(k) is not True or item.test(_plain(v)) is not True
                )
            message = f"The '{parameter}' parameter of {owner} must be {check.words}. Got {shown}."
            raise (TypeError if verdict is None else ValueError)(message)
        if isinstance(value, Mapping):
            value = {k: _plain(v) for k, v in value.items()}
        out[name] = value
    return out


@functools.cache
def field_names(record_type: type[msgspec.Struct]) -> tuple[str, ...]:
    """The JSON keys of a record type, in declaration order (its tag not included);
    cached (msgspec evaluates the type's annotations each time it is asked)."""
    return tuple(f.encode_name for f in msgspec.structs.fields(record_type))


__all__ = [
    "CURVE_FIELDS",
    "NONFINITE_NAMES",
    "AnyFloat",
    "CurveRecord",
    "DatasetRecord",
    "EvaluationRecord",
    "ExportAnswer",
    "ExportCurve",
    "ExportDataset",
    "ExportDecision",
    "ExportDocument",
    "ExportEvaluation",
    "ExportKey",
    "ExportStudy",
    "KnowledgeDataset",
    "KnowledgeEvaluation",
    "KnowledgeHeader",
    "KnowledgeRecord",
    "KnowledgeStudy",
    "NonFinite",
    "StoredFloat",
    "check_declared",
    "evaluation_result",
    "field_names",
    "float_from_json",
    "floats",
    "schema_error",
]
