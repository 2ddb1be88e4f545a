"""Bad input raises ValueError/TypeError naming the parameter, the value and the rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from llp.landscape import (
    SAM,
    SWAController,
    adaptive_sharpness,
    cheap_tier,
    empirical_fisher_trace,
    full_tier,
    gradient_norm,
    hutchinson_trace,
    loss_slice_1d,
    loss_slice_2d,
    top_hessian_eigenvalue,
)

GEN = torch.Generator().manual_seed(0)
X, Y = torch.randn(8, 5, generator=GEN), torch.randint(0, 3, (8,), generator=GEN)
with torch.random.fork_rng():
    torch.manual_seed(0)
    NET = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
CE = nn.CrossEntropyLoss()


def frozen_net() -> nn.Module:
    net = nn.Linear(5, 3)
    net.requires_grad_(False)
    return net


CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "rho zero",
        lambda: adaptive_sharpness(NET, CE, X, Y, rho=0.0),
        ValueError,
        r"'rho' parameter of adaptive_sharpness must be a finite float > 0\. Got 0\.0",
    ),
    (
        "rho negative",
        lambda: adaptive_sharpness(NET, CE, X, Y, rho=-0.1),
        ValueError,
        r"'rho' parameter .* > 0\. Got -0\.1",
    ),
    (
        "rho not a number",
        lambda: adaptive_sharpness(NET, CE, X, Y, rho="big"),
        TypeError,
        r"'rho' parameter .* must be a float > 0\. Got 'big' of type str",
    ),
    (
        "kind unknown",
        lambda: adaptive_sharpness(NET, CE, X, Y, kind="max"),
        ValueError,
        r"'kind' parameter of adaptive_sharpness must be one of \['average', 'worst'\]\. Got 'max'",
    ),
    (
        "n_samples zero",
        lambda: adaptive_sharpness(NET, CE, X, Y, n_samples=0),
        ValueError,
        r"'n_samples' parameter of adaptive_sharpness must be an int >= 1\. Got 0",
    ),
    (
        "n_points one (1d)",
        lambda: loss_slice_1d(NET, CE, X, Y, n_points=1),
        ValueError,
        r"'n_points' parameter of loss_slice_1d must be an int >= 2\. Got 1",
    ),
    (
        "n_points one (2d)",
        lambda: loss_slice_2d(NET, CE, X, Y, n_points=1),
        ValueError,
        r"'n_points' parameter of loss_slice_2d must be an int >= 2\. Got 1",
    ),
    (
        "n_points float",
        lambda: loss_slice_1d(NET, CE, X, Y, n_points=5.0),
        TypeError,
        r"'n_points' parameter .* int >= 2\. Got 5\.0 of type float",
    ),
    (
        "span zero",
        lambda: loss_slice_1d(NET, CE, X, Y, span=0.0),
        ValueError,
        r"'span' parameter of loss_slice_1d must be a finite float > 0",
    ),
    (
        "max_iter zero",
        lambda: top_hessian_eigenvalue(NET, CE, X, Y, max_iter=0),
        ValueError,
        r"'max_iter' parameter of top_hessian_eigenvalue must be an int >= 1\. Got 0",
    ),
    (
        "tol zero",
        lambda: top_hessian_eigenvalue(NET, CE, X, Y, tol=0.0),
        ValueError,
        r"'tol' parameter of top_hessian_eigenvalue must be a finite float > 0",
    ),
    (
        "learning_rate zero",
        lambda: top_hessian_eigenvalue(NET, CE, X, Y, learning_rate=0.0),
        ValueError,
        r"'learning_rate' parameter of top_hessian_eigenvalue .* > 0\. Got 0\.0",
    ),
    (
        "tier learning_rate nan",
        lambda: cheap_tier(NET, CE, X, Y, learning_rate=float("nan")),
        ValueError,
        r"'learning_rate' parameter of cheap_tier .* Got nan",
    ),
    (
        "hutchinson one sample",
        lambda: hutchinson_trace(NET, CE, X, Y, n_samples=1),
        ValueError,
        r"'n_samples' parameter of hutchinson_trace must be an int >= 2\. Got 1",
    ),
    (
        "seed negative",
        lambda: full_tier(NET, CE, X, Y, seed=-1),
        ValueError,
        r"'seed' parameter of full_tier must be an int >= 0\. Got -1",
    ),
    (
        "seed bool",
        lambda: adaptive_sharpness(NET, CE, X, Y, seed=True),
        TypeError,
        r"'seed' parameter .* Got True of type bool",
    ),
    (
        "targets length",
        lambda: gradient_norm(NET, CE, X, Y[:5]),
        ValueError,
        r"'targets' parameter of gradient_norm must have as many examples .* as 'inputs'\. "
        r"Got inputs with 8 and targets with 5",
    ),
    (
        "empty probe set",
        lambda: gradient_norm(NET, CE, X[:0], Y[:0]),
        ValueError,
        r"'inputs' parameter of gradient_norm must hold at least one example",
    ),
    (
        "inputs not a tensor",
        lambda: empirical_fisher_trace(NET, CE, X.numpy(), Y),
        TypeError,
        r"'inputs' parameter of empirical_fisher_trace must be a torch\.Tensor\. Got ndarray",
    ),
    (
        "model not a module",
        lambda: cheap_tier(lambda x: x, CE, X, Y),
        TypeError,
        r"'model' parameter of cheap_tier must be a torch\.nn\.Module\. Got function",
    ),
    (
        "model frozen",
        lambda: cheap_tier(frozen_net(), CE, X, Y),
        ValueError,
        r"'model' parameter of cheap_tier must have at least one parameter with requires_grad",
    ),
    (
        "criterion not callable",
        lambda: gradient_norm(NET, "ce", X, Y),
        TypeError,
        r"'criterion' parameter of gradient_norm must be callable .* Got str",
    ),
    (
        "criterion not scalar",
        lambda: gradient_norm(NET, nn.CrossEntropyLoss(reduction="none"), X, Y),
        ValueError,
        r"'criterion' parameter must return a scalar loss tensor .* Got \(8,\)",
    ),
    (
        "SAM rho",
        lambda: SAM(torch.optim.SGD(NET.parameters(), lr=0.1), rho=0.0),
        ValueError,
        r"'rho' parameter of SAM must be a finite float > 0\. Got 0\.0",
    ),
    (
        "SAM base",
        lambda: SAM(list(NET.parameters())),
        TypeError,
        r"'base_optimizer' parameter of SAM must be a torch\.optim\.Optimizer\. Got list",
    ),
    (
        "SAM adaptive",
        lambda: SAM(torch.optim.SGD(NET.parameters(), lr=0.1), adaptive="yes"),
        TypeError,
        r"'adaptive' parameter of SAM must be a bool\. Got 'yes'",
    ),
    (
        "SAM closure",
        lambda: SAM(torch.optim.SGD(NET.parameters(), lr=0.1)).step(),
        TypeError,
        r"'closure' parameter of SAM\.step must be a callable .* Got None",
    ),
    (
        "SWA start",
        lambda: SWAController(NET, swa_start_epoch=-1),
        ValueError,
        r"'swa_start_epoch' parameter of SWAController must be an int >= 0\. Got -1",
    ),
    (
        "SWA lr without optimizer",
        lambda: SWAController(NET, swa_start_epoch=1, swa_lr=0.1),
        ValueError,
        r"'optimizer' parameter of SWAController is required when 'swa_lr' is given",
    ),
    (
        "SWA epoch",
        lambda: SWAController(NET, swa_start_epoch=1).end_epoch(-2),
        ValueError,
        r"'epoch' parameter of SWAController\.end_epoch must be an int >= 0\. Got -2",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_input_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_validation_happens_before_the_model_is_touched():
    before = {k: v.clone() for k, v in NET.state_dict().items()}
    NET.train()
    with pytest.raises(ValueError, match="'rho'"):
        adaptive_sharpness(NET, CE, X, Y, rho=-1.0)
    assert NET.training
    assert all(torch.equal(v, before[k]) for k, v in NET.state_dict().items())
