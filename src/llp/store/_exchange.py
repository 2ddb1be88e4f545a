"""Sharing knowledge between knowledge bases, as JSON or Parquet files
(:func:`export_knowledge`, :func:`import_knowledge`; ``llp kb export`` and ``llp kb
import`` call them).

JSON format (``format_version`` 2)
----------------------------------
One strict JSON object (no ``NaN`` tokens: a non-finite float inside curves, landscape
features or meta-features is written as the string ``"NaN"``, ``"Infinity"`` or
``"-Infinity"``)::

    {"format": "llp-knowledge-export", "format_version": 2, "llp_version": "0.1.0",
     "exported_at": "2026-...", "source": "llp-runs/knowledge.db",
     "datasets": [{"fingerprint", "name", "group", "n_samples", "meta_features",
                   "created_at"}],
     "studies": [{"name", "dataset" (a fingerprint or null), "scheduler", "settings",
                  "space", "seed", "objective", "model_family", "created_at",
                  "llp_version",
                  "evaluations": [{"trial", "config", "fraction", "epochs", "status",
                                   "score", "objective", "cost", "seconds",
                                   "train_seconds", "n_train", "seed", "curve",
                                   "landscape", "probe_cost", "failure_reason",
                                   "traceback", "bracket", "rung", "reason",
                                   "llp_version", "created_at"}],
                  "decisions": [{"sequence", "action", "rule", "reason", "trial",
                                 "bracket", "rung", "fraction", "epochs", "source",
                                 "predicted", "uncertainty", "prior_score", "measured",
                                 "posterior", "prior_weight"}],
                  "answers": [{"after": {"trial", "fraction", "epochs"},
                               "answer": {"trial", "fraction", "epochs"}, "rule", "note",
                               "posterior", "prior_weight"}]}]}

``decisions`` are the scheduler's decisions as data and ``answers`` the study's answer
after each evaluation (:mod:`llp.store`); both name evaluations of the same study.
Files of ``format_version`` 1 have neither and are still read.

A curve is column-wise, as in the knowledge base: ``{"epoch": [...], "train_loss":
[...], "val_loss": [...], "val_accuracy": [...], "seconds": [...]}``.

Parquet format
--------------
One file, one row per evaluation (the fields above, plus ``study``; ``config``,
``curve`` and ``landscape`` as JSON text), so ``pandas.read_parquet`` gives a table to
analyse directly. The datasets and studies (without their evaluations) travel in the
file's key-value metadata under ``llp.export``, as the JSON document above.

Importing
---------
The file is parsed as data only (JSON, or Parquet through pyarrow: nothing in it is
executed) and every record is checked before anything is written. Datasets and
evaluations are converted to the declared record types that the shipped knowledge uses
too (:mod:`llp.store._file_records`: each field's type and range, and the checks that
span an evaluation's fields); then references between records, configurations legal in
their study's space, one configuration per trial, and agreement with what the knowledge
base already holds. The first problem raises a :class:`~llp.store.ExchangeError` naming
the file, the record and the field.
Evaluations already stored identically are skipped, so importing twice changes nothing.
The import is one transaction (:meth:`~llp.store.KnowledgeBase.transaction`): stored
whole, or not at all. Timestamps and llp versions of the importing knowledge base are
its own (the store sets them); the file's are kept in the file.
"""

from __future__ import annotations

import datetime
import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from llp import __version__
from llp._files import parquet_size, too_large
from llp.store._codec import (
    EXPORT_EVALUATION_FIELDS,
    float_to_json,
    too_deep,
    too_long,
)
from llp.store._errors import ExchangeError
from llp.store._file_records import (
    ExportAnswer,
    ExportDataset,
    ExportDecision,
    ExportDocument,
    ExportEvaluation,
    ExportKey,
    ExportStudy,
    evaluation_result,
    field_names,
    schema_error,
)

if TYPE_CHECKING:
    from llp.store import (
        AnswerRecord,
        DecisionRecord,
        KnowledgeBase,
        NewAnswer,
        StoredEvaluation,
        StudyRecord,
    )
    from llp.training import EvaluationResult

