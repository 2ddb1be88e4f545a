"""The probe-set loss as a pure function of the trainable parameters.

Everything here goes through :func:`torch.func.functional_call`, so probes evaluate the
model at perturbed weights without ever writing to the module's parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from torch import nn
from torch.func import functional_call, grad, grad_and_value, jvp, vjp, vmap

ParamDict = dict[str, torch.Tensor]

# Independent random streams per probe, so that adding a probe to a tier never changes the
# random directions of another and a tier reproduces the stand-alone probe with the same seed.
STREAM_SHARPNESS = 1
STREAM_POWER_ITERATION = 2
STREAM_HUTCHINSON = 3
STREAM_SLICE = 4

# Upper bound on the number of per-example gradient entries held at once by the Fisher probe.
_PER_EXAMPLE_BUDGET = 2**25


def make_generator(seed: int, stream: int) -> torch.Generator:
    """Return a CPU generator for ``stream`` of ``seed``; the global RNG is never touched."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed((seed * 1_000_003 + stream) % (2**63))
    return generator


def random_normal_like(params: ParamDict, generator: torch.Generator) -> ParamDict:
    """Standard-normal tensors shaped like ``params``, drawn on the CPU so that the numbers
    do not depend on the device the model lives on."""
    return {
        name: torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        for name, p in params.items()
    }


def random_rademacher_like(params: ParamDict, generator: torch.Generator) -> ParamDict:
    """Random +-1 tensors shaped like ``params`` (CPU-drawn, see :func:`random_normal_like`)."""
    return {
        name: (torch.randint(0, 2, p.shape, generator=generator) * 2 - 1).to(p.device, p.dtype)
        for name, p in params.items()
    }


def dot(a: ParamDict, b: ParamDict) -> float:
    """Inner product of two parameter dicts, accumulated in float64."""
    terms = [(a[name] * b[name]).sum(dtype=torch.float64).cpu() for name in a]
    return float(torch.stack(terms).sum())


def norm(a: ParamDict) -> float:
    """Euclidean norm of a parameter dict."""
    return dot(a, a) ** 0.5


def axpy(alpha: float, x: ParamDict, y: ParamDict) -> ParamDict:
    """Return ``y + alpha * x`` as a new dict."""
    return {name: y[name] + alpha * x[name] for name in y}


def scale(alpha: float, x: ParamDict) -> ParamDict:
    """Return ``alpha * x`` as a new dict."""
    return {name: alpha * t for name, t in x.items()}


