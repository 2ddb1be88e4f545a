"""Adaptive sharpness: scale invariance, determinism, cost accounting."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from llp.landscape import adaptive_sharpness, top_hessian_eigenvalue

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


def rescaled(model: nn.Sequential, factor: float) -> nn.Sequential:
    """``W1 * c, b1 * c, W2 / c``: the same function for a ReLU network (c > 0)."""
    copy_ = copy.deepcopy(model)
    with torch.no_grad():
        copy_[0].weight.mul_(factor)
        copy_[0].bias.mul_(factor)
        copy_[2].weight.div_(factor)
    return copy_


@pytest.fixture
def relu_problem(make_mlp, make_probe_set):
    model = make_mlp(n_features=5, hidden=16, n_classes=3, seed=1)
    inputs, targets = make_probe_set(n=64, seed=2)
    return model, nn.CrossEntropyLoss(), inputs, targets


@pytest.mark.parametrize("kind", ["average", "worst"])
def test_adaptive_sharpness_is_invariant_to_layerwise_relu_rescaling(relu_problem, kind):
    model, criterion, inputs, targets = relu_problem
    other = rescaled(model, 4.0)
    torch.testing.assert_close(other(inputs), model(inputs))
    original = adaptive_sharpness(model, criterion, inputs, targets, kind=kind, rho=0.1)
    scaled = adaptive_sharpness(other, criterion, inputs, targets, kind=kind, rho=0.1)
    assert original.value > 0
    assert scaled.value == pytest.approx(original.value, rel=1e-4, abs=1e-7)


def test_raw_top_eigenvalue_is_not_invariant_to_the_same_rescaling(relu_problem):
    model, criterion, inputs, targets = relu_problem
    original = top_hessian_eigenvalue(model, criterion, inputs, targets, tol=1e-6, max_iter=200)
    scaled = top_hessian_eigenvalue(
        rescaled(model, 4.0), criterion, inputs, targets, tol=1e-6, max_iter=200
    )
    assert abs(scaled.eigenvalue / original.eigenvalue - 1) > 0.5


@settings(max_examples=10, deadline=None)
@given(factor=st.floats(min_value=0.2, max_value=8.0), kind=st.sampled_from(["average", "worst"]))
def test_adaptive_invariance_holds_for_any_positive_factor(factor, kind):
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(48, 4, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, 3, (48,), generator=generator)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    criterion = nn.CrossEntropyLoss()
    original = adaptive_sharpness(model, criterion, inputs, targets, kind=kind, n_samples=3)
    scaled = adaptive_sharpness(
        rescaled(model, factor), criterion, inputs, targets, kind=kind, n_samples=3
    )
    assert scaled.value == pytest.approx(original.value, rel=1e-8, abs=1e-12)


def test_average_sharpness_cost_and_settings(relu_problem):
    model, criterion, inputs, targets = relu_problem
    result = adaptive_sharpness(model, criterion, inputs, targets, n_samples=5, seed=7)
    assert result.cost_fb == 5.5  # one base forward + two forwards per direction
    assert result.stderr > 0
    assert dict(result.settings) == {
        "kind": "average",
        "rho": 0.05,
        "seed": 7,
        "n_examples": 64,
        "n_samples": 5,
    }


def test_worst_case_costs_a_gradient_and_a_forward(relu_problem):
    model, criterion, inputs, targets = relu_problem
    result = adaptive_sharpness(model, criterion, inputs, targets, kind="worst")
    assert result.cost_fb == 1.5
    assert result.base_loss == pytest.approx(criterion(model(inputs), targets).item())


def test_worst_case_exceeds_average_case_at_the_same_radius(relu_problem):
    # The ascent step targets the loss increase; random directions mostly miss it.
    model, criterion, inputs, targets = relu_problem
    worst = adaptive_sharpness(model, criterion, inputs, targets, kind="worst", rho=0.05)
    average = adaptive_sharpness(model, criterion, inputs, targets, kind="average", rho=0.05)
    assert worst.value > average.value


def test_same_seed_same_value_other_seed_other_value(relu_problem):
    model, criterion, inputs, targets = relu_problem
    first = adaptive_sharpness(model, criterion, inputs, targets, n_samples=3, seed=1)
    again = adaptive_sharpness(model, criterion, inputs, targets, n_samples=3, seed=1)
    other = adaptive_sharpness(model, criterion, inputs, targets, n_samples=3, seed=2)
    assert first.value == again.value
    assert first.value != other.value
