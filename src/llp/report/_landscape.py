"""Loss-landscape slices of a study's best configurations, retrained from the store.

The knowledge base keeps every configuration, its trial number, the fidelity it reached
and the study seed; :class:`llp.training.Trainer` derives each trial's seed from the
study seed and the trial number, so retraining reproduces the stored model (on the same
device and torch version). The report checks that: the retrained score is shown next to
the stored one. Retraining a few small models costs seconds and keeps weights out of the
knowledge base.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llp.report._collect import StudyData, top_trials

#: Points of the 1-D slices and per axis of the 2-D slice; span of both (filter-normalised
#: units: 1 moves every filter by its own norm).
N_POINTS_1D = 31
N_POINTS_2D = 17
SPAN = 1.0


@dataclass(frozen=True)
class SliceResult:
    """A retrained top configuration and its loss slices on the study's probe set.

    ``losses_2d`` is set for the best configuration only.
    """

    trial: int
    config: Mapping[str, Any]
    fraction: float
    epochs: int
    stored_score: float
    retrained_score: float | None
    alphas: list[float]
    losses: list[float]
    grid: list[float] | None = None
    losses_2d: list[list[float]] | None = None

    @property
    def reproduced(self) -> bool:
        """Whether retraining gave the stored score (to 6 decimals)."""
        return self.retrained_score is not None and math.isclose(
            self.retrained_score, self.stored_score, abs_tol=1e-6
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "config": dict(self.config),
            "fraction": self.fraction,
            "epochs": self.epochs,
            "stored_score": self.stored_score,
            "retrained_score": self.retrained_score,
            "reproduced": self.reproduced,
            "alphas": self.alphas,
            "losses": self.losses,
            "grid": self.grid,
            "losses_2d": self.losses_2d,
        }


def _finite_list(values: Any) -> list[float]:
    return [float(v) if math.isfinite(float(v)) else math.nan for v in values]


def landscape_slices(
    data: StudyData,
    fidelity_data: Any,
    model_fn: Callable[[Mapping[str, Any]], Any],
    optimizer_fn: Callable[[Any, Mapping[str, Any]], Any],
    criterion: Any,
    *,
    top_k: int = 3,
) -> list[SliceResult]:
    """Retrain the ``top_k`` best configurations at the fidelity they reached and
    slice the training loss around each (1-D), and around the best on a plane (2-D).

    Parameters
    ----------
    data : StudyData
    fidelity_data : FidelityData or dataset_fn
        The study's data, prepared as it was for the search.
    model_fn, optimizer_fn, criterion
        As the study used them.
    top_k : int, default=3

    Returns
    -------
    list of SliceResult
        Best first; trials whose retraining failed are left out.
    """
    from llp.landscape import loss_slice_1d, loss_slice_2d
    from llp.training import EvaluationStatus, Fidelity, Trainer

    trainer = Trainer(
        model_fn,
        optimizer_fn,
        criterion,
        fidelity_data,
        device="cpu",
        objective=data.objective,  # type: ignore[arg-type]
        seed=int(data.study.seed),
    )
    inputs, targets = trainer.probe_set()
    out: list[SliceResult] = []
    for rank, row in enumerate(top_trials(data, top_k)):
        config = dict(data.configs[int(row["trial_number"])])
        fidelity = Fidelity(float(row["fraction"]), int(row["epochs"]))
        model, result = trainer.fit(config, fidelity, trial_id=int(row["trial_number"]))
        if model is None or result.status is not EvaluationStatus.COMPLETE:
            continue
        one = loss_slice_1d(
            model, criterion, inputs, targets, span=SPAN, n_points=N_POINTS_1D, seed=0
        )
        grid = losses_2d = None
        if rank == 0:
            two = loss_slice_2d(
                model, criterion, inputs, targets, span=SPAN, n_points=N_POINTS_2D, seed=0
            )
            grid = _finite_list(two.alphas)
            losses_2d = [_finite_list(r) for r in two.losses]
        out.append(
            SliceResult(
                trial=int(row["trial_number"]),
                config=config,
                fraction=fidelity.fraction,
                epochs=fidelity.epochs,
                stored_score=float(row["score"]),
                retrained_score=result.score,
                alphas=_finite_list(one.alphas),
                losses=_finite_list(one.losses),
                grid=grid,
                losses_2d=losses_2d,
            )
        )
    return out


__all__ = ["N_POINTS_1D", "N_POINTS_2D", "SPAN", "SliceResult", "landscape_slices"]
