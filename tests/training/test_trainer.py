from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from llp.data import FidelityData
from llp.training import EvaluationStatus, Fidelity, Trainer
from tests.conftest import mlp_model_fn, mlp_optimizer_fn

CONFIG = {"lr": 1e-2, "width": 32, "optimizer": "adam"}


@pytest.fixture
def trainer(make_digits_data) -> Trainer:
    return Trainer(
        mlp_model_fn, mlp_optimizer_fn, nn.CrossEntropyLoss(), make_digits_data(), seed=0
    )


def test_records_a_learning_curve_and_counts_cost_in_full_data_epochs(trainer) -> None:
    result = trainer.evaluate(CONFIG, Fidelity(0.5, 3), trial_id=1)
    assert result.status is EvaluationStatus.COMPLETE
    assert [p.epoch for p in result.curve] == [1, 2, 3]
    for point in result.curve:
        assert math.isfinite(point.train_loss) and math.isfinite(point.val_loss)
        assert 0.0 <= point.val_accuracy <= 1.0 and point.seconds > 0
    assert result.curve[-1].train_loss < result.curve[0].train_loss
    assert result.score == result.curve[-1].val_accuracy > 0.5
    assert result.cost == pytest.approx(1.5)
    assert result.n_train == len(trainer.data.train_indices(0.5))
    assert result.objective == "val_accuracy"


def test_same_seed_same_evaluation_and_trials_differ(make_digits_data) -> None:
    def run(seed: int, trial_id: int) -> list[float]:
        t = Trainer(
            mlp_model_fn, mlp_optimizer_fn, nn.CrossEntropyLoss(), make_digits_data(), seed=seed
        )
        return [p.train_loss for p in t.evaluate(CONFIG, Fidelity(0.3, 2), trial_id=trial_id).curve]

    assert run(0, 1) == run(0, 1)
    assert run(0, 1) != run(0, 2)
    assert run(0, 1) != run(1, 1)


def test_training_leaves_the_global_rng_alone(trainer) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    trainer.evaluate(CONFIG, Fidelity(0.2, 1))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_huge_learning_rate_is_a_failed_evaluation_not_a_crash(trainer, optimizer) -> None:
    result = trainer.evaluate({**CONFIG, "lr": 1e6, "optimizer": optimizer}, Fidelity(0.5, 3))
    assert result.status is EvaluationStatus.FAILED
    assert result.failure_reason.startswith("diverged")
    assert result.score is None
    assert result.cost == pytest.approx(0.5)  # the first epoch ran, and is paid for


def test_exceptions_in_user_code_become_failed_evaluations(make_digits_data) -> None:
    data = make_digits_data()

    def broken_model(config):
        raise RuntimeError("no such layer")

    result = Trainer(broken_model, mlp_optimizer_fn, nn.CrossEntropyLoss(), data).evaluate(
        CONFIG, Fidelity(0.5, 1)
    )
    assert result.status is EvaluationStatus.FAILED
    assert result.failure_reason == "model_fn raised RuntimeError: no such layer"
    assert "no such layer" in result.traceback

    result = Trainer(mlp_model_fn, lambda m, c: None, nn.CrossEntropyLoss(), data).evaluate(
        CONFIG, Fidelity(0.5, 1)
    )
    assert result.failure_reason == (
        "optimizer_fn returned NoneType; it must return a torch.optim.Optimizer"
    )

    result = Trainer(lambda c: "model", mlp_optimizer_fn, nn.CrossEntropyLoss(), data).evaluate(
        CONFIG, Fidelity(0.5, 1)
    )
    assert "must return a torch.nn.Module" in result.failure_reason

    wrong_shape = Trainer(
        lambda c: nn.Linear(3, 10), mlp_optimizer_fn, nn.CrossEntropyLoss(), data
    ).evaluate(CONFIG, Fidelity(0.5, 1))
    assert wrong_shape.failure_reason.startswith("training raised RuntimeError")


