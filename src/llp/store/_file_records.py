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

from typing import Annotated, Any, Literal

import msgspec

from llp.training import Objective

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
#: The largest magnitude a stored number may have: the meta-model reads stored values as
#: float32 (about 3.4e38), and no score, cost or prediction is anywhere near this.
MAX_MAGNITUDE = 1e30

#: A float JSON cannot hold, by name.
NonFinite = Literal["NaN", "Infinity", "-Infinity"]
#: A finite number the meta-model can read as float32.
Finite = Annotated[float, msgspec.Meta(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
#: A float that may be non-finite (a loss, a landscape feature); ``None`` in format 1.
AnyFloat = Finite | NonFinite | None
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
    """A dataset as every llp file carries it: its identity and meta-features."""

    fingerprint: Fingerprint
    name: Name
    group: Name
    n_samples: NonNegativeInt
    meta_features: dict[Name, Finite]


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
    """A dataset of the shipped knowledge: :class:`DatasetRecord` and its source."""

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


def field_names(record_type: type[msgspec.Struct]) -> tuple[str, ...]:
    """The JSON keys of a record type, in declaration order (its tag not included)."""
    return tuple(f.encode_name for f in msgspec.structs.fields(record_type))


__all__ = [
    "AnyFloat",
    "CurveRecord",
    "DatasetRecord",
    "EvaluationRecord",
    "KnowledgeDataset",
    "KnowledgeEvaluation",
    "KnowledgeHeader",
    "KnowledgeRecord",
    "KnowledgeStudy",
    "NonFinite",
    "field_names",
    "schema_error",
]
