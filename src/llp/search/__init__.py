"""Schedulers with one ask/tell protocol: random search, successive halving, Hyperband."""

from __future__ import annotations

from llp.search._base import Evaluation, Job, Scheduler, rank_for_promotion, rung_resources
from llp.search._hyperband import Hyperband
from llp.search._meta_guided import MetaGuidedScheduler, Prediction, expected_improvement
from llp.search._random import RandomSearch
from llp.search._successive_halving import SuccessiveHalving

__all__ = [
    "Evaluation",
    "Hyperband",
    "Job",
    "MetaGuidedScheduler",
    "Prediction",
    "RandomSearch",
    "Scheduler",
    "SuccessiveHalving",
    "expected_improvement",
    "rank_for_promotion",
    "rung_resources",
]
