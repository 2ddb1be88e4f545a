"""Code run in child processes by test_concurrency.py (importable under ``spawn``)."""

from __future__ import annotations

import traceback
from typing import Any

from llp.store import KnowledgeBase
from llp.training import EpochRecord, EvaluationResult, EvaluationStatus, Fidelity


def write_study(path: str, study: str, n: int, start: Any, errors: Any) -> None:
    """Open ``path`` and record ``n`` evaluations of ``study``, one call each.

    Waits on the ``start`` barrier first, so the processes also race to create the file.
    Any exception goes to the ``errors`` queue with its traceback.
    """
    try:
        start.wait(timeout=60)
        with KnowledgeBase.open(path) as kb:
            dataset_id = kb.upsert_dataset("shared-dataset", name="shared")
            record = kb.get_or_create_study(
                study,
                scheduler="RandomSearch",
                settings={"n": n},
                space=None,
                seed=0,
                objective="val_loss",
                dataset_id=dataset_id,
            )
            for i in range(n):
                config = {"x": i / n, "writer": study}
                result = EvaluationResult(
                    config=config,
                    fidelity=Fidelity(1.0, 2),
                    status=EvaluationStatus.COMPLETE,
                    curve=(
                        EpochRecord(1, 1.0, 1.0, None, 0.0),
                        EpochRecord(2, 0.5, 0.6, None, 0.0),
                    ),
                    score=-0.6,
                    objective="val_loss",
                    cost=2.0,
                    seconds=0.0,
                    train_seconds=0.0,
                    n_train=10,
                    seed=i,
                )
                kb.record_evaluation(record.id, trial_number=i, config=config, result=result)
    except BaseException:
        errors.put(f"{study}: {traceback.format_exc()}")
        raise
