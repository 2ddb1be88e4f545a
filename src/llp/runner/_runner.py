from __future__ import annotations

import concurrent.futures as cf
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from llp._checks import check_int
from llp.runner._recording import StudyRecorder
from llp.search import Answer, Decision, Evaluation, Job, Scheduler
from llp.training import WORKER_LOST, EvaluationResult, EvaluationStatus, Objective

ProgressCallback = Callable[["ProgressEvent"], None]


class WorkerLostError(RuntimeError):
    """The worker running an evaluation was lost before it returned a result.

    A worker process killed by a signal or the out-of-memory killer, a crash in native
    code, a Dask worker that died or lost its connection: the evaluation itself did not
    fail, the machinery under it did. Executors set it on the future of every evaluation
    they lost; the :class:`Runner` runs such an evaluation again, up to ``max_retries``
    times, then records it as failed with the reason.
    """


class InProcessExecutor(cf.Executor):
    """Runs each submitted call at once, in the calling thread (the default executor).

    Exceptions are stored on the returned future, as with any executor.
    """

    #: Evaluations it runs at once.
    n_workers = 1

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        if self._shutdown:
            raise RuntimeError("cannot submit to an executor that was shut down")
        future: cf.Future[Any] = cf.Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True


@dataclass(frozen=True)
class ProgressEvent:
    """What a ``progress_callback`` receives after each finished evaluation and at the end.

    Attributes
    ----------
    kind : {"evaluation", "finished"}
    evaluation : Evaluation or None
        The evaluation that just finished (``None`` for ``"finished"``).
    n_finished : int
        Evaluations finished so far.
    n_planned : int or None
        Evaluations the schedule plans in all, when known.
    position : str
        Where the scheduler is (bracket / rung / resource).
    elapsed : float
        Seconds since the run started.
    total_cost : float
        Compute spent so far, in full-data-epoch equivalents.
    best_score, best_config, best_resource
        The study's answer so far (:meth:`llp.search.Scheduler.incumbent`; None before
        any evaluation succeeded): its score, configuration and data share.
    answer : Answer or None
        That answer, with the rule that chose it and why.
    """

    kind: Literal["evaluation", "finished"]
    evaluation: Evaluation | None
    n_finished: int
    n_planned: int | None
    position: str
    elapsed: float
    total_cost: float
    best_score: float | None
    best_config: Mapping[str, Any] | None
    best_resource: float | None
    answer: Answer | None = None


@dataclass(frozen=True)
class StudyResult:
    """Everything a search measured.

    Attributes
    ----------
    best_config : dict
        The study's answer (:meth:`llp.search.Scheduler.incumbent` after the last
        evaluation): the best configuration at the highest fidelity reached, by the
        scheduler's rule.
    best_score : float
        Its score (higher is better; see ``objective``).
    best_evaluation : Evaluation
    evaluations : tuple of Evaluation
        Every evaluation in the order it finished, with config, resource, curve, status,
        cost and why it was run.
    answers : tuple of (Answer or None)
        The answer after each evaluation (same order as ``evaluations``; ``None`` until
        one succeeded): what the study would have returned had it stopped there.
    decisions : tuple of Decision
        The scheduler's decisions, as data, in the order made (empty for schedulers that
        do not record them).
    total_cost : float
        Compute spent, in full-data-epoch equivalents: training plus any landscape
        probes (``probe_cost``).
    planned_cost : float or None
        The training compute the schedule implied when nothing fails (probes excluded).
    wall_seconds : float
        Wall time of the run.
    evaluation_seconds : float
        Sum of the evaluations' own wall times (the rest is scheduling and bookkeeping).
    objective : str
    """

    best_config: dict[str, Any]
    best_score: float
    best_evaluation: Evaluation
    evaluations: tuple[Evaluation, ...]
    total_cost: float
    planned_cost: float | None
    wall_seconds: float
    evaluation_seconds: float
    objective: str
    study_name: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    answers: tuple[Answer | None, ...] = ()
    decisions: tuple[Decision, ...] = ()

    @property
    def answer(self) -> Answer | None:
        """The final answer with its rule and note (``None`` for a result built by hand
        without answers)."""
        return self.answers[-1] if self.answers else None

    @property
    def probe_cost(self) -> float:
        """The part of ``total_cost`` spent on landscape probes."""
        return sum(e.result.probe_cost for e in self.evaluations)

    @property
    def n_reused(self) -> int:
        """Evaluations taken from the knowledge base instead of being run (resume)."""
        return sum(e.reused for e in self.evaluations)

    @property
    def n_failed(self) -> int:
        return sum(e.status is EvaluationStatus.FAILED for e in self.evaluations)

    def to_dataframe(self) -> Any:
        """One row per evaluation (pandas DataFrame)."""
        import pandas as pd

        rows = []
        for e in self.evaluations:
            rows.append(
                {
                    "job_id": e.job.job_id,
                    "trial_id": e.trial_id,
                    "bracket": e.job.bracket,
                    "rung": e.job.rung,
                    "resource": e.resource,
                    "epochs": e.fidelity.epochs,
                    "status": e.status.value,
                    "score": e.score,
                    "cost": e.cost,
                    "seconds": e.result.seconds,
                    "reason": e.job.reason,
                    "reused": e.reused,
                    "failure_reason": e.result.failure_reason,
                    **{f"config.{k}": v for k, v in e.config.items()},
                }
            )
        return pd.DataFrame(rows)


