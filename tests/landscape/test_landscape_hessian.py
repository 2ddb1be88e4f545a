"""Hessian-vector products, power iteration and Hutchinson against an explicit Hessian."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from llp.landscape import hutchinson_trace, top_hessian_eigenvalue
from llp.landscape._objective import ProbeObjective

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


def explicit_hessian(model: nn.Module, criterion, inputs, targets) -> torch.Tensor:
    """The full Hessian of the loss w.r.t. the flattened trainable parameters."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    shapes = [p.shape for n, p in model.named_parameters() if p.requires_grad]
    sizes = [math.prod(s) for s in shapes]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])

    def loss_of_flat(vector: torch.Tensor) -> torch.Tensor:
        chunks = vector.split(sizes)
        params = {n: c.reshape(s) for n, c, s in zip(names, chunks, shapes, strict=True)}
        return criterion(functional_call(model, params, (inputs,)), targets)

    return torch.autograd.functional.hessian(loss_of_flat, flat)


@pytest.fixture
def tiny_problem(make_mlp, make_probe_set):
    model = make_mlp(n_features=3, hidden=4, n_classes=2, activation=nn.Tanh, dtype=torch.float64)
    model.eval()
    inputs, targets = make_probe_set(n=40, n_features=3, n_classes=2, dtype=torch.float64)
    criterion = nn.CrossEntropyLoss()
    return model, criterion, inputs, targets, explicit_hessian(model, criterion, inputs, targets)


def flatten(params: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in params.values()])


@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-reverse"])
def test_hvp_matches_explicit_hessian(tiny_problem, mode):
    model, criterion, inputs, targets, hessian = tiny_problem
    objective = ProbeObjective(model, criterion, inputs, targets)
    objective.hvp_mode = mode
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        vector = {
            n: torch.randn(p.shape, generator=generator, dtype=p.dtype)
            for n, p in objective.params.items()
        }
        product, _, _ = objective.hvp(vector)
        torch.testing.assert_close(flatten(product), hessian @ flatten(vector))
    assert objective.hvp_mode == mode


def test_hvp_also_returns_gradient_and_loss(tiny_problem):
    model, criterion, inputs, targets, _ = tiny_problem
    objective = ProbeObjective(model, criterion, inputs, targets)
    zero = {n: torch.zeros_like(p) for n, p in objective.params.items()}
    _, gradient, loss = objective.hvp(zero)
    model.zero_grad()
    expected_loss = criterion(model(inputs), targets)
    expected_loss.backward()
    assert loss == pytest.approx(expected_loss.item(), rel=1e-12)
    torch.testing.assert_close(
        flatten(gradient), torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    )
    model.zero_grad(set_to_none=True)


def test_power_iteration_matches_largest_magnitude_eigenvalue(tiny_problem):
    model, criterion, inputs, targets, hessian = tiny_problem
    eigenvalues = torch.linalg.eigvalsh(hessian)
    expected = float(eigenvalues[eigenvalues.abs().argmax()])
    result = top_hessian_eigenvalue(
        model, criterion, inputs, targets, tol=1e-10, max_iter=500, seed=3
    )
    assert result.converged
    assert result.eigenvalue == pytest.approx(expected, rel=1e-4)
    assert result.cost_fb == 2 * result.iterations


def test_power_iteration_returns_the_sign_of_a_dominant_negative_eigenvalue(make_probe_set):
    # loss = -3 * mean((w . x)^2) has Hessian -6/n X^T X: every eigenvalue is negative.
    inputs, _ = make_probe_set(n=30, n_features=4, dtype=torch.float64)
    targets = torch.zeros(30, dtype=torch.float64)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Linear(4, 1, bias=False).double()

    def criterion(outputs: torch.Tensor, _targets: torch.Tensor) -> torch.Tensor:
        return -3.0 * outputs.pow(2).mean()

    expected = float(torch.linalg.eigvalsh(-6.0 / 30 * inputs.T @ inputs).min())
    result = top_hessian_eigenvalue(model, criterion, inputs, targets, tol=1e-12, max_iter=500)
    assert result.eigenvalue == pytest.approx(expected, rel=1e-6)
    assert result.eigenvalue < 0


def test_power_iteration_reports_lr_times_eigenvalue(tiny_problem):
    model, criterion, inputs, targets, _ = tiny_problem
    result = top_hessian_eigenvalue(model, criterion, inputs, targets, learning_rate=0.25)
    assert result.lr_times_eigenvalue == pytest.approx(0.25 * result.eigenvalue)
    assert top_hessian_eigenvalue(model, criterion, inputs, targets).lr_times_eigenvalue is None


def test_power_iteration_stops_at_max_iter(tiny_problem):
    model, criterion, inputs, targets, _ = tiny_problem
    result = top_hessian_eigenvalue(model, criterion, inputs, targets, tol=1e-15, max_iter=3)
    assert (result.iterations, result.converged, result.cost_fb) == (3, False, 6.0)


def test_hutchinson_is_within_three_standard_errors_of_the_exact_trace(tiny_problem):
    model, criterion, inputs, targets, hessian = tiny_problem
    result = hutchinson_trace(model, criterion, inputs, targets, n_samples=200, seed=5)
    exact = float(torch.trace(hessian))
    assert result.stderr > 0
    assert abs(result.value - exact) <= 3 * result.stderr
    assert result.cost_fb == 400


def test_same_seed_gives_the_same_estimates_and_other_seeds_differ(tiny_problem):
    model, criterion, inputs, targets, _ = tiny_problem
    first = hutchinson_trace(model, criterion, inputs, targets, n_samples=4, seed=11)
    again = hutchinson_trace(model, criterion, inputs, targets, n_samples=4, seed=11)
    other = hutchinson_trace(model, criterion, inputs, targets, n_samples=4, seed=12)
    assert first.value == again.value
    assert first.value != other.value


class SquareWithoutForwardMode(torch.autograd.Function):
    """x**2 as a custom autograd Function with no jvp: forward-mode AD cannot go through it."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x * x

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return 2 * x * grad_output


class SquareNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(SquareWithoutForwardMode.apply(self.first(x)))


def test_hvp_falls_back_to_reverse_mode_when_forward_mode_is_missing(make_probe_set):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = SquareNet().double()
    inputs, targets = make_probe_set(n=20, n_features=3, n_classes=2, dtype=torch.float64)
    criterion = nn.CrossEntropyLoss()
    hessian = explicit_hessian(model, criterion, inputs, targets)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    result = top_hessian_eigenvalue(model, criterion, inputs, targets, tol=1e-10, max_iter=500)
    assert result.settings["hvp_mode"] == "reverse-over-reverse"
    assert result.eigenvalue == pytest.approx(
        float(eigenvalues[eigenvalues.abs().argmax()]), rel=1e-4
    )


def test_errors_unrelated_to_forward_mode_are_not_swallowed(tiny_problem):
    model, _, inputs, targets, _ = tiny_problem

    def broken(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("shape trouble")

    with pytest.raises(RuntimeError, match="shape trouble"):
        top_hessian_eigenvalue(model, broken, inputs, targets)
