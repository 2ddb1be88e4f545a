"""Fit and predict time of the meta-model's forests at 1,000 and 10,000 training rows.

The rows have the width MetaProbing's surrogate really uses (dataset meta-features, model
family, encoded configuration, partial-training features), filled with seeded synthetic
values; the target depends on a few of them so the trees grow as on real data.
Predictions are timed for 256 candidates (one acquisition step) and for 10,000 rows.

Then the real thing: the shipped prior as a study on ``digits`` reads it (every shipped
dataset but digits), its two training sets assembled from the evaluations (the
surrogate's: one row per evaluation, with its learning-curve features) and the whole fit
(both sets and every forest, nothing read back from a cache) with one thread and with
two (``n_jobs``; skipped on a version of llp without it).

Run: ``python benchmarks/surrogate_cost.py`` -> ``benchmarks/results/surrogate_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from llp.features import DATASET_FEATURES, TRAINING_FEATURES
from llp.meta import HyperparameterPredictor, PerformanceSurrogate
from llp.meta._experience import MODEL_FAMILIES

RESULTS = Path(__file__).resolve().parent / "results" / "surrogate_cost.json"
N_HYPERPARAMETERS = 5
WIDTH = len(DATASET_FEATURES) + len(MODEL_FAMILIES) + N_HYPERPARAMETERS + len(TRAINING_FEATURES) + 2


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, WIDTH))
    y = np.tanh(X[:, 0] - 0.5 * X[:, 40] ** 2 + 0.3 * X[:, 60]) + 0.1 * rng.normal(size=n)
    return X, y


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def shipped_prior(repeats: int) -> dict[str, float | int]:
    """Seconds to assemble and fit the meta-model on the shipped prior (see above)."""
    import inspect

    from llp.knowledge import DEFAULT_SPACE, build_prior
    from llp.meta import MetaModelTrainer

    trainer = build_prior(DEFAULT_SPACE, prior="shipped", exclude_datasets=("digits",)).trainer
    X, _, _ = trainer.surrogate_training_set()
    out: dict[str, float | int] = {
        "evaluations": len(trainer.experiences),
        "surrogate_rows": X.shape[0],
        "surrogate_set_s": statistics.median(timed(trainer.surrogate_training_set, repeats)),
        "predictor_set_s": statistics.median(timed(trainer.predictor_training_set, repeats)),
    }
    threads = [1]
    if "n_jobs" in inspect.signature(MetaModelTrainer).parameters:
        threads.append(2)
    for n_jobs in threads:
        if n_jobs > 1:
            trainer.n_jobs = n_jobs
        # The fit itself, never the cache (MetaModelTrainer.fit would read it back).
        out[f"fit_{n_jobs}_thread_s"] = statistics.median(timed(trainer._fit_uncached, repeats))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for n in (1_000, 10_000):
        X, y = synthetic(n, seed=0)
        surrogate = PerformanceSurrogate(random_state=0)
        fit = timed(lambda: surrogate.fit(X, y), args.repeats)
        candidates = synthetic(256, seed=1)[0]
        predict_256 = timed(lambda: surrogate.predict(candidates, return_std=True), args.repeats)
        predict_n = timed(lambda: surrogate.predict(X, return_std=True), args.repeats)
        # The predictor learns from the top configurations of each past study: with the
        # shipped knowledge that is 87 studies x top 3 = 261 rows, whatever n is.
        Y = np.random.default_rng(2).uniform(size=(261, N_HYPERPARAMETERS))
        predictor = HyperparameterPredictor(random_state=0)
        fit_predictor = timed(
            lambda: predictor.fit(X[:261, : len(DATASET_FEATURES)], Y), args.repeats
        )
        rows.append(
            {
                "rows": n,
                "width": WIDTH,
                "surrogate_fit_s": statistics.median(fit),
                "surrogate_predict_256_s": statistics.median(predict_256),
                "surrogate_predict_all_s": statistics.median(predict_n),
                "predictor_fit_s": statistics.median(fit_predictor),
            }
        )
    prior = shipped_prior(args.repeats)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "command": "python benchmarks/surrogate_cost.py",
                "repeats": args.repeats,
                "rows": rows,
                "shipped_prior": prior,
            },
            indent=2,
        )
    )
    print(
        "| rows | surrogate fit (s) | predict 256 (s) | predict all rows (s) | "
        "predictor fit on 261 rows, 5 forests (s) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['rows']:,} | {r['surrogate_fit_s']:.2f} | "
            f"{r['surrogate_predict_256_s']:.3f} | {r['surrogate_predict_all_s']:.2f} | "
            f"{r['predictor_fit_s']:.2f} |"
        )
    print(f"\nshipped prior for digits: {prior}")


if __name__ == "__main__":
    main()