FORMAT_NAME = "llp-knowledge-export"
FORMAT_VERSION = 2
PARQUET_METADATA_KEY = b"llp.export"
#: The most one import reads: a JSON file's bytes, a Parquet file's columns uncompressed
#: (checked before reading; what an import holds is then decoded into Python objects).
MAX_IMPORT_BYTES = 256 * 2**20

_EVALUATION_KEYS = EXPORT_EVALUATION_FIELDS

Format = Literal["json", "parquet"]


def _flat(text: str) -> str:
    """``text`` on one line (a driver's or parser's message may span several)."""
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- encoding
def _time(value: datetime.datetime) -> str:
    return value.isoformat()


def evaluation_to_json(e: StoredEvaluation) -> dict[str, Any]:
    """One stored evaluation as an export record."""
    r = e.result
    return {
        "trial": e.trial_number,
        "config": dict(r.config),
        "fraction": r.fidelity.fraction,
        "epochs": r.fidelity.epochs,
        "status": r.status.value,
        "score": r.score,
        "objective": r.objective,
        "cost": r.cost,
        "seconds": r.seconds,
        "train_seconds": r.train_seconds,
        "n_train": r.n_train,
        "seed": r.seed,
        "curve": {
            "epoch": [p.epoch for p in r.curve],
            "train_loss": [float_to_json(p.train_loss) for p in r.curve],
            "val_loss": [float_to_json(p.val_loss) for p in r.curve],
            "val_accuracy": [
                None if p.val_accuracy is None else float_to_json(p.val_accuracy) for p in r.curve
            ],
            "seconds": [float_to_json(p.seconds) for p in r.curve],
        },
        "landscape": {k: float_to_json(float(v)) for k, v in r.landscape.items()},
        "probe_cost": r.probe_cost,
        "failure_reason": r.failure_reason,
        "traceback": r.traceback,
        "bracket": e.bracket,
        "rung": e.rung,
        "reason": e.reason,
        "llp_version": e.llp_version,
        "created_at": _time(e.created_at),
    }


def decision_to_json(d: DecisionRecord) -> dict[str, Any]:
    """One stored decision as an export record."""
    record = {k: getattr(d, k) for k in field_names(ExportDecision) if k != "trial"}
    return {**record, "trial": d.trial_number}


def answer_to_json(a: AnswerRecord, keys: Mapping[int, tuple[int, float, int]]) -> dict[str, Any]:
    """One stored answer as an export record (``keys``: evaluation id -> its trial,
    fraction and epochs)."""
    after = keys[a.after_evaluation_id]
    return {
        "after": dict(zip(field_names(ExportKey), after, strict=True)),
        "answer": {"trial": a.trial_number, "fraction": a.fraction, "epochs": a.epochs},
        "rule": a.rule,
        "note": a.note,
        "posterior": a.posterior,
        "prior_weight": a.prior_weight,
    }


def _study_to_json(kb: KnowledgeBase, s: StudyRecord, fingerprint: str | None) -> dict[str, Any]:
    evaluations = kb.evaluations(study=s.name)
    keys = {e.id: (e.trial_number, e.fidelity.fraction, e.fidelity.epochs) for e in evaluations}
    return {
        "name": s.name,
        "dataset": fingerprint,
        "scheduler": s.scheduler,
        "settings": dict(s.settings),
        "space": None if s.space is None else dict(s.space),
        "seed": s.seed,
        "objective": s.objective,
        "model_family": s.model_family,
        "created_at": _time(s.created_at),
        "llp_version": s.llp_version,
        "evaluations": [evaluation_to_json(e) for e in evaluations],
        "decisions": [decision_to_json(d) for d in kb.decisions(s.name)],
        "answers": [answer_to_json(a, keys) for a in kb.answers(s.name)],
    }


