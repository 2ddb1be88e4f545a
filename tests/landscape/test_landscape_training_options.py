"""SAM/ASAM around any optimizer, and SWA with a BatchNorm update."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llp.landscape import SAM, SWAController


@pytest.fixture
def make_training_problem(make_mlp):
    """A learnable task: labels are the argmax of a fixed random linear map."""

    def factory(seed: int = 0):
        model = make_mlp(n_features=5, hidden=32, n_classes=3, seed=seed)
        generator = torch.Generator().manual_seed(seed + 1)
        inputs = torch.randn(128, 5, generator=generator)
        targets = (inputs @ torch.randn(5, 3, generator=generator)).argmax(dim=1)
        return model, inputs, targets

    return factory


def make_closure(optimizer, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor):
    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        return loss

    return closure


def full_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    with torch.no_grad():
        return nn.functional.cross_entropy(model(inputs), targets).item()


@pytest.mark.parametrize(
    ("base", "adaptive", "rho"),
    [
        (lambda params: torch.optim.SGD(params, lr=0.2, momentum=0.9), False, 0.05),
        (lambda params: torch.optim.Adam(params, lr=0.01), False, 0.05),
        (lambda params: torch.optim.SGD(params, lr=0.5), True, 0.5),
        (lambda params: torch.optim.Adam(params, lr=0.01), True, 0.5),
    ],
    ids=["sgd-sam", "adam-sam", "sgd-asam", "adam-asam"],
)
def test_sam_lowers_the_training_loss(base, adaptive, rho, make_training_problem):
    model, inputs, targets = make_training_problem()
    optimizer = SAM(base(model.parameters()), rho=rho, adaptive=adaptive)
    closure = make_closure(optimizer, model, inputs, targets)
    initial = full_loss(model, inputs, targets)
    for _ in range(40):
        optimizer.step(closure)
    assert full_loss(model, inputs, targets) < 0.5 * initial


def test_sam_step_returns_the_loss_at_the_unperturbed_weights(make_training_problem):
    model, inputs, targets = make_training_problem()
    optimizer = SAM(torch.optim.SGD(model.parameters(), lr=0.1))
    expected = full_loss(model, inputs, targets)
    loss = optimizer.step(make_closure(optimizer, model, inputs, targets))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("adaptive", [False, True])
def test_weights_are_restored_exactly_before_the_base_step(adaptive, make_training_problem):
    # With lr = 0 the base step is a no-op, so the weights must come back bit for bit.
    model, inputs, targets = make_training_problem()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = SAM(torch.optim.SGD(model.parameters(), lr=0.0), rho=0.3, adaptive=adaptive)
    optimizer.step(make_closure(optimizer, model, inputs, targets))
    for p, original in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, original)


@pytest.mark.parametrize("adaptive", [False, True])
def test_first_step_moves_by_rho_in_the_right_metric(adaptive, make_training_problem):
    model, inputs, targets = make_training_problem()
    optimizer = SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.05, adaptive=adaptive)
    make_closure(optimizer, model, inputs, targets)()
    before = [p.detach().clone() for p in model.parameters()]
    loss_before = full_loss(model, inputs, targets)
    optimizer.first_step(zero_grad=True)
    steps = [p.detach() - b for p, b in zip(model.parameters(), before, strict=True)]
    if adaptive:  # ||T^{-1} e|| = rho with T = |w|
        steps = [s / b.abs() for s, b in zip(steps, before, strict=True)]
    size = torch.sqrt(sum(s.pow(2).sum() for s in steps))
    assert float(size) == pytest.approx(0.05, rel=1e-3)
    assert full_loss(model, inputs, targets) > loss_before  # an ascent step
    assert all(p.grad is None for p in model.parameters())
    make_closure(optimizer, model, inputs, targets)()
    optimizer.second_step()


def test_sam_shares_param_groups_with_the_base_so_schedulers_work(make_training_problem):
    model, inputs, targets = make_training_problem()
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer = SAM(base)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    optimizer.step(make_closure(optimizer, model, inputs, targets))
    scheduler.step()
    assert base.param_groups[0]["lr"] == pytest.approx(0.05)


def test_sam_state_dict_round_trip(make_training_problem):
    model, inputs, targets = make_training_problem()
    optimizer = SAM(torch.optim.Adam(model.parameters(), lr=0.01), rho=0.1)
    optimizer.step(make_closure(optimizer, model, inputs, targets))
    state = optimizer.state_dict()
    fresh = SAM(torch.optim.Adam(model.parameters(), lr=0.5), rho=0.7)
    fresh.load_state_dict(state)
    assert fresh.rho == 0.1
    assert fresh.param_groups[0]["lr"] == 0.01
    assert fresh.base_optimizer.state_dict()["state"][0]["step"] == 1


def test_sam_restores_weights_when_the_second_closure_call_raises(make_training_problem):
    model, inputs, targets = make_training_problem()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = SAM(torch.optim.SGD(model.parameters(), lr=0.1))
    calls = []

    def closure() -> torch.Tensor:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("second call failed")
        return make_closure(optimizer, model, inputs, targets)()

    with pytest.raises(RuntimeError, match="second call failed"):
        optimizer.step(closure)
    for p, original in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, original)
    optimizer.step(make_closure(optimizer, model, inputs, targets))  # usable afterwards


def test_first_step_twice_is_refused(make_training_problem):
    model, inputs, targets = make_training_problem()
    optimizer = SAM(torch.optim.SGD(model.parameters(), lr=0.1))
    make_closure(optimizer, model, inputs, targets)()
    optimizer.first_step()
    with pytest.raises(RuntimeError, match="first_step was called twice"):
        optimizer.first_step()


# ----------------------------------------------------------------------------------- SWA


def make_bn_net(seed: int = 0) -> nn.Sequential:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def train_with_swa(
    swa: SWAController, model, optimizer, inputs, targets, epochs: int, first_epoch: int = 0
):
    averaged_epochs = []
    for epoch in range(first_epoch, first_epoch + epochs):
        model.train()
        for xb, yb in zip(inputs.split(32), targets.split(32), strict=True):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        if swa.end_epoch(epoch):
            averaged_epochs.append([p.detach().clone() for p in model.parameters()])
    return averaged_epochs


def test_swa_averages_weights_and_recomputes_batchnorm_statistics(make_probe_set):
    inputs, targets = make_probe_set(n=128)
    inputs = inputs * 3 + 1  # BN statistics far from the initial mean 0 / variance 1
    model = make_bn_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    swa = SWAController(model, swa_start_epoch=2)
    initial_bn = {k: v.clone() for k, v in swa.averaged_model.module[1].state_dict().items()}
    snapshots = train_with_swa(swa, model, optimizer, inputs, targets, epochs=5)
    averaged = swa.finalize(list(zip(inputs.split(32), targets.split(32), strict=True)))
    assert swa.n_averaged == len(snapshots) == 3
    for p, stack in zip(averaged.module.parameters(), zip(*snapshots, strict=True), strict=True):
        torch.testing.assert_close(p, torch.stack(stack).mean(dim=0))
    bn = averaged.module[1]
    assert torch.isfinite(bn.running_mean).all() and torch.isfinite(bn.running_var).all()
    assert not torch.allclose(bn.running_mean, initial_bn["running_mean"])
    assert not torch.allclose(bn.running_var, initial_bn["running_var"])
    with torch.no_grad():
        expected_mean = averaged.module[0](inputs).mean(dim=0)
    torch.testing.assert_close(bn.running_mean, expected_mean, rtol=1e-4, atol=1e-5)


def test_swa_lr_is_annealed_once_averaging_starts(make_probe_set):
    inputs, targets = make_probe_set(n=64)
    model = make_bn_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    swa = SWAController(model, swa_start_epoch=1, optimizer=optimizer, swa_lr=0.02)
    train_with_swa(swa, model, optimizer, inputs, targets, epochs=1)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # epoch 0: not averaged
    train_with_swa(swa, model, optimizer, inputs, targets, epochs=1, first_epoch=1)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02)
    assert swa.n_averaged == 1


def test_finalize_before_averaging_is_refused():
    swa = SWAController(make_bn_net(), swa_start_epoch=3)
    swa.end_epoch(0)
    with pytest.raises(RuntimeError, match="swa_start_epoch=3"):
        swa.finalize([torch.zeros(4, 5)])
