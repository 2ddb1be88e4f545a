"""Invariants every scheduler keeps, whatever its parameters, its failures and the order
in which results come back (Hypothesis):

- it never spends more than its planned budget, nor runs more evaluations than planned;
- a configuration only ever moves up in resource, and is evaluated once per fidelity;
- the same seed gives the same evaluations and the same best configuration, whatever
  the number of workers (up to completion order).
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import itertools
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llp.meta import MetaModelTrainer
from llp.runner import Runner, select_best
from llp.search import (
    Evaluation,
    Hyperband,
    Job,
    MetaGuidedScheduler,
    RandomSearch,
    Scheduler,
    SuccessiveHalving,
)
from llp.space import Categorical, Float, SearchSpace
from llp.training import EvaluationResult
from tests.conftest import fake_result

SPACE = SearchSpace([Float("x", 0.0, 1.0), Categorical("act", ["relu", "tanh"])])


@functools.cache
def meta_features() -> dict[str, float]:
    """Real dataset meta-features (the meta-guided scheduler's surrogate reads them)."""
    from sklearn.datasets import load_iris

    from llp.features import DatasetFeatureExtractor

    X, y = load_iris(return_X_y=True)
    return dict(DatasetFeatureExtractor(seed=0).extract_features(X, y))


# ---------------------------------------------------------------------- the objective
@dataclass(frozen=True)
class Objective:
    """The fake objective, failing for a deterministic share of configurations."""

    failure_rate: float = 0.0
    salt: int = 0

    def fails(self, config: Any) -> bool:
        key = zlib.crc32(repr((round(float(config["x"]), 12), config["act"], self.salt)).encode())
        return (key % 1000) < self.failure_rate * 1000

    def __call__(self, job: Job) -> EvaluationResult:
        if self.fails(job.config):
            return fake_result(job, None, failed=True)
        x = float(job.config["x"])
        bonus = 0.05 if job.config["act"] == "tanh" else 0.0
        return fake_result(job, 0.8 * (1.0 - (x - 0.3) ** 2 + bonus + 0.1 * job.fidelity.fraction))


# ---------------------------------------------------------------------- schedulers
@dataclass(frozen=True)
class Plan:
    """How to build one scheduler (twice, for the comparisons) and what it may spend."""

    kind: str
    seed: int
    eta: int
    min_resource: float
    n: int
    epochs: int

    def build(self) -> Scheduler:
        if self.kind == "successive halving":
            return SuccessiveHalving(
                SPACE.sample(self.n, seed=self.seed),
                min_resource=self.min_resource,
                max_resource=1.0,
                reduction_factor=self.eta,
                epochs=self.epochs,
            )
        if self.kind == "hyperband":
            return Hyperband(
                SPACE,
                min_resource=self.min_resource,
                max_resource=1.0,
                reduction_factor=self.eta,
                epochs=self.epochs,
                seed=self.seed,
            )
        if self.kind == "random search":
            return RandomSearch(
                SPACE,
                n_trials=self.n,
                resource=self.min_resource,
                epochs=self.epochs,
                seed=self.seed,
            )
        return MetaGuidedScheduler(
            SPACE,
            SPACE.sample(self.n, seed=self.seed),
            # No prior: it learns from this study alone (few trees keep it fast).
            trainer=MetaModelTrainer(SPACE, n_estimators=8, random_state=self.seed),
            meta_features=meta_features(),
            model_family=None,
            min_resource=self.min_resource,
            max_resource=1.0,
            reduction_factor=self.eta,
            num_iterations=3,
            epochs=self.epochs,
            # Room for several brackets.
            budget=1.5 * max(self.n, 4) * self.epochs,
            seed=self.seed,
        )

    def budget(self, scheduler: Scheduler) -> tuple[float, int]:
        """The most compute and evaluations the schedule may use (all succeeding)."""
        if isinstance(scheduler, MetaGuidedScheduler):
            # Its budget, of which no evaluation costs less than one on the bottom rung.
            return scheduler.budget, int(scheduler.budget / (scheduler.rungs[0] * self.epochs))
        assert scheduler.planned_cost is not None and scheduler.n_planned_jobs is not None
        return scheduler.planned_cost, scheduler.n_planned_jobs


def plans(max_configs: int = 20) -> st.SearchStrategy[Plan]:
    return st.builds(
        Plan,
        kind=st.sampled_from(["successive halving", "hyperband", "random search", "meta-guided"]),
        seed=st.integers(0, 2**16),
        eta=st.integers(2, 4),
        min_resource=st.sampled_from([0.05, 0.125, 0.25, 0.5, 1.0]),
        n=st.integers(1, max_configs),
        epochs=st.integers(1, 3),
    )


def drive(
    scheduler: Scheduler, evaluate: Callable[[Job], EvaluationResult], *, in_flight: int, seed: int
) -> list[Evaluation]:
    """Ask for up to ``in_flight`` jobs, tell them back in a random order, until done:
    the scheduler's view of ``in_flight`` workers finishing at random times."""
    rng = random.Random(seed)
    pending: list[Job] = []
    done: list[Evaluation] = []
    while True:
        while len(pending) < in_flight:
            job = scheduler.ask()
            if job is None:
                break
            pending.append(job)
        if not pending:
            assert scheduler.is_finished(), "nothing pending, nothing to ask, not finished"
            return done
        job = pending.pop(rng.randrange(len(pending)))
        result = evaluate(job)
        scheduler.tell(job, result)
        done.append(Evaluation(job, result))


def measured(evaluations: list[Evaluation]) -> tuple[list[tuple[Any, ...]], Any]:
    """The evaluations up to completion order, and the best configuration."""
    rows = sorted(
        (
            e.trial_id,
            e.resource,
            e.fidelity.epochs,
            e.status.value,
            e.score,
            e.job.rung,
            *sorted(e.config.items()),
        )
        for e in evaluations
    )
    best = select_best(evaluations)
    return rows, None if best is None else dict(best.config)


# ---------------------------------------------------------------------- the invariants
@given(
    plan=plans(),
    failure_rate=st.sampled_from([0.0, 0.2, 0.6]),
    in_flight=st.integers(1, 6),
    order=st.integers(0, 2**16),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_scheduler_exceeds_its_budget(
    plan: Plan, failure_rate: float, in_flight: int, order: int
) -> None:
    scheduler = plan.build()
    max_cost, max_count = plan.budget(scheduler)
    done = drive(scheduler, Objective(failure_rate), in_flight=in_flight, seed=order)
    spent = sum(e.cost for e in done)
    assert spent <= max_cost + 1e-9
    assert len(done) <= max_count
    if failure_rate == 0.0 and plan.kind != "meta-guided":
        assert spent == pytest.approx(max_cost)  # and spends all of it when nothing fails


@given(
    plan=plans(),
    failure_rate=st.sampled_from([0.0, 0.3]),
    in_flight=st.integers(1, 6),
    order=st.integers(0, 2**16),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_promotions_only_go_up_in_resource(
    plan: Plan, failure_rate: float, in_flight: int, order: int
) -> None:
    done = drive(plan.build(), Objective(failure_rate), in_flight=in_flight, seed=order)
    by_trial: dict[tuple[int, int], list[Evaluation]] = {}
    for e in sorted(done, key=lambda e: e.job.job_id):
        by_trial.setdefault((e.job.bracket, e.trial_id), []).append(e)
    for history in by_trial.values():
        resources = [e.resource for e in history]
        assert resources == sorted(set(resources)), resources  # strictly increasing
        assert len({dict(e.config).__repr__() for e in history}) == 1  # one config per trial
        for lower, upper in itertools.pairwise(history):
            assert lower.status.value == "complete", "a failed evaluation was promoted"
            assert "promot" in upper.job.reason


@given(
    plan=plans(),
    failure_rate=st.sampled_from([0.0, 0.3]),
    in_flight=st.integers(2, 8),
    order=st.integers(0, 2**16),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_same_seed_gives_the_same_results_whatever_the_completion_order(
    plan: Plan, failure_rate: float, in_flight: int, order: int
) -> None:
    objective = Objective(failure_rate)
    serial = drive(plan.build(), objective, in_flight=1, seed=0)
    parallel = drive(plan.build(), objective, in_flight=in_flight, seed=order)
    assert measured(parallel) == measured(serial)


class JitteredObjective:
    """The objective, sleeping a random fraction of a millisecond per job so that
    threads finish in an order that changes from run to run."""

    def __init__(self, objective: Objective, seed: int) -> None:
        self.objective = objective
        self.rng = random.Random(seed)

    def __call__(self, job: Job) -> EvaluationResult:
        time.sleep(self.rng.random() * 1e-3)
        return self.objective(job)


@given(
    plan=plans(max_configs=12),
    n_workers=st.integers(2, 4),
    jitter=st.integers(0, 2**16),
)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_results_are_identical_with_any_number_of_thread_workers(
    plan: Plan, n_workers: int, jitter: int
) -> None:
    objective = Objective(0.2, salt=plan.seed)

    def run(workers: int, evaluate: Callable[[Job], EvaluationResult]) -> Any:
        with cf.ThreadPoolExecutor(workers) as pool:
            runner = Runner(
                plan.build(), evaluate, executor=pool, n_workers=workers, show_progress=False
            )
            try:
                return measured(list(runner.run().evaluations))
            except Exception as exc:  # every evaluation failed: compare that instead
                return type(exc).__name__

    assert run(n_workers, JitteredObjective(objective, jitter)) == run(1, objective)


def test_the_meta_guided_search_spends_its_budget_when_nothing_fails() -> None:
    """What it leaves unspent cannot train one more configuration on the top rung."""
    plan = Plan("meta-guided", seed=3, eta=2, min_resource=0.125, n=8, epochs=1)
    scheduler = plan.build()
    assert isinstance(scheduler, MetaGuidedScheduler)
    done = drive(scheduler, Objective(), in_flight=1, seed=0)
    spent = sum(e.cost for e in done)
    assert len({e.job.bracket for e in done}) > 1
    assert scheduler.budget - scheduler.rungs[-1] < spent <= scheduler.budget + 1e-9
