from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llp._checks import check_int
from llp.meta import Experience, MetaModelTrainer
from llp.meta._trainer import _quantiles
from llp.search._base import (
    Job,
    JobCounter,
    Scheduler,
    check_resources,
    format_share,
    rung_resources,
)
from llp.space import SearchSpace, canonical_config_json
from llp.training import EvaluationResult, EvaluationStatus, Fidelity

#: How the reason of the anchor's first job begins (reports find the anchor by it).
ANCHOR_REASON = "the meta-model's pick"


@dataclass(frozen=True)
class Prediction:
    """What the meta-model predicted for a configuration when it acted on it.

    ``predicted`` and ``uncertainty`` are on the surrogate's scale: the percentile rank
    of the configuration's final score among the study's configurations (1 = best).
    ``action`` is ``"promote"``, ``"keep out"`` (ranked below the cut), ``"carry"`` (the
    anchor, ranked below the cut but carried up), ``"propose"`` or ``"runner-up"`` (one
    of the prior's next-best configurations, sent to the top rung without screening).
    """

    trial_id: int
    iteration: int
    action: str
    predicted: float
    uncertainty: float
    measured_score: float | None
    measured_resource: float | None


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement over ``best`` of a Gaussian with ``mean`` and ``std``."""
    from scipy.stats import norm

    std = np.maximum(std, 1e-9)
    z = (mean - best) / std
    return np.asarray((mean - best) * norm.cdf(z) + std * norm.pdf(z))


class MetaGuidedScheduler(Scheduler):
    """The scheduler behind :meth:`llp.meta_probing.MetaProbing.run_meta_optimization`.

    Iteration ``k`` trains its configurations on ``rungs[k]`` of the data. Between
    iterations the meta-model is refitted on the prior (past datasets, shipped knowledge)
    plus everything this study measured so far; then

    1. the configurations of the finished iteration (promoted ones and newcomers) are
       ranked by the surrogate's *predicted final* rank, which reads their partial
       learning curves, landscape and rank within their rung — not by raw low-fidelity
       score — and the top ``1 / reduction_factor`` move on to ``rungs[k + 1]``;
    2. newcomers, chosen by expected improvement over sampled configurations and
       variations of the predictor's suggestion, are screened on ``rungs[0]`` so they can
       compete for the next promotion (none are added before the last iteration).

    Without a fitted surrogate (no prior and too little data) it falls back to plain
    successive halving on raw scores, with random newcomers.

    Parameters
    ----------
    space : SearchSpace
    initial_configs : sequence of dict
        The first iteration's configurations.
    trainer : MetaModelTrainer
        Holds the prior; the scheduler adds this study's evaluations to a copy.
    meta_features : Mapping
        The dataset's meta-features.
    model_family : str or None
    min_resource, max_resource, reduction_factor
        As for successive halving; the rungs are :func:`rung_resources`, of which the top
        ``num_iterations`` are used (so the last iteration is at ``max_resource``).
    num_iterations : int
    epochs : int
    n_newcomers : int or None
        Newcomers per iteration; defaults to half the configurations promoted.
    seed : int
    dataset : str
        Key of the dataset, so this study's rows are grouped correctly.
    anchor : dict, optional
        A configuration trusted in advance (MetaProbing passes the meta-model's zero-shot
        pick). It runs first and is carried to every rung even when ranked below the cut,
        so the final choice can compare the search's finds with it on equal data.
    runners_up : sequence of dict, optional
        Configurations the prior ranks next after the anchor. They skip the lower rungs:
        screening them on little data would only add noise to what the prior already
        says, so they are trained on the top rung in the last iteration, next to the
        carried anchor and the promoted challengers.
    """

    def __init__(
        self,
        space: SearchSpace,
        initial_configs: Sequence[Mapping[str, Any]],
        *,
        trainer: MetaModelTrainer,
        meta_features: Mapping[str, float],
        model_family: str | None,
        min_resource: float,
        max_resource: float,
        reduction_factor: int = 2,
        num_iterations: int = 3,
        epochs: int = 1,
        n_newcomers: int | None = None,
        seed: int = 0,
        dataset: str = "current",
        n_candidates: int = 256,
        anchor: Mapping[str, Any] | None = None,
        runners_up: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        r_min, r_max, eta = check_resources(
            min_resource, max_resource, reduction_factor, owner="MetaProbing"
        )
        self.num_iterations = check_int(
            "num_iterations", num_iterations, min_value=1, owner="MetaProbing"
        )
        if len(initial_configs) == 0:
            raise ValueError("The meta-guided search needs at least one initial configuration.")
        self.space = space
        self.trainer = trainer
        self.meta_features = dict(meta_features)
        self.model_family = model_family
        self.eta = eta
        self.epochs = check_int("epochs", epochs, min_value=1, owner="MetaProbing")
        self.seed = seed
        self.dataset = dataset
        self.n_candidates = n_candidates
        self.n_newcomers = n_newcomers
        all_rungs = rung_resources(r_min, r_max, eta)
        self.rungs = all_rungs[-self.num_iterations :]
        self._jobs = JobCounter()
        self._iteration = 0
        self._next_trial = 0
        self._seen: dict[str, int] = {}
        self._queue: list[Job] = []
        self._pending: dict[int, Job] = {}
        self._batch: list[tuple[Job, EvaluationResult]] = []
        self._history: list[tuple[Job, EvaluationResult]] = []
        self._finished = False
        self.predictions: list[Prediction] = []
        self.surrogate_used: list[bool] = []
        self._messages: list[str] = []
        self.anchor_trial: int | None = None
        if anchor is not None:
            self.anchor_trial = self._enqueue(
                dict(anchor),
                self.rungs[0],
                f"{ANCHOR_REASON} for this dataset (carried to every rung)",
            )
        unique = {canonical_config_json(c): dict(c) for c in runners_up}
        if anchor is not None:
            unique.pop(canonical_config_json(anchor), None)
        self._runners_up = list(unique.values())
        if len(self.rungs) == 1:
            self._enqueue_runners_up(None, False)
        for config in initial_configs:
            if canonical_config_json(config) not in self._seen:
                self._enqueue(dict(config), self.rungs[0], "initial configuration")

    # ------------------------------------------------------------------ protocol
    def ask(self) -> Job | None:
        if self._finished or not self._queue:
            return None
        job = self._queue.pop(0)
        self._pending[job.job_id] = job
        return job

    def tell(self, job: Job, result: EvaluationResult) -> None:
        if self._pending.pop(job.job_id, None) is None:
            raise ValueError(
                f"Job {job.job_id} was not asked by this scheduler or was already told."
            )
        self._batch.append((job, result))
        self._history.append((job, result))
        if not self._pending and not self._queue:
            self._advance()

    def is_finished(self) -> bool:
        return self._finished

    @property
    def iteration(self) -> int:
        return self._iteration

    def drain_messages(self) -> list[str]:
        messages, self._messages = self._messages, []
        return messages

    def describe_position(self) -> str:
        k = min(self._iteration, len(self.rungs) - 1)
        return f"iteration {k + 1}/{len(self.rungs)} on {format_share(self.rungs[k])} of the data"

    # ------------------------------------------------------------------ internals
    def _enqueue(self, config: dict[str, Any], fraction: float, reason: str) -> int:
        key = canonical_config_json(config)
        trial_id = self._seen.get(key)
        if trial_id is None:
            trial_id = self._next_trial
            self._next_trial += 1
            self._seen[key] = trial_id
        self._queue.append(
            Job(
                job_id=self._jobs.take(),
                trial_id=trial_id,
                config=config,
                fidelity=Fidelity(fraction, self.epochs),
                bracket=0,
                rung=self.rungs.index(fraction),
                reason=reason,
            )
        )
        return trial_id

    def _fitted_trainer(self) -> MetaModelTrainer:
        """The prior plus this study so far (the prior's own rows are shared).

        When the prior's models exist and this study's rows would be under 5% of what they
        were fitted on, refitting would barely move a forest and costs seconds per
        iteration: the prior's models are used as they are. They still read this
        study's partial results (curves, landscape, rank within the rung) as inputs.
        """
        prior = self.trainer
        if prior.surrogate_ is not None and len(self._history) * 20 < len(prior.experiences):
            self._messages.append(
                f"  (prior of {len(prior.experiences)} evaluations outweighs this study's "
                f"{len(self._history)}: its models are reused, not refitted)"
            )
            return prior
        trainer = MetaModelTrainer(
            self.space,
            top_k=self.trainer.top_k,
            use_dataset_features=self.trainer.use_dataset_features,
            use_training_features=self.trainer.use_training_features,
            use_landscape_features=self.trainer.use_landscape_features,
            min_coverage=self.trainer.min_coverage,
            n_estimators=self.trainer.n_estimators,
            random_state=self.trainer.random_state,
        )
        trainer.experiences = list(self.trainer.experiences)
        trainer.add(
            Experience(
                self.dataset,
                None,
                self.meta_features,
                self.model_family,
                "__current__",
                job.trial_id,
                result,
            )
            # In job order: the forests' bootstrap depends on the order of their rows,
            # which must not depend on the order results arrived in.
            for job, result in sorted(self._history, key=lambda jr: jr[0].job_id)
        )
        return trainer.fit()

    def _advance(self) -> None:
        # In job order, so that the outcome does not depend on completion order.
        batch = sorted(self._batch, key=lambda jr: jr[0].job_id)
        self._batch = []
        if self._iteration + 1 >= len(self.rungs):
            self._finished = True
            return
        ok = [(j, r) for j, r in batch if r.status is EvaluationStatus.COMPLETE]
        if not ok:
            self._finished = True
            return
        trainer = self._fitted_trainer()
        use_surrogate = trainer.surrogate_ is not None
        self.surrogate_used.append(use_surrogate)
        # Rank within each fidelity among everything this study trained on it: a
        # newcomer screened alone on the smallest rung is ranked against the earlier
        # configurations there, not crowned the best of a group of one.
        rung_q: dict[int, float] = {}
        by_fidelity: dict[float, list[tuple[Job, EvaluationResult]]] = {}
        for job, result in sorted(self._history, key=lambda jr: jr[0].job_id):
            by_fidelity.setdefault(job.fidelity.fraction, []).append((job, result))
        for group in by_fidelity.values():
            scores = [
                r.score
                if r.status is EvaluationStatus.COMPLETE
                and r.score is not None
                and math.isfinite(r.score)
                else None
                for _, r in group
            ]
            for (job, _), q in zip(group, _quantiles(scores)):
                rung_q[job.job_id] = float(q)
        if use_surrogate:
            rows = np.vstack(
                [
                    trainer.surrogate_row(
                        self.meta_features,
                        self.model_family,
                        job.config,
                        result,
                        rung_q[job.job_id],
                    )
                    for job, result in ok
                ]
            )
            mean, std = trainer.predict_final(rows)
        else:
            mean = np.array([rung_q[j.job_id] for j, _ in ok])
            std = np.zeros(len(ok))
        order = sorted(range(len(ok)), key=lambda i: (-mean[i], ok[i][0].trial_id))
        self._messages.append(
            f"iteration {self._iteration + 1}: meta-model refitted on "
            f"{len(trainer.experiences)} evaluations; "
            + (
                "ranking by predicted final rank"
                if use_surrogate
                else "no surrogate yet, ranking by measured score"
            )
        )
        # The anchor is carried up on top of the 1 / eta that earn promotion, so every
        # rung compares it with the best challengers on equal data.
        n_promoted_now = sum(
            1 for j, _ in batch if j.rung == self._iteration and j.trial_id != self.anchor_trial
        )
        keep = max(1, math.floor(max(n_promoted_now, 1) / self.eta))
        self._iteration += 1
        target = self.rungs[self._iteration]
        rank = -1
        for i in order:
            job, result = ok[i]
            carried = job.trial_id == self.anchor_trial
            if not carried:
                rank += 1
            action = "carry" if carried else ("promote" if rank < keep else "keep out")
            self.predictions.append(
                Prediction(
                    job.trial_id,
                    self._iteration - 1,
                    action,
                    float(mean[i]),
                    float(std[i]),
                    result.score,
                    job.fidelity.fraction,
                )
            )
            if not carried and rank < keep:
                self._messages.append(
                    f"  promote trial {job.trial_id}: measured {result.score:.4f} on "
                    f"{format_share(job.fidelity.fraction)}, predicted final rank "
                    f"{mean[i]:.2f} ± {std[i]:.2f}"
                )
                basis = (
                    f"predicted final rank {mean[i]:.2f} ± {std[i]:.2f} by the surrogate"
                    if use_surrogate
                    else f"rank {rank + 1} by raw score (no surrogate yet)"
                )
                self._enqueue(
                    dict(job.config),
                    target,
                    f"promoted to {format_share(target)}: {basis}; measured "
                    f"{result.score:.4g} on {format_share(job.fidelity.fraction)}",
                )
            elif carried:
                self._messages.append(
                    f"  carry trial {job.trial_id} (the meta-model's pick): measured "
                    f"{result.score:.4f} on {format_share(job.fidelity.fraction)}, predicted "
                    f"final rank {mean[i]:.2f} ± {std[i]:.2f}"
                )
                self._enqueue(
                    dict(job.config),
                    target,
                    f"carried to {format_share(target)}: the meta-model's pick is judged at "
                    "every rung"
                    + (
                        f" (predicted final rank {mean[i]:.2f} ± {std[i]:.2f})"
                        if use_surrogate
                        else ""
                    )
                    + f"; measured {result.score:.4g} on {format_share(job.fidelity.fraction)}",
                )
        if self._iteration + 1 == len(self.rungs):
            self._enqueue_runners_up(trainer, use_surrogate)
        if self._iteration + 1 < len(self.rungs):
            n_new = self.n_newcomers if self.n_newcomers is not None else max(1, keep // 2)
            self._propose(trainer, n_new, mean, use_surrogate)

    def _enqueue_runners_up(self, trainer: MetaModelTrainer | None, use_surrogate: bool) -> None:
        """The prior's runners-up, straight onto the top rung (once)."""
        top = self.rungs[-1]
        queued = {job.trial_id for job in self._queue if job.fidelity.fraction == top}
        for n, config in enumerate(self._runners_up, start=2):
            trial = self._seen.get(canonical_config_json(config))
            if trial is not None and trial in queued:
                continue  # promoted there already
            prediction = ""
            if trainer is not None and use_surrogate:
                row = trainer.surrogate_row(self.meta_features, self.model_family, config)
                mean, std = trainer.predict_final(row)
                prediction = f" (predicted final rank {mean[0]:.2f} ± {std[0]:.2f})"
            trial = self._enqueue(
                dict(config),
                top,
                f"runner-up {n} of the meta-model's portfolio: trained on "
                f"{format_share(top)} directly, replaces the pick only if better by more "
                f"than validation noise{prediction}",
            )
            queued.add(trial)
            if prediction:
                self.predictions.append(
                    Prediction(
                        trial,
                        max(self._iteration - 1, 0),
                        "runner-up",
                        float(mean[0]),
                        float(std[0]),
                        None,
                        None,
                    )
                )
            self._messages.append(f"  runner-up {n} of the portfolio: trial {trial}{prediction}")
        self._runners_up = []

    def _propose(
        self, trainer: MetaModelTrainer, n_new: int, current: np.ndarray, use_surrogate: bool
    ) -> None:
        if n_new <= 0:
            return
        seed = int(np.random.SeedSequence([self.seed, self._iteration]).generate_state(1)[0])
        candidates = self.space.sample(self.n_candidates, seed=seed)
        if trainer.predictor_ is not None:
            candidates += [
                s.config
                for s in trainer.suggest(
                    self.meta_features, self.model_family, max(8, n_new * 4), seed=seed
                )
            ]
        fresh = [c for c in candidates if canonical_config_json(c) not in self._seen]
        unique: dict[str, dict[str, Any]] = {canonical_config_json(c): c for c in fresh}
        fresh = list(unique.values())
        if not fresh:
            return
        if use_surrogate:
            rows = np.vstack(
                [trainer.surrogate_row(self.meta_features, self.model_family, c) for c in fresh]
            )
            mean, std = trainer.predict_final(rows)
            ei = expected_improvement(mean, std, float(np.max(current)))
            picks = np.argsort(-ei, kind="stable")[:n_new]
            for i in picks:
                trial = self._enqueue(
                    fresh[i],
                    self.rungs[0],
                    f"proposed by expected improvement {ei[i]:.3g} (predicted final rank "
                    f"{mean[i]:.2f} ± {std[i]:.2f})",
                )
                self.predictions.append(
                    Prediction(
                        trial, self._iteration, "propose", float(mean[i]), float(std[i]), None, None
                    )
                )
                self._messages.append(
                    f"  propose trial {trial}: expected improvement {ei[i]:.3g}, predicted "
                    f"final rank {mean[i]:.2f} ± {std[i]:.2f}"
                )
        else:
            for config in fresh[:n_new]:
                self._enqueue(config, self.rungs[0], "random newcomer (no surrogate yet)")
