"""Meta-guided multi-fidelity search: :class:`MetaProbing` and
:meth:`MetaProbing.run_meta_optimization`.

The meta-model learns from past datasets (the knowledge shipped with llp and every study
in your knowledge base) which hyperparameters suit a dataset like yours and which partial
learning curves end well, and steers successive halving with it.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from llp import __version__
from llp._checks import check_int, check_real
from llp._text import inert
from llp.data import FidelityData
from llp.meta import MetaModelTrainer
from llp.meta._weights import StudyWeights
from llp.runner import (
    DatasetInfo,
    ProgressCallback,
    StudyRecorder,
    StudyResult,
    configs_digest,
)
from llp.runner._session import SessionFacade, StudySession
from llp.search import (
    ANSWER_RULE,
    MetaGuidedScheduler,
    SurrogateCheck,
    bracket_cost,
)
from llp.search._base import check_resources, rung_resources
from llp.search._meta_guided import spearman
from llp.space import SearchSpace, canonical_config_json
from llp.training import EvaluationStatus
from llp.training._trainer import DatasetFn, ModelFn, OptimizerFn

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["MetaProbing", "MetaProbingResult", "PredictionRecord", "PriorSummary"]

Prior = Literal["default", "shipped", "store", "none"]
#: How many of the prior's best configurations the study starts from at least.
PORTFOLIO_SIZE = 3


@dataclass(frozen=True)
class PriorSummary:
    """What the meta-model knew before this study."""

    n_evaluations: int
    n_datasets: int
    sources: tuple[str, ...]
    predictor_fitted: bool
    surrogate_fitted: bool
    seconds: float


@dataclass(frozen=True)
class PredictionRecord:
    """A meta-model prediction next to what was measured afterwards.

    ``predicted`` is the meta-model's predicted percentile rank of the configuration's
    final score (1 = best of the study; for a proposal its prior score, NaN without a
    prior); ``posterior`` the shrunk score a promotion was ranked by; ``source`` where a
    proposal came from (``"prior"``, ``"model"``, ``"local"``, ``"random"``, ``"user"``);
    ``measured_final`` is the score it reached at the highest fidelity this study trained
    it on, and ``measured_resource`` that fidelity; ``decided_on`` is the data share whose
    measured score a promotion (or keeping out) was decided on (None for a proposal).
    """

    trial_id: int
    iteration: int
    action: str
    config: Mapping[str, Any]
    predicted: float
    uncertainty: float
    measured_final: float | None
    measured_resource: float | None
    source: str = ""
    posterior: float = math.nan
    decided_on: float | None = None


@dataclass(frozen=True)
class MetaProbingResult:
    """Everything :meth:`MetaProbing.run_meta_optimization` measured and decided."""

    best_config: dict[str, Any]
    best_score: float
    study: StudyResult
    zero_shot_config: dict[str, Any] | None
    initial_configs: tuple[Mapping[str, Any], ...]
    predictions: tuple[PredictionRecord, ...]
    prior: PriorSummary
    meta_features: Mapping[str, float]
    rungs: tuple[float, ...]
    surrogate_used: tuple[bool, ...] = field(default_factory=tuple)
    #: The configuration trusted in advance (the zero-shot pick), if there was one.
    anchor_config: dict[str, Any] | None = None
    #: ``(cumulative cost, trial id)`` of the configuration the study would have returned
    #: had it stopped after each evaluation (its anytime answer).
    incumbents: tuple[tuple[float, int], ...] = field(default_factory=tuple)
    #: Why the answer is what it is (its posterior, the prior's weight in it, and how
    #: the meta-model's pick fared on the same data).
    answer_note: str | None = None
    #: The training compute the study was given (full-data-epoch equivalents).
    budget: float | None = None
    #: Why the study stopped before spending its budget, if it did.
    stop_reason: str | None = None
    #: Each check of the surrogate against raw scores before a promotion.
    surrogate_checks: tuple[SurrogateCheck, ...] = field(default_factory=tuple)
    #: Where each trial's configuration came from (trial id -> source).
    sources: Mapping[int, str] = field(default_factory=dict)
    #: The prior's score of each trial's configuration (trial id -> predicted rank).
    prior_scores: Mapping[int, float] = field(default_factory=dict)
    #: How much the search leaned on each earlier study of the prior, and on this study's
    #: own measurements, when it last weighed them (``None``: never, e.g. one bracket).
    prior_weights: StudyWeights | None = None

    @property
    def budget_saved(self) -> float:
        """Budget left unspent when the study stopped (0 when it spent it all)."""
        if self.budget is None:
            return 0.0
        return max(self.budget - self.study.total_cost, 0.0)

    def promotion_spearman(self) -> list[float]:
        """How well promotions ranked: for each promotion decision that sent three or more
        configurations up a rung, the Spearman correlation between the order they were
        promoted in (their posterior score) and the scores they then measured on the
        next rung (1: promoted in exactly the order the next rung confirmed). Decisions
        whose scores are all tied are left out."""
        scores = {
            (e.trial_id, e.resource): float(e.score)
            for e in self.evaluations
            if e.status is EvaluationStatus.COMPLETE and e.score is not None
        }
        groups: dict[tuple[int, float], list[tuple[float, float]]] = {}
        for p in self.predictions:
            if p.action != "promote" or p.decided_on not in self.rungs[:-1]:
                continue
            up = self.rungs[self.rungs.index(p.decided_on) + 1]
            after = scores.get((p.trial_id, up))
            if after is not None and math.isfinite(p.posterior):
                groups.setdefault((p.iteration, p.decided_on), []).append((p.posterior, after))
        out = []
        for pairs in groups.values():
            if len(pairs) >= 3:
                rho = spearman([a for a, _ in pairs], [b for _, b in pairs])
                if math.isfinite(rho):
                    out.append(rho)
        return out

    @property
    def evaluations(self) -> tuple[Any, ...]:
        return self.study.evaluations

    @property
    def total_cost(self) -> float:
        return self.study.total_cost

    def predictions_frame(self) -> Any:
        """Predictions against measurements as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "trial_id": p.trial_id,
                    "iteration": p.iteration,
                    "action": p.action,
                    "predicted_rank": p.predicted,
                    "uncertainty": p.uncertainty,
                    "measured_final": p.measured_final,
                    "measured_resource": p.measured_resource,
                    "source": p.source,
                    "posterior": p.posterior,
                    "decided_on": p.decided_on,
                    **{f"config.{k}": v for k, v in p.config.items()},
                }
                for p in self.predictions
            ]
        )


