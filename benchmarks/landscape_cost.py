"""What the landscape tiers cost, and how stable their features are across probe seeds.

For two models trained with plain PyTorch on scikit-learn digits (standardised; MLP
64-128-10 ReLU, and a CNN on 1x8x8 images: conv 16 - conv 32 - max-pool - linear), this
measures at a checkpoint after the first epoch and at the end of training:

1. **Cost of each tier**, counted in forward+backward equivalents over the probe set
   (forward 0.5, forward+backward 1, HVP 2; see ``llp.landscape``), converted to a share
   of one training epoch by example count (``cost_fb * probe_size / n_train``), and
   measured as the median wall time of a tier relative to the median wall time of one
   training epoch (batch 64, SGD), timed interleaved with the tier calls.
   Goal: the cheap tier costs at most 20 forward+backward equivalents per checkpoint.
2. **Spread of each feature across probe seeds**: coefficient of variation
   (std / |mean|) over ``--seeds`` seeds on the same checkpoint and probe set. Features
   without randomness (loss, gradient norm, Fisher trace) have a CV of 0 by construction.

Run: ``python benchmarks/landscape_cost.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/landscape_cost.json`` and prints markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from llp.landscape import CHEAP_TIER_MAX_COST_FB, LandscapeReport, cheap_tier, full_tier

RESULTS = Path(__file__).resolve().parent / "results" / "landscape_cost.json"
LEARNING_RATE = 0.05
BATCH_SIZE = 64


def load_data(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits split 80/20 with a seeded permutation, standardised on the training part."""
    features, labels = load_digits(return_X_y=True)
    x = torch.tensor(features, dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_train = int(0.8 * len(x))
    train, test = order[:n_train], order[n_train:]
    mean, std = x[train].mean(dim=0), x[train].std(dim=0).clamp_min(1e-6)
    return (x[train] - mean) / std, y[train], (x[test] - mean) / std, y[test]


def make_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


class SmallCNN(nn.Module):
    """Two 3x3 convolutions and a linear head on 1x8x8 digit images."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(-1, 1, 8, 8)).flatten(1))


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
) -> float:
    """One shuffled pass over (x, y); returns its wall time in seconds."""
    criterion = nn.CrossEntropyLoss()
    start = time.perf_counter()
    model.train()
    order = torch.randperm(len(x), generator=generator)
    for batch in order.split(BATCH_SIZE):
        optimizer.zero_grad()
        criterion(model(x[batch]), y[batch]).backward()
        optimizer.step()
    return time.perf_counter() - start


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def coefficient_of_variation(values: list[float]) -> float:
    if not all(math.isfinite(v) for v in values):
        return float("nan")
    mean = statistics.fmean(values)
    spread = statistics.pstdev(values)
    if spread == 0.0:
        return 0.0
    return spread / abs(mean) if mean != 0 else float("inf")


def timed(call: Callable[[], LandscapeReport]) -> tuple[LandscapeReport, float]:
    start = time.perf_counter()
    report = call()
    return report, time.perf_counter() - start


def measure_checkpoint(
    model: nn.Module,
    probe_x: torch.Tensor,
    probe_y: torch.Tensor,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    seeds: int,
) -> dict[str, Any]:
    """Both tiers on one checkpoint for each probe seed: cost, time, feature spread.

    A training epoch (on a copy of the model, so the checkpoint is untouched) is timed
    next to each pair of tier calls, so that load from other processes on the machine
    hits the epoch and the tiers alike; ratios use the medians.
    """
    criterion = nn.CrossEntropyLoss()
    # Warm-up: the first forward-mode call loads torch's JVP decompositions (seconds).
    cheap_tier(model, criterion, probe_x, probe_y, seed=0)
    full_tier(model, criterion, probe_x, probe_y, seed=0)
    clone = copy.deepcopy(model)
    clone_optimizer = torch.optim.SGD(clone.parameters(), lr=LEARNING_RATE, momentum=0.9)
    generator = torch.Generator().manual_seed(12345)
    epoch_seconds: list[float] = []
    reports: dict[str, list[LandscapeReport]] = {"cheap": [], "full": []}
    seconds: dict[str, list[float]] = {"cheap": [], "full": []}
    for seed in range(seeds):
        epoch_seconds.append(train_one_epoch(clone, clone_optimizer, train_x, train_y, generator))
        for tier_name, tier in (("cheap", cheap_tier), ("full", full_tier)):
            report, elapsed = timed(
                lambda tier=tier, seed=seed: tier(
                    model, criterion, probe_x, probe_y, seed=seed, learning_rate=LEARNING_RATE
                )
            )
            reports[tier_name].append(report)
            seconds[tier_name].append(elapsed)
    epoch_median = statistics.median(epoch_seconds)
    result: dict[str, Any] = {"epoch_seconds_median": epoch_median}
    for tier_name, tier_reports in reports.items():
        costs = [r.cost_fb for r in tier_reports]
        names = list(tier_reports[0].features)
        result[tier_name] = {
            "cost_fb_max": max(costs),
            "cost_fb_mean": statistics.fmean(costs),
            "epoch_share_counted": max(costs) * len(probe_x) / len(train_x),
            "seconds_median": statistics.median(seconds[tier_name]),
            "epoch_share_measured": statistics.median(seconds[tier_name]) / epoch_median,
            "power_iterations": [r.diagnostics["power_iteration_iterations"] for r in tier_reports],
            "power_converged": [r.diagnostics["power_iteration_converged"] for r in tier_reports],
            "features_mean": {
                n: statistics.fmean(r.features[n] for r in tier_reports) for n in names
            },
            "features_cv": {
                n: coefficient_of_variation([r.features[n] for r in tier_reports]) for n in names
            },
        }
    return result


def run_model(
    name: str,
    make_model: Callable[[], nn.Module],
    data: tuple[torch.Tensor, ...],
    *,
    epochs: int,
    seeds: int,
    probe_size: int,
    seed: int,
) -> dict[str, Any]:
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)  # parameter initialisation of this script's models
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    probe_index = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed + 1))
    probe_x, probe_y = x_train[probe_index[:probe_size]], y_train[probe_index[:probe_size]]
    train_one_epoch(model, optimizer, x_train, y_train, generator)
    checkpoints = {"epoch_1": {k: v.clone() for k, v in model.state_dict().items()}}
    for _ in range(epochs - 1):
        train_one_epoch(model, optimizer, x_train, y_train, generator)
    checkpoints[f"epoch_{epochs}"] = {k: v.clone() for k, v in model.state_dict().items()}
    test_accuracy = accuracy(model, x_test, y_test)
    measured = {}
    for label, state in checkpoints.items():
        model.load_state_dict(state)
        measured[label] = measure_checkpoint(model, probe_x, probe_y, x_train, y_train, seeds)
    return {
        "model": name,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "epochs": epochs,
        "test_accuracy": test_accuracy,
        "n_train": len(x_train),
        "probe_size": probe_size,
        "checkpoints": measured,
    }


def print_tables(results: list[dict[str, Any]]) -> None:
    print("\n### Cost per checkpoint (probe set of", results[0]["probe_size"], "examples)\n")
    print(
        "| model | checkpoint | tier | cost (fb-equiv., max over seeds) | "
        "share of an epoch (counted) | tier time (s) | epoch time (s) | "
        "share of an epoch (measured) | power iters |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for result in results:
        for label, checkpoint in result["checkpoints"].items():
            for tier in ("cheap", "full"):
                row = checkpoint[tier]
                print(
                    f"| {result['model']} | {label} | {tier} | {row['cost_fb_max']:.1f} | "
                    f"{row['epoch_share_counted']:.2f} | {row['seconds_median']:.4f} | "
                    f"{checkpoint['epoch_seconds_median']:.4f} | "
                    f"{row['epoch_share_measured']:.2f} | "
                    f"{min(row['power_iterations'])}-{max(row['power_iterations'])} |"
                )
    print("\n### Coefficient of variation across probe seeds\n")
    for result in results:
        labels = list(result["checkpoints"])
        names = list(result["checkpoints"][labels[0]]["full"]["features_cv"])
        header = " | ".join(f"{label} {tier}" for label in labels for tier in ("cheap", "full"))
        print(f"**{result['model']}** (test accuracy {result['test_accuracy']:.3f})\n")
        print(f"| feature | {header} |")
        print("|---|" + "---|" * (2 * len(labels)))
        for name in names:
            cells = []
            for label in labels:
                for tier in ("cheap", "full"):
                    cv = result["checkpoints"][label][tier]["features_cv"].get(name)
                    cells.append("" if cv is None else f"{cv:.3f}")
            print(f"| {name} | " + " | ".join(cells) + " |")
        print()


def _relative(path: Path | str) -> str:
    """The output path relative to the repository when it lies inside it."""
    resolved = Path(path).resolve()
    root = Path(__file__).resolve().parents[1]
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="probe seeds per checkpoint")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs per model")
    parser.add_argument("--probe-size", type=int, default=256, help="examples in the probe set")
    parser.add_argument("--seed", type=int, default=0, help="data split / training seed")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 2 epochs")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = 2, 2
    if args.seeds < 2:
        parser.error(f"--seeds must be >= 2 to measure a spread; got {args.seeds}")
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1; got {args.epochs}")

    data = load_data(args.seed)
    results = [
        run_model(
            name,
            make,
            data,
            epochs=args.epochs,
            seeds=args.seeds,
            probe_size=args.probe_size,
            seed=args.seed,
        )
        for name, make in (("mlp", make_mlp), ("cnn", SmallCNN))
    ]
    worst_cheap = max(
        checkpoint["cheap"]["cost_fb_max"]
        for result in results
        for checkpoint in result["checkpoints"].values()
    )
    print_tables(results)
    print(
        f"Cheap tier: at most {worst_cheap:.1f} fb-equivalents per checkpoint "
        f"(goal <= {CHEAP_TIER_MAX_COST_FB:.0f}): {'met' if worst_cheap <= 20 else 'MISSED'}."
    )
    payload = {
        "command": " ".join(["python", *sys.argv]),
        "settings": vars(args) | {"output": _relative(args.output)},
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "torch_threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "processor": platform.processor() or "unknown",
        },
        "cost_convention": "forward 0.5, forward+backward 1, Hessian-vector product 2; "
        "counted over the probe set",
        "cheap_tier_max_cost_fb": worst_cheap,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
