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
#: Retraining goes to worker processes only when the configurations to retrain took at
#: least this long to train in the study (seconds, added up): starting the processes
#: costs seconds of its own (BENCHMARKS.md, "Command-line latency").
PARALLEL_MIN_SECONDS = 10.0


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
    n_workers: int = 1,
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
    n_workers : int, default=1
        Local processes that retrain side by side when two or more configurations need
        it and they took :data:`PARALLEL_MIN_SECONDS` or more to train in the study
        (:class:`llp.executors.ProcessExecutor`, one PyTorch thread each). When
        ``model_fn``, ``optimizer_fn`` or ``criterion`` cannot be sent to a process (a
        lambda, a nested function) they are retrained here, one after another.

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
    wanted: list[tuple[int, dict[str, Any], Fidelity, float]] = []
    models: dict[int, tuple[Any, float | None, Literal["kept", "retrained"]]] = {}
    seconds: dict[int, float] = {}
    for row in top_trials(data, top_k):
        trial = int(row["trial_number"])
        config = dict(data.configs[trial])
        fidelity = Fidelity(float(row["fraction"]), int(row["epochs"]))
        stored = float(row["score"])
        wanted.append((trial, config, fidelity, stored))
        took = float(row.get("seconds") or 0.0)
        seconds[trial] = took if math.isfinite(took) else 0.0
        model = None if kept is None else kept.load(partial(model_fn, config), trial, fidelity)
        measured = None if model is None else trainer.validation_score(model, fidelity)
        if model is not None and same_score(measured, stored):
            models[trial] = (model, measured, "kept")
    retrain = [(trial, config, fidelity) for trial, config, fidelity, _ in wanted]
    retrain = [job for job in retrain if job[0] not in models]
    if sum(seconds[job[0]] for job in retrain) < PARALLEL_MIN_SECONDS:
        n_workers = 1
    for trial, (model, result) in _retrain(trainer, retrain, n_workers).items():
        if model is not None and result.status is EvaluationStatus.COMPLETE:
            models[trial] = (model, result.score, "retrained")
    out: list[SliceResult] = []
    for trial, config, fidelity, stored in wanted:
        if trial not in models:
            continue
        model, measured, origin = models[trial]
        one = loss_slice_1d(
            model, criterion, inputs, targets, span=SPAN, n_points=N_POINTS_1D, seed=0
        )
        grid = losses_2d = None
        if not out:
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


def _retrain(
    trainer: Any, jobs: list[tuple[int, dict[str, Any], Any]], n_workers: int
) -> dict[int, tuple[Any, Any]]:
    """``trial -> (model or None, result)`` of ``trainer.fit`` for each job: side by side
    in up to ``n_workers`` processes when two or more jobs and workers allow it, else
    here. A worker that dies takes the jobs in flight beside it down too, so each job
    lost that way is tried again on its own; lost again, it is left out (its slice with
    it)."""
    from llp.runner import WorkerLostError

    fit = trainer.fit
    if min(n_workers, len(jobs)) > 1:
        from llp.executors import ProcessExecutor

        with ProcessExecutor(n_workers=min(n_workers, len(jobs))) as executor:
            try:
                futures = {
                    trial: executor.submit(fit, config, fidelity, trial_id=trial)
                    for trial, config, fidelity in jobs
                }
            except TypeError:
                # model_fn & co. cannot be sent to a process (checked before the first
                # worker starts): they retrain here.
                futures = {}
            out: dict[int, tuple[Any, Any]] = {}
            lost: list[tuple[int, dict[str, Any], Any]] = []
            for job in jobs if futures else ():
                try:
                    out[job[0]] = futures[job[0]].result()
                except WorkerLostError:
                    lost.append(job)
            for trial, config, fidelity in lost:
                try:
                    out[trial] = executor.submit(fit, config, fidelity, trial_id=trial).result()
                except WorkerLostError:
                    continue
        if futures:
            return out
    return {trial: fit(config, fidelity, trial_id=trial) for trial, config, fidelity in jobs}


__all__ = [
    "N_POINTS_1D",
    "N_POINTS_2D",
    "PARALLEL_MIN_SECONDS",
    "SPAN",
    "SliceResult",
    "landscape_slices",
]
