"""Between equal validation accuracies, does the lower validation loss choose better?

An accuracy measured on ``n`` validation examples moves in steps of ``1 / n``: on a small
split, configurations often tie on it exactly (a majority-class predictor and a real
model, say). Until 2026-12-07 llp broke such ties by trial id, an arbitrary order; since
then by the lower final validation loss (:func:`llp.training.tie_loss`). This measures
that rule with no search in the way, on many more draws than a search benchmark gives:

- on each task, ``N_CONFIGS`` configurations drawn uniformly from ``DEFAULT_SPACE`` are
  trained on all of the search split (10 epochs, training seeds 0 and 1) for the
  validation accuracy and loss a search would see, and final-trained on the whole
  training pool and scored on the test split exactly as ``benchmarks/compare.py`` scores
  every method's answer;
- then, ``DRAWS`` times per training seed, ``m`` of them (2, 4 or 8: what reaches a
  search's top rung) are drawn at random and one is chosen by each rule: the highest
  accuracy, ties to the first drawn (a random order, as trial ids are to the
  configurations); the highest accuracy, ties to the lower loss (llp's rule); and, for
  context, the lower loss alone, or among the accuracies within two validation examples
  or one standard error of the best;
- regret as in compare, ``(best - acc) / (best - median)`` over the task's test
  accuracies, averaged over the draws.

Two task sets: ``selection`` (the prior-wrong, dev and small tasks of compare.py and six
of its old ones: those with at most 301 validation examples but the two image-like ones),
on which the rule was chosen, and ``confirmation`` (other KEEL
datasets, none of them a compare.py task), on which it was checked afterwards.

Run: ``python benchmarks/tie_break.py`` (both sets; about 16 minutes in one process,
2 to 175 s a task; ``--sets``). Resumes: tasks already measured in
``benchmarks/results/tie_break.json`` are read back, not trained again. Prints a markdown
table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import (  # noqa: E402
    COMPARE_TASKS,
    DEV_TASKS,
    EPOCHS,
    PRIOR_WRONG_TASKS,
    SMALL_TASKS,
    FinalTrainer,
    make_task,
)

from llp.knowledge import DEFAULT_SPACE, make_optimizer  # noqa: E402
from llp.training import EvaluationStatus, Fidelity, Trainer  # noqa: E402

RESULTS = HERE / "results"
OUT = RESULTS / "tie_break.json"
N_CONFIGS = 32
DESIGN_SEED = 7
TRAINING_SEEDS = 2
DRAWS = 300
SIZES = (2, 4, 8)
SETS = {
    # Every compare.py task with a small validation split (23 to 301 examples) but the
    # two image-like ones (a CNN and MNIST-1D, slow to train 32 times over).
    "selection": PRIOR_WRONG_TASKS
    + [t for t in DEV_TASKS if "@" not in t]
    + SMALL_TASKS
    + [t for t in COMPARE_TASKS if t not in ("sklearn-digits-images", "mnist1d-n1000-seed0")],
    "confirmation": [
        "keel-wisconsin",
        "keel-new-thyroid1",
        "keel-glass4",
        "keel-zoo-3",
        "keel-cleveland-0_vs_4",
        "keel-ecoli-0-1-4-6_vs_5",
        "keel-lymphography-normal-fibrosis",
        "keel-dermatology-6",
        "keel-flare-F",
        "keel-car-good",
        "keel-vehicle0",
        "keel-vowel0",
        "keel-winequality-red-4",
    ],
}
RULES = (
    "accuracy, ties by trial",
    "accuracy, ties by loss (llp)",
    "loss alone",
    "loss among accuracies within 2 examples of the best",
    "loss among accuracies within 1 standard error of the best",
)


def measure_task(name: str) -> dict[str, Any]:
    """Validation accuracy and loss (per training seed) and test accuracy of every config."""
    task = make_task(name, seed=0)
    final = FinalTrainer(task, EPOCHS)
    design = DEFAULT_SPACE.sample(N_CONFIGS, seed=DESIGN_SEED)
    test = [final.test_accuracy(c) for c in design]
    accuracy, loss = [], []
    for seed in range(TRAINING_SEEDS):
        trainer = Trainer(
            task.model_fn, make_optimizer, nn.CrossEntropyLoss(), task.data, device="cpu", seed=seed
        )
        row_a, row_l = [], []
        for i, config in enumerate(design):
            result = trainer.evaluate(config, Fidelity(1.0, EPOCHS), trial_id=i)
            ok = result.status is EvaluationStatus.COMPLETE and result.score is not None
            row_a.append(float(result.score) if ok else float("nan"))
            row_l.append(float(result.curve[-1].val_loss) if ok and result.curve else float("nan"))
        accuracy.append(row_a)
        loss.append(row_l)
    return {"n_val": task.data.n_val, "test": test, "accuracy": accuracy, "loss": loss}


def choose(accuracy: np.ndarray, loss: np.ndarray, drawn: np.ndarray, n_val: int) -> dict[str, int]:
    """The configuration each rule chooses among ``drawn`` (in the order drawn)."""
    a = np.nan_to_num(accuracy[drawn], nan=-1.0)
    l_ = np.nan_to_num(loss[drawn], nan=np.inf)
    top = float(a.max())
    se = float(np.sqrt(max(top * (1.0 - top), 1.0 / n_val) / n_val))

    def lowest_loss_within(margin: float) -> int:
        near = np.flatnonzero(a >= top - margin - 1e-12)
        return int(drawn[near[int(np.argmin(l_[near]))]])

    return {
        RULES[0]: int(drawn[int(np.argmax(a))]),  # the first of the best, as drawn
        RULES[1]: int(drawn[np.lexsort((l_, -a))[0]]),
        RULES[2]: int(drawn[int(np.argmin(l_))]),
        RULES[3]: lowest_loss_within(2.0 / n_val),
        RULES[4]: lowest_loss_within(se),
    }


def regrets(measured: dict[str, Any], m: int, rng: np.random.Generator) -> dict[str, float]:
    test = np.asarray(measured["test"], dtype=float)
    best, median = float(test.max()), float(np.median(test))
    out: dict[str, list[float]] = {rule: [] for rule in RULES}
    for acc, loss in zip(measured["accuracy"], measured["loss"]):
        acc_, loss_ = np.asarray(acc, dtype=float), np.asarray(loss, dtype=float)
        for _ in range(DRAWS):
            drawn = rng.choice(len(test), m, replace=False)
            for rule, i in choose(acc_, loss_, drawn, int(measured["n_val"])).items():
                out[rule].append((best - test[i]) / (best - median))
    return {rule: float(np.mean(v)) for rule, v in out.items()}


def bootstrap(diffs: list[float], seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    d = np.asarray(diffs)
    means = d[rng.integers(0, len(d), (10_000, len(d)))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def summarise(measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean regret of each rule per draw size, over the tasks where regret is defined."""
    usable = {
        name: m for name, m in measured.items() if max(m["test"]) - float(np.median(m["test"])) > 0
    }
    out: dict[str, Any] = {"tasks": sorted(usable), "by_size": {}}
    for m in SIZES:
        rng = np.random.default_rng(m)
        per_task = {name: regrets(usable[name], m, rng) for name in sorted(usable)}
        base = [row[RULES[0]] for row in per_task.values()]
        block: dict[str, Any] = {"per_task": per_task, "rules": {}}
        for rule in RULES:
            values = [row[rule] for row in per_task.values()]
            diffs = [v - b for v, b in zip(values, base)]
            block["rules"][rule] = {
                "mean_regret": float(np.mean(values)),
                "minus_ties_by_trial": float(np.mean(diffs)),
                "interval": bootstrap(diffs),
                "tasks_lower_equal_higher": [
                    int(sum(d < -1e-9 for d in diffs)),
                    int(sum(abs(d) <= 1e-9 for d in diffs)),
                    int(sum(d > 1e-9 for d in diffs)),
                ],
            }
        out["by_size"][str(m)] = block
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    torch.set_num_threads(1)
    report: dict[str, Any] = json.loads(OUT.read_text()) if OUT.exists() else {}
    raw: dict[str, Any] = report.get("raw", {})
    started = time.perf_counter()
    for name_of_set in args.sets:
        for name in SETS[name_of_set]:
            if name in raw:
                continue
            t0 = time.perf_counter()
            raw[name] = measure_task(name)
            report["raw"] = raw
            RESULTS.mkdir(exist_ok=True)
            OUT.write_text(json.dumps(report))  # after every task: an interruption resumes
            print(f"{name_of_set:>12} {name:>34}: {time.perf_counter() - t0:5.1f} s", flush=True)
    report.update(
        command="python benchmarks/tie_break.py",
        configurations=N_CONFIGS,
        training_seeds=TRAINING_SEEDS,
        draws=DRAWS,
        epochs=EPOCHS,
        sets={
            s: summarise({n: raw[n] for n in SETS[s] if n in raw}) for s in SETS if s in args.sets
        },
        raw=raw,
    )
    report.setdefault("measuring_seconds", 0.0)
    report["measuring_seconds"] += time.perf_counter() - started
    OUT.write_text(json.dumps(report, indent=1))
    for name_of_set, block in report["sets"].items():
        print(f"\n{name_of_set} ({len(block['tasks'])} tasks with a regret scale)")
        print(
            "| m | rule | mean regret | minus ties by trial, 95 % interval "
            "| tasks lower / equal / higher |"
        )
        print("|---:|---|---:|---|---|")
        for m, by_size in block["by_size"].items():
            for rule, row in by_size["rules"].items():
                lo, hi = row["interval"]
                leh = "/".join(map(str, row["tasks_lower_equal_higher"]))
                print(
                    f"| {m} | {rule} | {row['mean_regret']:.3f} | "
                    f"{row['minus_ties_by_trial']:+.3f} [{lo:+.3f}, {hi:+.3f}] | {leh} |"
                )


if __name__ == "__main__":
    main()
