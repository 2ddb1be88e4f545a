"""Does the shipped pick stay ahead of a plain default when trainings run longer?

The shipped knowledge was learned from 10-epoch trainings; a user may train for 20 or 40.
On each task of ``compare.py``'s dev, test, small and confirm sets this trains two
configurations exactly as ``compare.py`` scores an answer (once on the task's whole
training pool with its final-training seed, scored on the test split), at 10, 20 and 40
epochs:

- the shipped pick (corpus v2 minus the task's group: ``compare.py``'s
  ``best-default-v2``);
- ``llp tune``'s own starting configuration (Adam, learning rate 0.001, width 64,
  dropout 0.1, weight decay 0.0001), the configuration a cold start begins from.

It prints, per training length, the mean and median test-accuracy difference (points,
pick minus starting configuration) and on how many tasks each is ahead. Final trainings
``compare.py`` already cached (``final_test.json``) are read, not repeated.

Run: ``python benchmarks/pick_by_epochs.py`` (about 15 minutes on 2 cores, most of it
the 10,000-row tasks at 40 epochs). Resumes: tasks in
``benchmarks/results/pick_by_epochs.json`` are read back, not trained again.
"""

from __future__ import annotations

import json
import statistics
import sys
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import TASK_SETS, FinalTrainer, design_order, make_task, runs_folder  # noqa: E402

from llp.cli._spaces import starting_configs  # noqa: E402
from llp.knowledge import DEFAULT_SPACE, load_shipped_experiences  # noqa: E402

OUT = HERE / "results" / "pick_by_epochs.json"
EPOCHS = (10, 20, 40)
SETS = ("dev", "test", "small", "confirm")


def measure(name: str) -> dict[str, object]:
    task = make_task(name, seed=0)
    order, configs = design_order(load_shipped_experiences(exclude_groups=(task.group,)))
    pick, start = configs[order[0]], starting_configs(DEFAULT_SPACE)[0]
    row: dict[str, object] = {"pick": pick}
    for epochs in EPOCHS:
        final = FinalTrainer(task, epochs)
        cache = runs_folder(epochs) / name.replace("@", "_at_") / "final_test.json"
        if cache.exists():
            final.cache.update(json.loads(cache.read_text()))
        row[str(epochs)] = {"pick": final.test_accuracy(pick), "start": final.test_accuracy(start)}
    return row


def main() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.set_num_threads(1)
    done: dict[str, dict] = json.loads(OUT.read_text()) if OUT.exists() else {}
    for set_name in SETS:
        for name in TASK_SETS[set_name]:
            if name not in done:
                done[name] = {"set": set_name, **measure(name)}
                OUT.write_text(json.dumps(done, indent=1))
                print(name, {e: done[name][str(e)] for e in EPOCHS}, flush=True)
    print("| tasks | epochs | pick - start, mean (points) | median | pick ahead / behind / equal |")
    print("|---|---:|---:|---:|---|")
    for label, names in [
        ("dev + test + small", [n for n, r in done.items() if r["set"] != "confirm"]),
        ("confirm", [n for n, r in done.items() if r["set"] == "confirm"]),
    ]:
        for epochs in EPOCHS:
            diffs = [
                100 * (done[n][str(epochs)]["pick"] - done[n][str(epochs)]["start"]) for n in names
            ]
            ahead = sum(d > 0 for d in diffs)
            behind = sum(d < 0 for d in diffs)
            print(
                f"| {label} ({len(diffs)}) | {epochs} | {statistics.mean(diffs):+.2f} | "
                f"{statistics.median(diffs):+.2f} | {ahead} / {behind} / "
                f"{len(diffs) - ahead - behind} |"
            )


if __name__ == "__main__":
    main()