class MetaProbing(SessionFacade):
    """Hyperparameter search that learns from experience.

    Parameters
    ----------
    configs : list of dict
        Configurations you want tried (they run in the first iteration). They also
        define the search space unless ``space`` is given.
    model_fn, dataset_fn, criterion, optimizer_fn
        As for :class:`llp.two_tier_probing.TwoTierProbing`.
    storage : str, path or KnowledgeBase, optional
        Knowledge base: every evaluation is written there, its past studies on *other*
        datasets join the prior, and an interrupted study resumes from it.
    study_name : str, optional
    seed : int, default=0
    max_epochs : int, default=5
        Epochs per evaluation.
    space : SearchSpace, optional
        Where the meta-model may propose configurations. Defaults to the space inferred
        from ``configs``.
    model_family : str, optional
        ``"mlp"``, ``"cnn"``...; lets the meta-model use knowledge about the same kind of
        model (the shipped knowledge covers "mlp" and "cnn").
    prior : {"default", "shipped", "store", "none"}, default="default"
        Past knowledge to start from: the knowledge shipped with llp and/or the
        knowledge base; ``"none"`` starts cold.
    exclude_groups : iterable of str, default=()
        Dataset groups left out of the prior (for honest leave-one-group-out tests).
    use_dataset_features, use_training_features, use_landscape_features : bool
        Feature groups of the meta-model (ablations).
    device, objective, n_workers, executor, show_progress
        As for :class:`TwoTierProbing`.
    dataset_name, dataset_group : str, optional
    study_settings : mapping, optional
        More settings stored with the study (JSON values), e.g. how to read its data
        again for a report (``llp tune`` stores its data recipe under ``"cli"``). They
        are part of the study's settings: resuming it with other values is refused.
    resume : bool, default=True
        Continue a study of the same name stored in ``storage`` (every finished
        evaluation is reused). ``False``: the study must be new; a stored one raises
        :class:`~llp.store.StudyExistsError` before anything is trained (of two processes
        starting the same name at once, one gets the error).

    Examples
    --------
    >>> mp = MetaProbing(configs=configs, model_fn=create_model, dataset_fn=dataset_fn,
    ...                  criterion=criterion, optimizer_fn=create_optimizer)  # doctest: +SKIP
    >>> best_config = mp.run_meta_optimization(
    ...     min_resource=0.1, max_resource=0.5, reduction_factor=2,
    ...     measure_flatness=True, num_initial_configs=6, num_iterations=3)  # doctest: +SKIP
    >>> mp.result_.predictions_frame()  # doctest: +SKIP
    """

    def __init__(
        self,
        configs: Sequence[Mapping[str, Any]],
        model_fn: ModelFn,
        dataset_fn: DatasetFn | FidelityData,
        criterion: nn.Module | Callable[..., Any],
        optimizer_fn: OptimizerFn,
        *,
        storage: Any = None,
        study_name: str | None = None,
        seed: int = 0,
        max_epochs: int = 5,
        space: SearchSpace | None = None,
        model_family: str | None = None,
        prior: Prior = "default",
        exclude_groups: Iterable[str] = (),
        use_dataset_features: bool = True,
        use_training_features: bool = True,
        use_landscape_features: bool = True,
        device: str | torch.device = "auto",
        objective: Literal["auto", "val_accuracy", "val_loss"] = "auto",
        n_workers: int | None = None,
        executor: cf.Executor | None = None,
        show_progress: bool = True,
        dataset_name: str | None = None,
        dataset_group: str | None = None,
        study_settings: Mapping[str, Any] | None = None,
        resume: bool = True,
    ) -> None:
        self._session = StudySession(
            "MetaProbing",
            configs,
            model_fn,
            dataset_fn,
            criterion,
            optimizer_fn,
            max_epochs=max_epochs,
            device=device,
            seed=seed,
            objective=objective,
            space=space,
            n_workers=n_workers,
            executor=executor,
            show_progress=show_progress,
            storage=storage,
            study_name=study_name,
            dataset_name=dataset_name,
            dataset_group=dataset_group,
            model_family=model_family,
            resume=resume,
        )
        if prior not in ("default", "shipped", "store", "none"):
            raise ValueError(
                "The 'prior' parameter of MetaProbing must be one of 'default', 'shipped', "
                f"'store', 'none'. Got {prior!r} instead."
            )
        self.prior = prior
        self.exclude_groups = tuple(exclude_groups)
        self.feature_flags = {
            "use_dataset_features": bool(use_dataset_features),
            "use_training_features": bool(use_training_features),
            "use_landscape_features": bool(use_landscape_features),
        }
        if study_settings is not None and not isinstance(study_settings, Mapping):
            raise TypeError(
                "The 'study_settings' parameter of MetaProbing must be a mapping or None. "
                f"Got {type(study_settings).__name__} instead."
            )
        self.study_settings = dict(study_settings or {})
        self.result_: MetaProbingResult | None = None

    # ------------------------------------------------------------------ the loop
    def run_meta_optimization(
        self,
        min_resource: float = 0.1,
        max_resource: float = 0.5,
        reduction_factor: int = 2,
        measure_flatness: bool = False,
        num_initial_configs: int = 6,
        num_iterations: int = 3,
        progress_callback: ProgressCallback | None = None,
        portfolio_size: int = PORTFOLIO_SIZE,
        *,
        budget: float | None = None,
    ) -> dict[str, Any]:
        """Explore on small fractions, train the meta-model, predict and vary, refine on
        larger fractions, select the best, within a budget.

        1. Meta-features of the dataset.
        2. Prior: the shipped knowledge and the knowledge base's other datasets; the
           meta-model's pick for this dataset (:meth:`MetaModelTrainer.zero_shot
           <llp.meta.MetaModelTrainer.zero_shot>`) and the next configurations of the
           prior's portfolio, each with a prior score (its mean percentile rank over past
           studies, or the surrogate's prediction for this dataset).
        3. Hyperband brackets over ``num_iterations`` rungs from ``min_resource`` to
           ``max_resource`` until ``budget`` is spent (:class:`MetaGuidedScheduler
           <llp.search.MetaGuidedScheduler>`). The first bracket, of
           ``num_initial_configs`` configurations on the smallest rung, holds a
           quarter from the prior (the pick first, so the study has an answer after one
           cheap evaluation; only a quarter, so that a wrong prior cannot fill it), then
           your ``configs``, then uniform draws. Later brackets draw
           from the prior in proportion to how well it has agreed with this study's
           measurements, from a model of those measurements, from local moves around the
           answer and uniformly.
        4. The prior guides but does not cage. Promotions and the answer rank every
           configuration alike by its *posterior* score: the measured validation score
           shrunk toward the prior's prediction for it, by as much as validation noise
           (``n_val``) and the prior's measured agreement with this study warrant
           (:mod:`llp.search._evidence`). When measured differences are within noise the
           prior's order decides; when they are larger, the measurements do. The
           surrogate re-ranks a promotion only after it has ranked this study's own
           configurations better than their raw scores (recorded in
           ``result_.surrogate_checks``).
        5. The study stops early when the remaining budget cannot train another
           configuration on the top rung, or when the answer is perfect there
           (``result_.stop_reason``, ``result_.budget_saved``).

        Parameters
        ----------
        budget : float, optional
            Compute to spend, in full-data-epoch equivalents (an epoch over 25 % of the
            data costs 0.25), landscape probes included: the first evaluation runs
            alone, and if its probes make the rest of the first bracket unaffordable,
            that bracket is cut to what the budget pays for; a budget that could not pay
            for the most one evaluation's probes may cost is refused. Default: twice the training
            cost of the first bracket, plus what landscape probes cost in the same
            proportion (with ``measure_flatness`` the probes come on top of that
            training). If one evaluation on ``max_resource`` would cost more than half
            of it, the top rung is lowered so that a race still fits.
        portfolio_size : int, default=3
            How many of the prior's best configurations (the pick included) the study
            may start from at least; the first bracket holds up to half its
            configurations from the prior either way.

        ``measure_flatness`` attaches the cheap landscape tier to every evaluation and
        lets the meta-model read it. It defaults to ``False`` because in
        ``benchmarks/compare.py`` the probes' compute (counted in the budget like
        training) was not repaid by better choices; see BENCHMARKS.md.

        Returns
        -------
        dict
            The best configuration.
        """
        check_int("num_initial_configs", num_initial_configs, min_value=1, owner="MetaProbing")
        check_int("portfolio_size", portfolio_size, min_value=1, owner="MetaProbing")
        r_min, r_max, eta = check_resources(
            min_resource, max_resource, reduction_factor, owner="MetaProbing"
        )
        check_int("num_iterations", num_iterations, min_value=1, owner="MetaProbing")
        rungs = rung_resources(r_min, r_max, eta)[-num_iterations:]
        scale_with_probes = budget is None
        if budget is None:
            budget = 2.0 * bracket_cost(num_initial_configs, rungs, eta, self.max_epochs)
        budget = check_real("budget", budget, low=0.0, owner="MetaProbing")
        cheapest = rungs[0] * self.max_epochs
        if budget < cheapest:
            raise ValueError(
                f"The 'budget' parameter of MetaProbing must be at least the cost of one "
                f"evaluation on the smallest rung ({cheapest:g} full-data epochs: "
                f"{rungs[0]:g} of the data x {self.max_epochs} epochs). Got {budget!r} "
                "instead; raise it, or lower min_resource or max_epochs."
            )
        session = self._session
        if measure_flatness and not scale_with_probes:
            # The first evaluation runs before its probes' cost is known: the budget must
            # pay for the most they can cost, or the study would overspend it.
            probes = session.trainer.probe_cost_bound()
            if budget < cheapest + probes - 1e-9:
                raise ValueError(
                    "The 'budget' parameter of MetaProbing must pay for one evaluation on the "
                    f"smallest rung with its landscape probes when measure_flatness=True: "
                    f"{cheapest + probes:.4g} full-data epochs on this dataset ({cheapest:g} "
                    f"of training, probes up to {probes:.4g}). Got {budget!r} instead; raise "
                    "it, or set measure_flatness=False."
                )
        session.trainer.measure_flatness = bool(measure_flatness)
        self._measuring = bool(measure_flatness)
        say = self._say
        settings = functools.partial(
            self._settings,
            min_resource=min_resource,
            max_resource=max_resource,
            reduction_factor=reduction_factor,
            measure_flatness=measure_flatness,
            num_initial_configs=num_initial_configs,
            num_iterations=num_iterations,
            portfolio_size=portfolio_size,
            budget=budget,
            budget_scales_with_probes=scale_with_probes,
        )
        # Get or create the study before reading the prior: a resumed study's prior is
        # what was recorded before the study was first created.
        with session.recording("MetaProbing", settings) as recorder:
            info = session.describe()
            started = time.perf_counter()
            trainer, sources = self._prior_trainer(info, recorder)
            trainer.fit()
            prior = PriorSummary(
                n_evaluations=len(trainer.experiences),
                n_datasets=len(trainer.datasets),
                sources=sources,
                predictor_fitted=trainer.predictor_ is not None,
                surrogate_fitted=trainer.surrogate_ is not None,
                seconds=time.perf_counter() - started,
            )
            say(
                f"meta-model: prior of {prior.n_evaluations} evaluations on {prior.n_datasets} "
                f"datasets ({', '.join(sources) or 'none'}); predictor "
                f"{'fitted' if prior.predictor_fitted else 'not fitted'}, surrogate "
                f"{'fitted' if prior.surrogate_fitted else 'not fitted'} in {prior.seconds:.1f} s"
                + (
                    f"; skipped {sum(trainer.skipped_rows_.values())} stored rows with values "
                    "beyond float32's range"
                    if any(trainer.skipped_rows_.values())
                    else ""
                )
            )
            zero_shot, prior_configs, prior_scores = self._prior_configs(
                trainer, info, max(num_initial_configs, portfolio_size)
            )
            if zero_shot is not None:
                shown = ", ".join(f"{k}={_fmt(v)}" for k, v in zero_shot.items())
                say(
                    f"meta-model predicts for this dataset: {shown} (runs first; it stays the "
                    "answer only while what the study measures does not outweigh the prior)"
                )
            scheduler = MetaGuidedScheduler(
                self.space,
                self.configs,
                trainer=trainer if trainer.surrogate_ is not None else None,
                meta_features=info.meta_features,
                model_family=self.model_family,
                min_resource=min_resource,
                max_resource=max_resource,
                reduction_factor=reduction_factor,
                num_iterations=num_iterations,
                epochs=self.max_epochs,
                budget=budget,
                scale_budget_with_probes=scale_with_probes,
                num_initial_configs=num_initial_configs,
                prior_configs=prior_configs,
                prior_scores=prior_scores,
                n_val=int(info.n_val or 0),
                objective=str(session.trainer.objective),
                seed=self.seed,
                dataset=info.fingerprint,
            )
            if scheduler.rungs != rungs:
                say(
                    f"a budget of {budget:g} full-data epochs cannot race configurations on "
                    f"{rungs[-1]:.0%} of the data: the top rung is "
                    f"{scheduler.rungs[-1]:.0%} instead"
                )
            study = session.run(
                scheduler, recorder, progress_callback=progress_callback, description="meta-probing"
            )
        answer = study.answer
        note = None if answer is None else answer.note
        if note is not None:
            self._say(note)
        cost, incumbents = 0.0, []
        for e, a in zip(study.evaluations, study.answers, strict=True):
            cost += e.result.cost + e.result.probe_cost
            if a is not None:
                incumbents.append((cost, a.trial_id))
        self.result_ = MetaProbingResult(
            best_config=study.best_config,
            best_score=study.best_score,
            study=study,
            zero_shot_config=zero_shot,
            anchor_config=zero_shot,
            incumbents=tuple(incumbents),
            answer_note=note,
            initial_configs=tuple(
                dict(e.config) for e in study.evaluations if e.job.bracket == 0 and e.job.rung == 0
            ),
            predictions=_with_measurements(scheduler.rungs, study),
            prior=prior,
            meta_features=dict(info.meta_features),
            rungs=tuple(scheduler.rungs),
            surrogate_used=tuple(c.used for c in scheduler.surrogate_checks),
            budget=scheduler.budget,
            stop_reason=scheduler.stop_reason,
            surrogate_checks=tuple(scheduler.surrogate_checks),
            sources=scheduler.sources(),
            prior_scores=dict(scheduler.prior_scores),
            prior_weights=scheduler.prior_weights,
        )
        say(
            f"best: {study.best_score:.4f} on {study.best_evaluation.resource:.0%} of the "
            f"data after {len(study.evaluations)} evaluations, cost "
            f"{study.total_cost:.2f} of {scheduler.budget:.2f} full-data epochs"
        )
        return dict(study.best_config)

    # ------------------------------------------------------------------ helpers
    def _say(self, message: str) -> None:
        if self.show_progress:
            from rich.console import Console

            # Messages carry names and values from the user and the store: plain text.
            Console(stderr=True, highlight=False).print(inert(message), markup=False)

    def _describe(self) -> DatasetInfo:
        """The dataset's fingerprint and meta-features (computed once)."""
        return self._session.describe()

    def _settings(
        self,
        info: DatasetInfo,
        *,
        min_resource: float,
        max_resource: float,
        reduction_factor: int,
        measure_flatness: bool,
        num_initial_configs: int,
        num_iterations: int,
        portfolio_size: int,
        budget: float,
        budget_scales_with_probes: bool,
    ) -> dict[str, Any]:
        """The settings stored with the study (resuming with others is refused)."""
        settings = {
            "min_resource": min_resource,
            "max_resource": max_resource,
            "reduction_factor": reduction_factor,
            "num_initial_configs": num_initial_configs,
            "num_iterations": num_iterations,
            "portfolio_size": portfolio_size,
            "budget": budget,
            "budget_scales_with_probes": budget_scales_with_probes,
            "epochs": self.max_epochs,
            "measure_flatness": bool(measure_flatness),
            "prior": self.prior,
            "exclude_groups": sorted(self.exclude_groups),
            **self.feature_flags,
            "configs": configs_digest(self.configs),
            # The schedule and the meta-model change between llp versions: a study is
            # resumed by the version that started it (a default name then differs).
            "llp_version": __version__,
            # How the answer is judged, so reports of the stored study agree with it.
            "answer_rule": ANSWER_RULE,
            "n_val": info.n_val,
        }
        clash = sorted(set(self.study_settings) & set(settings))
        if clash:
            raise ValueError(
                "The 'study_settings' parameter of MetaProbing must not use the names of "
                f"llp's own settings. Got {clash} instead."
            )
        settings.update(self.study_settings)
        return settings

    def _prior_trainer(
        self, info: DatasetInfo, recorder: StudyRecorder | None
    ) -> tuple[MetaModelTrainer, tuple[str, ...]]:
        """The prior (:func:`llp.knowledge.build_prior`) with this study's flags, read
        from the knowledge base the study is recorded in (opened once), as it was when
        the study was first created: a resumed study sees the prior it started with."""
        from llp.executors._process import available_cores
        from llp.knowledge import build_prior, prior_flags

        built = build_prior(
            self.space,
            prior=self.prior,
            knowledge_base=None if recorder is None else recorder.knowledge_base,
            exclude_datasets=(info.fingerprint,),
            exclude_groups=self.exclude_groups,
            recorded_before=None if recorder is None else recorder.created_at,
            flags=prior_flags({**self.feature_flags, "measure_flatness": self._measuring}),
            seed=self.seed,
            # Fitted before any evaluation runs: the workers' cores are free then.
            n_jobs=None if self.n_workers is None else min(self.n_workers, available_cores()),
        )
        return built.trainer, built.sources

    def _prior_configs(
        self, trainer: MetaModelTrainer, info: DatasetInfo, n: int
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, float]]:
        """The zero-shot pick, the prior's configurations best first (the pick, then
        :meth:`MetaModelTrainer.prior_candidates`: the best past configurations by mean
        rank, then earlier studies' best ones) and their prior scores (mean percentile
        rank over the prior's studies, or the surrogate's predicted rank)."""
        ranked = trainer.prior_candidates(info.meta_features, self.model_family, n)
        scores = {canonical_config_json(c): r for c, r, _ in ranked if r is not None}
        if ranked:  # the first is the zero-shot pick (MetaModelTrainer.zero_shot)
            return ranked[0][0], [c for c, _, _ in ranked], scores
        pick = trainer.zero_shot(info.meta_features, self.model_family)  # the predictor's
        if pick is None:
            return None, [], scores
        if math.isfinite(pick.predicted_quantile):
            scores[canonical_config_json(pick.config)] = pick.predicted_quantile
        return pick.config, [pick.config], scores


