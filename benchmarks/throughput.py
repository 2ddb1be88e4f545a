"""Evaluations per second with 1 and 2 local worker processes.

A fixed small workload: 16 evaluations of an MLP (64-128-10, Adam or SGD) on all of
scikit-learn's digits (1,437 training / 360 validation examples), 12 epochs each, run by
:class:`~llp.two_tier_probing.TwoTierProbing` as a random search whose 16 configurations
differ only in learning rate, weight decay and optimizer (the same work per evaluation).
It runs on :class:`~llp.executors.ProcessExecutor` with 1 and with 2 workers (one PyTorch
thread each), and in-process for reference, interleaved repeat by repeat so that machine
noise hits all alike. The pools are started and warmed up (imports, PyTorch's first
steps) before the clock starts, as they are once in a long study.

Goal: at least 1.7x the evaluations per second with 2 workers on 2 cores.

What the machine can give two processes at the time of the run is measured beside it:
the same fixed PyTorch computation (no llp, no data) run twice on the 1-worker pool and
twice at once on the 2-worker pool, in the same interleaved rounds. Its ratio is the
ceiling for the workload's: on a machine shared with other work, two cores are not
always two cores' worth. The load average before and after is recorded too.

Run: ``python benchmarks/throughput.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/throughput.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from sklearn.datasets import load_digits
from torch import nn

from llp.data import FidelityData
from llp.executors import ProcessExecutor
from llp.two_tier_probing import TwoTierProbing

RESULTS = Path(__file__).resolve().parent / "results" / "throughput.json"
N_EVALUATIONS = 16


def create_model(config: dict[str, Any]) -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))


def create_optimizer(model: nn.Module, config: dict[str, Any]) -> torch.optim.Optimizer:
    if config["optimizer"] == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=config["lr"], momentum=0.9, weight_decay=config["wd"]
        )
    return torch.optim.Adam(model.parameters(), lr=config["lr"], weight_decay=config["wd"])


CONFIGS = [
    {"lr": lr, "wd": wd, "optimizer": opt}
    for lr in (1e-3, 3e-3, 1e-2, 3e-2)
    for wd in (1e-5, 1e-3)
    for opt in ("sgd", "adam")
]


def fixed_computation(_: int) -> float:
    """About a third of a second of single-threaded PyTorch arithmetic."""
    torch.manual_seed(0)
    a = torch.randn(192, 192)
    for _ in range(400):
        a = torch.tanh(a @ a * 0.01)
    return float(a.sum())


def capacity_round(one: ProcessExecutor, two: ProcessExecutor) -> float:
    """How much faster two processes compute than one right now (2.0 on 2 idle cores)."""
    started = time.perf_counter()
    for i in range(2):
        one.submit(fixed_computation, i).result()
    alone = time.perf_counter() - started
    started = time.perf_counter()
    futures = [two.submit(fixed_computation, i) for i in range(2)]
    for future in futures:
        future.result()
    return alone / (time.perf_counter() - started)


def run(executor: Any, n_workers: int, epochs: int) -> tuple[float, list[float]]:
    """Seconds to run the workload, and the scores (to check every run agrees)."""
    X, y = load_digits(return_X_y=True)
    probe = TwoTierProbing(
        CONFIGS,
        create_model,
        FidelityData(X, y, standardize=True, seed=0),
        nn.CrossEntropyLoss(),
        create_optimizer,
        max_epochs=epochs,
        seed=0,
        show_progress=False,
        executor=executor,
        n_workers=n_workers,
    )
    started = time.perf_counter()
    result = probe.run_random_search(n_trials=N_EVALUATIONS, resource=1.0)
    seconds = time.perf_counter() - started
    return seconds, [
        float(e.score or 0.0) for e in sorted(result.evaluations, key=lambda e: e.trial_id)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="2 repeats of 2 epochs")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.epochs = 2, 2
    torch.set_num_threads(1)  # the in-process reference uses one thread, like a worker

    load_before = os.getloadavg()
    setups: dict[str, tuple[Any, int]] = {
        "in-process": (None, 1),
        "1 process worker": (ProcessExecutor(n_workers=1), 1),
        "2 process workers": (ProcessExecutor(n_workers=2), 2),
    }
    try:
        for executor, n in setups.values():
            run(executor, n, 1)  # warm-up: start the workers, import, first steps
        times: dict[str, list[float]] = {name: [] for name in setups}
        capacity: list[float] = []
        pool_one, pool_two = setups["1 process worker"][0], setups["2 process workers"][0]
        capacity_round(pool_one, pool_two)  # warm-up
        reference: list[float] | None = None
        for repeat in range(args.repeats):
            capacity.append(capacity_round(pool_one, pool_two))
            print(f"repeat {repeat + 1}: machine capacity {capacity[-1]:.2f}x", flush=True)
            for name, (executor, n) in setups.items():
                seconds, scores = run(executor, n, args.epochs)
                reference = scores if reference is None else reference
                assert scores == reference, f"{name} computed other results"
                times[name].append(seconds)
                print(f"repeat {repeat + 1}: {name}: {seconds:.2f} s", flush=True)
    finally:
        for executor, _ in setups.values():
            if executor is not None:
                executor.shutdown()

    rows = {
        name: {
            "median_seconds": statistics.median(values),
            "evaluations_per_second": N_EVALUATIONS / statistics.median(values),
            "seconds": values,
        }
        for name, values in times.items()
    }
    one = rows["1 process worker"]["evaluations_per_second"]
    two = rows["2 process workers"]["evaluations_per_second"]
    ratios = [a / b for a, b in zip(times["1 process worker"], times["2 process workers"])]
    report = {
        "workload": {
            "evaluations": N_EVALUATIONS,
            "epochs": args.epochs,
            "model": "MLP 64-128-10",
            "data": "sklearn digits, 1437 train / 360 validation",
            "repeats": args.repeats,
        },
        "results": rows,
        "speedup_2_vs_1_workers": two / one,
        "speedup_per_repeat": ratios,
        "machine_capacity_2_vs_1_processes": statistics.median(capacity),
        "machine_capacity_per_repeat": capacity,
        "goal": ">= 1.7x with 2 workers on 2 cores",
        "machine": {
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus_available": len(os.sched_getaffinity(0)),
            "platform": platform.platform(),
        },
    }
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")

    print()
    print("| setup | median s | evaluations/s |")
    print("|---|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['median_seconds']:.2f} | {row['evaluations_per_second']:.2f} |")
    print(
        f"\n2 workers vs 1: {two / one:.2f}x (per repeat: "
        f"{', '.join(f'{r:.2f}' for r in ratios)}); goal >= 1.7x"
    )
    print(
        f"machine capacity, 2 processes vs 1: {statistics.median(capacity):.2f}x (per repeat: "
        f"{', '.join(f'{c:.2f}' for c in capacity)}); load average {load_before[0]:.2f} "
        f"before, {os.getloadavg()[0]:.2f} after"
    )


if __name__ == "__main__":
    main()
