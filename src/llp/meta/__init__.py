"""The meta-model: forests that predict good hyperparameters and final scores, and the
trainer that feeds them past evaluations."""

from __future__ import annotations

from llp.meta._estimators import HyperparameterPredictor, PerformanceSurrogate
from llp.meta._experience import (
    MODEL_FAMILIES,
    NAME_ALIASES,
    Experience,
    encode_projected,
    project_config,
)
from llp.meta._trainer import MetaModelTrainer, Suggestion

__all__ = [
    "MODEL_FAMILIES",
    "NAME_ALIASES",
    "Experience",
    "HyperparameterPredictor",
    "MetaModelTrainer",
    "PerformanceSurrogate",
    "Suggestion",
    "encode_projected",
    "project_config",
]
