"""llp against its peers: same space, same tasks, same budget accounting.

Every method searches the shipped knowledge's space (``llp.knowledge.DEFAULT_SPACE``) for
the same model family on the same task, and every budget is counted in full-data-epoch
equivalents (an epoch on a quarter of the training pool costs 0.25; landscape probes are
counted too). The configuration a method returns — and, for the anytime curves, every
incumbent it held along the way — gets the same final training (all the training pool,
the same epochs, the same seed) and is scored on a test split no method ever saw.

Tasks are real datasets held out by *group* from the meta-model's prior
(leave-one-group-out): neither the zero-shot predictor, the "best single default" nor
MetaProbing ever sees the task's group.

Methods
    random         random search at full fidelity
    sh             successive halving (1/8 -> 1, eta 2)
    hyperband      Hyperband (1/8 -> 1, eta 2), brackets repeated until the budget is spent
    optuna-sh      Optuna TPE with its successive-halving pruner over the same rungs
    optuna-hb      Optuna TPE with its Hyperband pruner over the same rungs
    smac           SMAC3's multi-fidelity facade (random forest + Hyperband, eta 2) over the
                   same rungs, driven by ask/tell (benchmarks/_smac_peer.py)
    best-default   the design configuration best on average over the training groups
    zero-shot      llp's HyperparameterPredictor: meta-features in, a configuration out (no
                   search at all)
    metaprobing    MetaProbing.run_meta_optimization with the shipped prior minus the group
    ablations      metaprobing with landscape probes and features (the default measures
                   none) / without dataset meta-features / without any prior (cold start)

Regret: ``(best - acc) / (best - median)`` per task, where ``best`` is the best test
accuracy of any configuration final-trained on that task in this run and ``median`` the
median test accuracy of the shipped design's configurations on it: 0 is the best found,
1 is a typical configuration. Before a method has any answer its regret counts as 1 in
the curves averaged over tasks.

Run ``python benchmarks/compare.py --quick`` (a few minutes) or without ``--quick`` for
the full comparison; results go to ``benchmarks/results/compare.json`` and PNG curves to
``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _smac_peer import method_smac  # noqa: E402
from _trajectory import rung_incumbents  # noqa: E402
from build_corpus import (  # noqa: E402
    BATCH_SIZE,
    DATA_SEED,
    DESIGN_SEED,
    EPOCHS,
    N_CONFIGS,
    VAL_FRACTION,
    dataset_specs,
    load_dataset,
)

from llp.data import FidelityData  # noqa: E402
from llp.knowledge import DEFAULT_SPACE, load_shipped_experiences, make_optimizer  # noqa: E402
from llp.knowledge._families import make_cnn, make_mlp  # noqa: E402
from llp.meta import MetaModelTrainer  # noqa: E402
from llp.meta._trainer import _quantiles  # noqa: E402
from llp.meta_probing import MetaProbing  # noqa: E402
from llp.runner import Runner, select_best  # noqa: E402
from llp.search import Evaluation, Hyperband, Job, RandomSearch, SuccessiveHalving  # noqa: E402
from llp.space import canonical_config_json  # noqa: E402
from llp.training import EvaluationStatus, Fidelity, Trainer  # noqa: E402

RESULTS = HERE / "results"
RUNGS = (0.125, 0.25, 0.5, 1.0)
PEERS = ("random", "sh", "hyperband", "optuna-sh", "optuna-hb", "smac", "best-default")
LLP = ("zero-shot", "metaprobing")
ABLATIONS = ("mp-with-landscape", "mp-no-metafeatures", "mp-cold")


@dataclass
class Task:
    name: str
    group: str
    family: str
    data: FidelityData
    X_test: np.ndarray
    y_test: np.ndarray
    model_fn: Callable[[Mapping[str, Any]], nn.Module]


# ---------------------------------------------------------------------- tasks
def make_task(name: str, seed: int) -> Task:
    spec = SPECS[name]
    X, y, _ = load_dataset(spec)
    group, family = spec.group, spec.family
    rng = np.random.default_rng(seed)
    classes, codes = np.unique(y, return_inverse=True)
    test = np.zeros(len(y), dtype=bool)
    for c in range(len(classes)):
        members = np.flatnonzero(codes == c)
        take = rng.permutation(members)[: max(1, round(0.25 * len(members)))]
        if len(members) >= 3:
            test[take] = True
    # The same preparation as the shipped corpus, minus the test split.
    data = FidelityData(
        X[~test],
        codes[~test],
        val_fraction=VAL_FRACTION,
        batch_size=BATCH_SIZE,
        standardize=True,
        seed=DATA_SEED,
    )
    n_classes = len(classes)
    if family == "cnn":
        shape = data.input_shape

        def model_fn(config: Mapping[str, Any]) -> nn.Module:
            return make_cnn(config, shape, n_classes)
    else:
        n_features = int(np.prod(data.input_shape))

        def model_fn(config: Mapping[str, Any]) -> nn.Module:
            return make_mlp(config, n_features, n_classes)

    return Task(name, group, family, data, X[test], codes[test], model_fn)


class FinalTrainer:
    """The same final training for every configuration a method returns (cached)."""

    def __init__(self, task: Task, epochs: int) -> None:
        self.task = task
        self.epochs = epochs
        self.trainer = Trainer(
            task.model_fn,
            make_optimizer,
            nn.CrossEntropyLoss(),
            task.data,
            device="cpu",
            seed=12345,
        )
        self.X_test = torch.from_numpy(task.data.transform(task.X_test))
        self.y_test = torch.from_numpy(task.y_test.astype(np.int64))
        self.cache: dict[str, float] = {}

    def test_accuracy(self, config: Mapping[str, Any]) -> float:
        key = canonical_config_json(config)
        if key not in self.cache:
            model, _result = self.trainer.fit(config, Fidelity(1.0, self.epochs), trial_id=0)
            if model is None:
                self.cache[key] = 0.0  # a configuration that diverges scores nothing
            else:
                model.eval()
                with torch.inference_mode():
                    pred = model(self.X_test).argmax(1)
                self.cache[key] = float((pred == self.y_test).float().mean())
        return self.cache[key]


# ---------------------------------------------------------------------- methods
Trajectory = list[tuple[float, dict[str, Any]]]  # (cumulative cost, incumbent config)


def trajectory_of(evaluations: list[Evaluation], budget: float) -> Trajectory:
    """Incumbent (best at the highest fidelity so far) after each evaluation."""
    out: Trajectory = []
    cost = 0.0
    seen: list[Evaluation] = []
    for e in evaluations:
        cost += e.result.cost + e.result.probe_cost
        if cost > budget + 1e-9:
            break
        seen.append(e)
        best = select_best(seen)
        if best is not None:
            out.append((cost, dict(best.config)))
    return out


def run_scheduler(task: Task, scheduler: Any, epochs: int, seed: int) -> list[Evaluation]:
    trainer = Trainer(
        task.model_fn, make_optimizer, nn.CrossEntropyLoss(), task.data, device="cpu", seed=seed
    )

    def evaluate(job: Job):
        return trainer.evaluate(job.config, job.fidelity, trial_id=job.trial_id)

    try:
        return list(Runner(scheduler, evaluate, show_progress=False).run().evaluations)
    except Exception:  # every evaluation failed
        return []


def method_random(task, budget, epochs, seed, **_):
    n = max(1, int(budget // epochs))
    rs = RandomSearch(DEFAULT_SPACE, n_trials=n, resource=1.0, epochs=epochs, seed=seed)
    return trajectory_of(run_scheduler(task, rs, epochs, seed), budget)


def method_sh(task, budget, epochs, seed, **_):
    # Four rungs of eta 2 cost n0 * epochs / 2 in all.
    n0 = max(2, int(2 * budget // epochs))
    configs = DEFAULT_SPACE.sample(n0, seed=seed)
    sh = SuccessiveHalving(
        configs, min_resource=RUNGS[0], max_resource=1.0, reduction_factor=2, epochs=epochs
    )
    return trajectory_of(run_scheduler(task, sh, epochs, seed), budget)


def method_hyperband(task, budget, epochs, seed, **_):
    evaluations: list[Evaluation] = []
    spent, round_ = 0.0, 0
    while spent < budget:
        hb = Hyperband(
            DEFAULT_SPACE,
            min_resource=RUNGS[0],
            max_resource=1.0,
            reduction_factor=2,
            epochs=epochs,
            seed=seed * 1000 + round_,
        )
        new = run_scheduler(task, hb, epochs, seed * 1000 + round_)
        if not new:
            break
        evaluations += new
        spent += sum(e.result.cost for e in new)
        round_ += 1
    return trajectory_of(evaluations, budget)


def method_optuna(task, budget, epochs, seed, *, pruner: str, **_):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trainer = Trainer(
        task.model_fn, make_optimizer, nn.CrossEntropyLoss(), task.data, device="cpu", seed=seed
    )
    if pruner == "sh":
        prune = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    else:
        prune = optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=len(RUNGS), reduction_factor=2
        )
    sampler = optuna.samplers.TPESampler(seed=seed)
    # A fixed name: Optuna's Hyperband pruner assigns trials to brackets by a hash of the
    # study name, and an automatic name is random, so runs would not repeat.
    study = optuna.create_study(
        study_name=f"{task.name}-seed{seed}-{pruner}",
        direction="maximize",
        sampler=sampler,
        pruner=prune,
    )
    spent = 0.0
    history: list[tuple[float, dict[str, Any], float, int]] = []  # cost, config, score, rung
    trial_no = 0
    while spent < budget:
        trial = study.ask()
        config = {
            "lr": trial.suggest_float("lr", 1e-4, 1.0, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "width": trial.suggest_int("width", 16, 256, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "optimizer": trial.suggest_categorical("optimizer", ["sgd", "adam"]),
        }
        value, pruned, completed = None, False, 0
        for step, fraction in enumerate(RUNGS, start=1):
            result = trainer.evaluate(config, Fidelity(fraction, epochs), trial_id=trial_no)
            spent += result.cost
            if result.status is not EvaluationStatus.COMPLETE or spent > budget + 1e-9:
                break
            value, completed = float(result.score), step
            history.append((spent, config, value, step))
            trial.report(value, step)
            if trial.should_prune():
                pruned = True
                break
        trial_no += 1
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif pruned or completed < len(RUNGS):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
    return rung_incumbents(history)


def method_best_default(task, budget, epochs, seed, *, prior, **_):
    # The design configuration with the best mean percentile rank over the prior's studies.
    ranks: dict[str, list[float]] = defaultdict(list)
    configs: dict[str, dict[str, Any]] = {}
    trainer = MetaModelTrainer(DEFAULT_SPACE).add(prior)
    finals = trainer.final_scores()
    by_study: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
    for (study, _), (score, exp) in finals.items():
        key = canonical_config_json(exp.result.config)
        configs[key] = dict(exp.result.config)
        by_study[study].append((key, score))
    for rows in by_study.values():
        for (key, _), q in zip(rows, _quantiles([s for _, s in rows])):
            ranks[key].append(float(q))
    best = max(ranks, key=lambda k: (np.mean(ranks[k]), k))
    return [(0.0, configs[best])]


def method_zero_shot(task, budget, epochs, seed, *, prior, meta_features, **_):
    # llp's HyperparameterPredictor: dataset meta-features in, a configuration out.
    trainer = MetaModelTrainer(DEFAULT_SPACE, random_state=seed, use_landscape_features=False)
    trainer.add(prior).fit()
    if trainer.predictor_ is None:
        return []
    x = trainer.dataset_vector(meta_features, task.family)[None, :]
    return [(0.0, trainer.predictor_.predict_configs(x)[0])]


def method_metaprobing(task, budget, epochs, seed, *, exclude, variant="full", **_):
    flags = {
        "full": {},
        "mp-with-landscape": {},
        "mp-no-metafeatures": {"use_dataset_features": False},
        "mp-cold": {"prior": "none"},
    }[variant]
    measure = variant == "mp-with-landscape"
    mp = MetaProbing(
        DEFAULT_SPACE.sample(1, seed=seed),
        task.model_fn,
        task.data,
        nn.CrossEntropyLoss(),
        make_optimizer,
        space=DEFAULT_SPACE,
        model_family=task.family,
        seed=seed,
        max_epochs=epochs,
        exclude_groups=exclude,
        show_progress=False,
        **{"prior": "shipped", **flags},
    )
    mp.run_meta_optimization(
        min_resource=RUNGS[0],
        max_resource=1.0,
        reduction_factor=2,
        measure_flatness=measure,
        num_initial_configs=8,
        num_iterations=len(RUNGS),
    )
    # MetaProbing's own anytime answer: what it would have returned had it stopped there.
    configs = {e.trial_id: dict(e.config) for e in mp.result_.evaluations}
    return [(cost, configs[trial]) for cost, trial in mp.result_.incumbents if cost <= budget]


METHODS: dict[str, Callable[..., Trajectory]] = {
    "random": method_random,
    "sh": method_sh,
    "hyperband": method_hyperband,
    "optuna-sh": lambda *a, **k: method_optuna(*a, pruner="sh", **k),
    "optuna-hb": lambda *a, **k: method_optuna(*a, pruner="hb", **k),
    "smac": method_smac,
    "best-default": method_best_default,
    "zero-shot": method_zero_shot,
    "metaprobing": method_metaprobing,
    "mp-with-landscape": lambda *a, **k: method_metaprobing(*a, variant="mp-with-landscape", **k),
    "mp-no-metafeatures": lambda *a, **k: method_metaprobing(*a, variant="mp-no-metafeatures", **k),
    "mp-cold": lambda *a, **k: method_metaprobing(*a, variant="mp-cold", **k),
}


# ---------------------------------------------------------------------- scoring
def regret_curve(
    traj: Trajectory, final: FinalTrainer, best: float, median: float, grid: np.ndarray
) -> np.ndarray:
    """Regret of the incumbent held at each budget of ``grid`` (NaN before the first)."""
    out = np.full(grid.shape, np.nan)
    scale = max(best - median, 1e-9)
    for cost, config in traj:
        out[grid >= cost - 1e-9] = (best - final.test_accuracy(config)) / scale
    return out


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # SMAC3's local search orders candidates through a set: fix the hash seed so the
        # same seeds give the same runs.
        os.execve(
            sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"}
        )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--budget-configs",
        type=float,
        default=8.0,
        help="budget = this many full trainings (x epochs)",
    )
    parser.add_argument(
        "--resummarize",
        action="store_true",
        help="recompute the summary, table and plot from the saved JSON (no training)",
    )
    args = parser.parse_args()
    if args.resummarize:
        resummarize(RESULTS / ("compare_quick.json" if args.quick else "compare.json"))
        return
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    torch.set_num_threads(1)

    all_tasks = list(SPECS)
    tasks = args.tasks or (COMPARE_TASKS_QUICK if args.quick else COMPARE_TASKS)
    tasks = [t for t in tasks if t in all_tasks]
    seeds = list(range(args.seeds or (2 if args.quick else 5)))
    methods = args.methods or list(METHODS)
    epochs = args.epochs or EPOCHS
    budget = args.budget_configs * epochs
    grid = np.linspace(0.0, budget, 81)
    started = time.perf_counter()
    raw: dict[str, Any] = {}
    for name in tasks:
        task = make_task(name, seed=0)
        prior = load_shipped_experiences(exclude_groups=(task.group,))
        from llp.features import DatasetFeatureExtractor

        meta_features = DatasetFeatureExtractor().extract_from(task.data)
        final = FinalTrainer(task, epochs)
        design = DEFAULT_SPACE.sample(DESIGN_SIZE, seed=DESIGN_SEED)
        design_acc = [final.test_accuracy(c) for c in design]
        trajectories: dict[str, list[Trajectory]] = {}
        seconds: dict[str, list[float]] = {}
        for method in methods:
            trajectories[method], seconds[method] = [], []
            for seed in seeds:
                t0 = time.perf_counter()
                traj = METHODS[method](
                    task,
                    budget,
                    epochs,
                    seed,
                    prior=prior,
                    meta_features=meta_features,
                    exclude=(task.group,),
                )
                seconds[method].append(time.perf_counter() - t0)
                trajectories[method].append(traj)
                for _, config in traj:
                    final.test_accuracy(config)
            print(f"{name:>24} {method:>20}: {np.mean(seconds[method]):6.1f} s/run", flush=True)
        best = max(final.cache.values())
        median = float(np.median(design_acc))
        curves = {
            m: [regret_curve(t, final, best, median, grid) for t in trajectories[m]]
            for m in methods
        }
        raw[name] = {
            "group": task.group,
            "family": task.family,
            "best_test_accuracy": best,
            "median_design_test_accuracy": median,
            "methods": {
                m: {
                    "final_regret": [float(c[-1]) for c in curves[m]],
                    "final_cost": [t[-1][0] if t else None for t in trajectories[m]],
                    "final_test_accuracy": [
                        final.test_accuracy(t[-1][1]) if t else None for t in trajectories[m]
                    ],
                    # No answer yet counts as a typical configuration (regret 1).
                    "curve": np.nan_to_num(np.vstack(curves[m]), nan=1.0).mean(axis=0).tolist()
                    if curves[m]
                    else [],
                    "seconds_per_run": float(np.mean(seconds[m])),
                }
                for m in methods
            },
        }
    report = summarise(raw, methods, grid, budget)
    report.update(
        {
            "command": "python benchmarks/compare.py" + (" --quick" if args.quick else ""),
            "tasks": tasks,
            "seeds": seeds,
            "epochs": epochs,
            "budget": budget,
            "wall_seconds": time.perf_counter() - started,
            "per_task": raw,
            "grid": grid.tolist(),
        }
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("compare_quick.json" if args.quick else "compare.json")
    out.write_text(json.dumps(report, indent=1, default=_json_default))
    plot(raw, methods, grid, RESULTS / ("compare_quick" if args.quick else "compare"))
    print_table(report, methods)
    print(f"\nwall time {report['wall_seconds']:.0f} s; written to {out.relative_to(HERE.parent)}")


def resummarize(path: Path) -> None:
    """Summary, table and plot again from a saved run (after a change to the scoring)."""
    report = json.loads(path.read_text())
    raw, grid = report["per_task"], np.array(report["grid"])
    methods = list(next(iter(raw.values()))["methods"])
    report.update(summarise(raw, methods, grid, float(report["budget"])))
    path.write_text(json.dumps(report, indent=1, default=_json_default))
    plot(raw, methods, grid, path.with_suffix("").parent / path.stem)
    print_table(report, methods)


def summarise(
    raw: dict[str, Any], methods: list[str], grid: np.ndarray, budget: float
) -> dict[str, Any]:
    tasks = list(raw)
    final = {
        m: [float(np.nanmean(raw[t]["methods"][m]["final_regret"])) for t in tasks] for m in methods
    }
    # Average rank per task (lower regret = better rank).
    ranks: dict[str, list[float]] = defaultdict(list)
    for i, _ in enumerate(tasks):
        values = np.array([final[m][i] for m in methods])
        order = values.argsort(kind="stable").argsort(kind="stable") + 1.0
        for m, r in zip(methods, order):
            ranks[m].append(float(r))
    summary = {
        m: {
            "mean_final_regret": float(np.nanmean(final[m])),
            "average_rank": float(np.mean(ranks[m])),
        }
        for m in methods
    }
    peers = [m for m in methods if m in PEERS]
    out: dict[str, Any] = {"summary": summary}
    if "metaprobing" in methods:
        # Is a difference in mean regret more than the spread over tasks? The paired
        # difference per task (seeds averaged) with a bootstrap interval over tasks.
        mp = np.array(final["metaprobing"])
        out["metaprobing_minus_method"] = {
            m: paired_interval(mp - np.array(final[m])) for m in methods if m != "metaprobing"
        }
    if peers and "metaprobing" in methods:
        out["goal"] = _goal(raw, tasks, peers, summary, grid, budget)
    if "zero-shot" in methods and "best-default" in methods:
        z = np.array(final["zero-shot"]) - np.array(final["best-default"])
        out["zero_shot_vs_best_default"] = {
            "zero_shot_regret": summary["zero-shot"]["mean_final_regret"],
            "best_default_regret": summary["best-default"]["mean_final_regret"],
            "zero_shot_minus_best_default": paired_interval(z),
            "tasks_lower_tie_higher": [
                int((z < -1e-9).sum()),
                int((abs(z) <= 1e-9).sum()),
                int((z > 1e-9).sum()),
            ],
        }
    return out


def paired_interval(diff: np.ndarray, level: float = 0.95, n_boot: int = 10_000) -> dict:
    """Mean of per-task differences and a percentile-bootstrap interval over tasks (a
    fixed resampling seed, so a re-summary gives the same interval)."""
    diff = np.asarray(diff, dtype=float)
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return {"mean": None, "low": None, "high": None, "n_tasks": 0}
    rng = np.random.default_rng(0)
    means = diff[rng.integers(0, diff.size, size=(n_boot, diff.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return {
        "mean": float(diff.mean()),
        "low": float(np.quantile(means, tail)),
        "high": float(np.quantile(means, 1.0 - tail)),
        "n_tasks": int(diff.size),
    }


def _goal(
    raw: dict[str, Any],
    tasks: list[str],
    peers: list[str],
    summary: dict[str, Any],
    grid: np.ndarray,
    budget: float,
) -> dict[str, Any]:
    """The issue's goal, measured: budget MetaProbing needs to reach the best peer's final
    regret (mean anytime curve over tasks), and its regret against each peer's at equal
    budget (MetaProbing's mean cost) task by task."""
    mp_curve = np.nanmean(
        np.vstack([raw[t]["methods"]["metaprobing"]["curve"] for t in tasks]), axis=0
    )

    def reach(target: float) -> float | None:
        hit = np.flatnonzero(mp_curve <= target + 1e-12)
        return float(grid[hit[0]]) if hit.size else None

    mp_cost = float(
        np.nanmean(
            [
                c
                for t in tasks
                for c in raw[t]["methods"]["metaprobing"]["final_cost"]
                if c is not None
            ]
        )
    )
    idx = min(int(np.searchsorted(grid, mp_cost)), len(grid) - 1)
    searchers = [p for p in peers if p != "best-default"]
    out: dict[str, Any] = {"peer_budget": budget, "metaprobing_mean_cost": mp_cost}
    for label, pool in (("best_peer", peers), ("best_search_peer", searchers)):
        if not pool:
            continue
        best = min(pool, key=lambda m: summary[m]["mean_final_regret"])
        target = summary[best]["mean_final_regret"]
        at = reach(target)
        out[label] = {
            "method": best,
            "final_regret": target,
            "metaprobing_budget_to_reach_it": at,
            "share_of_peer_budget": None if at is None else at / budget,
        }

    def versus(at: int) -> dict[str, list[int]]:
        per_peer: dict[str, list[int]] = {}
        for p in peers:
            lower = tie = higher = 0
            for t in tasks:
                mp = raw[t]["methods"]["metaprobing"]["curve"][at]
                other = raw[t]["methods"][p]["curve"][at]
                lower += mp < other - 1e-9
                tie += abs(mp - other) <= 1e-9
                higher += mp > other + 1e-9
            per_peer[p] = [int(lower), int(tie), int(higher)]
        return per_peer

    wins = 0
    for t in tasks:
        mp = raw[t]["methods"]["metaprobing"]["curve"][idx]
        wins += bool(mp < min(raw[t]["methods"][p]["curve"][idx] for p in peers) - 1e-9)
    out["at_metaprobing_budget_tasks_lower_tie_higher"] = versus(idx)
    # The same at a few budgets: the grid point at or above each.
    out["tasks_lower_tie_higher_at_budget"] = {
        f"{grid[at]:g}": versus(at)
        for at in sorted(
            {
                min(int(np.searchsorted(grid, b - 1e-9)), len(grid) - 1)
                for b in (budget / 8, budget / 3, mp_cost, budget)
            }
        )
    }
    out["tasks_where_metaprobing_beats_every_peer_at_its_budget"] = wins
    out["n_tasks"] = len(tasks)
    return out


def print_table(report: dict[str, Any], methods: list[str]) -> None:
    print("\n| method | mean final regret | average rank |")
    print("|---|---:|---:|")
    for m in sorted(methods, key=lambda m: report["summary"][m]["mean_final_regret"]):
        s = report["summary"][m]
        print(f"| {m} | {s['mean_final_regret']:.3f} | {s['average_rank']:.2f} |")
    if "metaprobing_minus_method" in report:
        print("\n| MetaProbing's regret minus | mean over tasks | 95% bootstrap interval |")
        print("|---|---:|---|")
        for m, d in report["metaprobing_minus_method"].items():
            if d["mean"] is not None:
                print(f"| {m} | {d['mean']:+.3f} | [{d['low']:+.3f}, {d['high']:+.3f}] |")
    if "goal" in report:
        print("\n" + json.dumps(report["goal"], indent=1))


def plot(raw: dict[str, Any], methods: list[str], grid: np.ndarray, stem: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(raw)
    cols = min(4, len(tasks) + 1)
    rows = math.ceil((len(tasks) + 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    styles = {m: ("-" if m in LLP else (":" if m in ABLATIONS else "--")) for m in methods}
    for ax, name in zip(axes.flat, [*tasks, "mean over tasks"]):
        for m in methods:
            if name == "mean over tasks":
                curve = np.nanmean(
                    np.vstack([raw[t]["methods"][m]["curve"] for t in tasks]), axis=0
                )
            else:
                curve = np.array(raw[name]["methods"][m]["curve"])
            ax.plot(grid, curve, styles[m], label=m, linewidth=1.6 if m in LLP else 1.0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("budget (full-data epochs)", fontsize=8)
        ax.set_ylabel("normalised regret", fontsize=8)
        ax.set_ylim(bottom=-0.05)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tasks) + 1 :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    fig.savefig(f"{stem}_anytime.png", dpi=110)
    plt.close(fig)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(type(value))


# The "median design configuration" refers to the configurations the shipped knowledge
# evaluated on every dataset (benchmarks/build_corpus.py).
DESIGN_SIZE = N_CONFIGS
SPECS = {spec.name: spec for spec in dataset_specs(log=lambda *_: None)}
# Held-out tasks: both model families, several groups, small to mid-sized.
COMPARE_TASKS = [
    "sklearn-wine",
    "sklearn-breast_cancer",
    "sklearn-digits-images",
    "mnist1d-n1000-seed0",
    "keel-pima",
    "keel-vehicle",
    "keel-segment",
    "keel-banana",
]
COMPARE_TASKS_QUICK = ["sklearn-wine", "keel-pima", "mnist1d-n500-seed2"]


if __name__ == "__main__":
    main()
