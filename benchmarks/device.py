"""The trainer on each device: throughput, how busy the GPU is, and evaluations side by side.

Part 1, one evaluation at a time (``Trainer.evaluate`` in this process): the shipped
knowledge's MLP and CNN families (``llp.knowledge.make_mlp`` / ``make_cnn``, width 64) on
all of scikit-learn's digits (1,437 training / 360 validation examples; the CNN sees them
as 8x8 images), ``--epochs`` epochs, at batch sizes 32, 128 and 512, on the CPU and, where
torch sees one, on CUDA. For each: evaluations per second, training examples per second,
and on CUDA the share of the wall time the GPU was busy running kernels (the kernels'
device time from ``torch.profiler`` over one evaluation, divided by its wall time).

Part 2, several evaluations at once on one device: ``ProcessExecutor(n_workers=k)`` with
the study's device, so the ``k`` workers share it (llp pins an unnumbered ``"cuda"`` to
``cuda:(slot mod GPUs)``; with one GPU all share it). ``--evaluations`` MLP evaluations
at batch size 32 (the small-model case that leaves a GPU idle), for ``k`` in 1, 2, 4, 8
(up to the cores available), against one at a time in this process on the same device.
Each result is checked to be the same as one at a time (same seed, same trial: same
score), so the speed-up changes nothing computed.

Run: ``python benchmarks/device.py`` (``--quick`` for a smoke run; ``--devices cuda``
for the GPU alone). Writes ``benchmarks/results/device_<devices>.json`` and prints
markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from llp.data import FidelityData
from llp.executors import ProcessExecutor
from llp.executors._process import available_cores
from llp.knowledge import make_optimizer
from llp.knowledge._families import make_cnn, make_mlp
from llp.training import EvaluationStatus, Fidelity, Trainer

RESULTS = Path(__file__).resolve().parent / "results"
CONFIG = {"lr": 0.003, "weight_decay": 1e-4, "width": 64, "dropout": 0.1, "optimizer": "adam"}
BATCH_SIZES = (32, 128, 512)


def mlp_fn(config: Mapping[str, Any]) -> nn.Module:
    return make_mlp(config, 64, 10)


def cnn_fn(config: Mapping[str, Any]) -> nn.Module:
    return make_cnn(config, (1, 8, 8), 10)


def digits(family: str) -> FidelityData:
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    if family == "cnn":
        X = X.reshape(-1, 1, 8, 8)
    return FidelityData(X, y, standardize=True, seed=0)


def make_trainer(family: str, device: str) -> Trainer:
    return Trainer(
        mlp_fn if family == "mlp" else cnn_fn,
        make_optimizer,
        nn.CrossEntropyLoss(),
        digits(family),
        device=device,
        seed=0,
    )


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def gpu_busy_share(trainer: Trainer, config: Mapping[str, Any], fidelity: Fidelity) -> float:
    """Kernel time on the GPU over wall time, for one evaluation under the profiler."""
    from torch.profiler import ProfilerActivity, profile

    synchronize("cuda")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        trainer.evaluate(config, fidelity, trial_id=99)
        synchronize("cuda")
        wall = time.perf_counter() - t0
    kernel_us = sum(
        e.device_time_total
        for e in prof.events()
        if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA
    )
    return float(kernel_us) / 1e6 / wall if wall > 0 else float("nan")


def throughput(device: str, epochs: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for family in ("mlp", "cnn"):
        trainer = make_trainer(family, device)
        for batch_size in BATCH_SIZES:
            config = {**CONFIG, "batch_size": batch_size}
            fidelity = Fidelity(1.0, epochs)
            trainer.evaluate(config, fidelity)  # warm-up: data on the device, kernels loaded
            synchronize(device)
            seconds, examples = [], 0
            for r in range(repeats):
                t0 = time.perf_counter()
                result = trainer.evaluate(config, fidelity, trial_id=r)
                synchronize(device)
                seconds.append(time.perf_counter() - t0)
                assert result.status is EvaluationStatus.COMPLETE, result.failure_reason
                examples = result.n_train * epochs
            median = float(np.median(seconds))
            row = {
                "device": device,
                "family": family,
                "batch_size": batch_size,
                "epochs": epochs,
                "seconds_per_evaluation": median,
                "evaluations_per_second": 1.0 / median,
                "train_examples_per_second": examples / median,
                "gpu_busy_share": (
                    gpu_busy_share(trainer, config, fidelity) if device.startswith("cuda") else None
                ),
            }
            rows.append(row)
            busy = row["gpu_busy_share"]
            print(
                f"  {device:5s} {family} batch {batch_size:4d}: {median:.3f} s/evaluation, "
                f"{row['train_examples_per_second']:,.0f} examples/s"
                + (f", GPU busy {busy:.0%}" if busy is not None else ""),
                flush=True,
            )
    return rows


def side_by_side(device: str, n_evaluations: int, epochs: int) -> dict[str, Any]:
    """``n_evaluations`` MLP evaluations one at a time in-process, then on ``k`` worker
    processes sharing ``device``; the same trials, so the same scores."""
    trainer = make_trainer("mlp", device)
    fidelity = Fidelity(1.0, epochs)
    config = {**CONFIG, "batch_size": 32}
    trainer.evaluate(config, fidelity)  # warm-up
    synchronize(device)
    t0 = time.perf_counter()
    alone = [trainer.evaluate(config, fidelity, trial_id=i) for i in range(n_evaluations)]
    synchronize(device)
    one_at_a_time = time.perf_counter() - t0
    base = n_evaluations / one_at_a_time
    print(f"  {device}: one at a time in-process {base:.2f} evaluations/s", flush=True)
    limit = available_cores()
    out: dict[str, Any] = {
        "device": device,
        "evaluations": n_evaluations,
        "epochs": epochs,
        "one_at_a_time_per_second": base,
        "workers": [],
    }
    for k in (1, 2, 4, 8):
        if k > limit:
            break
        with ProcessExecutor(n_workers=k) as executor:
            # Start and warm every worker (imports, CUDA context, first kernels) before
            # the clock starts, as in a long study.
            warm = [executor.submit(trainer.evaluate, config, fidelity) for _ in range(2 * k)]
            for f in warm:
                f.result()
            t0 = time.perf_counter()
            futures = [
                executor.submit(trainer.evaluate, config, fidelity, trial_id=i)
                for i in range(n_evaluations)
            ]
            results = [f.result() for f in futures]
            seconds = time.perf_counter() - t0
        same = all(
            a.score is not None and b.score is not None and abs(a.score - b.score) <= 1e-6
            for a, b in zip(alone, results, strict=True)
        )
        rate = n_evaluations / seconds
        out["workers"].append(
            {
                "n_workers": k,
                "evaluations_per_second": rate,
                "speedup_vs_one_at_a_time": rate / base,
                "same_scores_as_one_at_a_time": same,
            }
        )
        print(
            f"  {device}: {k} workers sharing it {rate:.2f} evaluations/s "
            f"({rate / base:.2f}x; same scores as one at a time: {same})",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu and cuda if any")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--evaluations", type=int, default=32)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if args.quick:
        args.epochs, args.repeats, args.evaluations = 1, 1, 4
    torch.set_num_threads(1)  # as each of llp's workers does: comparable per core
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": "python benchmarks/device.py" + (" --quick" if args.quick else ""),
        "machine": {
            "platform": platform.platform(),
            "cores": available_cores(),
            "torch": torch.__version__,
            "cuda_devices": [
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
            ],
            "load_average_before": os.getloadavg(),
        },
        "throughput": [],
        "side_by_side": [],
    }
    for device in devices:
        print(f"{device}: one evaluation at a time", flush=True)
        report["throughput"] += throughput(device, args.epochs, args.repeats)
        print(f"{device}: evaluations side by side", flush=True)
        report["side_by_side"].append(side_by_side(device, args.evaluations, args.epochs))
    report["machine"]["load_average_after"] = os.getloadavg()
    report["wall_seconds"] = time.perf_counter() - started
    print_tables(report)
    if not args.quick:
        path = RESULTS / f"device_{'_'.join(devices)}.json"
        path.write_text(json.dumps(report, indent=1))
        print(f"written to {path}")


def print_tables(report: dict[str, Any]) -> None:
    print("\n| device | family | batch | s / evaluation | examples / s | GPU busy |")
    print("|---|---|---:|---:|---:|---:|")
    for r in report["throughput"]:
        busy = "" if r["gpu_busy_share"] is None else f"{r['gpu_busy_share']:.0%}"
        print(
            f"| {r['device']} | {r['family']} | {r['batch_size']} | "
            f"{r['seconds_per_evaluation']:.3f} | {r['train_examples_per_second']:,.0f} | {busy} |"
        )
    print("\n| device | workers | evaluations / s | vs one at a time | same scores |")
    print("|---|---:|---:|---:|---|")
    for s in report["side_by_side"]:
        print(f"| {s['device']} | in-process | {s['one_at_a_time_per_second']:.2f} | 1.00x | |")
        for w in s["workers"]:
            print(
                f"| {s['device']} | {w['n_workers']} | {w['evaluations_per_second']:.2f} | "
                f"{w['speedup_vs_one_at_a_time']:.2f}x | {w['same_scores_as_one_at_a_time']} |"
            )


if __name__ == "__main__":
    main()
