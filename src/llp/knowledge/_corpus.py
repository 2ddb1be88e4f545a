"""The shipped-knowledge file: writing it from a knowledge base, reading it back safely.

Format (``FORMAT_VERSION`` 2): gzip-compressed JSON Lines, one JSON object per line,
strict JSON (no ``NaN``/``Infinity`` tokens: a non-finite loss or landscape value is
written by name, ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``, as in ``llp kb export``
files; format 1, in which the shipped file is still written, wrote ``null`` for all
three, read back as NaN). The ``kind`` of each record says what it is:

1. ``header`` (first line, exactly one): ``format``, ``format_version``, ``llp_version``,
   ``created``, ``space`` (:meth:`llp.space.SearchSpace.to_dict`), ``design`` (seed,
   number of configurations, fractions, epochs, data and subsample seeds...),
   ``families``, ``meta_features`` (how they were computed), ``preprocessing``,
   ``command``, ``build`` (wall time and machine) and ``counts``.
2. ``dataset``: ``fingerprint``, ``name``, ``group``, ``n_samples``, ``source``,
   ``meta_features`` (every name of :data:`llp.features.DATASET_FEATURES`).
3. ``study``: ``name``, ``dataset`` (a fingerprint above), ``model_family``,
   ``objective``.
4. ``evaluation``: ``study``, ``trial``, ``config``, ``fraction``, ``epochs``,
   ``status``, ``score``, ``objective``, ``cost``, ``seconds``, ``train_seconds``,
   ``probe_cost``, ``n_train``, ``seed``, ``curve`` (column-wise: ``epoch``,
   ``train_loss``, ``val_loss``, ``val_accuracy``, ``seconds``), ``landscape`` and
   ``failure_reason`` (tracebacks stay in the knowledge base).

Reading never executes anything from the file: each line is parsed as JSON straight into
the declared record types of :mod:`llp.store._file_records` (the evaluation record is the
one ``llp kb export`` files carry too), which check every field's type and range while
parsing; then each record is checked against those before it (references, repeats,
configurations legal in the header's space) and the record counts against the header,
before any object is built. The first problem raises a ``ValueError`` that names the
file, the record number, the field and the rule.
"""

from __future__ import annotations

import datetime
import functools
import gc
import gzip
import json
import math
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import msgspec

from llp import __version__
from llp.space import SearchSpace
from llp.space._space import canonical_config_json
from llp.store._codec import float_to_json
from llp.store._file_records import (
    KnowledgeDataset,
    KnowledgeEvaluation,
    KnowledgeHeader,
    KnowledgeRecord,
    KnowledgeStudy,
    evaluation_result,
    schema_error,
)
from llp.training import EvaluationResult, Fidelity, Objective

if TYPE_CHECKING:
    from llp.meta import Experience

#: Name written in every header; a file without it is not shipped knowledge.
FORMAT_NAME = "llp-shipped-knowledge"
#: Version of the record layout; a reader refuses files of a newer version.
FORMAT_VERSION = 2
#: ``scheduler`` of the knowledge-base studies :func:`distill` reads.
DESIGN_SCHEDULER = "FixedDesign"
#: Significant digits kept for floats (seconds get fewer: they are machine noise).
SIGNIFICANT_DIGITS = 6
SECONDS_DIGITS = 4
# A line longer than this is refused before it is parsed (the real ones are ~1 kB).
_MAX_LINE_BYTES = 1 << 20


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class ShippedDataset:
    """One dataset of a corpus: what identifies it and what the meta-model reads of it.

    Attributes
    ----------
    fingerprint : str
        :func:`llp.features.dataset_fingerprint` of the prepared data.
    name : str
        E.g. ``"keel-abalone19"`` or ``"sklearn-digits"``.
    group : str
        Family of related datasets (one base dataset); hold out whole groups.
    n_samples : int
        Rows used (after subsampling and dropping rows with missing values).
    source : str
        Where the data came from, e.g. ``"keel-imbalanced"``.
    meta_features : Mapping of str to float
        :class:`llp.features.DatasetFeatureExtractor` features (read-only view).
    """

    fingerprint: str
    name: str
    group: str
    n_samples: int
    source: str
    meta_features: Mapping[str, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "meta_features", MappingProxyType(dict(self.meta_features)))

    def as_dict(self) -> dict[str, Any]:
        """A plain copy: ``fingerprint``, ``name``, ``group``, ``n_samples``, ``source``
        and ``meta_features`` (a new dict)."""
        return {
            "fingerprint": self.fingerprint,
            "name": self.name,
            "group": self.group,
            "n_samples": self.n_samples,
            "source": self.source,
            "meta_features": dict(self.meta_features),
        }


