"""How much can a search improve on the meta-model's pick when it chooses by validation score?

MetaProbing keeps the meta-model's pick (the configuration with the best mean rank over
the prior) unless a challenger beats it on the top rung by more than validation noise
(``llp.runner.noise_margin``, ``z`` standard errors). This script measures, without any
search in the way, what that rule and its looser variants would return:

For every task, each of corpus v1's 24 design configurations (the knowledge shipped until
2026-12-06; ``benchmarks/results/corpus-v1.jsonl.gz``, also its prior here) is

- trained on the task's search split (the training pool minus its validation split, all
  the data, the compare epochs) with ``--seeds`` training seeds, giving its validation
  accuracy as a search would measure it, and
- final-trained on the whole training pool and scored on the held-out test split, exactly
  as ``benchmarks/compare.py`` scores every method's answer.

Then, for the ``k`` configurations the prior ranks best (leave-one-group-out, the same
order as ``MetaModelTrainer.portfolio``; the first is llp's zero-shot pick), the "race"
rule trains all ``k`` on all the data and replaces the pick by the best of the others
only if its validation accuracy is higher by more than ``z`` standard errors. ``k = 1``
is the best single default. Regret is compare's, ``(best - acc) / (best - median)`` over
the design's test accuracies on the task.

Two task sets: ``compare`` (the eight tasks of ``benchmarks/compare.py``) and ``dev``
(ten other held-out datasets, both model families), so a rule that looks good on one set
can be checked on the other before it becomes a default.

Run: ``python benchmarks/selection_noise.py`` (both sets, 3 seeds; about 25 minutes on
2 cores). Writes ``benchmarks/results/selection_noise.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import (  # noqa: E402
    COMPARE_TASKS,
    DESIGN_SIZE,
    EPOCHS,
    FinalTrainer,
    corpus_v1,
    make_task,
)

from llp.knowledge import DEFAULT_SPACE, make_optimizer  # noqa: E402
from llp.meta import MetaModelTrainer  # noqa: E402
from llp.runner import noise_margin  # noqa: E402
from llp.space import canonical_config_json  # noqa: E402
from llp.training import EvaluationStatus, Fidelity, Trainer  # noqa: E402

RESULTS = HERE / "results"
DEV_TASKS = [
    "keel-german",
    "keel-contraceptive",
    "keel-vowel",
    "keel-led7digit",
    "keel-movement_libras",
    "keel-satimage",
    "keel-saheart",
    "keel-bupa",
    "keel-phoneme",
    "mnist1d-n500-seed2",
]
RACE_SIZES = (1, 2, 3, 4, 8)
MARGINS_Z = (0.0, 0.5, 1.0)
DESIGN_SEED = 0  # the shipped design (benchmarks/build_corpus.py)


def measure_task(name: str, seeds: int) -> dict[str, Any]:
    """Validation accuracy (per training seed) and test accuracy of every design config."""
    task = make_task(name, seed=0)
    final = FinalTrainer(task, EPOCHS)
    design = DEFAULT_SPACE.sample(DESIGN_SIZE, seed=DESIGN_SEED)
    test = [final.test_accuracy(c) for c in design]
    val = []
    for seed in range(seeds):
        trainer = Trainer(
            task.model_fn,
            make_optimizer,
            nn.CrossEntropyLoss(),
            task.data,
            device="cpu",
            seed=seed,
        )
        row = []
        for i, config in enumerate(design):
            result = trainer.evaluate(config, Fidelity(1.0, EPOCHS), trial_id=i)
            ok = result.status is EvaluationStatus.COMPLETE and result.score is not None
            row.append(float(result.score) if ok else float("nan"))
        val.append(row)
    prior = MetaModelTrainer(DEFAULT_SPACE).add(
        corpus_v1(exclude_groups=(task.group,))  # the 24-configuration design's prior
    )
    keys = [canonical_config_json(c) for c in design]
    order = [
        keys.index(canonical_config_json(c))
        for c in prior.portfolio(task.family, max(RACE_SIZES), same_family=False)
    ]
    return {
        "group": task.group,
        "family": task.family,
        "n_val": task.data.n_val,
        "test": test,
        "val": val,
        "prior_order": order,
    }


def race(val: np.ndarray, order: list[int], k: int, n_val: int, z: float) -> int:
    """The race rule on one seed's validation scores: the pick unless the best of the
    other ``k - 1`` beats it by more than ``z`` standard errors."""
    pick = order[0]
    if k == 1:
        return pick
    best = max(order[1:k], key=lambda i: (np.nan_to_num(val[i], nan=-1.0), -order.index(i)))
    margin = noise_margin(float(val[pick]), n_val, "val_accuracy", z)
    return best if np.nan_to_num(val[best], nan=-1.0) > val[pick] + margin else pick


def summarise(tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    per_task: dict[str, Any] = {}
    rules: dict[str, list[float]] = {}
    for name, m in tasks.items():
        test = np.asarray(m["test"], dtype=float)
        val = np.asarray(m["val"], dtype=float)
        order = m["prior_order"]
        best, median = float(test.max()), float(np.median(test))

        def regret(i: int, test=test, best: float = best, median: float = median) -> float:
            return float((best - test[i]) / max(best - median, 1e-9))

        top = order[:8]
        row: dict[str, Any] = {
            "n_val": m["n_val"],
            "val_test_spearman_all": float(spearmanr(val[0], test, nan_policy="omit")[0]),
            "val_test_spearman_top8": float(spearmanr(val[0, top], test[top])[0]),
            "seed_seed_spearman_top8": float(spearmanr(val[0, top], val[1, top])[0])
            if len(val) > 1
            else None,
            "regret": {},
        }
        for k in RACE_SIZES:
            for z in MARGINS_Z if k > 1 else (1.0,):
                label = "best single default (k=1)" if k == 1 else f"race top {k}, z={z:g}"
                value = float(np.mean([regret(race(v, order, k, m["n_val"], z)) for v in val]))
                row["regret"][label] = value
        label = "best validation score over the whole design"
        row["regret"][label] = float(
            np.mean([regret(int(np.nanargmax(np.nan_to_num(v, nan=-1.0)))) for v in val])
        )
        per_task[name] = row
        for label, value in row["regret"].items():
            rules.setdefault(label, []).append(value)
    default = rules["best single default (k=1)"]
    table = {
        label: {
            "mean_regret": float(np.mean(values)),
            "tasks_lower_tie_higher_than_default": [
                int(sum(v < d - 1e-9 for v, d in zip(values, default))),
                int(sum(abs(v - d) <= 1e-9 for v, d in zip(values, default))),
                int(sum(v > d + 1e-9 for v, d in zip(values, default))),
            ],
        }
        for label, values in rules.items()
    }
    corr = {
        key: float(np.nanmean([row[key] for row in per_task.values() if row[key] is not None]))
        for key in ("val_test_spearman_all", "val_test_spearman_top8", "seed_seed_spearman_top8")
    }
    return {"rules": table, "mean_correlations": corr, "per_task": per_task}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["compare", "dev"], choices=["compare", "dev"])
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per configuration")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    torch.set_num_threads(1)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": "python benchmarks/selection_noise.py"
        + ("" if args.sets == ["compare", "dev"] else " --sets " + " ".join(args.sets))
        + ("" if args.seeds == 3 else f" --seeds {args.seeds}"),
        "seeds": args.seeds,
        "epochs": EPOCHS,
        "sets": {},
    }
    for name_of_set in args.sets:
        names = COMPARE_TASKS if name_of_set == "compare" else DEV_TASKS
        measured = {}
        for name in names:
            t0 = time.perf_counter()
            measured[name] = measure_task(name, args.seeds)
            print(f"{name_of_set:>8} {name:>24}: {time.perf_counter() - t0:5.1f} s", flush=True)
        report["sets"][name_of_set] = {"tasks": names, **summarise(measured), "raw": measured}
    report["wall_seconds"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "selection_noise.json"
    out.write_text(json.dumps(report, indent=1))
    for name_of_set, block in report["sets"].items():
        print(f"\n{name_of_set} tasks ({len(block['tasks'])}): {block['mean_correlations']}")
        print("| rule | mean regret | tasks lower / equal / higher than the default |")
        print("|---|---:|---|")
        for label, row in block["rules"].items():
            lth = "/".join(str(x) for x in row["tasks_lower_tie_higher_than_default"])
            print(f"| {label} | {row['mean_regret']:.3f} | {lth} |")
    print(f"\nwall time {report['wall_seconds']:.0f} s; written to {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(
            sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"}
        )
    main()
