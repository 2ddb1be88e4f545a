"""The meta-model API users know: feature extractors, the hyperparameter predictor and
the trainer that learns from past evaluations.

This module gathers names defined in :mod:`llp.features` and :mod:`llp.meta`.
"""

from __future__ import annotations

from llp.features import (
    DATASET_FEATURES,
    TRAINING_FEATURES,
    DatasetFeatureExtractor,
    TrainingResultFeatureExtractor,
    dataset_fingerprint,
)
from llp.meta import (
    Experience,
    HyperparameterPredictor,
    MetaModelTrainer,
    PerformanceSurrogate,
    Suggestion,
)

__all__ = [
    "DATASET_FEATURES",
    "TRAINING_FEATURES",
    "DatasetFeatureExtractor",
    "Experience",
    "HyperparameterPredictor",
    "MetaModelTrainer",
    "PerformanceSurrogate",
    "Suggestion",
    "TrainingResultFeatureExtractor",
    "dataset_fingerprint",
]
