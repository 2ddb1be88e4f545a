"""Does retraining a report's models in worker processes pay?

``llp report --retrain`` trains the ``--top`` best configurations of a study again (the
reproducibility check; a report also retrains whatever the search did not keep). Since
2026-12-07 two or more go to ``--workers`` local processes when the study took at least
``PARALLEL_MIN_SECONDS`` to train them. This times it as a user runs it:

1. one ``llp tune`` study, without a report, on a CSV large enough that its top-rung
   trainings take seconds (``--rows`` rows of a synthetic 10-class problem, 40
   features; by default 40,000, so that the sliced models took more than
   ``PARALLEL_MIN_SECONDS`` to train);
2. ``llp report STUDY --retrain --no-meta`` with ``--workers 1`` and ``--workers 2``,
   alternated, ``--repeats`` times each, every one in a fresh interpreter; the median
   wall time of each and their ratio (within one run, on the same machine), next to the
   seconds the study itself took to train the sliced models.

Both reports must slice the same models (the same losses), which is checked.

Run: ``python benchmarks/report_retrain.py`` (``--rows N --repeats N``). Writes
``benchmarks/results/report_retrain.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llp.report._landscape import PARALLEL_MIN_SECONDS

RESULTS = Path(__file__).resolve().parent / "results"
LLP = [sys.executable, "-c", "import sys; from llp.cli import main; sys.exit(main())"]


def run(args: list[str], cwd: Path) -> tuple[float, dict]:
    env = {**os.environ, "LLP_CACHE_DIR": str(cwd / "cache")}
    started = time.perf_counter()
    done = subprocess.run([*LLP, *args, "--json"], cwd=cwd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{args} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=100.0)
    args = parser.parse_args()
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    with tempfile.TemporaryDirectory() as scratch:
        cwd = Path(scratch)
        X, y = make_classification(
            n_samples=args.rows, n_features=40, n_informative=20, n_classes=10, random_state=0
        )
        frame = pd.DataFrame(X.astype(np.float32), columns=[f"x{i}" for i in range(40)])
        frame["label"] = y
        frame.to_csv(cwd / "data.csv", index=False)
        search_seconds, _ = run(
            ["tune", "data.csv", "--target", "label", "--budget", f"{args.budget:g}",
             "--study", "retrain", "--no-report"],
            cwd,
        )  # fmt: skip
        times: dict[str, list[float]] = {"1": [], "2": []}
        losses: dict[str, list] = {}
        for _ in range(args.repeats):
            for workers in ("1", "2"):
                seconds, out = run(
                    ["report", "retrain", "--retrain", "--no-meta", "--workers", workers,
                     "--out", f"report-{workers}"],
                    cwd,
                )  # fmt: skip
                times[workers].append(seconds)
                slices = json.loads((cwd / out["data"]).read_text())["landscape"]
                losses[workers] = [s["losses"] for s in slices]
                trials = [s["trial"] for s in slices]
                assert all(s["origin"] == "retrained" for s in slices)
        assert losses["1"] == losses["2"], "the two reports sliced different models"
        from llp.store import KnowledgeBase

        with KnowledgeBase.open(str(cwd / "llp-runs" / "knowledge.db")) as kb:
            frame = kb.evaluations_frame(study="retrain")
        trained = frame[frame["trial_number"].isin(trials)]
        top = trained[trained["fraction"] == trained["fraction"].max()]
        study_seconds = float(top["seconds"].sum())
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "command": "python benchmarks/report_retrain.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "rows": args.rows,
        "budget": args.budget,
        "search_seconds": search_seconds,
        "study_seconds_of_sliced_models": study_seconds,
        "report_seconds": times,
        "median": median,
        "ratio_2_to_1": median["2"] / median["1"],
        "slices": len(losses["1"]),
        # Below PARALLEL_MIN_SECONDS, --workers 2 retrains here as --workers 1 does.
        "parallel": study_seconds >= PARALLEL_MIN_SECONDS,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "report_retrain.json").write_text(json.dumps(result, indent=1))
    print(
        f"search {search_seconds:.1f} s; report --retrain: --workers 1 {median['1']:.2f} s, "
        f"--workers 2 {median['2']:.2f} s (ratio {result['ratio_2_to_1']:.2f}), "
        f"{result['slices']} models the study trained in {study_seconds:.1f} s"
        + ("" if result["parallel"] else " (too little to go to worker processes)")
    )


if __name__ == "__main__":
    main()
