"""Meta-guided multi-fidelity search: :class:`MetaProbing` and
:meth:`MetaProbing.run_meta_optimization`.

The meta-model learns from past datasets (the knowledge shipped with llp and every study
in your knowledge base) which hyperparameters suit a dataset like yours and which partial
learning curves end well, and steers successive halving with it.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from llp import __version__
from llp._checks import check_int
from llp.data import FidelityData
from llp.meta import MetaModelTrainer
from llp.runner import (
    DatasetInfo,
    ProgressCallback,
    Runner,
    StudyRecorder,
    StudyResult,
    configs_digest,
    describe_dataset,
    noise_margin,
    select_incumbent,
)
from llp.search import MetaGuidedScheduler
from llp.space import SearchSpace, canonical_config_json
from llp.training import EvaluationStatus, Trainer
from llp.training._trainer import DatasetFn, ModelFn, OptimizerFn
from llp.two_tier_probing import _JobEvaluator

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["MetaProbing", "MetaProbingResult", "PredictionRecord", "PriorSummary"]

Prior = Literal["default", "shipped", "store", "none"]
#: Standard errors by which a configuration must beat the meta-model's pick, on the same
#: validation split and the same data, to replace it as the answer.
NOISE_Z = 1.0
#: How many of the prior's best configurations reach the top rung without screening.
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

    ``predicted`` is the surrogate's predicted percentile rank of the configuration's
    final score (1 = best of the study); ``measured_final`` is the score it reached at
    the highest fidelity this study trained it on, and ``measured_resource`` that fidelity.
    """

    trial_id: int
    iteration: int
    action: str
    config: Mapping[str, Any]
    predicted: float
    uncertainty: float
    measured_final: float | None
    measured_resource: float | None


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
    #: Why the answer is what it is, when the meta-model's pick was judged against what
    #: the search measured (kept within validation noise, or beaten beyond it).
    answer_note: str | None = None

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
                    **{f"config.{k}": v for k, v in p.config.items()},
                }
                for p in self.predictions
            ]
        )


