"""The shared search space and the two model families of the shipped knowledge."""

from __future__ import annotations

import doctest

import pytest
import torch

import llp.knowledge
import llp.knowledge._families
from llp.knowledge import DEFAULT_SPACE, SGD_MOMENTUM, make_cnn, make_mlp, make_optimizer


def make_config(**overrides: object) -> dict[str, object]:
    config: dict[str, object] = {
        "lr": 0.01,
        "weight_decay": 1e-4,
        "width": 32,
        "dropout": 0.1,
        "optimizer": "sgd",
    }
    config.update(overrides)
    return config


def test_default_space_is_the_one_both_families_share() -> None:
    assert DEFAULT_SPACE.names == ("lr", "weight_decay", "width", "dropout", "optimizer")
    assert DEFAULT_SPACE["lr"].log and DEFAULT_SPACE["width"].log
    for config in DEFAULT_SPACE.sample(16, seed=0):
        assert DEFAULT_SPACE.validate(config) == config
        # Every sampled configuration builds in both families.
        make_mlp(config, n_features=5, n_classes=2)
        make_cnn(config, (1, 40), n_classes=10)


@pytest.mark.parametrize(
    ("input_shape", "batch_shape"),
    [
        ((1, 40), (3, 1, 40)),
        ((1, 8, 8), (3, 1, 8, 8)),
        ((2, 5), (3, 2, 5)),
        ((3, 3, 7), (3, 3, 3, 7)),
    ],
)
def test_cnn_maps_signals_and_images_to_class_scores(
    input_shape: tuple[int, ...], batch_shape: tuple[int, ...]
) -> None:
    model = make_cnn(make_config(width=16), input_shape, n_classes=4)
    assert model(torch.zeros(batch_shape)).shape == (3, 4)


def test_cnn_width_is_its_channel_count() -> None:
    model = make_cnn(make_config(width=24), (1, 40), n_classes=10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [c.out_channels for c in convs] == [24, 24]


def test_mlp_has_two_hidden_layers_of_width_and_dropout() -> None:
    model = make_mlp(make_config(width=48, dropout=0.3), n_features=7, n_classes=3)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(7, 48), (48, 48), (48, 3)]
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.3]
    assert model(torch.zeros(5, 7)).shape == (5, 3)


def test_optimizer_choices() -> None:
    model = make_mlp(make_config(), n_features=3, n_classes=2)
    sgd = make_optimizer(model, make_config(optimizer="sgd", lr=0.2, weight_decay=1e-3))
    assert isinstance(sgd, torch.optim.SGD)
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.2, SGD_MOMENTUM, 1e-3)
    adam = make_optimizer(model, make_config(optimizer="adam", lr=1e-3))
    assert isinstance(adam, torch.optim.Adam)
    assert adam.param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: make_mlp(make_config(width=0), 3, 2), "must hold 'width', an int >= 1. Got 0"),
        (lambda: make_mlp(make_config(width=8.5), 3, 2), "'width', an int >= 1. Got 8.5"),
        (lambda: make_mlp(make_config(dropout=1.0), 3, 2), r"'dropout', a float in \[0, 1\)"),
        (lambda: make_mlp(make_config(), 0, 2), "'n_features' parameter of make_mlp must be"),
        (lambda: make_cnn(make_config(), (40,), 2), "'input_shape' parameter of make_cnn"),
        (lambda: make_cnn(make_config(), (1, 8, 8), 0), "'n_classes' parameter of make_cnn"),
        (
            lambda: make_optimizer(torch.nn.Linear(2, 2), make_config(optimizer="rmsprop")),
            "'optimizer', one of 'sgd', 'adam'. Got 'rmsprop'",
        ),
        (
            lambda: make_optimizer(torch.nn.Linear(2, 2), make_config(lr="fast")),
            "'lr', a float >= 0. Got 'fast'",
        ),
    ],
)
def test_input_errors(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("module", [llp.knowledge._families, llp.knowledge])
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0
