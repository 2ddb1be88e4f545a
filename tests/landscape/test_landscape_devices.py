"""Probes, SAM and SWA on every device: CPU everywhere, CUDA where there is one
(``-m gpu``). The CPU run checks each test itself on every machine."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from llp.landscape import SAM, SWAController, cheap_tier
from tests.conftest import DEVICES
from tests.landscape.test_landscape_state import PROBES, assert_unchanged, snapshot

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("probe", PROBES.values(), ids=PROBES.keys())
def test_probe_restores_state_bit_for_bit_on_the_device(
    probe, device, make_bn_dropout_model, make_probe_set
):
    model = make_bn_dropout_model().to(device)
    inputs, targets = (t.to(device) for t in make_probe_set(n=32))
    before = snapshot(model)
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state() if device == "cuda" else None
    probe(model, nn.CrossEntropyLoss(), inputs, targets)
    assert_unchanged(model, before)
    assert {t.device.type for t in model.state_dict().values()} == {device}
    assert torch.equal(torch.get_rng_state(), cpu_rng)
    if cuda_rng is not None:
        assert torch.equal(torch.cuda.get_rng_state(), cuda_rng)


@pytest.mark.parametrize("device", DEVICES)
def test_cheap_tier_measures_the_same_on_the_device_as_on_the_cpu(
    device, make_bn_dropout_model, make_probe_set
):
    # The random directions are drawn on the CPU whatever the device, so the features
    # agree up to floating-point differences between the devices' kernels.
    inputs, targets = make_probe_set(n=32)
    reference = cheap_tier(make_bn_dropout_model(), nn.CrossEntropyLoss(), inputs, targets)
    here = cheap_tier(
        make_bn_dropout_model().to(device),
        nn.CrossEntropyLoss(),
        inputs.to(device),
        targets.to(device),
    )
    assert here.features.keys() == reference.features.keys()
    for name, value in reference.features.items():
        if math.isfinite(value):
            assert here.features[name] == pytest.approx(value, rel=1e-3, abs=1e-5), name
    assert here.cost_fb == reference.cost_fb


def learnable_problem(device: str, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(256, 5, generator=generator)
    targets = (inputs @ torch.randn(5, 3, generator=generator)).argmax(dim=1)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(5, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))
    return model.to(device), inputs.to(device), targets.to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("adaptive", [False, True], ids=["sam", "asam"])
def test_sam_trains_on_the_device(device, adaptive):
    model, inputs, targets = learnable_problem(device)
    optimizer = SAM(
        torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9),
        rho=0.5 if adaptive else 0.05,
        adaptive=adaptive,
    )

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        return loss

    initial = closure().item()
    for _ in range(40):
        optimizer.step(closure)
    assert closure().item() < 0.5 * initial
    state = optimizer.base_optimizer.state_dict()["state"]
    assert all(s["momentum_buffer"].device.type == device for s in state.values())


@pytest.mark.parametrize("device", DEVICES)
def test_swa_with_batchnorm_update_on_the_device(device):
    model, inputs, targets = learnable_problem(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    swa = SWAController(model, swa_start_epoch=2, optimizer=optimizer, swa_lr=0.05)
    for epoch in range(5):
        for xb, yb in zip(inputs.split(64), targets.split(64), strict=True):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        swa.end_epoch(epoch)
    assert swa.n_averaged == 3
    # Batches on the CPU, moved by finalize: the way a DataLoader hands them over.
    averaged = swa.finalize(inputs.cpu().split(64), device=torch.device(device))
    network = averaged.module
    # update_bn sets the running statistics to the plain average, over the pass's
    # batches, of the batch means and (unbiased) batch variances of the averaged weights'
    # pre-BatchNorm activations.
    with torch.no_grad():
        hidden = network[0](inputs)
    bn = network[1]
    assert bn.running_mean.device.type == device
    assert torch.allclose(bn.running_mean, hidden.mean(0), atol=1e-4)
    batch_var = torch.stack([h.var(0, unbiased=True) for h in hidden.split(64)]).mean(0)
    assert torch.allclose(bn.running_var, batch_var, rtol=1e-4, atol=1e-5)
    averaged.eval()
    with torch.no_grad():
        accuracy = (averaged(inputs).argmax(1) == targets).float().mean().item()
    assert accuracy > 0.7
