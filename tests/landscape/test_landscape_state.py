"""Every probe leaves the model exactly as it found it, also when it raises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from llp.landscape import (
    adaptive_sharpness,
    cheap_tier,
    empirical_fisher_trace,
    full_tier,
    gradient_norm,
    hutchinson_trace,
    loss_slice_1d,
    loss_slice_2d,
    preserved_model_state,
    top_hessian_eigenvalue,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

PROBES: dict[str, Callable[..., Any]] = {
    "adaptive_sharpness_average": lambda *a: adaptive_sharpness(*a, n_samples=2),
    "adaptive_sharpness_worst": lambda *a: adaptive_sharpness(*a, kind="worst"),
    "top_hessian_eigenvalue": lambda *a: top_hessian_eigenvalue(*a, max_iter=3),
    "hutchinson_trace": lambda *a: hutchinson_trace(*a, n_samples=2),
    "gradient_norm": gradient_norm,
    "empirical_fisher_trace": empirical_fisher_trace,
    "loss_slice_1d": lambda *a: loss_slice_1d(*a, n_points=3),
    "loss_slice_2d": lambda *a: loss_slice_2d(*a, n_points=3),
    "cheap_tier": cheap_tier,
    "full_tier": full_tier,
}


def snapshot(model: nn.Module) -> dict[str, Any]:
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad for p in model.parameters()],
    }


def assert_unchanged(model: nn.Module, before: dict[str, Any]) -> None:
    after = model.state_dict()
    assert after.keys() == before["state"].keys()
    for name, tensor in before["state"].items():
        assert after[name].dtype == tensor.dtype, name
        assert torch.equal(after[name], tensor), name
    assert [m.training for m in model.modules()] == before["training"]
    assert [p.requires_grad for p in model.parameters()] == before["requires_grad"]
    assert [p.grad for p in model.parameters()] == before["grads"]


@pytest.mark.parametrize("probe", PROBES.values(), ids=PROBES.keys())
def test_probe_restores_parameters_buffers_and_flags_bit_for_bit(
    probe, make_bn_dropout_model, make_probe_set
):
    model = make_bn_dropout_model()
    inputs, targets = make_probe_set(n=32)
    before = snapshot(model)
    assert before["state"]["1.num_batches_tracked"].item() == 3  # buffers are non-trivial
    rng_before = torch.get_rng_state()
    probe(model, nn.CrossEntropyLoss(), inputs, targets)
    assert_unchanged(model, before)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is untouched


@pytest.mark.parametrize("probe", PROBES.values(), ids=PROBES.keys())
def test_probe_runs_in_eval_mode(probe, make_bn_dropout_model, make_probe_set):
    # In eval mode Dropout is the identity, so two identical calls agree exactly.
    inputs, targets = make_probe_set(n=32)
    first = probe(make_bn_dropout_model(), nn.CrossEntropyLoss(), inputs, targets)
    second = probe(make_bn_dropout_model(), nn.CrossEntropyLoss(), inputs, targets)
    assert repr(first) == repr(second)


class CountingModule(nn.Module):
    """Mutates a buffer on every forward pass, even in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(5, 3)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.add_(1)
        return self.linear(x)


class FailingCriterion:
    """Cross-entropy that raises on its ``fail_on``-th call."""

    def __init__(self, fail_on: int) -> None:
        self.fail_on, self.calls = fail_on, 0

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("boom")
        return nn.functional.cross_entropy(outputs, targets)


SINGLE_PASS_PROBES = {"gradient_norm", "empirical_fisher_trace"}


@pytest.mark.parametrize("name", PROBES)
def test_state_is_restored_when_the_probe_raises(name, make_bn_dropout_model, make_probe_set):
    model = make_bn_dropout_model()
    inputs, targets = make_probe_set(n=16)
    before = snapshot(model)
    fail_on = 1 if name in SINGLE_PASS_PROBES else 2  # fail mid-probe where there is a "mid"
    with pytest.raises(RuntimeError, match="boom"):
        PROBES[name](model, FailingCriterion(fail_on=fail_on), inputs, targets)
    assert_unchanged(model, before)


FORWARD_ONLY_PROBES = ["adaptive_sharpness_average", "loss_slice_1d", "loss_slice_2d"]


@pytest.mark.parametrize("name", FORWARD_ONLY_PROBES)
def test_buffers_mutated_by_forward_are_restored_after_an_error(name, make_probe_set):
    # torch.func refuses in-place writes to captured buffers inside grad transforms, so
    # only the forward-only probes can run a model like this; they must undo its writes.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CountingModule().train()
    inputs, targets = make_probe_set(n=16)
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        PROBES[name](model, FailingCriterion(fail_on=3), inputs, targets)
    assert_unchanged(model, before)
    assert model.calls.item() == 0


def test_preserved_model_state_restores_in_place_edits(make_bn_dropout_model):
    model = make_bn_dropout_model()
    parameter = model[0].weight
    before = snapshot(model)
    with preserved_model_state(model):
        assert not any(m.training for m in model.modules())
        with torch.no_grad():
            parameter.mul_(3.0)
            model[1].running_mean.fill_(float("nan"))
        model[1].num_batches_tracked += 5
        model[0].weight.requires_grad_(False)
    assert_unchanged(model, before)
    assert model[0].weight is parameter  # restored in place: optimizers keep working


def test_unchanged_tensors_are_not_written(make_mlp):
    # Writing would bump the version counter and break a graph the caller still holds.
    model = make_mlp()
    outputs = model(torch.ones(2, 5)).sum()
    with preserved_model_state(model):
        pass
    outputs.backward()


def test_nan_weights_survive_restoration_bit_for_bit(make_mlp, make_probe_set):
    model = make_mlp()
    with torch.no_grad():
        model[0].weight.fill_(float("nan"))
    bits = model[0].weight.detach().view(torch.int32).clone()
    gradient_norm(model, nn.CrossEntropyLoss(), *make_probe_set())
    assert torch.equal(model[0].weight.detach().view(torch.int32), bits)