@dataclass(frozen=True)
class Corpus:
    """A corpus file read back: its header, datasets and evaluations.

    Attributes
    ----------
    path : Path
    header : Mapping
        The header record (read-only at the top level).
    space : SearchSpace
        The space the design was sampled from (rebuilt from the header).
    datasets : tuple of ShippedDataset
    experiences : tuple of Experience
        Every evaluation, complete or failed, as :class:`llp.meta.MetaModelTrainer`
        takes them; ``Experience.dataset`` is the dataset's fingerprint.
    """

    path: Path
    header: Mapping[str, Any]
    space: SearchSpace
    datasets: tuple[ShippedDataset, ...]
    experiences: tuple[Experience, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", MappingProxyType(dict(self.header)))

    @property
    def groups(self) -> tuple[str, ...]:
        """The dataset groups, sorted."""
        return tuple(sorted({d.group for d in self.datasets}))

    @property
    def model_families(self) -> tuple[str, ...]:
        """The model families of the studies, sorted."""
        return tuple(sorted({e.model_family or "" for e in self.experiences}))


# --------------------------------------------------------------------------- writing
def _rounded(value: float, digits: int = SIGNIFICANT_DIGITS) -> float | str:
    """``value`` to ``digits`` significant digits; a non-finite one by name (``"NaN"``...,
    the convention of every llp file, :func:`llp.store._codec.float_to_json`)."""
    value = float(value)
    if not math.isfinite(value):
        return float_to_json(value)
    return float(f"{value:.{digits}g}") + 0.0


def _rounded_optional(value: float | None, digits: int = SIGNIFICANT_DIGITS) -> float | None:
    """An optional finite value (a score, an accuracy) to ``digits`` significant digits;
    ``None`` (JSON null) when absent or not a number."""
    if value is None or not math.isfinite(float(value)):
        return None
    return float(f"{float(value):.{digits}g}") + 0.0


def _curve_columns(result: EvaluationResult, digits: int, seconds: int) -> dict[str, list[Any]]:
    return {
        "epoch": [int(p.epoch) for p in result.curve],
        "train_loss": [_rounded(p.train_loss, digits) for p in result.curve],
        "val_loss": [_rounded(p.val_loss, digits) for p in result.curve],
        "val_accuracy": [_rounded_optional(p.val_accuracy, digits) for p in result.curve],
        "seconds": [_rounded(p.seconds, seconds) for p in result.curve],
    }


def _evaluation_record(
    study: str,
    trial: int,
    result: EvaluationResult,
    digits: int = SIGNIFICANT_DIGITS,
    seconds: int = SECONDS_DIGITS,
) -> dict[str, Any]:
    return {
        "kind": "evaluation",
        "study": study,
        "trial": int(trial),
        "config": json.loads(canonical_config_json(result.config)),
        "fraction": float(result.fidelity.fraction),
        "epochs": int(result.fidelity.epochs),
        "status": result.status.value,
        "score": _rounded_optional(result.score, digits),
        "objective": result.objective,
        "cost": _rounded(result.cost, digits),
        "seconds": _rounded(result.seconds, seconds),
        "train_seconds": _rounded(result.train_seconds, seconds),
        "probe_cost": _rounded(result.probe_cost, digits),
        "n_train": int(result.n_train),
        "seed": int(result.seed),
        "curve": _curve_columns(result, digits, seconds),
        "landscape": {k: _rounded(v, digits) for k, v in sorted(result.landscape.items())},
        "failure_reason": result.failure_reason,
    }


def distill(
    knowledge_base: Any,
    path: str | os.PathLike[str],
    *,
    command: str = "",
    build: Mapping[str, Any] | None = None,
    families: Mapping[str, str] | None = None,
    preprocessing: str = "",
    digits: int = SIGNIFICANT_DIGITS,
    seconds_digits: int = SECONDS_DIGITS,
) -> Corpus:
    """Write the fixed-design studies of a knowledge base as a shipped-knowledge file.

    Every study whose scheduler is :data:`DESIGN_SCHEDULER` is written, with its dataset
    and all of its evaluations (failed ones included, without tracebacks); floats keep
    :data:`SIGNIFICANT_DIGITS` significant digits. The studies must share one design and
    one space (``settings["design"]`` and ``space``), so that every dataset of a family
    saw the same configurations. The file is written to a temporary name and moved into
    place, then read back with :func:`read_corpus` as a check.

    Parameters
    ----------
    knowledge_base : llp.store.KnowledgeBase
    path : path-like
        Where to write, e.g. ``src/llp/knowledge/corpus.jsonl.gz``.
    command : str, default=""
        The command that built the knowledge base (for the header).
    build : mapping, optional
        How the build went (wall time, machine...), copied into the header.
    families : mapping of str to str, optional
        A description of each model family.
    preprocessing : str, default=""
        How the datasets were prepared.
    digits, seconds_digits : int
        Significant digits kept for floats, and for times (machine noise); fewer make a
        smaller file.

    Returns
    -------
    Corpus
        The file as read back.

    Raises
    ------
    ValueError
        If the knowledge base holds no fixed-design study, or studies of different
        designs or spaces, or a study without a dataset.
    """
    studies = [s for s in knowledge_base.list_studies() if s.scheduler == DESIGN_SCHEDULER]
    if not studies:
        raise ValueError(
            f"The knowledge base {knowledge_base.storage!r} holds no study with scheduler "
            f"{DESIGN_SCHEDULER!r}; build one with benchmarks/build_corpus.py first."
        )
    design_texts = {json.dumps(s.settings.get("design"), sort_keys=True) for s in studies}
    space_texts = {json.dumps(s.space, sort_keys=True, default=dict) for s in studies}
    if len(design_texts) != 1 or len(space_texts) != 1:
        raise ValueError(
            f"The studies of {knowledge_base.storage!r} use {len(design_texts)} designs and "
            f"{len(space_texts)} spaces; a corpus needs exactly one of each (build it into "
            "a fresh knowledge base)."
        )
    datasets = {d.id: d for d in knowledge_base.list_datasets()}
    by_study: dict[str, list[Any]] = {s.name: [] for s in studies}
    for stored in knowledge_base.evaluations():
        if stored.study in by_study:
            by_study[stored.study].append(stored)
    used: dict[str, Any] = {}
    study_records = []
    for s in sorted(studies, key=lambda s: s.name):
        dataset = datasets.get(s.dataset_id) if s.dataset_id is not None else None
        if dataset is None:
            raise ValueError(f"The study {s.name!r} has no dataset; cannot ship it.")
        used[dataset.fingerprint] = (dataset, dict(s.settings.get("dataset", {})))
        study_records.append(
            {
                "kind": "study",
                "name": s.name,
                "dataset": dataset.fingerprint,
                "model_family": s.model_family,
                "objective": s.objective,
            }
        )
    dataset_records = [
        {
            "kind": "dataset",
            "fingerprint": fingerprint,
            "name": record.name or fingerprint[:12],
            "group": record.group or record.name or fingerprint[:12],
            "n_samples": int(record.n_samples or 0),
            "source": str(provenance.get("source", "")),
            "meta_features": {k: _rounded(v) for k, v in sorted(record.meta_features.items())},
        }
        for fingerprint, (record, provenance) in sorted(
            used.items(), key=lambda item: (item[1][0].group or "", item[1][0].name or "")
        )
    ]
    evaluation_records = [
        _evaluation_record(name, e.trial_number, e.result, digits, seconds_digits)
        for name in sorted(by_study)
        for e in sorted(
            by_study[name],
            key=lambda e: (e.trial_number, e.result.fidelity.fraction, e.result.fidelity.epochs),
        )
    ]
    header = {
        "kind": "header",
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "llp_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "space": json.loads(next(iter(space_texts))),
        "design": json.loads(next(iter(design_texts))),
        "families": dict(families or {}),
        "meta_features": dict(studies[0].settings.get("meta_features", {})),
        "preprocessing": preprocessing,
        "command": command,
        "build": dict(build or {}),
        "counts": {
            "datasets": len(dataset_records),
            "studies": len(study_records),
            "evaluations": len(evaluation_records),
        },
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
    try:
        with (
            os.fdopen(handle, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as zipped,
        ):
            for record in (header, *dataset_records, *study_records, *evaluation_records):
                line = json.dumps(record, separators=(",", ":"), allow_nan=False)
                zipped.write(line.encode("utf-8") + b"\n")
        os.chmod(temporary, 0o644)  # mkstemp makes the file private; a shipped one is not
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return read_corpus(target, cache=False)


# --------------------------------------------------------------------------- reading
class _Invalid(Exception):
    """A record breaks the format; the reader adds the file and the record number."""


def _strings(value: Any, what: str) -> frozenset[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(
            f"The '{what}' parameter must be a list of str (a bare str would be read "
            f"letter by letter). Got {value!r} instead."
        )
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"The '{what}' parameter must be a list of str. Got {item!r} in it.")
    return frozenset(items)


class _Reader:
    """Reads and checks one corpus file, record by record: each line is parsed into the
    declared record types of :mod:`llp.store._file_records` (types and ranges), then
    checked against the records before it (references, repeats, the header's space)."""

    def __init__(self, path: Path) -> None:
        from llp.meta import Experience

        self._experience = Experience
        self._decoder = msgspec.json.Decoder(KnowledgeRecord)
        self.path = path
        self.header: dict[str, Any] | None = None
        self.space: SearchSpace | None = None
        self.datasets: dict[str, ShippedDataset] = {}
        self.studies: dict[str, tuple[ShippedDataset, str | None, Objective]] = {}
        self.valid_configs: dict[Any, Mapping[str, Any]] = {}
        self.trial_configs: dict[tuple[str, int], tuple[Any, Mapping[str, Any]]] = {}
        self.seen_keys: set[tuple[str, int, float, int]] = set()
        self.fidelities: dict[tuple[float, int], Fidelity] = {}
        self.experiences: list[Experience] = []
        self.halving = False

    def read(self) -> Corpus:
        # The cyclic garbage collector would rescan the growing list of records again
        # and again; nothing read here forms a cycle.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._read()
        finally:
            if collecting:
                gc.enable()

    def _read(self) -> Corpus:
        number = 0
        try:
            for number, line in enumerate(self._lines(), start=1):
                try:
                    self._record(number, line)
                except _Invalid as exc:
                    raise ValueError(
                        f"The knowledge file {str(self.path)!r} is malformed: record "
                        f"{number} {exc}."
                    ) from None
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(
                f"The knowledge file {str(self.path)!r} cannot be read after record "
                f"{number}: it is not a complete gzip file ({type(exc).__name__}: "
                f"{exc}). Was it truncated or corrupted? Rebuild it with "
                "benchmarks/build_corpus.py."
            ) from None
        if self.header is None or self.space is None:
            raise ValueError(f"The knowledge file {str(self.path)!r} is empty: it has no header.")
        counts = self.header["counts"]
        found = {
            "datasets": len(self.datasets),
            "studies": len(self.studies),
            "evaluations": len(self.experiences),
        }
        if found != dict(counts):
            raise ValueError(
                f"The knowledge file {str(self.path)!r} is incomplete: its header announces "
                f"{dict(counts)} records but it holds {found}. Was it truncated?"
            )
        return Corpus(
            path=self.path,
            header=self.header,
            space=self.space,
            datasets=tuple(self.datasets.values()),
            experiences=tuple(self.experiences),
        )

    def _lines(self) -> Iterator[bytes]:
        with gzip.open(self.path, "rb") as handle:
            while True:
                # Bounded reads: a hostile file cannot make one line fill the memory.
                line = handle.readline(_MAX_LINE_BYTES + 1)
                if not line:
                    return
                yield line

    # ------------------------------------------------------------------ records
    def _record(self, number: int, line: bytes) -> None:
        if len(line) > _MAX_LINE_BYTES:
            raise _Invalid(f"is longer than {_MAX_LINE_BYTES} bytes")
        try:
            record = self._decoder.decode(line)
        except msgspec.ValidationError as exc:
            raise _Invalid(f"breaks the record schema: {schema_error(exc)}") from None
        except msgspec.DecodeError as exc:
            raise _Invalid(f"is not valid JSON in UTF-8 ({exc})") from None
        except RecursionError:
            raise _Invalid("is nested too deeply to be a knowledge record") from None
        if number == 1:
            if not isinstance(record, KnowledgeHeader):
                kind = record.__struct_config__.tag
                raise _Invalid(f"must be the header (kind 'header'). Got kind {kind!r}")
            self._header(record)
        elif isinstance(record, KnowledgeEvaluation):
            self._evaluation(record)
        elif isinstance(record, KnowledgeStudy):
            self._study(record)
        elif isinstance(record, KnowledgeDataset):
            self._dataset(record)
        else:
            raise _Invalid(
                "is a second header; after the header only 'dataset', 'study' and "
                "'evaluation' records may follow"
            )

    def _header(self, record: KnowledgeHeader) -> None:
        if record.format != FORMAT_NAME:
            raise _Invalid(f"(header) must have format {FORMAT_NAME!r}. Got {record.format!r}")
        if record.format_version > FORMAT_VERSION:
            raise _Invalid(
                f"(header) has format_version {record.format_version}, newer than the version "
                f"{FORMAT_VERSION} this llp {__version__} reads; upgrade llp"
            )
        # A design that promotes (corpus v2) makes each study one successive-halving
        # bracket, which the meta-model ranks whole (llp.meta.Experience.halving).
        self.halving = record.design.get("reduction_factor") not in (None, 1)
        try:
            self.space = SearchSpace.from_dict(record.space)
        except (TypeError, ValueError, KeyError) as exc:
            raise _Invalid(f"(header) 'space' is not a valid search space: {exc}") from None
        header = msgspec.to_builtins(record)
        header["kind"] = "header"
        self.header = header

    def _dataset(self, record: KnowledgeDataset) -> None:
        from llp.features import DATASET_FEATURES

        if record.fingerprint in self.datasets:
            raise _Invalid(f"(dataset) repeats the fingerprint {record.fingerprint!r}")
        missing = [n for n in DATASET_FEATURES if n not in record.meta_features]
        if missing:
            raise _Invalid(f"(dataset) 'meta_features' lacks {missing}")
        self.datasets[record.fingerprint] = ShippedDataset(
            fingerprint=record.fingerprint,
            name=record.name,
            group=record.group,
            n_samples=record.n_samples,
            source=record.source,
            meta_features=record.meta_features,
        )

    def _study(self, record: KnowledgeStudy) -> None:
        if record.name in self.studies:
            raise _Invalid(f"(study) repeats the study name {record.name!r}")
        dataset = self.datasets.get(record.dataset)
        if dataset is None:
            raise _Invalid(
                f"(study) refers to the dataset {record.dataset!r}, not listed before it"
            )
        self.studies[record.name] = (dataset, record.model_family, record.objective)

    def _evaluation(self, record: KnowledgeEvaluation) -> None:
        study, trial = record.study, record.trial
        if study not in self.studies:
            raise _Invalid(f"(evaluation) refers to the study {study!r}, not listed before it")
        dataset, family, objective = self.studies[study]
        config = self._config(record.config, study, trial)
        key = (study, trial, record.fraction, record.epochs)
        if key in self.seen_keys:
            raise _Invalid(
                f"(evaluation) repeats trial {trial} of study {study!r} at fraction "
                f"{record.fraction}, epochs {record.epochs}"
            )
        self.seen_keys.add(key)
        if record.objective != objective:
            raise _Invalid(
                f"(evaluation) 'objective' must be its study's, {objective!r}. "
                f"Got {record.objective!r}"
            )
        # The shipped knowledge is stricter than the shared rules: no score for a failed
        # evaluation, no failure reason for a complete one.
        if (record.status == "failed") != (record.score is None):
            raise _Invalid(
                f"(evaluation) 'score' must be null exactly when 'status' is 'failed'. Got "
                f"status {record.status!r} and score {record.score!r}"
            )
        if (record.status == "failed") != bool(record.failure_reason):
            raise _Invalid(
                "(evaluation) 'failure_reason' must be given exactly when 'status' is 'failed'"
            )
        try:
            result = evaluation_result(
                record, config, self._fidelity(record.fraction, record.epochs)
            )
        except (TypeError, ValueError) as exc:
            raise _Invalid(f"(evaluation) {exc}") from None
        self.experiences.append(
            self._experience(
                dataset=dataset.fingerprint,
                group=dataset.group,
                meta_features=dataset.meta_features,
                model_family=family,
                study=study,
                trial=trial,
                result=result,
                halving=self.halving,
            )
        )

    def _fidelity(self, fraction: float, epochs: int) -> Fidelity:
        # A corpus has a handful of fidelities; building each once skips thousands of
        # numbers.Real checks (abstract-class isinstance calls are slow).
        fidelity = self.fidelities.get((fraction, epochs))
        if fidelity is None:
            fidelity = self.fidelities[(fraction, epochs)] = Fidelity(fraction, epochs)
        return fidelity

    def _config(self, config: dict[str, Any], study: str, trial: int) -> Mapping[str, Any]:
        assert self.space is not None  # the header came first (checked in _record)
        # A hashable key first: serialising every configuration costs more than the rest
        # of its checks (the schema allows JSON scalars only).
        text = tuple(sorted((k, type(v).__name__, v) for k, v in config.items()))
        known, first = self.trial_configs.setdefault((study, trial), (text, config))
        if known != text:
            raise _Invalid(
                f"(evaluation) gives trial {trial} of study {study!r} the config {config}, but "
                f"an earlier record gave it {first}"
            )
        valid = self.valid_configs.get(text)
        if valid is None:
            try:
                valid = self.space.validate(config)
            except (TypeError, ValueError) as exc:
                raise _Invalid(
                    f"(evaluation) 'config' is not legal in the header's space: {exc}"
                ) from None
            # One read-only view per configuration, shared by its evaluations.
            valid = self.valid_configs[text] = MappingProxyType(valid)
        return valid


@functools.lru_cache(maxsize=4)
def _read_cached(path: str, mtime_ns: int, size: int) -> Corpus:
    # The key holds the modification time and size: a rewritten file is read again.
    # Across processes, the parsed copy on disk is keyed by the file's bytes.
    from llp.knowledge import _parsed
    from llp.meta._trainer import name_experiences

    file = Path(path)
    key = _parsed.file_key(file)
    corpus = _parsed.load(file, key)
    if corpus is None:
        corpus = _Reader(file).read()
        _parsed.save(corpus, key)
    # The file's bytes name its records: a meta-model's key names them by that digest.
    name_experiences(corpus.experiences, f"knowledge-file/{key}")
    return corpus


def read_corpus(path: str | os.PathLike[str], *, cache: bool = True) -> Corpus:
    """Read and check a knowledge file written by :func:`distill`.

    Parameters
    ----------
    path : path-like
    cache : bool, default=True
        Keep the parsed corpus in memory, keyed by the path, modification time and size
        of the file (a rewritten file is read again), and on disk, keyed by the file's
        bytes, for later processes (:mod:`llp.knowledge._parsed`; ``$LLP_CACHE_DIR``,
        empty to turn it off). ``False`` reads and checks the file itself.

    Returns
    -------
    Corpus

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a complete, well-formed knowledge file; the message names
        the file and the first bad record.
    """
    resolved = Path(path).resolve()
    if not resolved.is_file():
        raise FileNotFoundError(
            f"No knowledge file at {str(resolved)!r}. The shipped one is installed with llp "
            "(package data of llp.knowledge); build your own with benchmarks/build_corpus.py."
        )
    if not cache:
        return _Reader(resolved).read()
    stat = resolved.stat()
    return _read_cached(str(resolved), stat.st_mtime_ns, stat.st_size)


def select_experiences(
    corpus: Corpus,
    *,
    exclude_groups: Iterable[str] = (),
    exclude_datasets: Iterable[str] = (),
) -> list[Experience]:
    """The corpus's experiences outside the excluded groups and datasets.

    ``exclude_datasets`` holds fingerprints or dataset names.
    """
    groups = _strings(exclude_groups, "exclude_groups")
    names = _strings(exclude_datasets, "exclude_datasets")
    skip = {
        d.fingerprint
        for d in corpus.datasets
        if d.group in groups or d.name in names or d.fingerprint in names
    }
    return [e for e in corpus.experiences if e.dataset not in skip]
