"""Stochastic weight averaging (SWA) on top of ``torch.optim.swa_utils``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn

from llp.landscape._validation import check_int, check_optional_positive_float


class SWAController:
    """Average the weights of a training run from a given epoch on.

    Call :meth:`end_epoch` after every epoch; from ``swa_start_epoch`` on it adds the
    current weights to an :class:`torch.optim.swa_utils.AveragedModel` (and, when
    ``swa_lr`` is given, steps an :class:`~torch.optim.swa_utils.SWALR` schedule on
    ``optimizer``). At the end, :meth:`finalize` recomputes the BatchNorm running
    statistics of the averaged weights with ``torch.optim.swa_utils.update_bn`` (the
    running statistics of an average of weights are not the average of running
    statistics) and returns the averaged model.

    Ownership: the controller keeps a deep copy of ``model`` (the averaged model) and
    never modifies ``model`` itself; it changes the learning rate of ``optimizer`` only
    when ``swa_lr`` is given, and only from ``swa_start_epoch`` on.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained.
    swa_start_epoch : int
        First (0-based) epoch whose end weights are averaged; must be >= 0.
    optimizer : torch.optim.Optimizer or None, default=None
        The training optimizer; required when ``swa_lr`` is given.
    swa_lr : float or None, default=None
        If given (> 0), anneal the learning rate to this value once averaging starts.
        Before that, keep stepping your own scheduler; :meth:`end_epoch` returns whether
        it averaged, so the caller knows which schedule to step.
    anneal_epochs : int, default=1
        Epochs over which the learning rate is annealed to ``swa_lr``; must be >= 0.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from llp.landscape import SWAController
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g)
    >>> net = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    >>> optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> swa = SWAController(net, swa_start_epoch=2, optimizer=optimizer, swa_lr=0.05)
    >>> for epoch in range(4):
    ...     for xb, yb in zip(x.split(16), y.split(16)):
    ...         optimizer.zero_grad()
    ...         nn.functional.cross_entropy(net(xb), yb).backward()
    ...         optimizer.step()
    ...     _ = swa.end_epoch(epoch)
    >>> averaged = swa.finalize(zip(x.split(16), y.split(16)))
    >>> swa.n_averaged
    2
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        swa_start_epoch: int,
        optimizer: Optimizer | None = None,
        swa_lr: float | None = None,
        anneal_epochs: int = 1,
    ) -> None:
        where = "SWAController"
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"The 'model' parameter of {where} must be a torch.nn.Module. "
                f"Got {type(model).__name__} instead."
            )
        self.swa_start_epoch = check_int(swa_start_epoch, "swa_start_epoch", minimum=0, where=where)
        swa_lr = check_optional_positive_float(swa_lr, "swa_lr", where=where)
        check_int(anneal_epochs, "anneal_epochs", minimum=0, where=where)
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"The 'optimizer' parameter of {where} must be a torch.optim.Optimizer or "
                f"None. Got {type(optimizer).__name__} instead."
            )
        if swa_lr is not None and optimizer is None:
            raise ValueError(
                f"The 'optimizer' parameter of {where} is required when 'swa_lr' is given "
                f"(the learning rate to anneal lives in the optimizer). Got swa_lr={swa_lr!r} "
                "and optimizer=None instead."
            )
        self.model = model
        self.averaged_model = AveragedModel(model)
        self.scheduler: SWALR | None = None
        if swa_lr is not None and optimizer is not None:
            self.scheduler = SWALR(optimizer, swa_lr=swa_lr, anneal_epochs=anneal_epochs)

    @property
    def n_averaged(self) -> int:
        """Number of weight snapshots averaged so far."""
        return int(self.averaged_model.n_averaged.item())

    def end_epoch(self, epoch: int) -> bool:
        """Record the end of ``epoch`` (0-based); average the weights if it is due.

        Parameters
        ----------
        epoch : int
            The epoch that just finished; must be >= 0.

        Returns
        -------
        bool
            True if the weights were added to the average (and the SWA learning-rate
            schedule stepped), False before ``swa_start_epoch``.
        """
        check_int(epoch, "epoch", minimum=0, where="SWAController.end_epoch")
        if epoch < self.swa_start_epoch:
            return False
        self.averaged_model.update_parameters(self.model)
        if self.scheduler is not None:
            self.scheduler.step()
        return True

    def finalize(
        self, batches: Iterable[Any], *, device: torch.device | int | None = None
    ) -> AveragedModel:
        """Recompute BatchNorm statistics of the averaged weights and return the model.

        Parameters
        ----------
        batches : iterable
            Training batches: tensors, or tuples/lists whose first element is the input
            (a ``DataLoader`` works). One pass is made. Models without BatchNorm ignore it.
        device : torch.device, int or None, default=None
            Move each input there before the forward pass.

        Returns
        -------
        torch.optim.swa_utils.AveragedModel
            The averaged model (call it like the original; ``.module`` is the network).
        """
        if self.n_averaged == 0:
            raise RuntimeError(
                "SWAController.finalize was called before any epoch reached "
                f"swa_start_epoch={self.swa_start_epoch}; there are no weights to average."
            )
        update_bn(batches, self.averaged_model, device=device)
        return self.averaged_model
