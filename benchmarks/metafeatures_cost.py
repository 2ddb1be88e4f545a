"""How long dataset meta-feature extraction takes as the dataset grows.

Synthetic, seeded classification data (50 float64 features, 5 classes, Gaussian blobs with
a few integer-valued and correlated columns) at 1k, 100k and 1M rows. For each size,
``DatasetFeatureExtractor()`` (default cap: 2000 rows, 200 columns, landmarkers on) runs 3
times on the same arrays, the sizes interleaved round by round so that load from other
processes hits them alike; the table reports the median (and the spread). One warm-up call
beforehand pays the one-off imports (scikit-learn's learners) so that they do not land on
the first size; its time is recorded separately. ``dataset_fingerprint`` (which must read
every byte) is timed once per size for context; it is not part of the extraction.

Goal: extraction time flat beyond the cap and under 2 s at 1M rows.

The knowledge base caches meta-features by fingerprint: a study whose dataset is already
stored (a rerun, a second search on the same data) reads them instead of computing them.
``describe_dataset`` of a ``FidelityData`` is timed both ways (``--cache`` runs only this
part): cold (no knowledge base) and with a knowledge base that holds the fingerprint,
median of 5 interleaved runs each.

A ``dataset_fn`` of loaders is read once as a stream (``--loaders`` runs only this part):
``describe_dataset`` on a shuffling ``DataLoader`` over 100,000 rows of 200 float32 columns
(80 MB), against the way before (every row read into memory, sorted and hashed, then the
meta-features of the arrays): wall seconds (median of 3, interleaved) and the peak of
memory that Python and numpy allocated (``tracemalloc``; torch's own batches are not
counted, the same for both).

Run: ``python benchmarks/metafeatures_cost.py`` (``--quick`` for a smoke run on smaller
sizes). Writes ``benchmarks/results/metafeatures_cost.json`` and prints a markdown table.
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

import numpy as np

from llp.data import FidelityData
from llp.features import DatasetFeatureExtractor, dataset_fingerprint, describe_dataset
from llp.store import KnowledgeBase

RESULTS = Path(__file__).resolve().parent / "results" / "metafeatures_cost.json"
N_FEATURES = 50
N_CLASSES = 5
REPEATS = 3
GOAL_SECONDS_AT_1M = 2.0


def make_dataset(n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs with 5 classes; 5 integer-valued and 5 correlated columns."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, size=n_rows)
    X = rng.standard_normal((n_rows, N_FEATURES))
    X += 0.5 * y[:, None]
    X[:, :5] = np.round(X[:, :5])
    X[:, 5:10] += X[:, 10:15]
    return X, y


def time_extraction(X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, float]]:
    extractor = DatasetFeatureExtractor()
    start = time.perf_counter()
    features = extractor.extract_features(X, y)
    return time.perf_counter() - start, features


def measure_cache(seed: int, n_rows: int = 100_000, repeats: int = 5) -> dict[str, Any]:
    """``describe_dataset`` of one FidelityData without and with a knowledge base that
    already holds its fingerprint (the meta-features are then read, not computed)."""
    X, y = make_dataset(n_rows, seed)
    data = FidelityData(X, y, seed=seed)
    with KnowledgeBase.open(":memory:") as kb:
        info = describe_dataset(data, seed=seed)
        kb.upsert_dataset(info.fingerprint, meta_features=info.meta_features)

        def cached(fingerprint: str) -> Any:
            record = kb.get_dataset(fingerprint)
            return None if record is None else record.meta_features

        cold: list[float] = []
        warm: list[float] = []
        for _ in range(repeats):  # interleaved, so load from other jobs hits both alike
            start = time.perf_counter()
            describe_dataset(data, seed=seed)
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            again = describe_dataset(data, seed=seed, cached=cached)
            warm.append(time.perf_counter() - start)
        assert dict(again.meta_features) == dict(info.meta_features)
    return {
        "rows": n_rows,
        "repeats": repeats,
        "computed_seconds": cold,
        "cached_seconds": warm,
        "median_computed_seconds": statistics.median(cold),
        "median_cached_seconds": statistics.median(warm),
    }


def measure_loaders(seed: int, n_rows: int = 100_000, repeats: int = 3) -> dict[str, Any]:
    """``describe_dataset`` of a shuffling loader, streamed, against the way before."""
    import tracemalloc

    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from llp.features._describe import _batches

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, 200)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, n_rows)
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))

    def dataset_fn(fraction: float) -> Any:
        return DataLoader(dataset, batch_size=256, shuffle=True), [dataset[:10]]

    def before() -> None:  # what describe_dataset did until 2026-12-06
        xs, ys = zip(*_batches(dataset_fn(1.0)[0]))
        X_all, y_all = np.concatenate(xs).reshape(n_rows, -1), np.concatenate(ys)
        order = np.lexsort(np.column_stack([X_all, y_all.reshape(n_rows, -1)]).T[::-1])
        dataset_fingerprint(X_all[order], y_all[order])
        DatasetFeatureExtractor(seed=seed).extract_features(X_all, y_all)

    def streamed() -> None:
        describe_dataset(dataset_fn, seed=seed)

    streamed()  # the one-off imports land on neither
    runs: dict[str, dict[str, list[float]]] = {
        "before": {"seconds": [], "peak_mb": []},
        "streamed": {"seconds": [], "peak_mb": []},
    }
    for _ in range(repeats):
        for name, fn in (("before", before), ("streamed", streamed)):
            tracemalloc.start()
            start = time.perf_counter()
            fn()
            runs[name]["seconds"].append(time.perf_counter() - start)
            runs[name]["peak_mb"].append(tracemalloc.get_traced_memory()[1] / 1e6)
            tracemalloc.stop()
    return {
        "rows": n_rows,
        "data_mb": X.nbytes / 1e6,
        "repeats": repeats,
        "runs": runs,
        "median": {
            name: {k: statistics.median(v) for k, v in run.items()} for name, run in runs.items()
        },
    }


def print_loaders(loaders: dict[str, Any]) -> None:
    print(
        f"describe_dataset of a shuffling DataLoader, {loaders['rows']:,} rows "
        f"({loaders['data_mb']:.0f} MB), median of {loaders['repeats']} "
        "(wall time under tracemalloc):"
    )
    print("| way | wall s | peak MB allocated |\n|---|---:|---:|")
    for name, median in loaders["median"].items():
        print(f"| {name} | {median['seconds']:.2f} | {median['peak_mb']:.1f} |")


def print_cache(cache: dict[str, Any]) -> None:
    print(
        f"describe_dataset, {cache['rows']:,} rows: computed "
        f"{cache['median_computed_seconds']:.4f} s, read from the knowledge base "
        f"{cache['median_cached_seconds']:.4f} s (median of {cache['repeats']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k, 10k and 100k rows only")
    parser.add_argument("--cache", action="store_true", help="only the cache measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loaders", action="store_true", help="only the loader measurement")
    args = parser.parse_args()
    if args.loaders:
        loaders = measure_loaders(args.seed)
        previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        previous["loaders"] = {
            "command": "python benchmarks/metafeatures_cost.py --loaders",
            **loaders,
        }
        RESULTS.write_text(json.dumps(previous, indent=2) + "\n")
        print_loaders(loaders)
        return
    if args.cache:
        cache = measure_cache(args.seed)
        previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        previous["cache"] = {"command": "python benchmarks/metafeatures_cost.py --cache", **cache}
        RESULTS.write_text(json.dumps(previous, indent=2) + "\n")
        print_cache(cache)
        return
    sizes = [1_000, 10_000, 100_000] if args.quick else [1_000, 100_000, 1_000_000]

    X_warm, y_warm = make_dataset(500, args.seed)
    start = time.perf_counter()
    DatasetFeatureExtractor().extract_features(X_warm, y_warm)
    warm_up_seconds = time.perf_counter() - start

    datasets = {n_rows: make_dataset(n_rows, args.seed) for n_rows in sizes}
    seconds: dict[int, list[float]] = {n_rows: [] for n_rows in sizes}
    features: dict[int, dict[str, float]] = {}
    # Round by round over the sizes, so that load from other processes hits all alike.
    for _ in range(REPEATS):
        for n_rows, (X, y) in datasets.items():
            elapsed, features[n_rows] = time_extraction(X, y)
            seconds[n_rows].append(elapsed)
    rows: list[dict[str, Any]] = []
    for n_rows, (X, y) in datasets.items():
        start = time.perf_counter()
        dataset_fingerprint(X, y)
        fingerprint_seconds = time.perf_counter() - start
        rows.append(
            {
                "rows": n_rows,
                "features": N_FEATURES,
                "classes": N_CLASSES,
                "megabytes": X.nbytes / 2**20,
                "seconds": seconds[n_rows],
                "median_seconds": statistics.median(seconds[n_rows]),
                "fingerprint_seconds": fingerprint_seconds,
                "num_samples_reported": features[n_rows]["num_samples"],
                "landmark_1nn_accuracy": features[n_rows]["landmark_1nn_accuracy"],
            }
        )

    largest = rows[-1]
    report = {
        "command": "python benchmarks/metafeatures_cost.py" + (" --quick" if args.quick else ""),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
        },
        "settings": {
            "extractor": repr(DatasetFeatureExtractor()),
            "repeats": REPEATS,
            "seed": args.seed,
            "statistic": "median",
        },
        "warm_up_seconds": warm_up_seconds,
        "results": rows,
        "cache": measure_cache(args.seed),
        "goal": {
            "seconds_at_largest": largest["median_seconds"],
            "largest_rows": largest["rows"],
            "under_2s_at_1M": (
                largest["median_seconds"] < GOAL_SECONDS_AT_1M
                if largest["rows"] == 1_000_000
                else None
            ),
            "ratio_largest_to_100k": largest["median_seconds"]
            / next(r["median_seconds"] for r in rows if r["rows"] == 100_000),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")

    print(f"Warm-up call (one-off imports): {warm_up_seconds:.3f} s\n")
    print("| rows | MB of X | extraction median (s) | min-max (s) | fingerprint (s) |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['rows']:,} | {row['megabytes']:.0f} | {row['median_seconds']:.3f} | "
            f"{min(row['seconds']):.3f}-{max(row['seconds']):.3f} | "
            f"{row['fingerprint_seconds']:.3f} |"
        )
    print()
    print_cache(report["cache"])
    print(f"\nWrote {RESULTS}")


if __name__ == "__main__":
    main()
