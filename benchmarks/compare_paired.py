"""Paired differences between two sets of ``compare.py`` runs, by task, seed and budget.

A rule is judged by running the methods it changes again from a checkout that has it and
pairing each run with the one before it: the same task, seed and budget, the regret of
each answer on one scale per task (the best and median test accuracy recorded in an
earlier ``compare.py`` summary, so that adding runs does not move the scale). The mean
difference is taken per task over its seeds, then over tasks, with a 95 % bootstrap
interval over tasks (10,000 resamples), as in BENCHMARKS.md. The same is reported for
the answers' test accuracy, in points: on a task whose best and median configurations
are a few points apart, the regret scale turns a small difference into a large one.

Each side is ``FOLDER:METHOD``, ``FOLDER`` a ``compare_runs`` folder (e.g. this checkout's
``benchmarks/results/compare_runs`` and, for the runs before a change, the same folder of a
``git worktree`` of the commit before it). A method that ``compare.py`` runs once at the
full budget (the peers) is read at each budget from that run's anytime answers.

Run: ``python benchmarks/compare_paired.py AFTER:mp-cold-cli BEFORE:mp-cold-cli --scale
benchmarks/results/small_seeds10.json --seeds 10`` (``--tasks A B ...`` for some of the
summary's tasks; prints a markdown table; ``--out FILE`` adds it to a JSON file, under
its command).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import BUDGETED, regret_at  # noqa: E402

from llp.space import canonical_config_json  # noqa: E402


def regret(
    folder: Path, task: str, method: str, budget: float, seed: int, best: float, median: float
) -> tuple[float, str, float] | None:
    """The regret of the method's answer at ``budget``, that answer and its test accuracy
    (the median's before the method answers; ``None``: no run)."""
    stem = folder / task.replace("@", "_at_")
    if method in BUDGETED:  # planned from its budget: a run of its own at each
        path = stem / f"{method}@{budget:g}-seed{seed}.json"
    else:  # one run at the full budget, read at each budget
        path = max(stem.glob(f"{method}@*-seed{seed}.json"), key=_budget_of, default=stem)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    held = [c for cost, c in record["trajectory"] if cost <= budget + 1e-9]
    answer = canonical_config_json(held[-1]) if held else ""
    accuracy = float(record["test"][answer]) if held else median
    return regret_at(record["trajectory"], record["test"], best, median, budget), answer, accuracy


def _budget_of(path: Path) -> float:
    return float(path.stem.split("@", 1)[1].split("-seed", 1)[0])


def paired(
    a: tuple[Path, str],
    b: tuple[Path, str],
    scale: dict[str, Any],
    seeds: int,
    budgets: list[float],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for budget in budgets:
        per_task, points, mean_a, mean_b, runs, differ = [], [], [], [], 0, 0
        for task, info in scale.items():
            best = float(info["best_test_accuracy"])
            median = float(info["median_design_test_accuracy"])
            diffs, gained = [], []
            for seed in range(seeds):
                ra = regret(a[0], task, a[1], budget, seed, best, median)
                rb = regret(b[0], task, b[1], budget, seed, best, median)
                if ra is None or rb is None:
                    continue
                diffs.append(ra[0] - rb[0])
                gained.append(100.0 * (ra[2] - rb[2]))
                mean_a.append(ra[0])
                mean_b.append(rb[0])
                runs += 1
                differ += ra[1] != rb[1]
            if diffs:
                per_task.append(float(np.mean(diffs)))
                points.append(float(np.mean(gained)))
        if not per_task:
            continue
        out[f"{budget:g}"] = {
            "a": float(np.mean(mean_a)),
            "b": float(np.mean(mean_b)),
            "difference": float(np.mean(per_task)),
            "interval": interval(per_task),
            "accuracy_points": float(np.mean(points)),
            "accuracy_points_interval": interval(points),
            "tasks": len(per_task),
            "runs": runs,
            "answers_differ": differ,
        }
    return out


def interval(per_task: list[float]) -> list[float]:
    """95 % bootstrap interval of the mean over tasks (10,000 resamples)."""
    d = np.asarray(per_task)
    means = d[np.random.default_rng(0).integers(0, len(d), (10_000, len(d)))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def side(text: str) -> tuple[Path, str]:
    folder, _, method = text.rpartition(":")
    if not folder or not method:
        raise argparse.ArgumentTypeError(f"expected FOLDER:METHOD, got {text!r}")
    return Path(folder), method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=side, help="FOLDER:METHOD, the first side")
    parser.add_argument("b", type=side, help="FOLDER:METHOD, the side it is compared with")
    parser.add_argument("--scale", required=True, help="a compare.py summary (its per_task)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budgets", type=float, nargs="+", default=[8.0, 80 / 3, 80.0])
    parser.add_argument("--tasks", nargs="+", help="only these of the summary's tasks")
    parser.add_argument("--out", help="a JSON file to add the result to, under its command")
    args = parser.parse_args()
    scale = json.loads(Path(args.scale).read_text())["per_task"]
    if args.tasks:
        unknown = sorted(set(args.tasks) - set(scale))
        if unknown:
            parser.error(f"--tasks: {', '.join(unknown)} not in {args.scale}")
        scale = {task: scale[task] for task in args.tasks}
    result = paired(args.a, args.b, scale, args.seeds, args.budgets)
    print(
        f"| budget | {args.a[1]} | {args.b[1]} | difference, 95 % interval "
        "| test accuracy, points | runs | answers differ |"
    )
    print("|---:|---:|---:|---|---|---:|---:|")
    for budget, row in result.items():
        lo, hi = row["interval"]
        plo, phi = row["accuracy_points_interval"]
        print(
            f"| {budget} | {row['a']:.3f} | {row['b']:.3f} | {row['difference']:+.3f} "
            f"[{lo:+.3f}, {hi:+.3f}] | {row['accuracy_points']:+.2f} [{plo:+.2f}, {phi:+.2f}] "
            f"| {row['runs']} | {row['answers_differ']} |"
        )
    if args.out:
        # One file can gather several comparisons: each is kept under its command.
        out = Path(args.out)
        kept = json.loads(out.read_text()) if out.exists() else {}
        kept["python benchmarks/compare_paired.py " + " ".join(sys.argv[1:])] = result
        out.write_text(json.dumps(kept, indent=1) + "\n")


if __name__ == "__main__":
    main()
