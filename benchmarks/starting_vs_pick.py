"""``llp tune``'s own starting configuration against the shipped pick, per task set.

Both are single configurations, scored as ``compare.py`` scores answers: trained once on
the task's whole training pool, scored on its test split, as normalised regret (0 = the
best test accuracy any method reached, 1 = the median of 24 random configurations).
The starting configuration's test accuracy is read from the final trainings
``compare.py`` keeps (``final_test.json``: every cold ``llp tune`` run trains it), the
pick's from the summary's ``best-default-v2`` method. Nothing is trained here.

Run: ``python benchmarks/starting_vs_pick.py`` (prints one line per summary).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from llp.cli._spaces import starting_configs  # noqa: E402
from llp.knowledge import DEFAULT_SPACE  # noqa: E402
from llp.space import canonical_config_json  # noqa: E402

#: (summary in results/, the folder of its cached runs)
SUMMARIES = [
    ("compare_test", "compare_runs"),
    ("small_seeds10", "compare_runs"),
    ("compare_dev", "compare_runs"),
    ("confirm_e20", "compare_runs_e20"),
]


def main() -> None:
    start = canonical_config_json(starting_configs(DEFAULT_SPACE)[0])
    print(f"starting configuration: {start}")
    for summary, folder in SUMMARIES:
        per_task = json.loads((HERE / "results" / f"{summary}.json").read_text())["per_task"]
        ours, pick = [], []
        for task, info in per_task.items():
            final = HERE / "results" / folder / task.replace("@", "_at_") / "final_test.json"
            accuracy = json.loads(final.read_text()).get(start)
            default = info["methods"].get("best-default-v2")
            if accuracy is None or default is None:
                continue
            best, median = info["best_test_accuracy"], info["median_design_test_accuracy"]
            ours.append((best - accuracy) / max(best - median, 1e-9))
            pick.append(float(np.mean(next(iter(default["regret"].values())))))
        better = sum(a < b for a, b in zip(ours, pick, strict=True))
        print(
            f"{summary}: {len(ours)} tasks, starting configuration {np.mean(ours):.3f}, "
            f"shipped pick {np.mean(pick):.3f}; the starting configuration better on {better}"
        )


if __name__ == "__main__":
    main()