class MetaProbing:
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
    ) -> None:
        inferred = SearchSpace.from_configs(configs)
        self.space = space if space is not None else inferred
        self.configs = [self.space.validate(c) for c in configs]
        if prior not in ("default", "shipped", "store", "none"):
            raise ValueError(
                "The 'prior' parameter of MetaProbing must be one of 'default', 'shipped', "
                f"'store', 'none'. Got {prior!r} instead."
            )
        self.prior = prior
        self.exclude_groups = tuple(exclude_groups)
        self.seed = check_int("seed", seed, owner="MetaProbing")
        self.max_epochs = check_int("max_epochs", max_epochs, min_value=1, owner="MetaProbing")
        self.n_workers = (
            None
            if n_workers is None
            else check_int("n_workers", n_workers, min_value=1, owner="MetaProbing")
        )
        self.storage = storage
        self.study_name = study_name
        self.model_family = model_family
        self.dataset_name = dataset_name
        self.dataset_group = dataset_group
        self.executor = executor
        self.show_progress = show_progress
        self.feature_flags = {
            "use_dataset_features": bool(use_dataset_features),
            "use_training_features": bool(use_training_features),
            "use_landscape_features": bool(use_landscape_features),
        }
        self._trainer = Trainer(
            model_fn,
            optimizer_fn,
            criterion,
            dataset_fn,
            device=device,
            objective=objective,
            seed=self.seed,
        )
        self._dataset_info: DatasetInfo | None = None
        self.result_: MetaProbingResult | None = None

    @classmethod
    def from_arrays(
        cls,
        X: Any,
        y: Any,
        configs: Sequence[Mapping[str, Any]],
        model_fn: ModelFn,
        criterion: nn.Module | Callable[..., Any],
        optimizer_fn: OptimizerFn,
        *,
        val_fraction: float = 0.2,
        batch_size: int = 64,
        standardize: bool = False,
        seed: int = 0,
        **kwargs: Any,
    ) -> MetaProbing:
        """Build from arrays (llp makes the fidelity subsets and validation split)."""
        data = FidelityData(
            X,
            y,
            val_fraction=val_fraction,
            batch_size=batch_size,
            standardize=standardize,
            seed=seed,
        )
        return cls(configs, model_fn, data, criterion, optimizer_fn, seed=seed, **kwargs)

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
    ) -> dict[str, Any]:
        """Explore on small fractions, train the meta-model, predict and vary, refine on
        larger fractions, select the best.

        1. Meta-features of the dataset (cached in the knowledge base by fingerprint).
        2. Prior: the shipped knowledge and the knowledge base's other datasets.
        3. The meta-model's pick for this dataset (:meth:`MetaModelTrainer.zero_shot
           <llp.meta.MetaModelTrainer.zero_shot>`) runs first, so the study has a good
           answer after one cheap evaluation. The first iteration at the smallest rung
           trains it, your configs and the prior's further configurations,
           ``num_initial_configs`` in all. The prior's runners-up (the next
           ``portfolio_size - 1`` configurations by mean rank) skip the small rungs and
           are trained on ``max_resource`` in the last iteration.
        4. Between iterations the meta-model is refitted on prior + this study; the top
           ``1 / reduction_factor`` of the other configurations by *predicted final*
           score move up a rung, the pick is carried up with them, and newcomers chosen
           by expected improvement are screened on the smallest rung.
        5. The resource grows by ``reduction_factor`` per iteration up to
           ``max_resource``.
        6. The answer is judged at the highest fidelity reached: the best configuration
           there, except that the meta-model's pick stays the answer unless another
           beats it by more than validation noise (:func:`llp.runner.noise_margin`, one
           standard error on the validation split). The full history, including the
           answer the study held after every evaluation (``incumbents``), is on
           :attr:`result_`.

        ``portfolio_size`` is how many of the prior's best configurations reach the top
        rung without screening (the pick included); 1 races the pick against the
        search's finds alone. It defaults to 3 because on held-out datasets racing the
        top 3 at full data, with the noise margin, was never worse than the pick alone
        and sometimes better, while screening them on small fractions first lost them
        to configurations that were lucky on little data
        (``benchmarks/selection_noise.py``, BENCHMARKS.md).

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
        self._trainer.measure_flatness = bool(measure_flatness)
        self._measuring = bool(measure_flatness)
        say = self._say
        info = self._describe()
        recorder = self._open_recorder(
            info,
            min_resource,
            max_resource,
            reduction_factor,
            measure_flatness,
            num_initial_configs,
            num_iterations,
            portfolio_size,
        )
        started = time.perf_counter()
        trainer, sources = self._prior_trainer(
            info, recorded_before=recorder.created_at if recorder else None
        )
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
        )
        initial, zero_shot, runners_up = self._initial_configs(
            trainer, info, num_initial_configs, portfolio_size
        )
        if zero_shot is not None:
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in zero_shot.items())
            say(
                f"meta-model predicts for this dataset: {shown} (runs first, is carried to "
                "every rung, and stays the answer unless beaten by more than noise)"
            )
        if runners_up:
            say(
                f"the prior's next {len(runners_up)} configurations skip the small rungs: "
                f"trained on {max_resource:.0%} of the data in the last iteration"
            )
        scheduler = MetaGuidedScheduler(
            self.space,
            initial,
            trainer=trainer,
            meta_features=info.meta_features,
            model_family=self.model_family,
            min_resource=min_resource,
            max_resource=max_resource,
            reduction_factor=reduction_factor,
            num_iterations=num_iterations,
            epochs=self.max_epochs,
            seed=self.seed,
            dataset=info.fingerprint,
            anchor=zero_shot,
            runners_up=runners_up,
        )
        runner = Runner(
            scheduler,
            _JobEvaluator(self._trainer),
            executor=self.executor,
            n_workers=self.n_workers,
            progress_callback=progress_callback,
            show_progress=self.show_progress,
            description="meta-probing",
            recorder=recorder,
        )
        try:
            study = runner.run()
        finally:
            if recorder is not None and recorder.knowledge_base is not self.storage:
                recorder.knowledge_base.close()
        study, incumbents, answer_note = self._judge(
            study, scheduler.anchor_trial, (scheduler.rungs[-1], self.max_epochs)
        )
        self.result_ = MetaProbingResult(
            best_config=study.best_config,
            best_score=study.best_score,
            study=study,
            zero_shot_config=zero_shot,
            anchor_config=zero_shot,
            incumbents=incumbents,
            answer_note=answer_note,
            initial_configs=tuple(initial),
            predictions=_with_measurements(scheduler, study),
            prior=prior,
            meta_features=dict(info.meta_features),
            rungs=tuple(scheduler.rungs),
            surrogate_used=tuple(scheduler.surrogate_used),
        )
        say(
            f"best: {study.best_score:.4f} on {study.best_evaluation.resource:.0%} of the "
            f"data after {len(study.evaluations)} evaluations, cost "
            f"{study.total_cost:.2f} full-data epochs"
        )
        return dict(study.best_config)

    # ------------------------------------------------------------------ helpers
    def _judge(
        self, study: StudyResult, anchor_trial: int | None, judge_at: tuple[float, int]
    ) -> tuple[StudyResult, tuple[tuple[float, int], ...], str | None]:
        """The final choice and the anytime answers: the meta-model's pick until
        something beats it on the top rung's data by more than validation noise."""
        n_val = int(self._describe().n_val or 0)  # 0: no noise model, the best score wins
        objective = str(self._trainer.objective)
        incumbents: list[tuple[float, int]] = []
        cost = 0.0
        evaluations = list(study.evaluations)
        for i, e in enumerate(evaluations):
            cost += e.result.cost + e.result.probe_cost
            best = select_incumbent(
                evaluations[: i + 1],
                anchor_trial=anchor_trial,
                n_val=n_val,
                objective=objective,
                z=NOISE_Z,
                judge_at=judge_at,
            )
            if best is not None:
                incumbents.append((cost, best.trial_id))
        final = select_incumbent(
            evaluations,
            anchor_trial=anchor_trial,
            n_val=n_val,
            objective=objective,
            z=NOISE_Z,
            judge_at=judge_at,
        )
        if final is None or anchor_trial is None:
            return study, tuple(incumbents), None

        def margin(evaluation: Any) -> str:
            value = noise_margin(float(evaluation.score or 0.0), n_val, objective, NOISE_Z)
            return f"margin {value:.4f} on {n_val} validation examples"

        raw = study.best_evaluation
        if final.trial_id != anchor_trial:
            picks = [
                e
                for e in evaluations
                if e.trial_id == anchor_trial
                and e.fidelity == final.fidelity
                and e.status is EvaluationStatus.COMPLETE
            ]
            note = (
                f"trial {final.trial_id} ({final.score:.4f}) beat the meta-model's pick "
                f"(trial {anchor_trial}, {picks[-1].score:.4f}) by more than validation "
                f"noise ({margin(picks[-1])})"
                if picks
                else f"trial {final.trial_id} ({final.score:.4f}) measured best; the "
                f"meta-model's pick (trial {anchor_trial}) has no result on that data"
            )
        elif final is raw:
            note = f"the meta-model's pick (trial {anchor_trial}) measured best"
        else:
            why = (
                f"the best measured, trial {raw.trial_id} at {raw.score:.4f}, is within "
                f"validation noise of it ({margin(final)})"
                if raw.fidelity == final.fidelity
                else f"the study ended before {judge_at[0]:.0%} of the data"
            )
            note = f"kept the meta-model's pick (trial {final.trial_id}, {final.score:.4f}): {why}"
            study = replace(
                study,
                best_config=dict(final.config),
                best_score=float(final.score or 0.0),
                best_evaluation=final,
            )
        self._say(note)
        return study, tuple(incumbents), note

    def _say(self, message: str) -> None:
        if self.show_progress:
            from rich.console import Console

            Console(stderr=True, highlight=False).print(message)

    def _describe(self) -> DatasetInfo:
        if self._dataset_info is None:
            self._dataset_info = describe_dataset(
                self._trainer.data,
                name=self.dataset_name,
                group=self.dataset_group,
                seed=self.seed,
            )
        return self._dataset_info

    def _open_recorder(
        self,
        info: DatasetInfo,
        min_resource: float,
        max_resource: float,
        reduction_factor: int,
        measure_flatness: bool,
        num_initial_configs: int,
        num_iterations: int,
        portfolio_size: int,
    ) -> StudyRecorder | None:
        """Get or create the study before reading the prior: a resumed study's prior is
        what was recorded before the study was first created."""
        settings = {
            "min_resource": min_resource,
            "max_resource": max_resource,
            "reduction_factor": reduction_factor,
            "num_initial_configs": num_initial_configs,
            "num_iterations": num_iterations,
            "portfolio_size": portfolio_size,
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
            "answer_noise_z": NOISE_Z,
            "n_val": info.n_val,
        }
        if self.storage is None:
            return None
        return StudyRecorder.open(
            self.storage,
            study_name=self.study_name,
            kind="MetaProbing",
            settings=settings,
            space=self.space.to_dict(),
            seed=self.seed,
            objective=self._trainer.objective,
            dataset=info,
            model_family=self.model_family,
        )

    def _prior_trainer(
        self, info: DatasetInfo, *, recorded_before: Any = None
    ) -> tuple[MetaModelTrainer, tuple[str, ...]]:
        flags = dict(self.feature_flags)
        # Without probes in this study its rows carry no landscape features; the prior's
        # must not either, or the surrogate would read "missing" as a signal.
        flags["use_landscape_features"] = flags["use_landscape_features"] and self._measuring
        trainer = MetaModelTrainer(self.space, random_state=self.seed, **flags)
        sources: list[str] = []
        if self.prior in ("default", "shipped"):
            from llp.knowledge import load_shipped_experiences

            trainer.add(
                load_shipped_experiences(
                    exclude_groups=self.exclude_groups, exclude_datasets=(info.fingerprint,)
                )
            )
            sources.append("shipped knowledge")
        if self.prior in ("default", "store") and self.storage is not None:
            from llp.store import KnowledgeBase

            kb = (
                self.storage
                if isinstance(self.storage, KnowledgeBase)
                else KnowledgeBase.open(self.storage)
            )
            try:
                trainer.add_from_store(
                    kb,
                    exclude_datasets=(info.fingerprint,),
                    exclude_groups=self.exclude_groups,
                    recorded_before=recorded_before,
                )
            finally:
                if kb is not self.storage:
                    kb.close()
            sources.append("knowledge base")
        return trainer, tuple(sources)

    def _initial_configs(
        self, trainer: MetaModelTrainer, info: DatasetInfo, n: int, portfolio_size: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, list[dict[str, Any]]]:
        """The user's configs (best predicted first when there are too many), topped up
        with the meta-model's suggestions; also the zero-shot prediction and the prior's
        runners-up (which skip the small rungs, so they are not among the first)."""
        # The prior's best configurations on average (leave-one-group-out on the shipped
        # knowledge their mean rank picked better than the surrogate's per-dataset
        # ranking): the pick's runners-up, then fillers for the first rung.
        portfolio = trainer.portfolio(self.model_family, n + portfolio_size, same_family=False)
        zero_shot = None
        runners_up: list[dict[str, Any]] = []
        pick = trainer.zero_shot(info.meta_features, self.model_family)
        if pick is not None:
            zero_shot = pick.config
            key = canonical_config_json(zero_shot)
            runners_up = [c for c in portfolio if canonical_config_json(c) != key][
                : portfolio_size - 1
            ]
        room = n - 1 if zero_shot is not None else n
        # Your configs, but for the runners-up among them: those go to the top rung.
        running_up = {canonical_config_json(c) for c in runners_up}
        chosen = [c for c in self.configs if canonical_config_json(c) not in running_up]
        if len(chosen) > room and trainer.surrogate_ is not None:
            import numpy as np

            rows = np.vstack(
                [trainer.surrogate_row(info.meta_features, self.model_family, c) for c in chosen]
            )
            mean, _ = trainer.predict_final(rows)
            chosen = [chosen[i] for i in np.argsort(-mean, kind="stable")]
        chosen = chosen[: max(room, 0)]
        if zero_shot is not None:
            key = canonical_config_json(zero_shot)
            chosen = [zero_shot] + [c for c in chosen if canonical_config_json(c) != key]
        seen = {canonical_config_json(c) for c in [*chosen, *runners_up]}
        # Then the rest of the portfolio, then the meta-model's suggestions.
        extra = (
            [
                s.config
                for s in trainer.suggest(info.meta_features, self.model_family, n, seed=self.seed)
            ]
            if len(portfolio) < n + portfolio_size
            else []
        )
        for config in [*portfolio, *extra]:
            if len(chosen) >= n:
                break
            key = canonical_config_json(config)
            if key not in seen:
                chosen.append(config)
                seen.add(key)
        return chosen, zero_shot, runners_up


def _with_measurements(
    scheduler: MetaGuidedScheduler, study: StudyResult
) -> tuple[PredictionRecord, ...]:
    final: dict[int, tuple[float | None, float]] = {}
    configs: dict[int, Mapping[str, Any]] = {}
    for e in study.evaluations:
        configs[e.trial_id] = e.config
        top = final.get(e.trial_id)
        if top is None or e.resource >= top[1]:
            score = e.score if e.status is EvaluationStatus.COMPLETE else None
            final[e.trial_id] = (score, e.resource)
    return tuple(
        PredictionRecord(
            trial_id=p.trial_id,
            iteration=p.iteration,
            action=p.action,
            config=dict(configs.get(p.trial_id, {})),
            predicted=p.predicted,
            uncertainty=p.uncertainty,
            measured_final=final.get(p.trial_id, (None, 0.0))[0],
            measured_resource=final.get(p.trial_id, (None, None))[1],
        )
        for p in scheduler.predictions
    )


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
