"""Plain successive halving (and Hyperband) for PyTorch models, with optional
loss-landscape measurements on every evaluation.

This is the classic multi-fidelity baseline that :mod:`llp.meta_probing` builds on and is
compared against.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from llp.data import FidelityData
from llp.runner import ProgressCallback, StudyResult, configs_digest
from llp.runner._session import SessionFacade, StudySession
from llp.search import Hyperband, RandomSearch, Scheduler, SuccessiveHalving
from llp.space import SearchSpace
from llp.training._trainer import DatasetFn, ModelFn, OptimizerFn

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["StudyResult", "TwoTierProbing"]


class TwoTierProbing(SessionFacade):
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
    resume : bool, default=True
        Continue a stored study of the same name; ``False``: it must be new
        (:class:`~llp.store.StudyExistsError` otherwise, before anything is trained).

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
        resume: bool = True,
    ) -> None:
        self._session = StudySession(
            "TwoTierProbing",
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
        self.result_: StudyResult | None = None

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
        session = self._session
        session.trainer.measure_flatness = bool(measure_flatness)
        full = {
            **settings,
            "epochs": self.max_epochs,
            "measure_flatness": bool(measure_flatness),
            "configs": configs_digest(self.configs),
        }
        with session.recording(type(scheduler).__name__, full) as recorder:
            self.result_ = session.run(
                scheduler, recorder, progress_callback=progress_callback, description=description
            )
        return self.result_
