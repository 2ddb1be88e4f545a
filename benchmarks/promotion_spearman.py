"""How well MetaProbing's promotions ranked, per kind of task, from ``compare.py``'s runs.

For every promotion decision that sent three or more configurations up a rung,
:meth:`llp.meta_probing.MetaProbingResult.promotion_spearman` is the Spearman
correlation between the order they were promoted in and the scores they then measured
on the next rung. ``compare.py`` keeps those per run (``benchmarks/results/compare_runs/``);
this reads them back, per method and task set, at the full budget, for the seeds given.
No training: it runs in a second.

The mean is over decisions; the interval is a 95 % bootstrap over tasks (a task's
decisions are drawn together, as its runs share its validation split). The next rung's
scores are themselves measured on the task's validation split, so on small splits even
a perfect order would not reach 1: the cold start's order (raw scores) is printed
beside the warm ones as that ceiling's rough measure.

Run: ``python benchmarks/promotion_spearman.py`` (``--methods``, ``--sets``,
``--seeds``, ``--budget``). Writes ``benchmarks/results/promotion_spearman.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compare  # noqa: E402  (the task sets and where the runs are kept)

DEFAULT_METHODS = ["mp-v2", "mp-v2-cli", "mp-v2-misled-cli", "mp-cold", "mp-cold-cli"]
DEFAULT_SETS = ["old", "prior-wrong", "large", "dev", "small"]


def decisions(method: str, task: str, budget: float, seeds: int) -> list[float]:
    """The promotion correlations of ``method``'s runs on ``task`` (seeds ``0..seeds-1``
    that were run)."""
    out: list[float] = []
    for seed in range(seeds):
        path = compare.run_path(task, method, budget, seed)
        if path.is_file():
            out += json.loads(path.read_text())["info"].get("promotion_spearman", [])
    return out


def summarise(per_task: dict[str, list[float]], rng: np.random.Generator) -> dict[str, float]:
    tasks = [t for t, rhos in per_task.items() if rhos]
    rhos = [x for t in tasks for x in per_task[t]]
    if not rhos:
        return {"n_decisions": 0, "n_tasks": 0}
    boots = []
    for _ in range(4000):
        drawn = [x for i in rng.integers(0, len(tasks), len(tasks)) for x in per_task[tasks[i]]]
        boots.append(float(np.mean(drawn)))
    low, high = np.percentile(boots, [2.5, 97.5])
    return {
        "mean": float(np.mean(rhos)),
        "low": float(low),
        "high": float(high),
        "n_decisions": len(rhos),
        "n_tasks": len(tasks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="*", default=DEFAULT_METHODS)
    parser.add_argument(
        "--sets", nargs="*", default=DEFAULT_SETS, choices=sorted(compare.TASK_SETS)
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 of each run")
    parser.add_argument("--budget", type=float, default=80.0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "promotion_spearman.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for method in args.methods:
        table[method] = {}
        for name in args.sets:
            per_task = {
                t: decisions(method, t, args.budget, args.seeds) for t in compare.TASK_SETS[name]
            }
            table[method][name] = summarise(per_task, rng)
    report = {
        "command": " ".join(["python", "benchmarks/promotion_spearman.py", *sys.argv[1:]]),
        "budget": args.budget,
        "seeds": args.seeds,
        "table": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print("| method | " + " | ".join(args.sets) + " |")
    print("|---|" + "---:|" * len(args.sets))
    for method, row in table.items():
        cells = []
        for name in args.sets:
            c = row[name]
            cells.append(
                f"{c['mean']:.2f} [{c['low']:.2f}, {c['high']:.2f}] ({c['n_decisions']})"
                if c["n_decisions"]
                else "-"
            )
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
