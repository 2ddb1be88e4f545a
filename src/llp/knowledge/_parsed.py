"""A knowledge file kept parsed on disk, so a new process does not parse it again.

Reading the shipped knowledge (about 63,000 JSON records, each checked field by field and
against the records before it) took half of a warm ``llp predict``. After a file has been
read and checked once, :func:`save` writes what it holds as plain arrays and JSON in one
``.npz`` file, named by a digest of the knowledge file's bytes, llp's version and this
layout's :data:`FORMAT`; a later process that finds it builds the same
:class:`~llp.knowledge.Corpus` from it (:func:`load`) without parsing a line.

Nothing in the file is executed: it is read with ``allow_pickle=False``, its shapes,
indices and counts are checked against each other and the header's, and a file that
fails any check (damaged, foreign, from another layout) is ignored: the knowledge file is
read and checked again and the parsed copy replaced. The copy is only as trusted as the
cache folder it lives in, the same folder as the fitted meta-models
(:mod:`llp.meta._cache`; ``$LLP_CACHE_DIR``, empty to turn both off), in its
``corpora`` subfolder; at most :data:`MAX_FILES` are kept, the least recently used
dropped first. When the folder cannot be written nothing fails.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from llp import __version__
from llp.space import SearchSpace
from llp.store._file_records import MAX_COST, MAX_MAGNITUDE
from llp.training import Curve, EvaluationResult, EvaluationStatus, Fidelity

if TYPE_CHECKING:
    from llp.knowledge._corpus import Corpus

_T = TypeVar("_T")

#: Version of the layout (part of every file's name).
FORMAT = 1
#: Parsed knowledge files kept at most.
MAX_FILES = 2

_STATUSES = tuple(s.value for s in EvaluationStatus)
#: Per-evaluation arrays and their kinds (``i`` integer, ``f`` float, ``b`` bool).
_COLUMNS = {
    "study": "i",
    "trial": "i",
    "config": "i",
    "fidelity": "i",
    "status": "i",
    "objective": "i",
    "halving": "b",
    "score": "f",
    "score_none": "b",
    "cost": "f",
    "seconds": "f",
    "train_seconds": "f",
    "probe_cost": "f",
    "n_train": "i",
    "seed": "i",
    "curve_length": "i",
}
#: Curve arrays, all evaluations' points one after another.
_POINTS = {
    "epoch": "i",
    "train_loss": "f",
    "val_loss": "f",
    "val_accuracy": "f",
    "val_accuracy_none": "b",
    "point_seconds": "f",
}


def folder() -> Path | None:
    """Where parsed knowledge files go, or ``None`` when the cache is turned off."""
    from llp._cache import cache_dir

    base = cache_dir()
    return None if base is None else base / "corpora"


def file_key(path: Path) -> str:
    """The name a parsed copy of the knowledge file at ``path`` is stored under."""
    digest = hashlib.sha256(f"llp-parsed-knowledge-{FORMAT}/llp-{__version__}/".encode())
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(corpus: Corpus, key: str) -> Path | None:
    """Write ``corpus`` under ``key``; returns the file, or ``None`` when the cache is off
    or cannot be written (never raises for that)."""
    from llp._cache import write_arrays

    where = folder()
    if where is None:
        return None
    # Uncompressed: reading it back is the point, and 37 MB of arrays read faster so.
    return write_arrays(
        where / f"{key}.npz", _arrays(corpus, key), compressed=False, keep=MAX_FILES
    )


def load(path: Path, key: str) -> Corpus | None:
    """The corpus of the knowledge file at ``path`` from its parsed copy under ``key``, or
    ``None`` when there is none or it cannot be read."""
    from llp._cache import UNREADABLE, read_arrays, touch

    where = folder()
    if where is None:
        return None
    stored = where / f"{key}.npz"
    if not stored.is_file():
        return None
    collecting = gc.isenabled()
    gc.disable()  # nothing built here forms a cycle
    try:
        corpus = _corpus(path, read_arrays(stored), key)
    except UNREADABLE:
        return None  # damaged or foreign: the knowledge file is read again
    finally:
        if collecting:
            gc.enable()
    touch(stored)  # recently used: evicted last
    return corpus


# ---------------------------------------------------------------------- writing
def _arrays(corpus: Corpus, key: str) -> dict[str, np.ndarray]:
    datasets = {d.fingerprint: i for i, d in enumerate(corpus.datasets)}
    studies: dict[str, int] = {}
    study_rows: list[list[Any]] = []
    configs: dict[int, int] = {}
    config_rows: list[dict[str, Any]] = []
    fidelities: dict[tuple[float, int], int] = {}
    objectives: dict[str, int] = {}
    landscapes: dict[str, dict[str, float]] = {}
    failures: dict[str, str] = {}
    tracebacks: dict[str, str] = {}
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    points: dict[str, list[Any]] = {name: [] for name in _POINTS}
    for n, exp in enumerate(corpus.experiences):
        result = exp.result
        study = studies.get(exp.study)
        if study is None:
            study = studies[exp.study] = len(study_rows)
            study_rows.append([exp.study, datasets[exp.dataset], exp.model_family])
        config = configs.get(id(result.config))
        if config is None:
            config = configs[id(result.config)] = len(config_rows)
            config_rows.append(dict(result.config))
        fid = (result.fidelity.fraction, result.fidelity.epochs)
        row = {
            "study": study,
            "trial": exp.trial,
            "config": config,
            "fidelity": fidelities.setdefault(fid, len(fidelities)),
            "status": _STATUSES.index(result.status.value),
            "objective": objectives.setdefault(result.objective, len(objectives)),
            "halving": exp.halving,
            "score": np.nan if result.score is None else result.score,
            "score_none": result.score is None,
            "cost": result.cost,
            "seconds": result.seconds,
            "train_seconds": result.train_seconds,
            "probe_cost": result.probe_cost,
            "n_train": result.n_train,
            "seed": result.seed,
            "curve_length": len(result.curve),
        }
        for name, value in row.items():
            columns[name].append(value)
        curve = result.curve if isinstance(result.curve, Curve) else Curve(result.curve)
        accuracy = curve.column("val_accuracy")
        points["epoch"] += curve.column("epoch")
        points["train_loss"] += curve.column("train_loss")
        points["val_loss"] += curve.column("val_loss")
        points["val_accuracy"] += [np.nan if a is None else a for a in accuracy]
        points["val_accuracy_none"] += [a is None for a in accuracy]
        points["point_seconds"] += curve.column("seconds")
        if result.landscape:
            landscapes[str(n)] = dict(result.landscape)
        if result.failure_reason is not None:
            failures[str(n)] = result.failure_reason
        if result.traceback is not None:
            tracebacks[str(n)] = result.traceback
    meta = {
        "format": FORMAT,
        "key": key,
        "header": dict(corpus.header),
        "datasets": [d.as_dict() for d in corpus.datasets],
        "studies": study_rows,
        "configs": config_rows,
        "fidelities": list(fidelities),
        "objectives": list(objectives),
        "landscapes": landscapes,
        "failures": failures,
        "tracebacks": tracebacks,
    }
    dtypes: dict[str, Any] = {"i": np.int64, "f": np.float64, "b": np.bool_}
    arrays: dict[str, np.ndarray] = {
        n: np.asarray(columns[n], dtype=dtypes[k]) for n, k in _COLUMNS.items()
    }
    arrays.update({n: np.asarray(points[n], dtype=dtypes[k]) for n, k in _POINTS.items()})
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


# ---------------------------------------------------------------------- reading
def _corpus(path: Path, arrays: Mapping[str, np.ndarray], key: str) -> Corpus:
    from llp.knowledge._corpus import Corpus, ShippedDataset
    from llp.meta import Experience

    meta = json.loads(str(arrays["meta"]))
    if meta["format"] != FORMAT or meta["key"] != key:
        raise ValueError("another layout or another file")
    n = len(arrays["study"])
    points = int(arrays["curve_length"].sum()) if n else 0
    for name, kind in {**_COLUMNS, **_POINTS}.items():
        array = arrays[name]
        size = n if name in _COLUMNS else points
        if array.shape != (size,) or array.dtype.kind != kind:
            raise ValueError(f"{name}: wrong shape or type")
    if dict(meta["header"]["counts"]) != {
        "datasets": len(meta["datasets"]),
        "studies": len(meta["studies"]),
        "evaluations": n,
    }:
        raise ValueError("counts differ from the header's")
    header = meta["header"]
    space = SearchSpace.from_dict(header["space"])
    datasets = tuple(ShippedDataset(**d) for d in meta["datasets"])
    if not all(0 <= int(d) < len(datasets) for _, d, _ in meta["studies"]):
        raise IndexError("a study's dataset index out of range")
    studies = [(str(name), datasets[int(d)], family) for name, d, family in meta["studies"]]
    configs = [MappingProxyType(dict(c)) for c in meta["configs"]]
    fidelities = [Fidelity(float(f), int(e)) for f, e in meta["fidelities"]]
    statuses = [EvaluationStatus(s) for s in _STATUSES]
    objectives = [str(o) for o in meta["objectives"]]
    for name, choices in (
        ("study", studies),
        ("config", configs),
        ("fidelity", fidelities),
        ("status", statuses),
        ("objective", objectives),
    ):
        index = arrays[name]
        if n and (index.min() < 0 or index.max() >= len(choices)):
            raise IndexError(f"{name}: an index out of range")
    _check_values(arrays, space, meta["configs"], objectives)
    landscapes = {int(i): dict(v) for i, v in meta["landscapes"].items()}
    for values in landscapes.values():
        if not all(type(v) is float for v in values.values()):
            raise TypeError("a landscape value that is not a float")
        numbers = np.asarray(list(values.values()), dtype=np.float64)
        if (np.abs(numbers[np.isfinite(numbers)]) > MAX_MAGNITUDE).any():
            raise ValueError("a landscape value out of range")
    failures = {int(i): str(v) for i, v in meta["failures"].items()}
    tracebacks = {int(i): str(v) for i, v in meta["tracebacks"].items()}
    _check_statuses(arrays, failures)
    cols = {name: arrays[name].tolist() for name in _COLUMNS}
    # Tuples, so that a slice is a curve's column as it is.
    pts = {name: tuple(arrays[name].tolist()) for name in _POINTS}
    accuracy_or_none = arrays["val_accuracy"].astype(object)
    accuracy_or_none[arrays["val_accuracy_none"]] = None
    accuracy = tuple(accuracy_or_none.tolist())
    no_landscape: Mapping[str, float] = MappingProxyType({})
    # Every value was checked above, as the records' own constructors check them, and a
    # curve's columns are slices of one length: the records are built without their
    # checks (most of the time of reading a corpus back went to them).
    experiences: list[Experience] = []
    end = 0
    rows = zip(*cols.values(), strict=True)  # in _COLUMNS' order
    for number, row in enumerate(rows):
        (study, trial, config, fid, status, objective, halving, score, score_none) = row[:9]
        (cost, seconds, train_seconds, probe_cost, n_train, seed, length) = row[9:]
        start, end = end, end + length
        name, dataset, family = studies[study]
        landscape = landscapes.get(number)
        result = _unchecked(
            EvaluationResult,
            {
                "config": configs[config],
                "fidelity": fidelities[fid],
                "status": statuses[status],
                "curve": Curve.from_columns(
                    pts["epoch"][start:end],
                    pts["train_loss"][start:end],
                    pts["val_loss"][start:end],
                    accuracy[start:end],
                    pts["point_seconds"][start:end],
                ),
                "score": None if score_none else score,
                "objective": objectives[objective],
                "cost": cost,
                "seconds": seconds,
                "train_seconds": train_seconds,
                "n_train": n_train,
                "seed": seed,
                "failure_reason": failures.get(number),
                "traceback": tracebacks.get(number),
                "landscape": no_landscape if landscape is None else MappingProxyType(landscape),
                "probe_cost": probe_cost,
            },
        )
        experiences.append(
            _unchecked(
                Experience,
                {
                    "dataset": dataset.fingerprint,
                    "group": dataset.group,
                    "meta_features": dataset.meta_features,
                    "model_family": family,
                    "study": name,
                    "trial": trial,
                    "result": result,
                    "halving": halving,
                },
            )
        )
    return Corpus(
        path=path,
        header=header,
        space=space,
        datasets=datasets,
        experiences=tuple(experiences),
    )


def _unchecked(cls: type[_T], values: dict[str, Any]) -> _T:
    """An instance of the frozen dataclass ``cls`` with ``values`` as its fields, without
    its constructor's checks (for values already checked, column by column)."""
    built = object.__new__(cls)
    object.__setattr__(built, "__dict__", values)
    return built


