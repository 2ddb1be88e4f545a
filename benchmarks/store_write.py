"""How fast the knowledge base writes and reads a realistic amount of evaluations.

10,000 evaluations into a fresh SQLite file: 20 studies (on 5 datasets with 20
meta-features each) of 100 trials at 5 fidelities, every evaluation with a 20-point
learning curve, 8 landscape features and a configuration of 5 hyperparameters; 5 % of
them failed, with a reason and a traceback. Measured:

1. **Batched writes**: one :meth:`KnowledgeBase.record_evaluations` call per study
   (500 evaluations, one transaction). Goal: all 10,000 under 10 s.
2. **One call per evaluation**: :meth:`KnowledgeBase.record_evaluation` 10,000 times,
   one transaction each (what a runner does as results arrive), for comparison.
3. **Reading back** all 10,000 into a DataFrame (:meth:`evaluations_frame`) and as
   records (:meth:`evaluations`).

The evaluations are built before the clock starts; each repeat writes a new file.

Run: ``python benchmarks/store_write.py`` (``--quick`` for a smoke run with 1,000
evaluations). Writes ``benchmarks/results/store_write.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # imported here so that its import time is not counted as reading
import sqlalchemy

from llp.store import KnowledgeBase, NewEvaluation
from llp.training import EpochRecord, EvaluationResult, EvaluationStatus, Fidelity

RESULTS = Path(__file__).resolve().parent / "results" / "store_write.json"
FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
LANDSCAPE = (
    "adaptive_sharpness",
    "hessian_top",
    "lr_hessian_top",
    "hessian_trace",
    "fisher_trace",
    "slice_curvature",
    "gradient_norm",
    "landscape_cost_fb",
)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "llp/training/_trainer.py", line 170, in evaluate\n'
    "    loss.backward()\n"
    "FloatingPointError: loss is nan at epoch 7\n"
)


def make_study_evaluations(
    rng: np.random.Generator, n_trials: int, n_points: int
) -> list[NewEvaluation]:
    """The evaluations of one study: every trial at every fidelity."""
    out = []
    for trial in range(n_trials):
        config = {
            "lr": float(10 ** rng.uniform(-4, -1)),
            "weight_decay": float(10 ** rng.uniform(-6, -2)),
            "width": int(rng.choice([32, 64, 128, 256])),
            "dropout": float(rng.uniform(0, 0.5)),
            "optimizer": str(rng.choice(["sgd", "adam", "adamw"])),
        }
        for rung, fraction in enumerate(FRACTIONS):
            failed = rng.random() < 0.05
            losses = np.sort(rng.uniform(0.05, 2.5, size=n_points))[::-1]
            curve = tuple(
                EpochRecord(
                    epoch=e + 1,
                    train_loss=float(losses[e]),
                    val_loss=float(losses[e] * 1.1),
                    val_accuracy=float(1 - losses[e] / 3),
                    seconds=float(rng.uniform(0.05, 0.2)),
                )
                for e in range(n_points)
            )
            result = EvaluationResult(
                config=config,
                fidelity=Fidelity(fraction, n_points),
                status=EvaluationStatus.FAILED if failed else EvaluationStatus.COMPLETE,
                curve=curve,
                score=None if failed else float(curve[-1].val_accuracy or 0.0),
                objective="val_accuracy",
                cost=fraction * n_points,
                seconds=float(rng.uniform(1, 5)),
                train_seconds=float(rng.uniform(1, 4)),
                n_train=int(60_000 * fraction),
                seed=int(rng.integers(2**31)),
                failure_reason="loss is nan at epoch 7" if failed else None,
                traceback=TRACEBACK if failed else None,
                landscape={} if failed else {k: float(rng.normal()) for k in LANDSCAPE},
                probe_cost=0.0 if failed else 0.01,
            )
            reason = "initial sample" if rung == 0 else f"promoted to rung {rung}"
            out.append(NewEvaluation(trial, config, result, bracket=0, rung=rung, reason=reason))
    return out


def make_workload(n_studies: int, n_trials: int, n_points: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    datasets = {
        f"sha256:{i:064x}": {f"mf_{j}": float(rng.normal()) for j in range(20)} for i in range(5)
    }
    fingerprints = list(datasets)
    studies = {
        f"study-{i:02d}": (
            fingerprints[i % len(fingerprints)],
            make_study_evaluations(rng, n_trials, n_points),
        )
        for i in range(n_studies)
    }
    return {"datasets": datasets, "studies": studies}


def open_with_studies(path: Path, workload: dict[str, Any]) -> tuple[KnowledgeBase, dict[str, int]]:
    kb = KnowledgeBase.open(path)
    ids = {fp: kb.upsert_dataset(fp, meta_features=mf) for fp, mf in workload["datasets"].items()}
    study_ids = {
        name: kb.get_or_create_study(
            name,
            scheduler="SuccessiveHalving",
            settings={"min_resource": FRACTIONS[0], "max_resource": 1.0, "reduction_factor": 2},
            space=None,
            seed=0,
            objective="val_accuracy",
            dataset_id=ids[fp],
            model_family="mlp",
        ).id
        for name, (fp, _) in workload["studies"].items()
    }
    return kb, study_ids


def write(path: Path, workload: dict[str, Any], *, batched: bool) -> float:
    kb, study_ids = open_with_studies(path, workload)
    try:
        started = time.perf_counter()
        for name, (_, evaluations) in workload["studies"].items():
            if batched:
                kb.record_evaluations(study_ids[name], evaluations)
            else:
                for e in evaluations:
                    kb.record_evaluation(
                        study_ids[name],
                        trial_number=e.trial_number,
                        config=e.config,
                        result=e.result,
                        bracket=e.bracket,
                        rung=e.rung,
                        reason=e.reason,
                    )
        return time.perf_counter() - started
    finally:
        kb.close()


def read(path: Path, n_expected: int) -> dict[str, float]:
    with KnowledgeBase.open(path) as kb:
        started = time.perf_counter()
        frame = kb.evaluations_frame()
        frame_s = time.perf_counter() - started
        started = time.perf_counter()
        records = kb.evaluations()
        records_s = time.perf_counter() - started
    if len(frame) != n_expected or len(records) != n_expected:
        raise RuntimeError(f"read {len(frame)} / {len(records)} rows, expected {n_expected}")
    return {"frame_seconds": frame_s, "records_seconds": records_s, "frame_columns": frame.shape[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 evaluations, 1 repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON file")
    args = parser.parse_args()
    n_studies, repeats = (2, 1) if args.quick else (20, args.repeats)
    n_trials, n_points = 100, 20
    workload = make_workload(n_studies, n_trials, n_points, seed=0)
    n = n_studies * n_trials * len(FRACTIONS)

    runs: dict[str, list[float]] = {"batched": [], "per_call": [], "frame": [], "records": []}
    size = 0
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for mode in ("batched", "per_call"):
                path = Path(tmp) / f"{mode}-{r}.db"
                runs[mode].append(write(path, workload, batched=mode == "batched"))
            reads = read(Path(tmp) / f"batched-{r}.db", n)
            runs["frame"].append(reads["frame_seconds"])
            runs["records"].append(reads["records_seconds"])
            size = os.path.getsize(Path(tmp) / f"batched-{r}.db")

    median = {k: statistics.median(v) for k, v in runs.items()}
    rows = [
        ("write, batched (record_evaluations per study)", median["batched"]),
        ("write, one call per evaluation (record_evaluation)", median["per_call"]),
        ("read all into a DataFrame (evaluations_frame)", median["frame"]),
        ("read all as records (evaluations)", median["records"]),
    ]
    print(f"\n{n:,} evaluations, SQLite file ({size / 2**20:.1f} MiB), median of {repeats}\n")
    print("| operation | seconds | evaluations / s |")
    print("|---|---:|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.2f} | {n / seconds:,.0f} |")

    if not args.no_save and not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "command": "python benchmarks/store_write.py",
            "machine": {
                "platform": platform.platform(),
                "python": sys.version.split()[0],
                "sqlalchemy": sqlalchemy.__version__,
                "pandas": pd.__version__,
                "sqlite": sqlite3.sqlite_version,
                "cpus": os.cpu_count(),
            },
            "workload": {
                "n_evaluations": n,
                "n_studies": n_studies,
                "n_trials_per_study": n_trials,
                "fidelities": list(FRACTIONS),
                "curve_points": n_points,
                "landscape_features": len(LANDSCAPE),
                "config_keys": 5,
                "file_bytes": size,
            },
            "repeats": repeats,
            "seconds": runs,
            "median_seconds": median,
            "goal": "batched write of 10,000 evaluations under 10 s",
        }
        RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
