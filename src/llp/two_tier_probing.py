"""Plain successive halving (and Hyperband) for PyTorch models, with optional
loss-landscape measurements on every evaluation.

This is the classic multi-fidelity baseline that :mod:`llp.meta_probing` builds on and is
compared against.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from llp._checks import check_int
from llp.data import FidelityData
from llp.runner import (
    DatasetInfo,
    ProgressCallback,
    Runner,
    StudyRecorder,
    StudyResult,
    configs_digest,
    describe_dataset,
)
from llp.search import Hyperband, Job, RandomSearch, Scheduler, SuccessiveHalving
from llp.space import SearchSpace
from llp.training import EvaluationResult, EvaluationStatus, Trainer, trial_seed
from llp.training._trainer import DatasetFn, ModelFn, OptimizerFn

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["StudyResult", "TwoTierProbing"]


class TwoTierProbing:
    """Successive halving over data fractions for a PyTorch model.

    Parameters
    ----------
    configs : list of dict
        Candidate configurations. They also define the search space (see
        :meth:`llp.space.SearchSpace.from_configs`) used by Hyperband and random search.
    model_fn : callable
        ``model_fn(config) -> nn.Module``.
    dataset_fn : callable or FidelityData
        ``dataset_fn(fraction) -> (train_loader, val_loader)``. A :class:`FidelityData`
        (see :meth:`from_arrays`) is used directly on tensors, which is much faster.
    criterion : nn.Module
        Loss, e.g. ``nn.CrossEntropyLoss()``.
    optimizer_fn : callable
        ``optimizer_fn(model, config) -> torch.optim.Optimizer``.
    max_epochs : int, default=5
        Epochs each evaluation trains for, at every rung.
    device : str, default="auto"
        ``"auto"`` uses CUDA when available.
    seed : int, default=0
        Seed of model initialisation, batch order and sampling.
    objective : {"auto", "val_accuracy", "val_loss"}, default="auto"
    space : SearchSpace, optional
        Search space for Hyperband and random search; inferred from ``configs`` if omitted.
    n_workers : int, optional
        Evaluations in flight at once; by default as many as ``executor`` has workers
        (one in-process).
    executor : concurrent.futures.Executor, optional
        Where evaluations run; in-process by default.
    show_progress : bool, default=True
        Show a progress bar on the terminal.
    storage : str, path or KnowledgeBase, optional
        Knowledge base every evaluation is written to (a SQLite path, ``":memory:"`` or a
        ``postgresql://`` URL). With it, running the same study again resumes it: each
        evaluation already stored is reused, none is counted twice.
    study_name : str, optional
        Name of the study in the knowledge base; by default derived from the dataset,
        the settings and the seed, so an identical run resumes the previous one.
    dataset_name, dataset_group, model_family : str, optional
        Labels stored with the dataset and the study (the meta-model pools knowledge by
        model family and validates by dataset group).

    Examples
    --------
    >>> probe = TwoTierProbing(configs, create_model, dataset_fn,
    ...                        nn.CrossEntropyLoss(), create_optimizer)  # doctest: +SKIP
    >>> result = probe.run_successive_halving(0.1, 0.5, 2)  # doctest: +SKIP
    >>> result.best_config, result.total_cost  # doctest: +SKIP
    """

    def __init__(
        self,
        configs: Sequence[Mapping[str, Any]],
        model_fn: ModelFn,
        dataset_fn: DatasetFn | FidelityData,
        criterion: nn.Module | Callable[..., Any],
        optimizer_fn: OptimizerFn,
        *,
        max_epochs: int = 5,
        device: str | torch.device = "auto",
        seed: int = 0,
        objective: Literal["auto", "val_accuracy", "val_loss"] = "auto",
        space: SearchSpace | None = None,
        n_workers: int | None = None,
        executor: cf.Executor | None = None,
        show_progress: bool = True,
        storage: Any = None,
        study_name: str | None = None,
        dataset_name: str | None = None,
        dataset_group: str | None = None,
        model_family: str | None = None,
    ) -> None:
        inferred = SearchSpace.from_configs(configs)
        self.space = space if space is not None else inferred
        self.configs = [self.space.validate(c) for c in configs]
        self.max_epochs = check_int("max_epochs", max_epochs, min_value=1, owner="TwoTierProbing")
        self.seed = check_int("seed", seed, owner="TwoTierProbing")
        self.n_workers = (
            None
            if n_workers is None
            else check_int("n_workers", n_workers, min_value=1, owner="TwoTierProbing")
        )
        self.executor = executor
        self.show_progress = show_progress
        self.storage = storage
        self.study_name = study_name
        self.dataset_name = dataset_name
        self.dataset_group = dataset_group
        self.model_family = model_family
        self._dataset_info: DatasetInfo | None = None
        self._trainer_args: dict[str, Any] = {
            "model_fn": model_fn,
            "optimizer_fn": optimizer_fn,
            "criterion": criterion,
            "data": dataset_fn,
            "device": device,
            "objective": objective,
            "seed": self.seed,
        }
        # Build once so that bad arguments fail here, not at the first run.
        self._trainer = Trainer(**self._trainer_args)
        self.result_: StudyResult | None = None

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
    ) -> TwoTierProbing:
        """Build from arrays: llp holds the data as tensors and makes the fidelity
        subsets (nested, stratified) and the held-out validation split itself."""
        data = FidelityData(
            X,
            y,
            val_fraction=val_fraction,
            batch_size=batch_size,
            standardize=standardize,
            seed=seed,
        )
        return cls(configs, model_fn, data, criterion, optimizer_fn, seed=seed, **kwargs)

    # ------------------------------------------------------------------ runs
    def run_successive_halving(
        self,
        min_resource: float = 0.1,
        max_resource: float = 0.5,
        reduction_factor: int = 2,
        *,
        measure_flatness: bool = False,
        progress_callback: ProgressCallback | None = None,
    ) -> StudyResult:
        """Successive halving over ``configs`` from ``min_resource`` to ``max_resource``.

        Returns
        -------
        StudyResult
            ``best_config`` judged at the highest fidelity reached, every evaluation with
            its curve, status, cost and reason, and ``total_cost`` in full-data-epoch
            equivalents.
        """
        scheduler = SuccessiveHalving(
            self.configs,
            min_resource=min_resource,
            max_resource=max_resource,
            reduction_factor=reduction_factor,
            epochs=self.max_epochs,
        )
        settings = {
            "min_resource": min_resource,
            "max_resource": max_resource,
            "reduction_factor": reduction_factor,
        }
        return self._run(
            scheduler, measure_flatness, progress_callback, "successive halving", settings
        )

    def run_hyperband(
        self,
        min_resource: float = 0.1,
        max_resource: float = 1.0,
        reduction_factor: int = 3,
        *,
        measure_flatness: bool = False,
        progress_callback: ProgressCallback | None = None,
    ) -> StudyResult:
        """Hyperband over the search space; ``configs`` seed the first brackets."""
        scheduler = Hyperband(
            self.space,
            min_resource=min_resource,
            max_resource=max_resource,
            reduction_factor=reduction_factor,
            epochs=self.max_epochs,
            seed=self.seed,
            initial_configs=self.configs,
        )
        settings = {
            "min_resource": min_resource,
            "max_resource": max_resource,
            "reduction_factor": reduction_factor,
        }
        return self._run(scheduler, measure_flatness, progress_callback, "hyperband", settings)

    def run_random_search(
        self,
        n_trials: int,
        resource: float = 1.0,
        *,
        measure_flatness: bool = False,
        progress_callback: ProgressCallback | None = None,
    ) -> StudyResult:
        """Evaluate ``n_trials`` configurations (``configs`` first, then random draws)."""
        scheduler = RandomSearch(
            self.space,
            n_trials=n_trials,
            resource=resource,
            epochs=self.max_epochs,
            seed=self.seed,
            initial_configs=self.configs,
        )
        settings = {"n_trials": n_trials, "resource": resource}
        return self._run(scheduler, measure_flatness, progress_callback, "random search", settings)

    def _run(
        self,
        scheduler: Scheduler,
        measure_flatness: bool,
        progress_callback: ProgressCallback | None,
        description: str,
        settings: dict[str, Any],
    ) -> StudyResult:
        trainer = self._trainer
        trainer.measure_flatness = bool(measure_flatness)
        recorder = self._recorder(scheduler, settings, measure_flatness)
        runner = Runner(
            scheduler,
            _JobEvaluator(trainer),
            executor=self.executor,
            n_workers=self.n_workers,
            progress_callback=progress_callback,
            show_progress=self.show_progress,
            description=description,
            recorder=recorder,
        )
        try:
            self.result_ = runner.run()
        finally:
            if recorder is not None and recorder.knowledge_base is not self.storage:
                recorder.knowledge_base.close()
        return self.result_

    def _recorder(
        self, scheduler: Scheduler, settings: dict[str, Any], measure_flatness: bool
    ) -> StudyRecorder | None:
        if self.storage is None:
            return None
        if self._dataset_info is None:
            self._dataset_info = describe_dataset(
                self._trainer.data,
                name=self.dataset_name,
                group=self.dataset_group,
                seed=self.seed,
            )
        full = {
            **settings,
            "epochs": self.max_epochs,
            "measure_flatness": bool(measure_flatness),
            "configs": configs_digest(self.configs),
        }
        return StudyRecorder.open(
            self.storage,
            study_name=self.study_name,
            kind=type(scheduler).__name__,
            settings=full,
            space=self.space.to_dict(),
            seed=self.seed,
            objective=self._trainer.objective,
            dataset=self._dataset_info,
            model_family=self.model_family,
        )


class _JobEvaluator:
    """Picklable ``evaluate(job)`` around a trainer (for process and Dask executors)."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def __call__(self, job: Job) -> EvaluationResult:
        return self.trainer.evaluate(job.config, job.fidelity, trial_id=job.trial_id)

    def failed_result(self, job: Job, reason: str) -> EvaluationResult:
        """The record of ``job`` when no worker could finish it (the runner asks for it
        after the workers running it were lost too often): nothing was measured."""
        return EvaluationResult(
            config=job.config,
            fidelity=job.fidelity,
            status=EvaluationStatus.FAILED,
            curve=(),
            score=None,
            objective=self.trainer.objective,
            cost=0.0,
            seconds=0.0,
            train_seconds=0.0,
            n_train=0,
            seed=trial_seed(self.trainer.seed, job.trial_id),
            failure_reason=reason,
        )
