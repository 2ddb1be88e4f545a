"""Features the meta-model reads: dataset meta-features and training-result features.

:class:`DatasetFeatureExtractor`
    Cheap, seeded meta-features of a dataset (sizes, label balance, feature moments,
    correlations, PCA dimension, column kinds, landmarkers), computed on a capped sample
    so the cost stops growing with the dataset. Names in :data:`DATASET_FEATURES`.
:func:`dataset_fingerprint`
    The content hash that keys a dataset in the knowledge base.
:class:`TrainingResultFeatureExtractor`
    Learning-curve and loss-landscape features of one evaluation, read from what
    :class:`llp.training.Trainer` records. Names in :data:`TRAINING_FEATURES`.

Both extractors return ``dict[str, float]`` of finite values in the order of their name
list, and ``to_vector`` turns such a dict into the fixed-width vector the meta-model takes.
"""

from __future__ import annotations

from llp.data import dataset_fingerprint
from llp.features._dataset import DATASET_FEATURES, DatasetFeatureExtractor
from llp.features._describe import DatasetInfo, MetaFeatureCache, describe_dataset
from llp.features._training import TRAINING_FEATURES, TrainingResultFeatureExtractor

__all__ = [
    "DATASET_FEATURES",
    "TRAINING_FEATURES",
    "DatasetFeatureExtractor",
    "DatasetInfo",
    "MetaFeatureCache",
    "TrainingResultFeatureExtractor",
    "dataset_fingerprint",
    "describe_dataset",
]
