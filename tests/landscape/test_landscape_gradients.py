"""Gradient norm and empirical Fisher trace against plain autograd."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llp.landscape import empirical_fisher_trace, gradient_norm

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


def per_example_squared_norms(model: nn.Module, criterion, inputs, targets) -> torch.Tensor:
    values = []
    for x, y in zip(inputs, targets, strict=True):
        model.zero_grad(set_to_none=True)
        criterion(model(x.unsqueeze(0)), y.unsqueeze(0)).backward()
        values.append(sum(p.grad.pow(2).sum() for p in model.parameters()))
    model.zero_grad(set_to_none=True)
    return torch.stack(values)


class ItemNet(nn.Module):
    """Same function as an MLP, but with data-dependent control flow that vmap rejects."""

    def __init__(self, mlp: nn.Sequential) -> None:
        super().__init__()
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.abs().sum().item() >= 0:
            return self.mlp(x)
        return -self.mlp(x)


def test_gradient_norm_matches_autograd(make_mlp, make_probe_set):
    model = make_mlp(dtype=torch.float64)
    inputs, targets = make_probe_set(dtype=torch.float64)
    criterion = nn.CrossEntropyLoss()
    result = gradient_norm(model, criterion, inputs, targets)
    loss = criterion(model(inputs), targets)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    assert result.value == pytest.approx(float(expected), rel=1e-10)
    assert result.loss == pytest.approx(loss.item(), rel=1e-12)
    assert result.cost_fb == 1.0


def test_fisher_trace_matches_a_per_example_autograd_loop(make_mlp, make_probe_set):
    model = make_mlp(dtype=torch.float64).eval()
    inputs, targets = make_probe_set(n=24, dtype=torch.float64)
    criterion = nn.CrossEntropyLoss()
    result = empirical_fisher_trace(model, criterion, inputs, targets)
    expected = per_example_squared_norms(model, criterion, inputs, targets).mean()
    assert result.method == "vmap"
    assert result.value == pytest.approx(float(expected), rel=1e-10)
    assert result.cost_fb == 1.0


def test_fisher_trace_falls_back_to_a_loop_for_models_vmap_rejects(make_mlp, make_probe_set):
    mlp = make_mlp(dtype=torch.float64)
    inputs, targets = make_probe_set(n=12, dtype=torch.float64)
    criterion = nn.CrossEntropyLoss()
    looped = empirical_fisher_trace(ItemNet(mlp), criterion, inputs, targets)
    batched = empirical_fisher_trace(mlp, criterion, inputs, targets)
    assert (looped.method, batched.method) == ("loop", "vmap")
    assert looped.value == pytest.approx(batched.value, rel=1e-10)


def test_fisher_trace_with_batchnorm_uses_running_statistics(make_bn_dropout_model, make_probe_set):
    # Eval mode: per-example BatchNorm uses the running stats, so vmap works and the value
    # equals the batched definition.
    model = make_bn_dropout_model()
    inputs, targets = make_probe_set(n=16)
    result = empirical_fisher_trace(model, nn.CrossEntropyLoss(), inputs, targets)
    trainable = [p for p in model.parameters() if p.requires_grad]  # one BN bias is frozen
    model.eval()
    values = []
    for x, y in zip(inputs, targets, strict=True):
        loss = nn.functional.cross_entropy(model(x.unsqueeze(0)), y.unsqueeze(0))
        grads = torch.autograd.grad(loss, trainable)
        values.append(sum(g.pow(2).sum() for g in grads))
    assert result.method == "vmap"
    assert result.value == pytest.approx(float(torch.stack(values).mean()), rel=1e-5)
