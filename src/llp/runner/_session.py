"""One study's lifecycle, behind both facades (``TwoTierProbing``, ``MetaProbing``).

A :class:`StudySession` builds the trainer (so bad arguments fail when the facade is
made), describes the dataset once, opens the knowledge base once per run (a path is
opened and closed here; a :class:`~llp.store.KnowledgeBase` object given by the caller is
used and left open), gets or creates the study, drives a scheduler through the
:class:`~llp.runner.Runner` and closes what it opened.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Self

from llp._checks import check_int
from llp.features import DatasetInfo, describe_dataset
from llp.runner._recording import StudyRecorder
from llp.runner._runner import ProgressCallback, Runner, StudyResult
from llp.search import Job, Scheduler
from llp.space import SearchSpace
from llp.training import EvaluationResult, Trainer
from llp.training._weights import KeptWeights, top_trials_of

if TYPE_CHECKING:
    import torch

    from llp.store import KnowledgeBase


class StudySession:
    """Everything one study needs besides its scheduler.

    Parameters
    ----------
    owner : str
        The facade's name, used in error messages (``"MetaProbing"``).
    configs, model_fn, dataset_fn, criterion, optimizer_fn, max_epochs, device, seed,
    objective, space, n_workers, executor, show_progress, storage, study_name,
    dataset_name, dataset_group, model_family
        As documented by the facades.
    resume : bool, default=True
        A stored study of the same name is continued; ``False``: it is an error
        (:class:`~llp.store.StudyExistsError`), raised before anything is trained.
    """

    def __init__(
        self,
        owner: str,
        configs: Sequence[Mapping[str, Any]],
        model_fn: Callable[..., Any],
        dataset_fn: Any,
        criterion: Any,
        optimizer_fn: Callable[..., Any],
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
        self.owner = owner
        inferred = SearchSpace.from_configs(configs)
        self.space = space if space is not None else inferred
        self.configs = [self.space.validate(c) for c in configs]
        self.max_epochs = check_int("max_epochs", max_epochs, min_value=1, owner=owner)
        self.seed = check_int("seed", seed, owner=owner)
        self.n_workers = (
            None
            if n_workers is None
            else check_int("n_workers", n_workers, min_value=1, owner=owner)
        )
        self.executor = executor
        self.show_progress = show_progress
        self.storage = storage
        self.study_name = study_name
        self.dataset_name = dataset_name
        self.dataset_group = dataset_group
        self.model_family = model_family
        self.resume = bool(resume)
        # Built once, so that bad arguments fail here and not at the first run.
        self.trainer = Trainer(
            model_fn,
            optimizer_fn,
            criterion,
            dataset_fn,
            device=device,
            objective=objective,
            seed=self.seed,
        )
        self._dataset_info: DatasetInfo | None = None

    def describe(self, knowledge_base: KnowledgeBase | None = None) -> DatasetInfo:
        """The dataset's fingerprint and meta-features, computed once per session; with a
        knowledge base, meta-features it already holds for the fingerprint are reused
        (and data it holds under the key an older llp gave a loader keeps that key)."""
        if self._dataset_info is None:
            cached = stored_sizes = None
            if knowledge_base is not None:

                def cached(fingerprint: str) -> Mapping[str, float] | None:
                    record = knowledge_base.get_dataset(fingerprint)
                    return None if record is None else record.meta_features

                def stored_sizes() -> set[int | None]:
                    return {record.n_samples for record in knowledge_base.list_datasets()}

            self._dataset_info = describe_dataset(
                self.trainer.data,
                name=self.dataset_name,
                group=self.dataset_group,
                seed=self.seed,
                cached=cached,
                stored_sizes=stored_sizes,
            )
        return self._dataset_info

    @contextlib.contextmanager
    def recording(
        self,
        kind: str,
        settings: Mapping[str, Any] | Callable[[DatasetInfo], Mapping[str, Any]],
    ) -> Iterator[StudyRecorder | None]:
        """The study's recorder (``None`` without storage), open for the block: the
        knowledge base is opened once here (unless the caller gave an open one) and
        closed at the end. ``settings`` may be a function of the dataset's description
        (a study's settings can depend on it, e.g. the validation size)."""
        if self.storage is None:
            yield None
            return
        from llp.store import KnowledgeBase

        kb = self.storage if isinstance(self.storage, KnowledgeBase) else None
        opened = kb is None
        if kb is None:
            kb = KnowledgeBase.open(self.storage)
        try:
            info = self.describe(kb)
            recorder = StudyRecorder.open(
                kb,
                study_name=self.study_name,
                kind=kind,
                settings=settings(info) if callable(settings) else settings,
                space=self.space.to_dict(),
                seed=self.seed,
                objective=self.trainer.objective,
                dataset=info,
                model_family=self.model_family,
                create_only=not self.resume,
            )
            # One process at a time runs a study: a second one stops here, untrained.
            with kb.study_lock(recorder.study_name):
                yield recorder
        finally:
            if opened:
                kb.close()

    def run(
        self,
        scheduler: Scheduler,
        recorder: StudyRecorder | None,
        *,
        progress_callback: ProgressCallback | None,
        description: str,
    ) -> StudyResult:
        """Drive ``scheduler`` to the end through the runner, recording into ``recorder``."""
        keep = self.kept_weights(scheduler, recorder)
        runner = Runner(
            scheduler,
            JobEvaluator(self.trainer, keep),
            executor=self.executor,
            n_workers=self.n_workers,
            progress_callback=progress_callback,
            show_progress=self.show_progress,
            description=description,
            recorder=recorder,
        )
        result = runner.run()
        if keep is not None:
            answer = result.answer
            keep.keep_only(
                top_trials_of(
                    result.evaluations, None if answer is None else answer.evaluation.trial_id
                )
            )
        return result

    def kept_weights(
        self, scheduler: Scheduler, recorder: StudyRecorder | None
    ) -> KeptWeights | None:
        """Where the study keeps the weights of its top rung for its report
        (:mod:`llp.training._weights`); ``None`` without a knowledge base (no report can
        name the study) or with the cache turned off."""
        if recorder is None:
            return None
        rungs = getattr(scheduler, "rungs", None) or [1.0]
        dataset = self._dataset_info
        return KeptWeights.for_study(
            recorder.study_name,
            self.seed,
            recorder.created_at,
            None if dataset is None else dataset.fingerprint,
            min_fraction=max(rungs),
        )


class JobEvaluator:
    """Picklable ``evaluate(job)`` around a trainer (for process and Dask executors);
    with ``keep``, the weights of what it trains on the top rung are kept for the
    study's report."""

    def __init__(self, trainer: Trainer, keep: KeptWeights | None = None) -> None:
        self.trainer = trainer
        self.keep = keep

    def __call__(self, job: Job) -> EvaluationResult:
        if self.keep is None or not self.keep.wants(job.fidelity):
            return self.trainer.evaluate(job.config, job.fidelity, trial_id=job.trial_id)
        model, result = self.trainer.fit(job.config, job.fidelity, trial_id=job.trial_id)
        if model is not None:
            self.keep.save(model, job.trial_id, job.fidelity)
        return result

    def failed_result(self, job: Job, reason: str) -> EvaluationResult:
        """The record of ``job`` when no worker could finish it (the runner asks for it
        after the workers running it were lost too often): nothing was measured."""
        from llp.training import trial_seed

        return EvaluationResult.not_measured(
            job.config,
            job.fidelity,
            objective=self.trainer.objective,
            seed=trial_seed(self.trainer.seed, job.trial_id),
            reason=reason,
        )


def _delegated(name: str, doc: str) -> property:
    def get(self: SessionFacade) -> Any:
        return getattr(self._session, name)

    def set_(self: SessionFacade, value: Any) -> None:
        setattr(self._session, name, value)

    return property(get, set_, doc=doc)


class SessionFacade:
    """What :class:`~llp.two_tier_probing.TwoTierProbing` and
    :class:`~llp.meta_probing.MetaProbing` share: a :class:`StudySession` (``_session``)
    whose settings read as the facade's attributes, and :meth:`from_arrays`."""

    _session: StudySession

    space = _delegated("space", "The search space.")
    configs = _delegated("configs", "The user's configurations, validated in the space.")
    max_epochs = _delegated("max_epochs", "Epochs per evaluation.")
    seed = _delegated("seed", "Seed of initialisation, batch order and sampling.")
    n_workers = _delegated("n_workers", "Evaluations in flight at once.")
    executor = _delegated("executor", "Where evaluations run.")
    show_progress = _delegated("show_progress", "Whether a progress bar is shown.")
    storage = _delegated("storage", "The knowledge base (path, URL or object).")
    study_name = _delegated("study_name", "The study's name in the knowledge base.")
    dataset_name = _delegated("dataset_name", "Label stored with the dataset.")
    dataset_group = _delegated("dataset_group", "Group stored with the dataset.")
    model_family = _delegated("model_family", "Label stored with the study.")
    resume = _delegated("resume", "Whether a stored study of the same name is continued.")

    @classmethod
    def from_arrays(
        cls,
        X: Any,
        y: Any,
        configs: Sequence[Mapping[str, Any]],
        model_fn: Callable[..., Any],
        criterion: Any,
        optimizer_fn: Callable[..., Any],
        *,
        val_fraction: float = 0.2,
        batch_size: int = 64,
        standardize: bool = False,
        seed: int = 0,
        **kwargs: Any,
    ) -> Self:
        """Build from arrays: llp holds the data as tensors and makes the fidelity
        subsets (nested, stratified) and the held-out validation split itself."""
        from llp.data import FidelityData

        data = FidelityData(
            X,
            y,
            val_fraction=val_fraction,
            batch_size=batch_size,
            standardize=standardize,
            seed=seed,
        )
        return cls(configs, model_fn, data, criterion, optimizer_fn, seed=seed, **kwargs)  # type: ignore[call-arg]


__all__ = ["JobEvaluator", "SessionFacade", "StudySession"]