def export_document(kb: KnowledgeBase, studies: Sequence[str] | None = None) -> dict[str, Any]:
    """The knowledge base (or the named studies and their datasets) as an export
    document; raises :class:`ExchangeError` for an unknown study name."""
    all_studies = kb.list_studies()
    if studies:
        known = {s.name for s in all_studies}
        unknown = [n for n in studies if n not in known]
        if unknown:
            raise ExchangeError(
                f"The '--study' option names {', '.join(map(repr, unknown))}, not in the "
                f"knowledge base {kb.storage!r} ('llp kb list' shows its studies)."
            )
        chosen = [s for s in all_studies if s.name in set(studies)]
    else:
        chosen = all_studies
    datasets = kb.list_datasets()
    by_id = {d.id: d for d in datasets}
    used = {s.dataset_id for s in chosen}
    if studies:
        datasets = [d for d in datasets if d.id in used]
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "llp_version": __version__,
        "exported_at": _time(datetime.datetime.now(datetime.UTC)),
        "source": kb.storage,
        "datasets": [
            {
                "fingerprint": d.fingerprint,
                "name": d.name,
                "group": d.group,
                "n_samples": d.n_samples,
                "meta_features": {k: float_to_json(float(v)) for k, v in d.meta_features.items()},
                "created_at": _time(d.created_at),
            }
            for d in datasets
        ],
        "studies": [
            _study_to_json(
                kb, s, by_id[s.dataset_id].fingerprint if s.dataset_id in by_id else None
            )
            for s in chosen
        ],
    }


def infer_format(path: Path, fmt: str | None) -> Format:
    """``--format`` if given, else from the suffix (``.json``, ``.parquet``/``.pq``)."""
    if fmt is not None:
        if fmt not in ("json", "parquet"):
            raise ExchangeError(
                f"The '--format' option must be 'json' or 'parquet'. Got {fmt!r} instead."
            )
        return "json" if fmt == "json" else "parquet"
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ExchangeError(
        f"Cannot tell the format of {str(path)!r} from its suffix {suffix!r}; name it "
        ".json or .parquet, or give --format json|parquet."
    )


def _pyarrow(path: Path) -> Any:
    try:
        pyarrow = importlib.import_module("pyarrow")
        importlib.import_module("pyarrow.parquet")
    except ImportError as exc:
        raise ExchangeError(
            f"Parquet files ({str(path)!r}) need pyarrow. Install it with: "
            'pip install "llp[parquet]", or use JSON.'
        ) from exc
    return pyarrow


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    format: Format
    datasets: int
    studies: int
    evaluations: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "datasets": self.datasets,
            "studies": self.studies,
            "evaluations": self.evaluations,
        }


def export_knowledge(
    kb: KnowledgeBase,
    path: str | Path,
    *,
    fmt: str | None = None,
    studies: Sequence[str] | None = None,
) -> ExportSummary:
    """Write the knowledge base (or some studies) to a JSON or Parquet file."""
    target = Path(path).expanduser()
    chosen = infer_format(target, fmt)
    doc = export_document(kb, studies)
    n_eval = sum(len(s["evaluations"]) for s in doc["studies"])
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if chosen == "json":
            target.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        else:
            _write_parquet(doc, target)
    except OSError as exc:
        raise ExchangeError(f"Cannot write {str(target)!r}: {_flat(str(exc))}") from exc
    return ExportSummary(target, chosen, len(doc["datasets"]), len(doc["studies"]), n_eval)


_JSON_COLUMNS = ("config", "curve", "landscape")


