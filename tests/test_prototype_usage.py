"""Code written against the seed's prototype keeps working: its usage block, verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

#: The "Usage" block of the seed document, copied verbatim (the seed lives outside the
#: repository; where it is present, the copy is checked against it).
SEED_USAGE = """\
from llp.meta_probing import MetaProbing

# Create MetaProbing instance
meta_probing = MetaProbing(
    configs=configs,
    model_fn=create_model,
    dataset_fn=dataset_fn,
    criterion=criterion,
    optimizer_fn=create_optimizer
)

# Run meta-model optimization
best_config = meta_probing.run_meta_optimization(
    min_resource=0.1,
    max_resource=0.5,
    reduction_factor=2,
    measure_flatness=True,
    num_initial_configs=6,
    num_iterations=3
)

# Use the best config for final training
# ...
"""

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed"


def test_the_copy_is_the_seed_documents_usage_block() -> None:
    documents = sorted(SEED.glob("*.txt")) if SEED.is_dir() else []
    if not documents:
        return  # a clone without the seed beside it: the copy above is the reference
    text = documents[0].read_text(encoding="utf-8")
    block = re.search(r"## Usage.*?```python\n(.*?)```", text, re.S)
    assert block is not None and block.group(1) == SEED_USAGE


def test_the_seed_usage_block_runs_as_written(tmp_path: Path, monkeypatch) -> None:
    """A user's own model, loaders and configurations, then the block as the seed wrote
    it: MetaProbing built from the five positional ingredients alone."""
    monkeypatch.chdir(tmp_path)  # where the default knowledge base goes
    X, y = load_wine(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(y), generator=generator)
    X_t = torch.tensor(X, dtype=torch.float32)[order]
    y_t = torch.tensor(y)[order]
    train_x, train_y, val_x, val_y = X_t[:140], y_t[:140], X_t[140:], y_t[140:]

    def dataset_fn(fraction: float):
        n = max(int(len(train_y) * fraction), 10)
        train = DataLoader(TensorDataset(train_x[:n], train_y[:n]), batch_size=32, shuffle=True)
        return train, DataLoader(TensorDataset(val_x, val_y), batch_size=64)

    def create_model(config):
        return nn.Sequential(
            nn.Linear(13, config["hidden"]), nn.ReLU(), nn.Linear(config["hidden"], 3)
        )

    def create_optimizer(model, config):
        return torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)

    configs = [{"lr": lr, "hidden": h} for lr in (0.003, 0.03, 0.3) for h in (8, 32)]
    criterion = nn.CrossEntropyLoss()
    scope = {
        "configs": configs,
        "create_model": create_model,
        "dataset_fn": dataset_fn,
        "criterion": criterion,
        "create_optimizer": create_optimizer,
    }
    exec(SEED_USAGE, scope)
    best_config = scope["best_config"]
    result = scope["meta_probing"].result_
    assert set(best_config) == {"lr", "hidden"}
    assert best_config == result.best_config
    assert result.evaluations and result.stop_reason
    assert max(e.resource for e in result.evaluations) == 0.5  # max_resource