@pytest.mark.parametrize("during", ["training", "landscape probes"])
def test_a_ctrl_c_that_torch_wrapped_in_a_runtime_error_is_still_an_interrupt(
    make_digits_data, monkeypatch, during: str
) -> None:
    # TorchScript and C++ ops report a Ctrl-C as RuntimeError("KeyboardInterrupt: ...").
    wrapped = RuntimeError("KeyboardInterrupt: <EMPTY MESSAGE>")
    t = Trainer(mlp_model_fn, mlp_optimizer_fn, nn.CrossEntropyLoss(), make_digits_data())
    if during == "training":

        def interrupted(*args, **kwargs):
            raise wrapped

        monkeypatch.setattr(t, "_train_on_tensors", interrupted)
    else:
        t.measure_flatness = True

        def interrupted_probes(model, optimizer):
            raise wrapped

        monkeypatch.setattr(t, "_landscape", interrupted_probes)
    with pytest.raises(KeyboardInterrupt):
        t.evaluate(CONFIG, Fidelity(0.5, 1))


def test_user_dataset_fn_path_matches_the_contract(make_digits_data) -> None:
    data = make_digits_data()
    calls: list[float] = []

    def dataset_fn(fraction):
        calls.append(fraction)
        return data(fraction)

    t = Trainer(mlp_model_fn, mlp_optimizer_fn, nn.CrossEntropyLoss(), dataset_fn, seed=0)
    result = t.evaluate(CONFIG, Fidelity(0.5, 2))
    assert calls == [0.5]
    assert result.status is EvaluationStatus.COMPLETE and result.score > 0.5
    assert result.n_train == len(data.train_indices(0.5))
    assert result.cost == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("returned", "match"),
    [
        (None, r"must return a pair \(train_loader, val_loader\). Got a NoneType"),
        ((1, 2, 3), "Got a tuple of 3"),
        ((5, []), "returned a train_loader that is not iterable"),
    ],
)
def test_dataset_fn_returning_the_wrong_thing_is_an_error(returned, match) -> None:
    t = Trainer(mlp_model_fn, mlp_optimizer_fn, nn.CrossEntropyLoss(), lambda f: returned)
    with pytest.raises(TypeError, match=match):
        t.evaluate(CONFIG, Fidelity(0.5, 1))


def test_batches_that_are_not_pairs_fail_the_evaluation_with_the_reason() -> None:
    t = Trainer(
        mlp_model_fn,
        mlp_optimizer_fn,
        nn.CrossEntropyLoss(),
        lambda f: ([torch.zeros(4, 64)], [torch.zeros(4, 64)]),
    )
    result = t.evaluate(CONFIG, Fidelity(0.5, 1))
    assert result.status is EvaluationStatus.FAILED
    assert "must yield (inputs, targets) tensor pairs" in result.failure_reason


def test_regression_uses_validation_loss_as_objective() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1
    data = FidelityData(X, y, seed=0)

    def model_fn(config):
        return nn.Sequential(nn.Linear(4, 1), nn.Flatten(0))

    t = Trainer(model_fn, mlp_optimizer_fn, nn.MSELoss(), data, seed=0)
    result = t.evaluate({"lr": 0.05}, Fidelity(1.0, 20))
    assert t.objective == "val_loss"
    assert result.score == pytest.approx(-result.final_val_loss)
    assert result.final_val_accuracy is None
    assert result.final_val_loss < 0.5


def test_batch_size_in_the_config_overrides_the_data_default(make_digits_data) -> None:
    data = make_digits_data(batch_size=8)
    t = Trainer(mlp_model_fn, mlp_optimizer_fn, nn.CrossEntropyLoss(), data, seed=0)
    small = t.evaluate(CONFIG, Fidelity(0.5, 1))
    large = t.evaluate({**CONFIG, "batch_size": 256}, Fidelity(0.5, 1))
    assert small.curve[0].train_loss != large.curve[0].train_loss