def _write_parquet(doc: Mapping[str, Any], path: Path) -> None:
    pa = _pyarrow(path)
    pq = importlib.import_module("pyarrow.parquet")

    rows = []
    for study in doc["studies"]:
        for e in study["evaluations"]:
            row = {"study": study["name"]}
            for key in _EVALUATION_KEYS:
                value = e[key]
                row[key] = json.dumps(value, allow_nan=False) if key in _JSON_COLUMNS else value
            rows.append(row)
    schema = pa.schema(
        [
            ("study", pa.string()), ("trial", pa.int64()), ("config", pa.string()),
            ("fraction", pa.float64()), ("epochs", pa.int64()), ("status", pa.string()),
            ("score", pa.float64()), ("objective", pa.string()), ("cost", pa.float64()),
            ("seconds", pa.float64()), ("train_seconds", pa.float64()), ("n_train", pa.int64()),
            ("seed", pa.int64()), ("curve", pa.string()), ("landscape", pa.string()),
            ("probe_cost", pa.float64()), ("failure_reason", pa.string()),
            ("traceback", pa.string()), ("bracket", pa.int64()), ("rung", pa.int64()),
            ("reason", pa.string()), ("llp_version", pa.string()), ("created_at", pa.string()),
        ]
    )  # fmt: skip
    header = {k: v for k, v in doc.items() if k != "studies"}
    header["studies"] = [{k: v for k, v in s.items() if k != "evaluations"} for s in doc["studies"]]
    table = pa.Table.from_pylist(rows, schema=schema).replace_schema_metadata(
        {PARQUET_METADATA_KEY: json.dumps(header, allow_nan=False).encode()}
    )
    pq.write_table(table, path)


# --------------------------------------------------------------------------- reading
class _Invalid(Exception):
    """A record that breaks the format; the message says where and why."""


def _reject_constant(token: str) -> Any:
    raise _Invalid(f'the JSON holds the non-standard token {token} (write "{token}" instead)')


@dataclass
class _ImportPlan:
    """A validated export, ready to write."""

    datasets: list[dict[str, Any]] = field(default_factory=list)
    studies: list[dict[str, Any]] = field(default_factory=list)


def _too_large(path: Path, size: int, what: str) -> ExchangeError:
    advice = "Export fewer studies per file (llp kb export --study NAME)."
    reader = "llp imports at once"
    return ExchangeError(too_large(repr(str(path)), size, what, MAX_IMPORT_BYTES, reader, advice))


def _read_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ExchangeError(f"Cannot read {str(path)!r}: {_flat(str(exc))}") from exc
    if size > MAX_IMPORT_BYTES:
        raise _too_large(path, size, "JSON")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExchangeError(f"Cannot read {str(path)!r}: {_flat(str(exc))}") from exc
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ExchangeError(f"{str(path)!r} is not valid JSON: {_flat(str(exc))}") from exc
    except _Invalid as exc:
        raise ExchangeError(f"{str(path)!r} is not a valid llp export: {exc}") from exc


def _read_parquet(path: Path) -> Any:
    _pyarrow(path)
    pq = importlib.import_module("pyarrow.parquet")

    try:
        size = parquet_size(path)
    except Exception as exc:  # pyarrow raises its own types for every kind of bad file
        raise ExchangeError(
            f"{str(path)!r} is not a readable Parquet file: {_flat(str(exc))}"
        ) from exc
    if size > MAX_IMPORT_BYTES:
        raise _too_large(path, size, "uncompressed columns")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own types for every kind of bad file
        raise ExchangeError(
            f"{str(path)!r} is not a readable Parquet file: {_flat(str(exc))}"
        ) from exc
    metadata = table.schema.metadata or {}
    if PARQUET_METADATA_KEY not in metadata:
        raise ExchangeError(
            f"{str(path)!r} is a Parquet file but not an llp export (no "
            f"{PARQUET_METADATA_KEY.decode()!r} metadata)."
        )
    try:
        doc = json.loads(
            metadata[PARQUET_METADATA_KEY].decode("utf-8"), parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, json.JSONDecodeError, _Invalid) as exc:
        raise ExchangeError(
            f"The llp metadata of {str(path)!r} is not valid JSON: {_flat(str(exc))}"
        ) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("studies"), list):
        raise ExchangeError(f"The llp metadata of {str(path)!r} has no 'studies' list.")
    expected = {"study", *_EVALUATION_KEYS}
    if set(table.column_names) != expected:
        raise ExchangeError(
            f"{str(path)!r} must have the columns {sorted(expected)}. "
            f"Got {sorted(table.column_names)}."
        )
    studies = {}
    for i, s in enumerate(doc["studies"]):
        if not isinstance(s, dict) or not isinstance(s.get("name"), str):
            raise ExchangeError(f"{str(path)!r}: studies[{i}] in the metadata has no name.")
        if "evaluations" in s:
            raise ExchangeError(
                f"{str(path)!r}: studies[{i}] in the metadata must not hold evaluations."
            )
        s["evaluations"] = []
        studies[s["name"]] = s
    for number, row in enumerate(table.to_pylist()):
        name = row.pop("study")
        if not isinstance(name, str):
            raise ExchangeError(
                f"{str(path)!r}: row {number} column 'study' must be a study name (a "
                f"string). Got a {type(name).__name__}."
            )
        if name not in studies:
            raise ExchangeError(
                f"{str(path)!r}: row {number} belongs to the unknown study {name!r}."
            )
        for key in _JSON_COLUMNS:
            try:
                row[key] = json.loads(row[key], parse_constant=_reject_constant)
            except (TypeError, json.JSONDecodeError, _Invalid) as exc:
                raise ExchangeError(
                    f"{str(path)!r}: row {number} column {key!r} is not valid JSON: "
                    f"{_flat(str(exc))}"
                ) from exc
        studies[name]["evaluations"].append(row)
    return doc


