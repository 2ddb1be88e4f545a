"""MetaProbing next to plain successive halving on scikit-learn's digits.

Run with ``make demo`` (or ``python examples/meta_demo.py``). Both searches use the space
and the MLP of the knowledge shipped with llp (``llp.knowledge``). The meta-model's prior
leaves out every digits dataset of the shipped knowledge (``exclude_groups``), so what it
knows comes from *other* datasets. Each chosen configuration is retrained on all the
training data and scored on a test split neither search saw.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from llp.data import FidelityData
from llp.knowledge import DEFAULT_SPACE, make_mlp, make_optimizer
from llp.meta_probing import MetaProbing
from llp.training import Fidelity, Trainer
from llp.two_tier_probing import TwoTierProbing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--sh-configs", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X_search, X_test, y_search, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=args.seed
    )
    data = FidelityData(X_search, y_search, standardize=True, seed=args.seed)

    def create_model(config: dict) -> nn.Module:
        return make_mlp(config, 64, 10)

    common = {
        "max_epochs": args.epochs,
        "seed": args.seed,
        "space": DEFAULT_SPACE,
        "show_progress": not args.quiet,
    }
    print(
        f"digits: {data.n_train} training / {data.n_val} validation / {len(y_test)} test "
        f"examples, {args.epochs} epochs per evaluation\n",
        flush=True,
    )

    started = time.perf_counter()
    sh = TwoTierProbing(
        DEFAULT_SPACE.sample(args.sh_configs, seed=args.seed),
        create_model,
        data,
        nn.CrossEntropyLoss(),
        make_optimizer,
        **common,
    )
    sh_result = sh.run_successive_halving(min_resource=1 / 8, max_resource=1.0, reduction_factor=2)
    sh_seconds = time.perf_counter() - started

    started = time.perf_counter()
    mp = MetaProbing(
        DEFAULT_SPACE.sample(2, seed=args.seed),
        create_model,
        data,
        nn.CrossEntropyLoss(),
        make_optimizer,
        model_family="mlp",
        exclude_groups=("sklearn-digits",),
        **common,
    )
    mp.run_meta_optimization(
        min_resource=1 / 8,
        max_resource=1.0,
        reduction_factor=2,
        num_initial_configs=8,
        num_iterations=4,
        budget=sh_result.total_cost,  # the same compute successive halving spent
    )
    mp_result = mp.result_
    mp_seconds = time.perf_counter() - started

    trainer = Trainer(create_model, make_optimizer, nn.CrossEntropyLoss(), data, seed=args.seed)

    def test_accuracy(config: dict) -> float:
        model, _ = trainer.fit(config, Fidelity(1.0, args.epochs), trial_id=0)
        if model is None:
            return float("nan")
        model.eval()
        with torch.inference_mode():
            logits = model(torch.from_numpy(data.transform(X_test)))
        return float((logits.argmax(1).numpy() == data.encode_labels(y_test)).mean())

    rows = [
        (
            "successive halving",
            sh_result.best_config,
            sh_result.best_score,
            sh_result.total_cost,
            len(sh_result.evaluations),
            sh_seconds,
        ),
        (
            "MetaProbing",
            mp_result.best_config,
            mp_result.best_score,
            mp_result.total_cost,
            len(mp_result.evaluations),
            mp_seconds,
        ),
    ]
    if mp_result.zero_shot_config is not None:
        rows.append(("zero-shot prediction", mp_result.zero_shot_config, float("nan"), 0.0, 0, 0.0))
    print("\n| method | val acc | test acc | budget (full-data epochs) | evaluations | wall s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, config, score, cost, n, seconds in rows:
        print(
            f"| {name} | {score:.4f} | {test_accuracy(config):.4f} | {cost:.1f} | {n} | "
            f"{seconds:.1f} |"
        )
    print("\nchosen configurations:")
    for name, config, *_ in rows:
        shown = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items()
        )
        print(f"  {name:>21}: {shown}")
    prior = mp_result.prior
    print(
        f"\nMetaProbing's prior: {prior.n_evaluations} evaluations on {prior.n_datasets} "
        f"other datasets ({', '.join(prior.sources)}); digits itself left out."
    )
    final_trial = mp_result.study.best_evaluation.trial_id
    sources = mp_result.sources
    tried = ", ".join(
        f"{sum(1 for s in sources.values() if s == name)} {name}"
        for name in ("prior", "model", "local", "random", "user")
        if name in sources.values()
    )
    print(f"MetaProbing tried {len(sources)} configurations ({tried}).")
    if mp_result.prior_weights is not None:
        print(
            "Earlier studies that ordered its measurements best (they inform, they do not "
            f"steer): {mp_result.prior_weights.describe()}."
        )
    source = sources.get(final_trial)
    print(f"Its answer: trial {final_trial} ({source}); why: {mp_result.answer_note}")
    since = next(
        (
            cost
            for i, (cost, _) in enumerate(mp_result.incumbents)
            if all(t == final_trial for _, t in mp_result.incumbents[i:])
        ),
        None,
    )
    if since is not None:
        print(
            f"It held that answer from {since:.1f} full-data epochs on, of "
            f"{mp_result.total_cost:.1f} spent (budget {mp_result.budget:.1f}); stopped "
            f"because {mp_result.stop_reason}."
        )
    used = sum(c.used for c in mp_result.surrogate_checks)
    print(
        f"The prior's surrogate re-ranked {used} of {len(mp_result.surrogate_checks)} "
        "promotions (only where it had ranked this study's own configurations better than "
        "their raw scores)."
    )
    rhos = mp_result.promotion_spearman()
    if rhos:
        print(
            f"promotion order vs the next rung's scores: mean Spearman {np.mean(rhos):.2f} over "
            f"{len(rhos)} promotion decisions"
        )


if __name__ == "__main__":
    main()
