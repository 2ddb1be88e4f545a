"""Transfer from the user's own studies: a team tuning its own model in its own space.

No shipped knowledge applies here: the space is not ``DEFAULT_SPACE`` and the model
family is not one the corpus measured. The knowledge base fills study after study, and
the question is whether a new study starts smarter from the earlier ones.

- Space: ``lr`` (1e-4 to 0.3, log), ``momentum`` (0.5 to 0.99), ``weight_decay`` (1e-6
  to 1e-2, log), ``batch_size`` (32, 64, 128, 256), ``width`` (16 to 256, log) and
  ``depth`` (1 to 4 residual blocks); SGD with momentum.
- Model: a residual MLP (a linear stem, ``depth`` blocks ``x + W2 relu(W1 norm(x))``, a
  linear head), a family the shipped corpus never saw.
- Datasets: two sequences of six tasks prepared as in ``benchmarks/compare.py`` (a test
  split no search sees): ``--set dev`` (scikit-learn wine, breast cancer, digits; KEEL
  pima, vehicle, segment), where rules are chosen, and ``--set test`` (KEEL banana,
  german, saheart, contraceptive, crx, led7digit), where they are confirmed.
- History: one cold study per dataset (``prior="none"``, the full budget, seed 100),
  stored in one knowledge base. For each target, a *warm* study reads that knowledge base
  (``prior="store"``: the other five datasets' studies; its own dataset's is left out by
  fingerprint) and a *cold* one reads nothing, at the same budgets, several seeds.
- Budgets: 1/3 and all of 8 full trainings (10 epochs each), in full-data epochs.
- Regret per target: each returned configuration is trained once more on the whole
  training pool and scored on the test split; 0 = the best test accuracy of any
  configuration final-trained for that target in this benchmark, 1 = the median of 16
  random configurations of the space.

Goal (from the issue that asked for it): the warm study reaches the cold study's
full-budget regret with at most 1/3 of its budget.

Run: ``python benchmarks/transfer.py --set dev`` (``--seeds N``; runs are cached in
``benchmarks/results/transfer_runs/``, so an interrupted run resumes; ``--fresh``
starts over). Writes ``benchmarks/results/transfer_<set>.json`` and prints a markdown
table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import make_task, paired_interval  # noqa: E402

from llp.meta_probing import MetaProbing  # noqa: E402
from llp.space import Categorical, Float, Int, SearchSpace, canonical_config_json  # noqa: E402
from llp.training import Fidelity, Trainer  # noqa: E402

RESULTS = HERE / "results"
RUNS = RESULTS / "transfer_runs"
#: Two sequences of six datasets: rules for transfer are chosen on "dev" and confirmed on
#: "test".
TASK_SETS = {
    "dev": [
        "sklearn-wine",
        "sklearn-breast_cancer",
        "sklearn-digits",
        "keel-pima",
        "keel-vehicle",
        "keel-segment",
    ],
    "test": [
        "keel-banana",
        "keel-german",
        "keel-saheart",
        "keel-contraceptive",
        "keel-crx",
        "keel-led7digit",
    ],
}
SPACE = SearchSpace(
    [
        Float("lr", 1e-4, 0.3, log=True),
        Float("momentum", 0.5, 0.99),
        Float("weight_decay", 1e-6, 1e-2, log=True),
        Categorical("batch_size", (32, 64, 128, 256)),
        Int("width", 16, 256, log=True),
        Int("depth", 1, 4),
    ]
)
EPOCHS = 10
FULL = 8 * EPOCHS
BUDGETS = (round(FULL / 3, 6), float(FULL))
HISTORY_SEED = 100
RUNGS = (0.125, 0.25, 0.5, 1.0)


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.inner = nn.Linear(width, width)
        self.outer = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.outer(torch.relu(self.inner(self.norm(x))))


class ResidualMLP(nn.Module):
    def __init__(self, n_features: int, n_classes: int, width: int, depth: int) -> None:
        super().__init__()
        self.stem = nn.Linear(n_features, width)
        self.blocks = nn.Sequential(*(Block(width) for _ in range(depth)))
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x.flatten(1))))


class ModelFn:
    """``model_fn`` of one dataset (picklable, so it could run in worker processes)."""

    def __init__(self, n_features: int, n_classes: int) -> None:
        self.n_features, self.n_classes = n_features, n_classes

    def __call__(self, config: Mapping[str, Any]) -> nn.Module:
        return ResidualMLP(
            self.n_features, self.n_classes, int(config["width"]), int(config["depth"])
        )


def optimizer_fn(model: nn.Module, config: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        model.parameters(),
        lr=float(config["lr"]),
        momentum=float(config["momentum"]),
        weight_decay=float(config["weight_decay"]),
    )


class Target:
    """One dataset: its data (the split of compare.py), its model and its final trainer."""

    def __init__(self, name: str) -> None:
        task = make_task(name, seed=0)
        self.name = name
        self.data = task.data
        self.model_fn = ModelFn(int(np.prod(task.data.input_shape)), int(task.data.n_classes))
        self.trainer = Trainer(
            self.model_fn, optimizer_fn, nn.CrossEntropyLoss(), task.data, device="cpu", seed=12345
        )
        self.X_test = torch.from_numpy(task.data.transform(task.X_test))
        self.y_test = torch.from_numpy(task.y_test.astype(np.int64))
        self.cache_path = RUNS / name / "final_test.json"
        self.cache: dict[str, float] = (
            json.loads(self.cache_path.read_text()) if self.cache_path.exists() else {}
        )

    def test_accuracy(self, config: Mapping[str, Any]) -> float:
        key = canonical_config_json(config)
        if key not in self.cache:
            model, _ = self.trainer.fit(config, Fidelity(1.0, EPOCHS), trial_id=0)
            if model is None:
                self.cache[key] = 0.0
            else:
                model.eval()
                with torch.inference_mode():
                    pred = model(self.X_test).argmax(1)
                self.cache[key] = float((pred == self.y_test).float().mean())
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            self.cache_path.write_text(json.dumps(self.cache))
        return self.cache[key]


def run_study(
    target: Target, *, prior: str, budget: float, seed: int, storage: Path | None
) -> dict[str, Any]:
    mp = MetaProbing(
        SPACE.sample(1, seed=seed),
        target.model_fn,
        target.data,
        nn.CrossEntropyLoss(),
        optimizer_fn,
        space=SPACE,
        model_family="resmlp",
        seed=seed,
        max_epochs=EPOCHS,
        prior=prior,
        storage=storage,
        study_name=f"{target.name}-{prior}-{budget:g}-{seed}",
        show_progress=False,
    )
    mp.run_meta_optimization(
        min_resource=RUNGS[0],
        max_resource=1.0,
        reduction_factor=2,
        num_initial_configs=8,
        num_iterations=len(RUNGS),
        budget=budget,
    )
    result = mp.result_
    return {
        "answer": dict(result.best_config),
        "anchor": result.anchor_config,
        "prior_datasets": result.prior.n_datasets,
        "prior_evaluations": result.prior.n_evaluations,
        "answer_source": result.sources.get(result.study.answer.evaluation.trial_id)
        if result.study.answer is not None
        else None,
        "total_cost": result.study.total_cost,
        "prior_weights": None if result.prior_weights is None else result.prior_weights.to_json(),
    }


def cached(path: Path, fresh: bool, make: Any) -> dict[str, Any]:
    if path.exists() and not fresh:
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    record = make()
    record["seconds"] = time.perf_counter() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="dev", choices=sorted(TASK_SETS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    started = time.perf_counter()
    tasks = TASK_SETS[args.set]
    targets = {name: Target(name) for name in tasks}
    with tempfile.TemporaryDirectory() as scratch:
        history = Path(scratch) / "history.sqlite"
        # The knowledge base of earlier studies: one cold study per dataset, run again on
        # every invocation (deterministic, and it is what the cached warm runs read).
        for name, target in targets.items():
            record = run_study(
                target, prior="none", budget=FULL, seed=HISTORY_SEED, storage=history
            )
            target.test_accuracy(record["answer"])
            print(f"history: {name} stored ({time.perf_counter() - started:.0f} s)", flush=True)
        rows: dict[str, Any] = {}
        for name, target in targets.items():
            design = SPACE.sample(16, seed=7)
            design_acc = [target.test_accuracy(c) for c in design]
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for method in ("warm", "cold"):
                runs[method] = {}
                for budget in BUDGETS:
                    out = []
                    for seed in range(args.seeds):

                        def make(
                            target: Target = target,
                            method: str = method,
                            budget: float = budget,
                            seed: int = seed,
                        ) -> dict[str, Any]:
                            if method == "cold":
                                return run_study(
                                    target, prior="none", budget=budget, seed=seed, storage=None
                                )
                            copy = Path(scratch) / f"warm-{seed}.sqlite"
                            shutil.copyfile(history, copy)
                            try:
                                return run_study(
                                    target, prior="store", budget=budget, seed=seed, storage=copy
                                )
                            finally:
                                copy.unlink(missing_ok=True)

                        record = cached(
                            RUNS / name / f"{method}@{budget:g}-seed{seed}.json", args.fresh, make
                        )
                        record["test"] = target.test_accuracy(record["answer"])
                        out.append(record)
                    runs[method][f"{budget:g}"] = out
                    print(
                        f"{name:>22} {method} @ {budget:5.1f}: "
                        f"{time.perf_counter() - started:.0f} s",
                        flush=True,
                    )
            best = max(target.cache.values())
            median = float(np.median(design_acc))
            scale = max(best - median, 1e-9)
            rows[name] = {
                "best_test_accuracy": best,
                "median_random_test_accuracy": median,
                "regret": {
                    method: {
                        b: [(best - r["test"]) / scale for r in records]
                        for b, records in by_budget.items()
                    }
                    for method, by_budget in runs.items()
                },
                "prior_datasets": sorted({r["prior_datasets"] for r in runs["warm"][f"{FULL:g}"]}),
                "warm_answer_from": [r["answer_source"] for r in runs["warm"][f"{FULL:g}"]],
                "leaned_on": leaned_on(runs["warm"][f"{FULL:g}"]),
            }
    summary = summarise(rows)
    report = {
        "command": f"python benchmarks/transfer.py --set {args.set} --seeds {args.seeds}",
        "tasks": tasks,
        "seeds": args.seeds,
        "budgets": list(BUDGETS),
        "space": SPACE.to_dict(),
        "wall_seconds": time.perf_counter() - started,
        "summary": summary,
        "per_task": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"transfer_{args.set}.json").write_text(json.dumps(report, indent=1))
    print_table(report)


def leaned_on(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Over the seeds, at the last weighing of each warm study: the mean weight of each
    earlier study (by its dataset) and of the study's own measurements."""
    weights = [r["prior_weights"] for r in records if r.get("prior_weights")]
    if not weights:
        return {"n_studies": 0}
    earlier: dict[str, float] = defaultdict(float)
    for w in weights:
        for study, value in w["earlier"].items():
            earlier[study.split("-none-")[0]] += value / len(weights)
    ranked = sorted(earlier.items(), key=lambda kv: -kv[1])
    return {
        "n_studies": len(weights),
        "this_study": float(np.mean([w["this_study"] for w in weights])),
        "earlier": dict(ranked),
    }


