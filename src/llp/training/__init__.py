"""Training one configuration at one fidelity, with a per-epoch learning curve.

:class:`Trainer` turns diverging runs and exceptions in user code into ``FAILED``
:class:`EvaluationResult` records; costs are counted in full-data-epoch equivalents.
"""

from __future__ import annotations

from llp.training._records import (
    WORKER_LOST,
    EpochRecord,
    EvaluationResult,
    EvaluationStatus,
    Fidelity,
    Objective,
    lost_worker,
)
from llp.training._trainer import Trainer, resolve_device, trial_seed

__all__ = [
    "WORKER_LOST",
    "EpochRecord",
    "EvaluationResult",
    "EvaluationStatus",
    "Fidelity",
    "Objective",
    "Trainer",
    "lost_worker",
    "resolve_device",
    "trial_seed",
]