class ProbeObjective:
    """Loss of ``model`` on a fixed probe set as a function of its trainable parameters.

    The model must already be in the state the probe wants (eval mode); the caller
    guarantees that with :func:`~llp.landscape.preserved_model_state`. Parameters with
    ``requires_grad=False`` stay fixed at their current values and are not perturbed.
    """

    def __init__(
        self,
        model: nn.Module,
        criterion: Callable[..., Any],
        inputs: torch.Tensor,
        targets: torch.Tensor,
    ) -> None:
        self.model = model
        self.criterion = criterion
        self.inputs = inputs
        self.targets = targets
        self.params: ParamDict = {
            name: p.detach() for name, p in model.named_parameters() if p.requires_grad
        }
        self.hvp_mode: Literal["forward-over-reverse", "reverse-over-reverse"] | None = None

    @property
    def n_examples(self) -> int:
        return int(self.inputs.shape[0])

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.params.values())

    def _loss_on(self, params: ParamDict, inputs: torch.Tensor, targets: torch.Tensor) -> Any:
        outputs = functional_call(self.model, params, (inputs,))
        loss = self.criterion(outputs, targets)
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(
                "The 'criterion' parameter must return a scalar loss tensor (use "
                f"reduction='mean'). Got {shape} instead."
            )
        return loss

    def loss(self, params: ParamDict) -> torch.Tensor:
        """Probe-set loss at ``params`` (differentiable through torch.func transforms)."""
        result: torch.Tensor = self._loss_on(params, self.inputs, self.targets)
        return result

    def loss_value(self, params: ParamDict) -> float:
        """Probe-set loss at ``params`` as a Python float (one forward pass)."""
        with torch.no_grad():
            return float(self.loss(params))

    def gradient_and_loss(self) -> tuple[ParamDict, float]:
        """Gradient and loss at the current parameters (one forward+backward pass)."""
        grads, loss = grad_and_value(self.loss)(self.params)
        return {k: g.detach() for k, g in grads.items()}, float(loss)

    def hvp(self, vector: ParamDict) -> tuple[ParamDict, ParamDict, float]:
        """Exact Hessian-vector product at the current parameters.

        Returns ``(H @ vector, gradient, loss)``; the gradient and the loss come for free
        with the product. Forward-over-reverse (``jvp`` of ``grad``) is tried first; models
        with an operation that has no forward-mode derivative fall back to
        reverse-over-reverse (``vjp`` of ``grad``, valid because the Hessian is symmetric).
        """
        if self.hvp_mode in (None, "forward-over-reverse"):
            try:
                # torch.func's stubs omit the aux output of has_aux=True; hence the annotation.
                forward: tuple[Any, ...] = jvp(
                    grad_and_value(self.loss), (self.params,), (vector,), has_aux=True
                )
                grads, product, loss = forward
            except (RuntimeError, NotImplementedError) as error:
                if self.hvp_mode is not None or not _lacks_forward_mode(error):
                    raise
                self.hvp_mode = "reverse-over-reverse"
            else:
                self.hvp_mode = "forward-over-reverse"
                return _detached(product), _detached(grads), float(loss)
        reverse: tuple[Any, ...] = vjp(grad_and_value(self.loss), self.params, has_aux=True)
        grads, vjp_fn, loss = reverse
        (product,) = vjp_fn(vector)
        return _detached(product), _detached(grads), float(loss)

    def per_example_squared_grad_norms(
        self,
    ) -> tuple[torch.Tensor, Literal["vmap", "loop"]]:
        """Squared norm of each example's loss gradient, shape ``(n_examples,)``.

        Uses ``vmap(grad)`` in chunks (bounded memory); falls back to a Python loop over
        examples for models that ``vmap`` cannot batch.
        """

        def example_loss(params: ParamDict, x: torch.Tensor, y: torch.Tensor) -> Any:
            return self._loss_on(params, x.unsqueeze(0), y.unsqueeze(0))

        chunk = max(1, min(self.n_examples, _PER_EXAMPLE_BUDGET // max(1, self.n_parameters())))
        per_example_grad = vmap(grad(example_loss), in_dims=(None, 0, 0))
        try:
            norms = [
                _squared_norms_per_row(per_example_grad(self.params, x, y).values())
                for x, y in zip(self.inputs.split(chunk), self.targets.split(chunk), strict=True)
            ]
            return torch.cat(norms), "vmap"
        except (RuntimeError, NotImplementedError) as error:
            if not _is_vmap_limitation(error):
                raise
        single_grad = grad(example_loss)
        rows = [
            _squared_norms_per_row(g.unsqueeze(0) for g in single_grad(self.params, x, y).values())
            for x, y in zip(self.inputs, self.targets, strict=True)
        ]
        return torch.cat(rows), "loop"


def _lacks_forward_mode(error: BaseException) -> bool:
    # Only a missing forward-mode derivative justifies the fallback; any other error (a
    # shape mismatch, the user's criterion failing) must surface unchanged.
    message = str(error).lower()
    return any(key in message for key in ("forward ad", "forward-mode", "jvp"))


def _is_vmap_limitation(error: BaseException) -> bool:
    message = str(error).lower()
    return "vmap" in message or "batching rule" in message


def _detached(params: ParamDict) -> ParamDict:
    return {k: v.detach() for k, v in params.items()}


def _squared_norms_per_row(per_example: Iterable[torch.Tensor]) -> torch.Tensor:
    total: torch.Tensor | None = None
    for g in per_example:
        rows = g.detach().reshape(g.shape[0], -1).to(torch.float64).pow(2).sum(dim=1).cpu()
        total = rows if total is None else total + rows
    if total is None:  # no trainable parameters; excluded by validation, kept for safety
        return torch.zeros(0, dtype=torch.float64)
    return total
