"""Loss-landscape slices of a study's best configurations.

The models come from the weights the study kept of its top rung
(:mod:`llp.training._weights`, in the user's cache folder), used only once their
validation score, measured again, equals the stored one; otherwise they are retrained.
The knowledge base keeps every configuration, its trial number, the fidelity it reached
and the study seed; :class:`llp.training.Trainer` derives each trial's seed from the
study seed and the trial number, so retraining reproduces the stored model (on the same
device and torch version). The report shows that check: the score measured again next
to the stored one, and where each model came from. Weights stay out of the knowledge
base.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from llp.report._collect import StudyData, top_trials
from llp.training._weights import KEPT_PER_STUDY, KeptWeights, same_score

#: Points of the 1-D slices and per axis of the 2-D slice; span of both (filter-normalised
#: units: 1 moves every filter by its own norm).
N_POINTS_1D = 31
N_POINTS_2D = 17
SPAN = 1.0


@dataclass(frozen=True)
class SliceResult:
    """A top configuration's model and its loss slices on the study's probe set.

    ``origin`` says where the model came from: ``"kept"`` (the weights the study kept,
    their validation score measured again) or ``"retrained"``; ``measured_score`` is
    that score. ``losses_2d`` is set for the best configuration only.
    """

    trial: int
    config: Mapping[str, Any]
    fraction: float
    epochs: int
    stored_score: float
    measured_score: float | None
    alphas: list[float]
    losses: list[float]
    grid: list[float] | None = None
    losses_2d: list[list[float]] | None = None
    origin: Literal["kept", "retrained"] = "retrained"

    @property
    def reproduced(self) -> bool:
        """Whether the model measured the stored score again (to 6 decimals)."""
        return same_score(self.measured_score, self.stored_score)

    def to_json(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "config": dict(self.config),
            "fraction": self.fraction,
            "epochs": self.epochs,
            "origin": self.origin,
            "stored_score": self.stored_score,
            "measured_score": self.measured_score,
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
    top_k: int = KEPT_PER_STUDY,
    kept: KeptWeights | None = None,
) -> list[SliceResult]:
    """The ``top_k`` best configurations' models at the fidelity they reached (from
    ``kept`` where their score checks out, else retrained), and slices of the training
    loss around each (1-D), and around the best on a plane (2-D).

    Parameters
    ----------
    data : StudyData
    fidelity_data : FidelityData or dataset_fn
        The study's data, prepared as it was for the search.
    model_fn, optimizer_fn, criterion
        As the study used them.
    top_k : int, default=3
    kept : KeptWeights, optional
        Where the study kept its weights; ``None`` retrains every one.

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
        trial = int(row["trial_number"])
        config = dict(data.configs[trial])
        fidelity = Fidelity(float(row["fraction"]), int(row["epochs"]))
        stored = float(row["score"])
        origin: Literal["kept", "retrained"] = "kept"
        model = None if kept is None else kept.load(partial(model_fn, config), trial, fidelity)
        measured = None if model is None else trainer.validation_score(model, fidelity)
        if model is None or not same_score(measured, stored):
            origin = "retrained"
            model, result = trainer.fit(config, fidelity, trial_id=trial)
            if model is None or result.status is not EvaluationStatus.COMPLETE:
                continue
            measured = result.score
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
                trial=trial,
                config=config,
                fraction=fidelity.fraction,
                epochs=fidelity.epochs,
                stored_score=stored,
                measured_score=measured,
                alphas=_finite_list(one.alphas),
                losses=_finite_list(one.losses),
                grid=grid,
                losses_2d=losses_2d,
                origin=origin,
            )
        )
    return out


__all__ = ["N_POINTS_1D", "N_POINTS_2D", "SPAN", "SliceResult", "landscape_slices"]
