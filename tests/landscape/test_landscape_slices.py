"""Filter-normalised 1-D and 2-D loss slices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from llp.landscape import loss_slice_1d, loss_slice_2d
from llp.landscape._slices import filter_normalized_direction

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


def test_direction_filters_match_weight_filter_norms_and_skip_biases_and_bn(make_cnn):
    model = make_cnn()
    params = {n: p.detach() for n, p in model.named_parameters()}
    direction = filter_normalized_direction(params, torch.Generator().manual_seed(0))
    for name, weight in params.items():
        if weight.ndim <= 1:  # conv/linear biases and BatchNorm weight/bias
            assert torch.count_nonzero(direction[name]) == 0, name
        else:
            rows = direction[name].reshape(weight.shape[0], -1).norm(dim=1)
            torch.testing.assert_close(rows, weight.reshape(weight.shape[0], -1).norm(dim=1))


def test_slice_1d_grid_shape_cost_and_centre(make_mlp, make_probe_set):
    model = make_mlp()
    inputs, targets = make_probe_set()
    criterion = nn.CrossEntropyLoss()
    result = loss_slice_1d(model, criterion, inputs, targets, span=0.5, n_points=11, seed=4)
    assert result.alphas.shape == result.losses.shape == (11,)
    np.testing.assert_allclose(result.alphas, np.linspace(-0.5, 0.5, 11))
    assert result.losses[5] == pytest.approx(criterion(model(inputs), targets).item(), rel=1e-6)
    assert result.cost_fb == 5.5
    assert np.all(np.isfinite(result.losses))
    with pytest.raises(ValueError, match="read-only"):
        result.losses[0] = 0.0


def test_slice_2d_grid_and_first_axis_matches_the_1d_slice(make_mlp, make_probe_set):
    model = make_mlp()
    inputs, targets = make_probe_set()
    criterion = nn.CrossEntropyLoss()
    plane = loss_slice_2d(model, criterion, inputs, targets, n_points=5, seed=3)
    line = loss_slice_1d(model, criterion, inputs, targets, n_points=5, seed=3)
    assert plane.losses.shape == (5, 5)
    assert plane.cost_fb == 12.5
    np.testing.assert_allclose(plane.losses[:, 2], line.losses, rtol=1e-6)  # beta = 0 column
    assert not np.allclose(plane.losses[2, :], line.losses)  # the second direction differs


def test_slices_are_similar_for_rescaled_equivalent_networks(make_mlp, make_probe_set):
    # Filter normalisation makes the step relative to each filter, so a layer-wise
    # rescaling of a ReLU net (a different direction draw aside) gives the same slice.
    model = make_mlp()
    inputs, targets = make_probe_set()
    criterion = nn.CrossEntropyLoss()
    scaled = make_mlp()
    with torch.no_grad():
        scaled[0].weight.mul_(4.0)
        scaled[0].bias.mul_(4.0)
        scaled[2].weight.div_(4.0)
    first = loss_slice_1d(model, criterion, inputs, targets, n_points=7)
    second = loss_slice_1d(scaled, criterion, inputs, targets, n_points=7)
    np.testing.assert_allclose(second.losses, first.losses, rtol=1e-5)
