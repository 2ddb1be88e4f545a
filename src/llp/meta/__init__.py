"""The meta-model: forests that predict good hyperparameters and final scores."""

from __future__ import annotations

from llp.meta._estimators import HyperparameterPredictor, PerformanceSurrogate

__all__ = ["HyperparameterPredictor", "PerformanceSurrogate"]