def read_export(path: str | Path) -> _ImportPlan:
    """Read and validate an export file completely (nothing is written)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ExchangeError(f"The file {str(path)!r} does not exist.")
    fmt = infer_format(file, None) if file.suffix.lower() in (".json", ".parquet", ".pq") else None
    if fmt is None:
        with file.open("rb") as fh:
            fmt = "parquet" if fh.read(4) == b"PAR1" else "json"
    try:
        doc = _read_json(file) if fmt == "json" else _read_parquet(file)
        return _validate(doc)
    except _Invalid as exc:
        raise ExchangeError(f"{str(path)!r} is not a valid llp export: {exc}") from exc
    except RecursionError:
        raise ExchangeError(
            f"{str(path)!r} is not a valid llp export: it is nested too deeply (an export "
            "nests a few levels; this one goes past Python's recursion limit)."
        ) from None


def _validate(doc: Any) -> _ImportPlan:
    from llp.space import SearchSpace

    top = _convert(doc, ExportDocument, "the document")
    if top.format != FORMAT_NAME:
        raise _Invalid(f"'format' must be {FORMAT_NAME!r}. Got {top.format!r}.")
    if top.format_version > FORMAT_VERSION:
        raise _Invalid(
            f"'format_version' is {top.format_version}, newer than the {FORMAT_VERSION} this "
            f"llp {__version__} reads; upgrade llp to import it."
        )
    plan = _ImportPlan()
    fingerprints: set[str] = set()
    for i, d in enumerate(top.datasets):
        where = f"datasets[{i}]"
        dataset = _convert(d, ExportDataset, where)
        if dataset.fingerprint in fingerprints:
            raise _Invalid(f"{where}.fingerprint {dataset.fingerprint!r} appears twice.")
        fingerprints.add(dataset.fingerprint)
        plan.datasets.append(
            {
                "fingerprint": dataset.fingerprint,
                "name": dataset.name,
                "group": dataset.group,
                "n_samples": dataset.n_samples,
                "meta_features": dataset.meta_features,
            }
        )
    names: set[str] = set()
    for i, s in enumerate(top.studies):
        if top.format_version != 1 and isinstance(s, Mapping):
            missing = {"decisions", "answers"} - set(s)
            if missing:  # format 2 on: a study carries both (empty lists at least)
                raise _Invalid(f"studies[{i}] misses {sorted(missing)}.")
        named = isinstance(s, Mapping) and isinstance(s.get("name"), str)
        where = f"study {s['name']!r}" if named else f"studies[{i}]"
        study = _convert(s, ExportStudy, where)
        where = f"study {study.name!r}"
        if study.name in names:
            raise _Invalid(f"{where} appears twice.")
        names.add(study.name)
        if study.dataset is not None and study.dataset not in fingerprints:
            raise _Invalid(f"{where}.dataset {study.dataset!r} is not one of the file's datasets.")
        _bounded_json(study.settings, f"{where}.settings")
        space = None
        if study.space is not None:
            _bounded_json(study.space, f"{where}.space")
            try:
                space = SearchSpace.from_dict(study.space)
            except (TypeError, ValueError) as exc:
                raise _Invalid(f"{where}.space is not a valid search space: {exc}") from None
        evaluations = []
        trial_configs: dict[int, str] = {}
        keys_seen: set[tuple[int, float, int]] = set()
        for j, e in enumerate(study.evaluations):
            item = _evaluation(e, f"{where}.evaluations[{j}]", space)
            canonical = json.dumps(item["config"], sort_keys=True)
            known = trial_configs.setdefault(item["trial"], canonical)
            if known != canonical:
                raise _Invalid(
                    f"{where}.evaluations[{j}] gives trial {item['trial']} another configuration "
                    "than an earlier record; a trial number names one configuration."
                )
            key = (item["trial"], item["result"].fidelity.fraction, item["result"].fidelity.epochs)
            if key in keys_seen:
                raise _Invalid(
                    f"{where}.evaluations[{j}] repeats trial {key[0]} at fraction {key[1]}, "
                    f"epochs {key[2]}."
                )
            keys_seen.add(key)
            evaluations.append(item)
        decisions = [_decision(d, f"{where}.decisions[{j}]") for j, d in enumerate(study.decisions)]
        sequences = [d.sequence for d in decisions]
        if len(set(sequences)) != len(sequences):
            raise _Invalid(f"{where}.decisions repeat a sequence number.")
        answers = [
            _answer(a, f"{where}.answers[{j}]", keys_seen) for j, a in enumerate(study.answers)
        ]
        plan.studies.append(
            {
                "name": study.name,
                "dataset": study.dataset,
                "scheduler": study.scheduler,
                "settings": study.settings,
                "space": study.space,
                "seed": study.seed,
                "objective": study.objective,
                "model_family": study.model_family,
                "evaluations": evaluations,
                "decisions": decisions,
                "answers": answers,
            }
        )
    return plan


def _bounded_json(value: Mapping[str, Any], where: str) -> None:
    """A study's settings or space within the store's limits (nesting, length)."""
    rule = too_deep(value) or too_long(json.dumps(value, sort_keys=True, separators=(",", ":")))
    if rule is not None:
        raise _Invalid(f"{where} {rule}")


def _decision(record: ExportDecision, where: str) -> DecisionRecord:
    from llp.store import DecisionRecord
    from llp.store._codec import decision_row

    fields = {f: getattr(record, f) for f in field_names(ExportDecision) if f != "trial"}
    decision = DecisionRecord(**fields, trial_number=record.trial)
    try:
        decision_row(decision, owner=where)  # the store's own rules, checked before writing
    except (TypeError, ValueError) as exc:
        raise _Invalid(_flat(str(exc))) from None
    return decision


def _answer(
    record: ExportAnswer, where: str, evaluations: set[tuple[int, float, int]]
) -> tuple[tuple[int, float, int], NewAnswer]:
    from llp.store import NewAnswer

    after, chosen = ((key.trial, key.fraction, key.epochs) for key in (record.after, record.answer))
    for key, name in ((after, "after"), (chosen, "answer")):
        if key not in evaluations:
            raise _Invalid(
                f"{where}.{name} names trial {key[0]} at fraction {key[1]}, epochs {key[2]}, "
                "which is not one of the study's evaluations in the file."
            )
    answer = NewAnswer(
        *chosen,
        rule=record.rule,
        note=record.note,
        posterior=record.posterior,
        prior_weight=record.prior_weight,
    )
    return after, answer


def _convert(value: Any, record_type: Any, where: str) -> Any:
    """``value`` as a record of the declared schema (:mod:`llp.store._file_records`)."""
    try:
        return msgspec.convert(value, record_type)
    except msgspec.ValidationError as exc:
        raise _Invalid(f"{where}: {_flat(schema_error(exc))}.") from None


def _evaluation(value: Any, where: str, space: Any) -> dict[str, Any]:
    record = _convert(value, ExportEvaluation, where)
    config = dict(record.config)
    if space is not None:
        try:
            space.validate(config)
        except (TypeError, ValueError) as exc:
            raise _Invalid(f"{where}.config is not legal in the study's space: {exc}") from None
    try:
        result = evaluation_result(record, config, traceback=record.traceback)
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"{where}: {_flat(str(exc))}.") from None
    return {
        "trial": record.trial,
        "config": config,
        "result": result,
        "bracket": record.bracket,
        "rung": record.rung,
        "reason": record.reason,
    }


# --------------------------------------------------------------------------- writing
@dataclass(frozen=True)
class ImportSummary:
    """What an import added (``*_new``) and found already there."""

    path: Path
    dry_run: bool
    datasets: int
    studies: int
    evaluations: int
    studies_new: int
    evaluations_new: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "dry_run": self.dry_run,
            "datasets": self.datasets,
            "studies": self.studies,
            "evaluations": self.evaluations,
            "studies_new": self.studies_new,
            "evaluations_new": self.evaluations_new,
        }


def _same(result: EvaluationResult, stored: StoredEvaluation, item: Mapping[str, Any]) -> bool:
    """Whether an imported evaluation equals the stored one (bookkeeping aside)."""
    ours = evaluation_to_json(stored)
    theirs = evaluation_to_json(_StoredLike(item, result))  # type: ignore[arg-type]
    for record in (ours, theirs):
        del record["llp_version"], record["created_at"]
    return json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True)


class _StoredLike:
    """Just enough of a StoredEvaluation for :func:`evaluation_to_json`."""

    def __init__(self, item: Mapping[str, Any], result: EvaluationResult) -> None:
        self.trial_number = item["trial"]
        self.result = result
        self.bracket = item["bracket"]
        self.rung = item["rung"]
        self.reason = item["reason"]
        self.llp_version = ""
        self.created_at = datetime.datetime.now(datetime.UTC)


def _check_against(kb: KnowledgeBase, plan: _ImportPlan) -> None:
    """Refuse, before writing anything, what the knowledge base would refuse halfway,
    and what would silently overwrite what it holds."""
    stored_datasets = kb.list_datasets()
    datasets = {d.id: d.fingerprint for d in stored_datasets}
    by_fingerprint = {d.fingerprint: d for d in stored_datasets}
    for d in plan.datasets:
        held = by_fingerprint.get(d["fingerprint"])
        if held is None:
            continue
        # A fingerprint names one dataset: an import may fill in what is missing, never
        # replace what is stored (that would rewrite what every study on it learned from).
        differs = [
            key
            for key, ours, theirs in (
                ("name", held.name, d["name"]),
                ("group", held.group, d["group"]),
                ("n_samples", held.n_samples, d["n_samples"]),
                ("meta_features", dict(held.meta_features) or None, d["meta_features"] or None),
            )
            if ours is not None
            and theirs is not None
            and json.dumps(ours, sort_keys=True) != json.dumps(theirs, sort_keys=True)
        ]
        if differs:
            raise ExchangeError(
                f"The dataset {d['fingerprint'][:16]}... is stored in {kb.storage!r} with "
                f"another {', '.join(differs)}; nothing was imported (an import never "
                "replaces a stored dataset). Import into another knowledge base."
            )
    for s in plan.studies:
        stored = kb.get_study(s["name"])
        if stored is None:
            continue
        where = f"The study {s['name']!r}"
        differs = [
            key
            for key, ours in (
                ("scheduler", stored.scheduler),
                ("settings", dict(stored.settings)),
                ("space", None if stored.space is None else dict(stored.space)),
                ("seed", stored.seed),
                ("objective", stored.objective),
                ("model_family", stored.model_family),
                ("dataset", datasets.get(stored.dataset_id) if stored.dataset_id else None),
            )
            if json.dumps(ours, sort_keys=True, default=str)
            != json.dumps(s[key], sort_keys=True, default=str)
        ]
        if differs:
            raise ExchangeError(
                f"{where} already exists in {kb.storage!r} with other {', '.join(differs)}; "
                "nothing was imported. Import into another knowledge base, or rename the "
                "study in the file."
            )
        present = {
            (e.trial_number, e.fidelity.fraction, e.fidelity.epochs): e
            for e in kb.evaluations(study=s["name"])
        }
        trial_configs = {
            e.trial_number: json.dumps(dict(e.config), sort_keys=True) for e in present.values()
        }
        for item in s["evaluations"]:
            result = item["result"]
            known = trial_configs.get(item["trial"])
            if known is not None and known != json.dumps(item["config"], sort_keys=True):
                raise ExchangeError(
                    f"{where}: trial {item['trial']} has another configuration in "
                    f"{kb.storage!r}; nothing was imported."
                )
            stored_eval = present.get(
                (item["trial"], result.fidelity.fraction, result.fidelity.epochs)
            )
            if stored_eval is not None and not _same(result, stored_eval, item):
                raise ExchangeError(
                    f"{where}: trial {item['trial']} at fraction {result.fidelity.fraction}, "
                    f"epochs {result.fidelity.epochs} is stored in {kb.storage!r} with other "
                    "results; a finished evaluation is never overwritten. Nothing was imported."
                )


def import_knowledge(
    kb: KnowledgeBase, path: str | Path, *, dry_run: bool = False
) -> ImportSummary:
    """Validate an export file completely, check it against the knowledge base, then
    write it (unless ``dry_run``)."""
    from llp.store import NewEvaluation

    plan = read_export(path)
    _check_against(kb, plan)
    n_eval = sum(len(s["evaluations"]) for s in plan.studies)
    if dry_run:
        new_studies = sum(1 for s in plan.studies if kb.get_study(s["name"]) is None)
        return ImportSummary(
            Path(path), True, len(plan.datasets), len(plan.studies), n_eval, new_studies, 0
        )
    # One transaction: an import is stored whole or not at all.
    with kb.transaction():
        before = kb.counts()
        ids: dict[str, int] = {}
        for d in plan.datasets:
            ids[d["fingerprint"]] = kb.upsert_dataset(
                d["fingerprint"],
                name=d["name"],
                group=d["group"],
                n_samples=d["n_samples"],
                meta_features=d["meta_features"],
            )
        for s in plan.studies:
            study = kb.get_or_create_study(
                s["name"],
                scheduler=s["scheduler"],
                settings=s["settings"],
                space=s["space"],
                seed=s["seed"],
                objective=s["objective"],
                dataset_id=ids.get(s["dataset"]) if s["dataset"] else None,
                model_family=s["model_family"],
            )
            kb.record_evaluations(
                study.id,
                [
                    NewEvaluation(
                        e["trial"], e["config"], e["result"], e["bracket"], e["rung"], e["reason"]
                    )
                    for e in s["evaluations"]
                ],
            )
            # Decisions and answers already stored for the study are kept as they are.
            kb.record_decisions(study.id, s["decisions"])
            kb.record_answers(study.id, s["answers"])
        after = kb.counts()
    return ImportSummary(
        Path(path),
        False,
        len(plan.datasets),
        len(plan.studies),
        n_eval,
        after["studies"] - before["studies"],
        after["evaluations"] - before["evaluations"],
    )


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ExportSummary",
    "ImportSummary",
    "answer_to_json",
    "decision_to_json",
    "evaluation_to_json",
    "export_document",
    "export_knowledge",
    "import_knowledge",
    "infer_format",
    "read_export",
]