def _check_statuses(arrays: Mapping[str, np.ndarray], failures: Mapping[int, str]) -> None:
    """What :class:`~llp.training.EvaluationResult` checks of a status: a complete
    evaluation has a score (a finite one: :func:`_check_values`), a failed one a reason."""
    status = arrays["status"]
    complete = status == _STATUSES.index(EvaluationStatus.COMPLETE.value)
    if (complete & arrays["score_none"]).any():
        raise ValueError("a complete evaluation without a score")
    failed = np.flatnonzero(status == _STATUSES.index(EvaluationStatus.FAILED.value))
    if not all(failures.get(int(i)) for i in failed):
        raise ValueError("a failed evaluation without a reason")


def _check_values(
    arrays: Mapping[str, np.ndarray],
    space: SearchSpace,
    configs: list[dict[str, Any]],
    objectives: list[str],
) -> None:
    """The ranges the reader checks, vectorised: the copy is only as trusted as its
    folder, and one absurd value would reach every meta-model fitted from it."""
    for config in configs:
        if space.validate(config) != config:
            raise ValueError("a configuration not legal in the header's space")
    score, none = arrays["score"], arrays["score_none"]
    accuracy = np.asarray([o == "val_accuracy" for o in objectives], dtype=bool)
    scored = score[~none]
    if not np.isfinite(scored).all() or (np.abs(scored) > MAX_MAGNITUDE).any():
        raise ValueError("a score out of range")
    bounded = score[~none & accuracy[arrays["objective"]]] if len(accuracy) else scored[:0]
    if ((bounded < 0.0) | (bounded > 1.0)).any():
        raise ValueError("an accuracy outside [0, 1]")
    for name in ("cost", "seconds", "train_seconds", "probe_cost", "point_seconds"):
        values = arrays[name]
        if not (np.isfinite(values) & (values >= 0.0) & (values <= MAX_COST)).all():
            raise ValueError(f"{name}: a value out of range")
    for name in ("n_train", "curve_length"):
        if (arrays[name] < 0).any():
            raise ValueError(f"{name}: a negative value")
    points = arrays["val_accuracy"][~arrays["val_accuracy_none"]]
    if ((points < 0.0) | (points > 1.0)).any() or (arrays["epoch"] < 1).any():
        raise ValueError("a learning curve out of range")
    for name in ("train_loss", "val_loss"):  # NaN and infinities are losses too
        finite = arrays[name][np.isfinite(arrays[name])]
        if (np.abs(finite) > MAX_MAGNITUDE).any():
            raise ValueError(f"{name}: a value out of range")
