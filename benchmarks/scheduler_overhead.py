"""What the machinery costs per evaluation: scheduler, runner and knowledge base.

A 10,000-evaluation random search (one float hyperparameter, one epoch at full data)
whose objective returns at once (a one-point learning curve, no training), driven by
:class:`~llp.runner.Runner` in-process:

1. **Time per evaluation**, without a knowledge base and with a SQLite one (the runner
   looks each job up, to resume, and records each result in its own transaction, as in
   every real study), interleaved repeat by repeat. The objective's own time is
   measured alone and subtracted. Goal: under 5 ms per evaluation.
2. **Memory as the study grows**, in separate runs (``tracemalloc`` slows Python down,
   so it is kept out of the timings): memory allocated by Python (under ``tracemalloc``)
   and the process's resident set (without it) after 1,000, 5,000 and 10,000
   evaluations, and which source files hold the growth. The runner keeps every
   :class:`~llp.search.Evaluation` for the :class:`~llp.runner.StudyResult` it returns
   (``result.evaluations``); the size of one such record is measured on its own, so the
   growth it explains can be told apart from any other. Goal: flat apart from that.

Run: ``python benchmarks/scheduler_overhead.py`` (``--quick`` for a smoke run with 2,000
evaluations). Writes ``benchmarks/results/scheduler_overhead.json`` and prints markdown
tables.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llp.runner import ProgressEvent, Runner, StudyRecorder
from llp.search import Evaluation, Job, RandomSearch
from llp.space import Float, SearchSpace
from llp.store import KnowledgeBase
from llp.training import EpochRecord, EvaluationResult, EvaluationStatus

RESULTS = Path(__file__).resolve().parent / "results" / "scheduler_overhead.json"
SPACE = SearchSpace([Float("x", 0.0, 1.0)])
CHECKPOINTS = (1_000, 5_000, 10_000)


def instant(job: Job) -> EvaluationResult:
    """A trivial objective: a score from the configuration, no training."""
    x = float(job.config["x"])
    score = 1.0 - (x - 0.3) ** 2
    return EvaluationResult(
        config=job.config,
        fidelity=job.fidelity,
        status=EvaluationStatus.COMPLETE,
        curve=(EpochRecord(1, 1.0 - score, 1.0 - score, score, 0.0),),
        score=score,
        objective="val_accuracy",
        cost=job.fidelity.cost,
        seconds=0.0,
        train_seconds=0.0,
        n_train=1,
        seed=job.trial_id,
    )


def make_runner(
    n: int, folder: Path | None, callback: Callable[[ProgressEvent], None] | None = None
) -> tuple[Runner, KnowledgeBase | None]:
    scheduler = RandomSearch(SPACE, n_trials=n, resource=1.0, epochs=1, seed=0)
    kb = None
    recorder = None
    if folder is not None:
        kb = KnowledgeBase.open(folder / "knowledge.db")
        recorder = StudyRecorder.open(
            kb,
            study_name="overhead",
            kind="RandomSearch",
            settings={"n_trials": n},
            space=SPACE.to_dict(),
            seed=0,
            objective="val_accuracy",
            dataset=None,
            model_family=None,
        )
    runner = Runner(
        scheduler, instant, show_progress=False, recorder=recorder, progress_callback=callback
    )
    return runner, kb


def objective_seconds(n: int) -> float:
    """Time of the objective alone over the jobs of the study."""
    scheduler = RandomSearch(SPACE, n_trials=n, resource=1.0, epochs=1, seed=0)
    jobs = list(iter(scheduler.ask, None))
    started = time.perf_counter()
    for job in jobs:
        instant(job)
    return time.perf_counter() - started


def timed_run(n: int, with_store: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        runner, kb = make_runner(n, Path(tmp) if with_store else None)
        built = time.perf_counter() - started
        gc.collect()
        started = time.perf_counter()
        result = runner.run()
        seconds = time.perf_counter() - started
        assert len(result.evaluations) == n
        if kb is not None:
            assert kb.counts()["evaluations"] == n
            kb.close()
    return {"run_seconds": seconds, "build_seconds": built}


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_run(n: int, with_store: bool) -> dict[str, Any]:
    """Memory after each checkpoint: allocated by Python, under tracemalloc, and the
    resident set, measured in a fresh process (here the heap is already as large as
    the timed runs made it, and tracemalloc's own bookkeeping would inflate it)."""
    points: dict[int, dict[str, Any]] = {}
    snapshots: list[tracemalloc.Snapshot] = []

    def traced(event: ProgressEvent) -> None:
        if event.kind == "evaluation" and event.n_finished in CHECKPOINTS:
            gc.collect()
            current, _ = tracemalloc.get_traced_memory()
            points[event.n_finished] = {"evaluations": event.n_finished, "traced_bytes": current}
            snapshots.append(tracemalloc.take_snapshot())

    with tempfile.TemporaryDirectory() as tmp:
        tracemalloc.start()
        try:
            runner, kb = make_runner(n, Path(tmp) if with_store else None, traced)
            runner.run()
            if kb is not None:
                kb.close()
        finally:
            tracemalloc.stop()
    command = [sys.executable, __file__, "--rss-of", "store" if with_store else "none"]
    command += ["--checkpoints", ",".join(map(str, CHECKPOINTS))]
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    for evaluations, rss in json.loads(child.stdout.splitlines()[-1]).items():
        points[int(evaluations)]["rss_bytes"] = rss
    growth = []
    if len(snapshots) >= 2:
        # By the file that allocated each block. Python reuses freed float objects, so a
        # float freed by SQLAlchemy and reused for a kept result counts as SQLAlchemy's:
        # the total is exact, the split between files only roughly so.
        diff = snapshots[-1].compare_to(snapshots[0], "filename")
        growth = [
            {"file": _short(str(d.traceback[0].filename)), "bytes": d.size_diff} for d in diff[:6]
        ]
    return {"checkpoints": [points[k] for k in sorted(points)], "growth_by_file": growth}


def print_rss_of_a_run(store: str, checkpoints: tuple[int, ...]) -> None:
    """(In a fresh process) the resident set at each checkpoint of one run, as JSON."""
    rss: dict[int, int] = {}

    def resident(event: ProgressEvent) -> None:
        if event.kind == "evaluation" and event.n_finished in checkpoints:
            gc.collect()
            rss[event.n_finished] = rss_bytes()

    with tempfile.TemporaryDirectory() as tmp:
        runner, kb = make_runner(checkpoints[-1], Path(tmp) if store == "store" else None, resident)
        runner.run()
        if kb is not None:
            kb.close()
    print(json.dumps(rss))


def bytes_per_evaluation(n: int = 5_000) -> float:
    """Memory one evaluation kept by the runner adds: its Job (asked from the scheduler,
    which frees the queued configuration), its result, curve and configuration."""
    scheduler = RandomSearch(SPACE, n_trials=n, resource=1.0, epochs=1, seed=0)
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        kept = [Evaluation(job, instant(job)) for job in iter(scheduler.ask, None)]
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(kept) == n
    return (after - before) / n


def _short(path: str) -> str:
    root = str(Path(__file__).resolve().parents[1]) + "/"
    if path.startswith(root):
        return path[len(root) :]
    for marker in ("site-packages/", "/src/", "/lib/python"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 evaluations, 1 repeat")
    parser.add_argument("--rss-of", choices=["store", "none"], help=argparse.SUPPRESS)
    parser.add_argument("--checkpoints", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_of is not None:
        print_rss_of_a_run(args.rss_of, tuple(int(c) for c in args.checkpoints.split(",")))
        return
    global CHECKPOINTS
    n = CHECKPOINTS[-1]
    if args.quick:
        n, args.repeats = 2_000, 1
        CHECKPOINTS = (200, 1_000, 2_000)

    load_before = os.getloadavg()
    timed_run(500, True)  # warm-up: imports, SQLAlchemy's statement cache
    alone = statistics.median(objective_seconds(n) for _ in range(3))
    runs: dict[str, list[dict[str, float]]] = {"no store": [], "SQLite store": []}
    for _ in range(args.repeats):
        runs["no store"].append(timed_run(n, False))
        runs["SQLite store"].append(timed_run(n, True))
    timing = {}
    for name, values in runs.items():
        seconds = statistics.median(v["run_seconds"] for v in values)
        timing[name] = {
            "run_seconds": [v["run_seconds"] for v in values],
            "median_run_seconds": seconds,
            "ms_per_evaluation": 1000 * seconds / n,
            "ms_per_evaluation_without_objective": 1000 * (seconds - alone) / n,
            "scheduler_build_seconds": statistics.median(v["build_seconds"] for v in values),
        }
    memory = {name: memory_run(n, name == "SQLite store") for name in runs}
    per_evaluation = bytes_per_evaluation()
    for values in memory.values():
        points = values["checkpoints"]
        first, last = points[0], points[-1]
        grown = last["traced_bytes"] - first["traced_bytes"]
        added = last["evaluations"] - first["evaluations"]
        values["traced_growth_per_evaluation_bytes"] = grown / added
        values["growth_explained_by_kept_evaluations_bytes"] = per_evaluation * added
        values["growth_unexplained_bytes"] = grown - per_evaluation * added
    report = {
        "workload": {"evaluations": n, "scheduler": "RandomSearch", "objective": "instant"},
        "objective_alone_seconds": alone,
        "timing": timing,
        "memory": memory,
        "bytes_per_kept_evaluation": per_evaluation,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "goal": "< 5 ms per evaluation; memory flat as the study grows",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
    }
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\n{n:,} evaluations, objective alone {alone * 1000 / n:.4f} ms each\n")
    print("| setup | median s | ms / evaluation | ms / evaluation, objective excluded |")
    print("|---|---:|---:|---:|")
    for name, row in timing.items():
        print(
            f"| {name} | {row['median_run_seconds']:.2f} | {row['ms_per_evaluation']:.3f} | "
            f"{row['ms_per_evaluation_without_objective']:.3f} |"
        )
    print("\n| setup | evaluations | traced MiB | RSS MiB |")
    print("|---|---:|---:|---:|")
    for name, values in memory.items():
        for point in values["checkpoints"]:
            print(
                f"| {name} | {point['evaluations']:,} | {point['traced_bytes'] / 2**20:.2f} | "
                f"{point['rss_bytes'] / 2**20:.1f} |"
            )
    print(f"\none kept Evaluation: {per_evaluation:.0f} bytes")
    for name, values in memory.items():
        print(
            f"{name}: growth {values['traced_growth_per_evaluation_bytes']:.0f} bytes per "
            f"evaluation; unexplained by kept evaluations: "
            f"{values['growth_unexplained_bytes'] / 2**20:.2f} MiB"
        )
        for item in values["growth_by_file"]:
            print(f"    {item['bytes'] / 2**20:+.2f} MiB  {item['file']}")


if __name__ == "__main__":
    main()
