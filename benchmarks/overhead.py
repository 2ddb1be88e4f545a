"""Where the time of a search goes, and how fast llp trains.

Two measurements on the digits example (scikit-learn digits, MLP 64-128-10, batch 64):

1. **Overhead of the search machinery.** A successive-halving run as in
   ``examples/digits_mlp.py``; the wall time not spent inside evaluations (scheduling,
   bookkeeping, progress bar) as a share of the run, and the time outside the training
   loops (model building, validation) for context. Goal: under 2 %.
2. **Training throughput.** Epochs per second of llp's trainer (tensors, index slicing)
   against a plain ``DataLoader`` loop and against the bare forward/backward/step floor
   (pre-sliced batches, no shuffling, no bookkeeping), interleaved round by round so
   machine noise hits all alike. Goal: llp within 15 % of the floor.

Run: ``python benchmarks/overhead.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/overhead.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from digits_mlp import SPACE, create_model, create_optimizer

from llp.data import FidelityData
from llp.training import Fidelity, Trainer
from llp.two_tier_probing import TwoTierProbing

RESULTS = Path(__file__).resolve().parent / "results" / "overhead.json"
FIXED = {"lr": 0.01, "weight_decay": 1e-4, "width": 128, "dropout": 0.1, "optimizer": "adam"}


def measure_search_overhead(seed: int, n_configs: int, epochs: int) -> dict[str, float]:
    X, y = load_digits(return_X_y=True)
    data = FidelityData(X, y, standardize=True, seed=seed)
    probe = TwoTierProbing(
        SPACE.sample(n_configs, seed=seed),
        create_model,
        data,
        nn.CrossEntropyLoss(),
        create_optimizer,
        max_epochs=epochs,
        seed=seed,
        space=SPACE,
        show_progress=True,
    )
    result = probe.run_successive_halving(1 / 16, 1.0, 2)
    train = sum(e.result.train_seconds for e in result.evaluations)
    return {
        "wall_seconds": result.wall_seconds,
        "evaluation_seconds": result.evaluation_seconds,
        "training_loop_seconds": train,
        "outside_evaluations_share": 1 - result.evaluation_seconds / result.wall_seconds,
        "outside_training_loops_share": 1 - train / result.wall_seconds,
        "n_evaluations": len(result.evaluations),
    }


def floor_epoch(model, optimizer, criterion, batches) -> None:
    model.train()
    for xb, yb in batches:
        optimizer.zero_grad(set_to_none=True)
        criterion(model(xb), yb).backward()
        optimizer.step()


def dataloader_epoch(model, optimizer, criterion, loader) -> None:
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad(set_to_none=True)
        criterion(model(xb), yb).backward()
        optimizer.step()


def measure_throughput(seed: int, epochs: int, rounds: int) -> dict[str, object]:
    X, y = load_digits(return_X_y=True)
    data = FidelityData(X, y, standardize=True, batch_size=64, seed=seed)
    X_train, y_train, _, _ = data.tensors()
    criterion = nn.CrossEntropyLoss()
    batches = [
        (X_train[s : s + 64].contiguous(), y_train[s : s + 64].contiguous())
        for s in range(0, X_train.shape[0], 64)
    ]
    loader = DataLoader(
        TensorDataset(X_train, y_train),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    trainer = Trainer(create_model, create_optimizer, criterion, data, device="cpu", seed=seed)
    loader_trainer = Trainer(
        create_model, create_optimizer, criterion, lambda f: data(f), device="cpu", seed=seed
    )
    timings: dict[str, list[float]] = {
        "floor": [],
        "dataloader loop": [],
        "llp (training loop)": [],
        "llp (with per-epoch validation)": [],
        "llp on a user DataLoader (training loop)": [],
    }
    for _ in range(rounds):
        torch.manual_seed(seed)
        model = create_model(FIXED)
        opt = create_optimizer(model, FIXED)
        t0 = time.perf_counter()
        for _ in range(epochs):
            floor_epoch(model, opt, criterion, batches)
        timings["floor"].append((time.perf_counter() - t0) / epochs)

        torch.manual_seed(seed)
        model = create_model(FIXED)
        opt = create_optimizer(model, FIXED)
        t0 = time.perf_counter()
        for _ in range(epochs):
            dataloader_epoch(model, opt, criterion, loader)
        timings["dataloader loop"].append((time.perf_counter() - t0) / epochs)

        result = trainer.evaluate(FIXED, Fidelity(1.0, epochs))
        timings["llp (training loop)"].append(result.train_seconds / epochs)
        timings["llp (with per-epoch validation)"].append(
            sum(p.seconds for p in result.curve) / epochs
        )
        result = loader_trainer.evaluate(FIXED, Fidelity(1.0, epochs))
        timings["llp on a user DataLoader (training loop)"].append(result.train_seconds / epochs)
    floor = statistics.median(timings["floor"])
    rows = {}
    for name, values in timings.items():
        median = statistics.median(values)
        rows[name] = {
            "epochs_per_second": 1.0 / median,
            "seconds_per_epoch_median": median,
            "seconds_per_epoch_all_rounds": values,
            "time_vs_floor": median / floor,
        }
    return {"n_train": data.n_train, "batch_size": 64, "epochs_per_round": epochs, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    n_configs, epochs, rounds = (16, 5, 2) if args.quick else (64, 20, 7)

    measure_search_overhead(args.seeds[0], 4, 1)  # warm-up: torch initialises lazily
    overhead = [measure_search_overhead(s, n_configs, epochs) for s in args.seeds]
    throughput = measure_throughput(args.seeds[0], epochs, rounds)
    report = {
        "command": "python benchmarks/overhead.py" + (" --quick" if args.quick else ""),
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "search_overhead": {"seeds": args.seeds, "runs": overhead},
        "throughput": throughput,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))

    print("\n### Search overhead (successive halving, digits MLP)\n")
    print("| seed | evaluations | wall s | outside evaluations | outside training loops |")
    print("|---:|---:|---:|---:|---:|")
    for seed, run in zip(args.seeds, overhead):
        print(
            f"| {seed} | {run['n_evaluations']} | {run['wall_seconds']:.2f} | "
            f"{run['outside_evaluations_share']:.2%} | {run['outside_training_loops_share']:.1%} |"
        )
    print("\n### Training throughput (digits MLP, batch 64, CPU)\n")
    print("| loop | epochs/s | time vs floor |")
    print("|---|---:|---:|")
    for name, row in throughput["rows"].items():
        print(f"| {name} | {row['epochs_per_second']:.1f} | {row['time_vs_floor']:.2f}x |")
    print("\nwritten to benchmarks/results/overhead.json")


if __name__ == "__main__":
    main()
