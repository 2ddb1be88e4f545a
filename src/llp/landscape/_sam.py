"""Sharpness-aware minimisation (SAM) and its adaptive variant (ASAM) as an optimizer wrapper."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer

from llp.landscape._validation import check_positive_float

# Keeps the ascent step finite when the gradient vanishes; it changes no real step.
_EPSILON = 1e-12


class SAM(Optimizer):
    """Sharpness-aware minimisation around any ``torch.optim.Optimizer``.

    Each :meth:`step` evaluates the gradient at the current weights ``w``, moves to the
    (first-order) worst point of a ball of radius ``rho``, ``w + e(w)``, evaluates the
    gradient there, puts the exact original weights back and lets the base optimizer
    step with that second gradient. It therefore costs two forward+backward passes per
    step.

    * ``adaptive=False`` (SAM): ``e(w) = rho * g / ||g||``.
    * ``adaptive=True`` (ASAM): ``e(w) = rho * |w|^2 g / || |w| g ||``, the step for a ball
      measured relative to the weights; it is unchanged by function-preserving layer
      rescalings. Because the radius is relative, ASAM is usually run with a larger
      ``rho`` than SAM (roughly ten times larger).

    The wrapper shares ``param_groups`` with the base optimizer, so a learning-rate
    scheduler can be attached to either; the base optimizer keeps its own state.

    **Closure contract.** ``closure()`` must (1) clear the gradients (e.g. call
    ``optimizer.zero_grad()``), (2) run the forward pass on the *same* batch every time it
    is called within one step, (3) call ``loss.backward()`` and (4) return the loss. It is
    called twice per step, with gradients enabled. With BatchNorm in train mode, both
    calls update the running statistics; that is the usual SAM behaviour.

    Parameters
    ----------
    base_optimizer : torch.optim.Optimizer
        Any optimizer over the model's parameters (SGD, Adam, ...), e.g. the one a user's
        ``optimizer_fn(model, config)`` returns.
    rho : float, default=0.05
        Radius of the neighbourhood; must be > 0.
    adaptive : bool, default=False
        Use the adaptive (ASAM) step.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from llp.landscape import SAM
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g)
    >>> net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> optimizer = SAM(torch.optim.SGD(net.parameters(), lr=0.1), rho=0.05)
    >>> def closure():
    ...     optimizer.zero_grad()
    ...     loss = nn.functional.cross_entropy(net(x), y)
    ...     loss.backward()
    ...     return loss
    >>> first = optimizer.step(closure)
    >>> later = [optimizer.step(closure) for _ in range(20)][-1]
    >>> bool(later < first)
    True
    """

    def __init__(
        self, base_optimizer: Optimizer, *, rho: float = 0.05, adaptive: bool = False
    ) -> None:
        if not isinstance(base_optimizer, Optimizer):
            raise TypeError(
                "The 'base_optimizer' parameter of SAM must be a torch.optim.Optimizer. "
                f"Got {type(base_optimizer).__name__} instead."
            )
        if not isinstance(adaptive, bool):
            raise TypeError(
                "The 'adaptive' parameter of SAM must be a bool. "
                f"Got {adaptive!r} of type {type(adaptive).__name__} instead."
            )
        self.rho = check_positive_float(rho, "rho", where="SAM")
        self.adaptive = adaptive
        self.base_optimizer = base_optimizer
        params = [p for group in base_optimizer.param_groups for p in group["params"]]
        super().__init__(params, {"rho": self.rho, "adaptive": adaptive})
        # Share, not copy: a scheduler changing the lr of SAM must change the base's lr.
        self.param_groups = base_optimizer.param_groups
        self.defaults = {**base_optimizer.defaults, "rho": self.rho, "adaptive": adaptive}
        self._original_weights: dict[torch.Tensor, torch.Tensor] = {}

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move to ``w + e(w)`` using the gradients currently in ``.grad``.

        The original weights are saved and put back, bit for bit, by :meth:`second_step`.

        Parameters
        ----------
        zero_grad : bool, default=False
            Clear the gradients afterwards.
        """
        if self._original_weights:
            raise RuntimeError(
                "SAM.first_step was called twice without SAM.second_step in between; "
                "the weights are already perturbed."
            )
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        if params:
            directions = [p.abs() * p.grad if self.adaptive else p.grad for p in params]
            device = params[0].device
            gradient_norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(d).to(device) for d in directions])
            )
            factor = self.rho / (gradient_norm + _EPSILON)
            for p, direction in zip(params, directions, strict=True):
                step = direction * factor
                if self.adaptive:
                    step = step * p.abs()
                self._original_weights[p] = p.detach().clone()
                p.add_(step)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore the original weights and step the base optimizer with the current grads.

        Parameters
        ----------
        zero_grad : bool, default=False
            Clear the gradients afterwards.
        """
        self._restore_weights()
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def _restore_weights(self) -> None:
        with torch.no_grad():
            for p, original in self._original_weights.items():
                p.copy_(original)
        self._original_weights.clear()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One SAM step: gradient at ``w``, ascent, gradient at ``w + e(w)``, base step.

        Parameters
        ----------
        closure : callable
            Required; see the closure contract in the class docstring.

        Returns
        -------
        Any
            The loss returned by the first closure call (at the unperturbed weights).
        """
        if closure is None or not callable(closure):
            raise TypeError(
                "The 'closure' parameter of SAM.step must be a callable that clears the "
                "gradients, computes the loss on the current batch, calls backward() and "
                f"returns the loss. Got {closure!r} instead."
            )
        with torch.enable_grad():
            loss = closure()
        self.first_step(zero_grad=True)
        try:
            with torch.enable_grad():
                closure()
        except BaseException:
            self._restore_weights()  # never leave the model at the perturbed point
            raise
        self.second_step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state plus the SAM settings."""
        return {
            "base_optimizer": self.base_optimizer.state_dict(),
            "rho": self.rho,
            "adaptive": self.adaptive,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by :meth:`state_dict` (the base optimizer's state and rho)."""
        self.base_optimizer.load_state_dict(state_dict["base_optimizer"])
        self.rho = check_positive_float(state_dict["rho"], "rho", where="SAM.load_state_dict")
        self.adaptive = bool(state_dict["adaptive"])
        self.param_groups = self.base_optimizer.param_groups
