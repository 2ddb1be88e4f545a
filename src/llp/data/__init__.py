"""Fidelity subsets: nested, stratified, seeded, with a held-out validation split.

:class:`FidelityData` holds arrays as tensors and follows the
``dataset_fn(fraction) -> (train_loader, val_loader)`` contract.
"""

from __future__ import annotations

from llp.data._fidelity_data import FidelityData
from llp.data._fingerprint import RowFingerprint, dataset_fingerprint
from llp.data._subsets import NestedStratifiedOrder, stratified_holdout, stratified_nested_subsets

__all__ = [
    "FidelityData",
    "NestedStratifiedOrder",
    "RowFingerprint",
    "dataset_fingerprint",
    "stratified_holdout",
    "stratified_nested_subsets",
]
