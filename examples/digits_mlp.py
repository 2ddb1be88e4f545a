"""Tune an MLP on scikit-learn's digits with successive halving.

Run with ``make demo`` (or ``python examples/digits_mlp.py``). The search space covers the
learning rate (log), weight decay (log), width, dropout and the optimizer (SGD/Adam).
A test split is held out before the search; the chosen configuration is retrained on all
the search data and scored on it at the end.
"""

from __future__ import annotations

import argparse
import time

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from llp.data import FidelityData
from llp.space import Categorical, Float, Int, SearchSpace
from llp.training import Fidelity, Trainer
from llp.two_tier_probing import TwoTierProbing

SPACE = SearchSpace(
    [
        Float("lr", 1e-4, 1.0, log=True),
        Float("weight_decay", 1e-6, 1e-2, log=True),
        Int("width", 16, 256, log=True),
        Float("dropout", 0.0, 0.5),
        Categorical("optimizer", ("sgd", "adam")),
    ]
)


def create_model(config: dict) -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, config["width"]),
        nn.ReLU(),
        nn.Dropout(config["dropout"]),
        nn.Linear(config["width"], 10),
    )


def create_optimizer(model: nn.Module, config: dict) -> torch.optim.Optimizer:
    if config["optimizer"] == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config["lr"],
            momentum=0.9,
            weight_decay=config["weight_decay"],
        )
    return torch.optim.Adam(
        model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-configs", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X_search, X_test, y_search, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=args.seed
    )
    data = FidelityData(X_search, y_search, standardize=True, seed=args.seed)
    configs = SPACE.sample(args.n_configs, seed=args.seed)
    print(
        f"digits: {data.n_train} training / {data.n_val} validation / {len(y_test)} test "
        f"examples; {len(configs)} configurations, {args.epochs} epochs per evaluation",
        flush=True,
    )

    probe = TwoTierProbing(
        configs,
        create_model,
        data,
        nn.CrossEntropyLoss(),
        create_optimizer,
        max_epochs=args.epochs,
        seed=args.seed,
        space=SPACE,
        show_progress=not args.quiet,
    )
    started = time.perf_counter()
    result = probe.run_successive_halving(min_resource=1 / 16, max_resource=1.0, reduction_factor=2)
    elapsed = time.perf_counter() - started

    full_cost = len(configs) * args.epochs  # every config trained on all the data
    print("\nbest configuration:")
    for key, value in result.best_config.items():
        print(
            f"  {key:>13} = {value:.4g}" if isinstance(value, float) else f"  {key:>13} = {value}"
        )
    print(
        f"validation accuracy : {result.best_score:.4f} "
        f"(at {result.best_evaluation.resource:.0%} of the training data)"
    )
    print(f"evaluations         : {len(result.evaluations)} ({result.n_failed} failed)")
    print(
        f"budget spent        : {result.total_cost:.1f} full-data epochs "
        f"({result.total_cost / full_cost:.0%} of training every configuration fully: "
        f"{full_cost})"
    )
    print(f"wall time           : {elapsed:.1f} s")

    # Retrain the winner on all the search data and score it on the untouched test split.
    trainer = Trainer(create_model, create_optimizer, nn.CrossEntropyLoss(), data, seed=args.seed)
    # The same trial id gives the same initialisation and batch order as in the search.
    model, refit = trainer.fit(
        result.best_config, Fidelity(1.0, args.epochs), trial_id=result.best_evaluation.trial_id
    )
    if model is None:
        print(f"retraining the best configuration failed: {refit.failure_reason}")
        return
    model.eval()
    with torch.inference_mode():
        logits = model(torch.from_numpy(data.transform(X_test)).to(trainer.device))
    test_accuracy = float((logits.argmax(1).cpu().numpy() == data.encode_labels(y_test)).mean())
    print(
        f"test accuracy       : {test_accuracy:.4f} (best config retrained on all the "
        "training data, scored on the held-out test split)"
    )


if __name__ == "__main__":
    main()