def summarise(rows: Mapping[str, Any]) -> dict[str, Any]:
    third, full = (f"{b:g}" for b in BUDGETS)

    def per_task(method: str, budget: str) -> np.ndarray:
        return np.array([np.mean(r["regret"][method][budget]) for r in rows.values()])

    out: dict[str, Any] = {
        "mean_regret": {
            f"{m}@{b}": float(per_task(m, b).mean())
            for m in ("warm", "cold")
            for b in (third, full)
        },
        "warm_third_minus_cold_full": paired_interval(
            per_task("warm", third) - per_task("cold", full)
        ),
        "warm_minus_cold_full": paired_interval(per_task("warm", full) - per_task("cold", full)),
        "warm_minus_cold_third": paired_interval(per_task("warm", third) - per_task("cold", third)),
    }
    return out


def print_table(report: Mapping[str, Any]) -> None:
    third, full = (f"{b:g}" for b in BUDGETS)
    print(f"\n| task | warm @ {third} | cold @ {third} | warm @ {full} | cold @ {full} |")
    print("|---|---:|---:|---:|---:|")
    for name, row in report["per_task"].items():
        r = row["regret"]
        print(
            f"| {name} | {np.mean(r['warm'][third]):.3f} | {np.mean(r['cold'][third]):.3f} | "
            f"{np.mean(r['warm'][full]):.3f} | {np.mean(r['cold'][full]):.3f} |"
        )
    s = report["summary"]
    m = s["mean_regret"]
    print(
        f"| mean | {m[f'warm@{third}']:.3f} | {m[f'cold@{third}']:.3f} | "
        f"{m[f'warm@{full}']:.3f} | {m[f'cold@{full}']:.3f} |"
    )
    for key in ("warm_third_minus_cold_full", "warm_minus_cold_full", "warm_minus_cold_third"):
        d = s[key]
        print(f"{key}: {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]")
    print("\n| task | weight of its own measurements @ 80 | earlier study leaned on most |")
    print("|---|---:|---|")
    for name, row in report["per_task"].items():
        lean = row.get("leaned_on", {})
        if lean.get("n_studies"):
            top, weight = next(iter(lean["earlier"].items()), ("-", 0.0))
            print(f"| {name} | {lean['this_study']:.2f} | {top} ({weight:.2f}) |")
    print(f"wall time {report['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
