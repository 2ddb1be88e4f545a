"""Cheap and full tiers: cost budget, feature names, NaN handling, consistency."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from llp.landscape import (
    CHEAP_TIER_FEATURES,
    CHEAP_TIER_MAX_COST_FB,
    FULL_TIER_FEATURES,
    LR_TIMES_TOP_EIG_FEATURE,
    adaptive_sharpness,
    cheap_tier,
    full_tier,
    gradient_norm,
    top_hessian_eigenvalue,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


@pytest.fixture(params=["mlp", "cnn", "bn_dropout"])
def problem(request, make_mlp, make_cnn, make_bn_dropout_model, make_probe_set):
    if request.param == "cnn":
        inputs, targets = make_probe_set(n=32, n_features=64)
        return make_cnn(), nn.CrossEntropyLoss(), inputs.reshape(32, 1, 8, 8), targets
    model = make_mlp() if request.param == "mlp" else make_bn_dropout_model()
    return (model, nn.CrossEntropyLoss(), *make_probe_set(n=32))


def test_cheap_tier_costs_at_most_20_forward_backward_equivalents(problem):
    report = cheap_tier(*problem, learning_rate=0.1)
    assert report.cost_fb <= CHEAP_TIER_MAX_COST_FB == 20
    assert report.tier == "cheap"
    assert report.slice_1d is None


def test_cheap_tier_cost_is_the_sum_of_its_passes(problem):
    report = cheap_tier(*problem)
    iterations = report.diagnostics["power_iteration_iterations"]
    assert report.cost_fb == 2 * iterations + report.settings["sharpness_n_samples"]


def test_cheap_tier_features_are_the_published_names(problem):
    plain = cheap_tier(*problem)
    with_lr = cheap_tier(*problem, learning_rate=0.5)
    assert tuple(plain.features) == CHEAP_TIER_FEATURES
    assert tuple(with_lr.features) == (*CHEAP_TIER_FEATURES, LR_TIMES_TOP_EIG_FEATURE)
    assert with_lr.features[LR_TIMES_TOP_EIG_FEATURE] == pytest.approx(
        0.5 * with_lr.features["landscape_hessian_top_eig"]
    )
    assert all(name.startswith("landscape_") for name in with_lr.features)
    assert all(isinstance(value, float) for value in with_lr.features.values())
    assert all(math.isfinite(value) for value in with_lr.features.values())


def test_full_tier_features_cost_and_slice(problem):
    report = full_tier(*problem, learning_rate=0.1)
    assert tuple(report.features) == (*FULL_TIER_FEATURES, LR_TIMES_TOP_EIG_FEATURE)
    assert all(math.isfinite(value) for value in report.features.values())
    assert report.tier == "full"
    assert CHEAP_TIER_MAX_COST_FB < report.cost_fb <= 100
    assert report.slice_1d is not None and report.slice_1d.losses.shape == (21,)
    assert report.features["landscape_slice_1d_max_increase"] >= 0


def test_cheap_tier_reproduces_the_standalone_probes(make_mlp, make_probe_set):
    model = make_mlp()
    criterion = nn.CrossEntropyLoss()
    inputs, targets = make_probe_set()
    report = cheap_tier(model, criterion, inputs, targets, seed=9)
    sharpness = adaptive_sharpness(model, criterion, inputs, targets, n_samples=6, seed=9)
    top = top_hessian_eigenvalue(model, criterion, inputs, targets, max_iter=6, seed=9)
    norm = gradient_norm(model, criterion, inputs, targets)
    features = report.features
    assert features["landscape_adaptive_sharpness_avg"] == pytest.approx(sharpness.value, rel=1e-5)
    assert features["landscape_hessian_top_eig"] == pytest.approx(top.eigenvalue, rel=1e-6)
    assert features["landscape_grad_norm"] == pytest.approx(norm.value, rel=1e-6)
    assert features["landscape_loss"] == pytest.approx(norm.loss, rel=1e-6)


def test_tiers_are_deterministic_given_the_seed(make_mlp, make_probe_set):
    model, (inputs, targets) = make_mlp(), make_probe_set()
    first = full_tier(model, nn.CrossEntropyLoss(), inputs, targets, seed=1)
    again = full_tier(model, nn.CrossEntropyLoss(), inputs, targets, seed=1)
    other = full_tier(model, nn.CrossEntropyLoss(), inputs, targets, seed=2)
    assert dict(first.features) == dict(again.features)
    assert first.features["landscape_hessian_trace"] != other.features["landscape_hessian_trace"]


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
@pytest.mark.parametrize("tier", [cheap_tier, full_tier])
def test_diverged_model_gives_nan_features_without_raising(tier, bad_value, problem):
    model = problem[0]
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(bad_value)
    report = tier(*problem, learning_rate=0.1)
    assert report.features.keys() >= set(CHEAP_TIER_FEATURES)
    assert all(math.isnan(value) for value in report.features.values())
    assert report.cost_fb <= (CHEAP_TIER_MAX_COST_FB if tier is cheap_tier else 100)


def test_partly_diverged_model_still_gives_nan_not_inf(make_mlp, make_probe_set):
    model = make_mlp()
    with torch.no_grad():
        model[2].bias[0] = float("inf")
    report = cheap_tier(model, nn.CrossEntropyLoss(), *make_probe_set())
    assert not any(math.isinf(value) for value in report.features.values())


def test_report_is_immutable(make_mlp, make_probe_set):
    report = cheap_tier(make_mlp(), nn.CrossEntropyLoss(), *make_probe_set())
    with pytest.raises(AttributeError):
        report.cost_fb = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        report.features["landscape_loss"] = 0.0  # type: ignore[index]
