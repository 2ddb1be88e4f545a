"""Exact save/restore of a module's tensors and train/eval flags around a probe."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

_INT_OF_SIZE = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _as_bits(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.is_complex():
        tensor = torch.view_as_real(tensor)
    if tensor.is_floating_point():
        return tensor.view(_INT_OF_SIZE[tensor.element_size()])
    return tensor


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    # Compare the bit patterns, not the values: NaN != NaN and -0.0 == 0.0 as values, but a
    # diverged model's NaN weights are unchanged and must not be written back (a write bumps
    # the tensor's version counter and would invalidate graphs the caller holds).
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    return torch.equal(_as_bits(a), _as_bits(b))


@contextmanager
def preserved_model_state(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode and restore its state exactly on exit.

    On entry every tensor of ``model.state_dict()`` (parameters and buffers such as
    BatchNorm ``running_mean``, ``running_var`` and ``num_batches_tracked``), every
    ``requires_grad`` flag and the ``training`` flag of every submodule are saved; the model
    is then switched to eval mode. On exit, also when the body raises, all of them are put
    back bit for bit. A tensor whose bits did not change is not written to, so autograd
    graphs the caller still holds on the parameters stay valid. Gradients (``.grad``) are
    not saved: the probes never write them.

    The gradient-based probes evaluate the model inside ``torch.func`` transforms, which
    refuse a forward pass that writes in place to a module buffer (BatchNorm in eval mode
    does not); such a model makes those probes raise ``RuntimeError``, with the state
    still restored.

    Parameters
    ----------
    model : torch.nn.Module
        The module to protect. Its tensors are restored in place (the same ``Parameter``
        objects keep their identity), so optimizers holding them are unaffected.

    Yields
    ------
    torch.nn.Module
        ``model`` itself, in eval mode.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from llp.landscape import preserved_model_state
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).train()
    >>> with preserved_model_state(net):
    ...     net.training
    False
    >>> net.training
    True
    """
    saved = {
        name: tensor.detach().clone()
        for name, tensor in model.state_dict(keep_vars=True).items()
        if isinstance(tensor, torch.Tensor)
    }
    training_flags = [(module, module.training) for module in model.modules()]
    requires_grad_flags = [(param, param.requires_grad) for param in model.parameters()]
    try:
        model.eval()
        yield model
    finally:
        current = model.state_dict(keep_vars=True)
        with torch.no_grad():
            for name, original in saved.items():
                tensor = current.get(name)
                if isinstance(tensor, torch.Tensor) and not _same_bits(tensor, original):
                    tensor.copy_(original)
        for param, flag in requires_grad_flags:
            param.requires_grad_(flag)
        for module, flag in training_flags:
            module.training = flag