def test_fit_returns_the_trained_model(trainer) -> None:
    model, result = trainer.fit(CONFIG, Fidelity(1.0, 2))
    X_val, y_val = trainer.data.tensors()[2:]
    with torch.inference_mode():
        accuracy = (model(X_val).argmax(1) == y_val).float().mean().item()
    assert accuracy == pytest.approx(result.score)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"model_fn": 3}, TypeError, "'model_fn' parameter must be callable"),
        ({"optimizer_fn": None}, TypeError, "'optimizer_fn' parameter must be callable"),
        ({"criterion": "ce"}, TypeError, "'criterion' parameter must be a loss module"),
        ({"data": [1, 2]}, TypeError, "'dataset_fn' parameter must be a FidelityData"),
        ({"objective": "f1"}, ValueError, "'objective' parameter must be one of"),
        ({"device": "gpu7"}, ValueError, "'device' parameter must be 'auto' or a torch device"),
        pytest.param(
            {"device": "cuda"},
            ValueError,
            r"'device' parameter is 'cuda', but this torch build .* sees no CUDA device",
            marks=pytest.mark.skipif(
                torch.cuda.is_available(), reason="a CUDA device is there: 'cuda' is valid"
            ),
        ),
        ({"device": "cuda:99"}, ValueError, r"'device' parameter is 'cuda:99', but"),
        ({"divergence_factor": 0.5}, ValueError, "'divergence_factor'"),
    ],
)
def test_trainer_argument_errors(make_digits_data, kwargs, error, match) -> None:
    args = {
        "model_fn": mlp_model_fn,
        "optimizer_fn": mlp_optimizer_fn,
        "criterion": nn.CrossEntropyLoss(),
        "data": make_digits_data(),
    }
    args.update(kwargs)
    with pytest.raises(error, match=match):
        Trainer(**args)


def test_measure_flatness_attaches_the_cheap_tier_on_a_fixed_probe_set(make_digits_data) -> None:
    from llp.landscape import CHEAP_TIER_FEATURES, LR_TIMES_TOP_EIG_FEATURE

    data = make_digits_data()
    t = Trainer(
        mlp_model_fn,
        mlp_optimizer_fn,
        nn.CrossEntropyLoss(),
        data,
        seed=0,
        measure_flatness=True,
        probe_size=64,
    )
    result = t.evaluate(CONFIG, Fidelity(0.5, 2))
    assert set(result.landscape) == {*CHEAP_TIER_FEATURES, LR_TIMES_TOP_EIG_FEATURE}
    assert all(math.isfinite(v) for v in result.landscape.values())
    assert result.landscape[LR_TIMES_TOP_EIG_FEATURE] == pytest.approx(
        CONFIG["lr"] * result.landscape["landscape_hessian_top_eig"]
    )
    # At most 20 forward+backward passes over 64 of the pool's examples.
    assert 0 < result.probe_cost <= 20 * 64 / data.n_train
    # The probe set is fixed: the same examples for every configuration.
    first = t.probe_set()
    t.evaluate({**CONFIG, "width": 16}, Fidelity(0.2, 1))
    assert t.probe_set() is first and first[0].shape[0] == 64
    assert (
        not Trainer(mlp_model_fn, mlp_optimizer_fn, nn.CrossEntropyLoss(), data)
        .evaluate(CONFIG, Fidelity(0.5, 1))
        .landscape
    )


def test_measure_flatness_with_a_user_dataset_fn(make_digits_data) -> None:
    data = make_digits_data()
    t = Trainer(
        mlp_model_fn,
        mlp_optimizer_fn,
        nn.CrossEntropyLoss(),
        lambda f: data(f),
        measure_flatness=True,
        probe_size=32,
    )
    result = t.evaluate(CONFIG, Fidelity(0.5, 1))
    assert result.landscape and t.probe_set()[0].shape[0] == 32
    assert result.probe_cost <= 20 * 32 / data.n_train + 1e-12


def test_a_failing_probe_keeps_the_completed_run(make_digits_data, monkeypatch) -> None:
    import llp.landscape

    def broken(*args, **kwargs):
        raise RuntimeError("functorch cannot transform this model")

    monkeypatch.setattr(llp.landscape, "cheap_tier", broken)
    t = Trainer(
        mlp_model_fn,
        mlp_optimizer_fn,
        nn.CrossEntropyLoss(),
        make_digits_data(),
        measure_flatness=True,
    )
    with pytest.warns(RuntimeWarning, match="landscape probes failed.*functorch"):
        result = t.evaluate(CONFIG, Fidelity(0.5, 1))
    assert result.status is EvaluationStatus.COMPLETE
    assert all(math.isnan(v) for v in result.landscape.values())