def noise_margin(score: float, n_val: int, objective: str, z: float = 1.0) -> float:
    """How far another configuration's validation score must be above ``score`` before
    the difference is more than validation noise.

    For ``val_accuracy`` it is ``z`` standard errors of the difference of two accuracies
    measured on ``n_val`` examples (binomial, ``sqrt(2 p (1 - p) / n_val)``, with ``p``
    floored at one error in ``n_val`` so a perfect score is not certainty). A loss has no
    such model: its margin is 0.
    """
    if objective != "val_accuracy" or n_val <= 0 or z <= 0:
        return 0.0
    p = min(max(float(score), 1.0 / n_val), 1.0 - 1.0 / n_val)
    return float(z * math.sqrt(2.0 * p * (1.0 - p) / n_val))


class StudyFailedError(RuntimeError):
    """Raised when a study ends without a single successful evaluation."""


class Runner:
    """Drives a :class:`~llp.search.Scheduler` through an executor.

    The runner asks the scheduler for jobs, keeps up to ``n_workers`` of them in flight,
    tells the scheduler each result, and reports progress. It is the only place results
    flow through, so it is where they are recorded.

    Parameters
    ----------
    scheduler : Scheduler
    evaluate : callable
        ``evaluate(job) -> EvaluationResult``; must not raise for a bad configuration
        (:class:`~llp.training.Trainer` records those as failed).
    executor : concurrent.futures.Executor, optional
        Defaults to :class:`InProcessExecutor`; see :mod:`llp.executors` for local
        processes and Dask.
    n_workers : int, optional
        Jobs kept in flight at once. Defaults to the executor's ``n_workers`` attribute
        (the executors of :mod:`llp.executors` have one), else 1.
    progress_callback : callable, optional
        Called with a :class:`ProgressEvent` after every evaluation and at the end.
    show_progress : bool, default=True
        Show a rich progress bar on the terminal.
    description : str, default="search"
    recorder : StudyRecorder, optional
        Where results are written as they arrive; jobs it already holds are reused
        instead of being run again (resuming a study).
    max_retries : int, default=2
        How many times a job is run again after the worker running it was lost
        (:class:`WorkerLostError`, or a broken ``concurrent.futures`` pool). Retries run
        one at a time, so a job that kills its worker cannot take the others down with it
        again. A job lost more often is recorded as ``FAILED`` with the reason
        ``"worker lost: ..."``; if ``evaluate`` has a method ``failed_result(job,
        reason)`` that record comes from it. Resuming the study runs such a job again
        (the loss was the worker's, not the configuration's) and stores its new result
        in place of the failure.

    Notes
    -----
    An exception raised by ``evaluate`` itself (not a lost worker) ends the run: it is
    a mistake every evaluation would make (the trainer records bad configurations as
    failed instead of raising). Everything finished before it is recorded already.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        evaluate: Callable[[Job], EvaluationResult],
        *,
        executor: cf.Executor | None = None,
        n_workers: int | None = None,
        progress_callback: ProgressCallback | None = None,
        show_progress: bool = True,
        description: str = "search",
        recorder: StudyRecorder | None = None,
        max_retries: int = 2,
    ) -> None:
        if not isinstance(scheduler, Scheduler):
            raise TypeError(
                f"The 'scheduler' parameter must be a Scheduler. Got {type(scheduler).__name__}."
            )
        if progress_callback is not None and not callable(progress_callback):
            raise TypeError(
                "The 'progress_callback' parameter must be callable or None. "
                f"Got {type(progress_callback).__name__} instead."
            )
        self.scheduler = scheduler
        self.evaluate = evaluate
        if executor is not None and not isinstance(executor, cf.Executor):
            raise TypeError(
                "The 'executor' parameter of Runner must be a concurrent.futures.Executor "
                "(see llp.executors.make_executor) or None. "
                f"Got {type(executor).__name__} instead."
            )
        self.executor = executor if executor is not None else InProcessExecutor()
        if n_workers is None:
            n_workers = getattr(self.executor, "n_workers", 1)
        self.n_workers = check_int("n_workers", n_workers, min_value=1, owner="Runner")
        self.max_retries = check_int("max_retries", max_retries, min_value=0, owner="Runner")
        self.progress_callback = progress_callback
        self.show_progress = show_progress
        self.description = description
        self.recorder = recorder

    def run(self) -> StudyResult:
        """Run the schedule to completion and return what it measured.

        Raises
        ------
        StudyFailedError
            If no evaluation succeeded; the message carries the first failure's reason.
        """
        from llp.runner._display import ProgressDisplay

        started = time.perf_counter()
        evaluations: list[Evaluation] = []
        flight = _Flight(self.executor, self.evaluate, self.max_retries)
        total_cost = 0.0
        answers: list[Answer | None] = []
        decisions = self.scheduler.drain_decisions()
        if self.recorder is not None:
            self.recorder.record_decisions(decisions)
        reused: set[int] = set()
        display = ProgressDisplay(
            self.description, self.scheduler.n_planned_jobs, enabled=self.show_progress
        )
        try:
            with display:
                while True:
                    while len(flight) < self.n_workers:
                        if flight.has_retries():
                            flight.submit_next_retry()
                            break
                        job = self.scheduler.ask()
                        if job is None:
                            break
                        stored = self.recorder.lookup(job) if self.recorder else None
                        if stored is not None:
                            reused.add(job.job_id)
                            flight.add_finished(job, stored)
                        else:
                            flight.submit(job)
                    if not len(flight):
                        if self.scheduler.is_finished():
                            break
                        raise RuntimeError(
                            f"{type(self.scheduler).__name__} is neither finished nor able to "
                            "propose a job with nothing in flight; this is a scheduler bug."
                        )
                    # Tell results in job order so the outcome never depends on timing.
                    for job, result in flight.wait_for_results():
                        was_reused = job.job_id in reused
                        self.scheduler.tell(job, result)
                        evaluation = Evaluation(job, result, reused=was_reused)
                        evaluations.append(evaluation)
                        answer = self.scheduler.incumbent(evaluations)
                        answers.append(answer)
                        new = self.scheduler.drain_decisions()
                        decisions += new
                        if self.recorder is not None:
                            # The evaluation, the decisions it led to and the answer
                            # after it, in one transaction.
                            self.recorder.record(
                                job,
                                result,
                                stored=was_reused,
                                decisions=new,
                                answer=answer,
                            )
                        total_cost += result.cost + result.probe_cost
                        best = answer.evaluation if answer is not None else None
                        event = ProgressEvent(
                            kind="evaluation",
                            evaluation=evaluation,
                            n_finished=len(evaluations),
                            n_planned=self.scheduler.n_planned_jobs,
                            position=self.scheduler.describe_position(),
                            elapsed=time.perf_counter() - started,
                            total_cost=total_cost,
                            best_score=best.score if best else None,
                            best_config=dict(best.config) if best else None,
                            best_resource=best.resource if best else None,
                            answer=answer,
                        )
                        display.update(event)
                        for message in self.scheduler.drain_messages():
                            display.log(message)
                        if self.progress_callback is not None:
                            self.progress_callback(event)
        finally:
            flight.cancel_all()
        wall = time.perf_counter() - started
        answer = answers[-1] if answers else None
        final = answer.evaluation if answer is not None else None
        if final is None:
            first = next((e for e in evaluations), None)
            why = first.result.failure_reason if first else "no evaluation ran"
            raise StudyFailedError(
                f"All {len(evaluations)} evaluations failed; the first failed because: {why}"
            )
        if self.progress_callback is not None:
            self.progress_callback(
                ProgressEvent(
                    kind="finished",
                    evaluation=None,
                    n_finished=len(evaluations),
                    n_planned=self.scheduler.n_planned_jobs,
                    position="done",
                    elapsed=wall,
                    total_cost=total_cost,
                    best_score=final.score,
                    best_config=dict(final.config),
                    best_resource=final.resource,
                    answer=answer,
                )
            )
        return StudyResult(
            best_config=dict(final.config),
            best_score=float(final.score or 0.0),
            best_evaluation=final,
            evaluations=tuple(evaluations),
            total_cost=total_cost,
            planned_cost=self.scheduler.planned_cost,
            wall_seconds=wall,
            evaluation_seconds=sum(e.result.seconds for e in evaluations if not e.reused),
            objective=final.result.objective,
            study_name=self.recorder.study_name if self.recorder else None,
            metadata={"retries": flight.n_retries},
            answers=tuple(answers),
            decisions=tuple(decisions),
        )


class _Flight:
    """The jobs of one run that are in flight, and the retries of those whose worker was
    lost (the runner's bookkeeping between the executor and the scheduler)."""

    def __init__(
        self, executor: cf.Executor, evaluate: Callable[[Job], EvaluationResult], max_retries: int
    ) -> None:
        self.executor = executor
        self.evaluate = evaluate
        self.max_retries = max_retries
        self.futures: dict[cf.Future[EvaluationResult], Job] = {}
        self.n_retries = 0
        self._losses: dict[int, int] = {}
        self._retries: deque[Job] = deque()
        self._retry_in_flight: int | None = None
        self._objective: Objective | None = None

    def __len__(self) -> int:
        return len(self.futures)

    def has_retries(self) -> bool:
        """Whether lost jobs wait to run again (no new job starts until they have)."""
        return bool(self._retries) or self._retry_in_flight is not None

    def submit(self, job: Job) -> None:
        try:
            future = self.executor.submit(self.evaluate, job)
        except cf.BrokenExecutor as exc:
            raise RuntimeError(
                f"The {type(self.executor).__name__} given as 'executor' is broken (one of its "
                "workers died) and takes no more evaluations. Use "
                "llp.executors.make_executor('process', n_workers=...), which replaces a "
                "broken pool; every evaluation finished so far is recorded."
            ) from exc
        self.futures[future] = job

    def submit_next_retry(self) -> None:
        """Run the next lost job again, alone among retries: if it kills its worker
        again, it cannot take another retried job with it."""
        if self._retry_in_flight is None and self._retries:
            job = self._retries.popleft()
            self._retry_in_flight = job.job_id
            self.submit(job)

    def add_finished(self, job: Job, result: EvaluationResult) -> None:
        future: cf.Future[EvaluationResult] = cf.Future()
        future.set_result(result)
        self.futures[future] = job

    def wait_for_results(self) -> list[tuple[Job, EvaluationResult]]:
        """Wait until at least one job finishes; its results in job order (lost jobs are
        queued to run again instead, or become a failed result after too many losses)."""
        done, _ = cf.wait(list(self.futures), return_when=cf.FIRST_COMPLETED)
        out = []
        for future in sorted(done, key=lambda f: self.futures[f].job_id):
            job = self.futures.pop(future)
            if self._retry_in_flight == job.job_id:
                self._retry_in_flight = None
            try:
                result = future.result()
            except (WorkerLostError, cf.BrokenExecutor) as exc:
                losses = self._losses[job.job_id] = self._losses.get(job.job_id, 0) + 1
                if losses <= self.max_retries:
                    self.n_retries += 1
                    self._retries.append(job)
                    continue
                result = self._lost_result(job, exc, losses)
            self._objective = result.objective
            out.append((job, result))
        return out

    def cancel_all(self) -> None:
        for future in self.futures:
            future.cancel()

    def _lost_result(self, job: Job, exc: BaseException, losses: int) -> EvaluationResult:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        times = "once" if losses == 1 else f"{losses} times"
        reason = f"{WORKER_LOST}{detail} (lost {times}; max_retries={self.max_retries})"
        make = getattr(self.evaluate, "failed_result", None)
        if callable(make):
            result = make(job, reason)
            if isinstance(result, EvaluationResult):
                return result
        return EvaluationResult.not_measured(
            job.config,
            job.fidelity,
            objective=self._objective or "val_accuracy",
            seed=0,
            reason=reason,
        )