#: The actions of :class:`PredictionRecord` for the scheduler's decisions.
_PREDICTION_ACTIONS = {"proposed": "propose", "promoted": "promote", "kept out": "keep out"}


def _with_measurements(rungs: Sequence[float], study: StudyResult) -> tuple[PredictionRecord, ...]:
    """The study's proposals and promotion decisions (proposals dropped before they
    trained left out) next to what the configurations then measured."""
    final: dict[int, tuple[float | None, float]] = {}
    configs: dict[int, Mapping[str, Any]] = {}
    for e in study.evaluations:
        configs[e.trial_id] = e.config
        top = final.get(e.trial_id)
        if top is None or e.resource >= top[1]:
            score = e.score if e.status is EvaluationStatus.COMPLETE else None
            final[e.trial_id] = (score, e.resource)
    dropped = {d.trial_id for d in study.decisions if d.action == "dropped"}
    out = []
    for d in study.decisions:
        action = _PREDICTION_ACTIONS.get(d.action)
        if action is None or d.trial_id is None or d.trial_id in dropped:
            continue
        predicted = d.prior_score if d.action == "proposed" else d.predicted
        decided_on = None
        if d.action == "promoted" and d.rung is not None:
            decided_on = rungs[d.rung - 1]
        elif d.action == "kept out":
            decided_on = d.fraction
        out.append(
            PredictionRecord(
                trial_id=d.trial_id,
                iteration=d.bracket,
                action=action,
                config=dict(configs.get(d.trial_id, {})),
                predicted=math.nan if predicted is None else predicted,
                uncertainty=math.nan if d.uncertainty is None else d.uncertainty,
                measured_final=final.get(d.trial_id, (None, 0.0))[0],
                measured_resource=final.get(d.trial_id, (None, None))[1],
                source=d.source or "",
                posterior=math.nan if d.posterior is None else d.posterior,
                decided_on=decided_on,
            )
        )
    return tuple(out)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
