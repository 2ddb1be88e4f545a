"""Training one configuration at one fidelity, with a per-epoch learning curve.

:class:`Trainer` turns diverging runs and exceptions in user code into ``FAILED``
:class:`EvaluationResult` records; costs are counted in full-data-epoch equivalents.
"""

from __future__ import annotations

from llp.training._devices import (
    evaluation_device,
    pinned_device,
    set_worker_slot,
    worker_slot,
)
from llp.training._records import (
    WORKER_LOST,
    Curve,
    EpochRecord,
    EvaluationResult,
    EvaluationStatus,
    Fidelity,
    Objective,
    lost_worker,
    rank_key,
    tie_loss,
)
from llp.training._trainer import Trainer, resolve_device, trial_seed

__all__ = [
    "WORKER_LOST",
    "Curve",
    "EpochRecord",
    "EvaluationResult",
    "EvaluationStatus",
    "Fidelity",
    "Objective",
    "Trainer",
    "evaluation_device",
    "lost_worker",
    "pinned_device",
    "rank_key",
    "resolve_device",
    "set_worker_slot",
    "tie_loss",
    "trial_seed",
    "worker_slot",
]
