"""Argument checks shared by the landscape probes.

Every message names the parameter, shows the value and states the rule (see CONVENTIONS.md,
point 3), so a user can fix a call without reading the source.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def check_model(model: object, *, where: str) -> nn.Module:
    """Return ``model`` if it is an ``nn.Module`` with at least one trainable parameter."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"The 'model' parameter of {where} must be a torch.nn.Module. "
            f"Got {type(model).__name__} instead."
        )
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(
            f"The 'model' parameter of {where} must have at least one parameter with "
            "requires_grad=True. Got a model without trainable parameters."
        )
    return model


def check_criterion(criterion: object, *, where: str) -> Callable[..., Any]:
    """Return ``criterion`` if it is callable."""
    if not callable(criterion):
        raise TypeError(
            f"The 'criterion' parameter of {where} must be callable (e.g. nn.CrossEntropyLoss()). "
            f"Got {type(criterion).__name__} instead."
        )
    return criterion


def _check_tensor(value: object, name: str, *, where: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"The '{name}' parameter of {where} must be a torch.Tensor. "
            f"Got {type(value).__name__} instead."
        )
    if value.ndim == 0:
        raise ValueError(
            f"The '{name}' parameter of {where} must have a leading example dimension. "
            "Got a 0-dimensional tensor instead."
        )
    return value


def check_probe_set(inputs: object, targets: object, *, where: str) -> None:
    """Check that ``inputs`` and ``targets`` are tensors with the same, non-zero length."""
    n_inputs = _check_tensor(inputs, "inputs", where=where).shape[0]
    n_targets = _check_tensor(targets, "targets", where=where).shape[0]
    if n_inputs != n_targets:
        raise ValueError(
            f"The 'targets' parameter of {where} must have as many examples (first dimension) "
            f"as 'inputs'. Got inputs with {n_inputs} and targets with {n_targets} "
            "examples instead."
        )
    if n_inputs == 0:
        raise ValueError(
            f"The 'inputs' parameter of {where} must hold at least one example. "
            "Got an empty probe set instead."
        )


def check_int(value: object, name: str, *, minimum: int, where: str) -> int:
    """Return ``value`` if it is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"The '{name}' parameter of {where} must be an int >= {minimum}. "
            f"Got {value!r} of type {type(value).__name__} instead."
        )
    if value < minimum:
        raise ValueError(
            f"The '{name}' parameter of {where} must be an int >= {minimum}. Got {value!r} instead."
        )
    return value


def check_positive_float(value: object, name: str, *, where: str) -> float:
    """Return ``value`` as a float if it is a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"The '{name}' parameter of {where} must be a float > 0. "
            f"Got {value!r} of type {type(value).__name__} instead."
        )
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"The '{name}' parameter of {where} must be a finite float > 0. Got {value!r} instead."
        )
    return float(value)


def check_optional_positive_float(value: object, name: str, *, where: str) -> float | None:
    """Return ``None`` or ``value`` as a float if it is a finite real number > 0."""
    if value is None:
        return None
    return check_positive_float(value, name, where=where)


def check_choice(value: object, name: str, choices: tuple[str, ...], *, where: str) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"The '{name}' parameter of {where} must be one of {list(choices)}. "
            f"Got {value!r} instead."
        )
    return value
