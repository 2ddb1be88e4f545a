"""From ``--budget`` to a schedule: how many configurations the search can start with.

The budget is training compute in full-data-epoch equivalents (an epoch over 25 % of the
data costs 0.25), like the schedulers' ``planned_cost``. Landscape probes come on top:
their cost does not grow with the data share (a fixed probe set of at most 128 examples),
so on a tiny dataset they can cost more than the training itself; the plan estimates
them and the results report them, but they do not shrink the search.

The meta-guided schedule is simulated exactly as :class:`llp.search.MetaGuidedScheduler`
runs it when nothing fails: ``n`` configurations on the smallest rung, the top
``1 / reduction_factor`` promoted each iteration, half as many newcomers screened on the
smallest rung. With a prior that gives the meta-model a pick (the shipped knowledge),
the pick is one of the ``n`` and is carried to every rung on top of the promoted ones,
and the prior's runners-up are trained on the top rung in the last iteration. The plan
takes the largest ``n`` whose schedule fits the budget; failures only make the real run
cheaper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llp.cli._errors import CliError
from llp.search._base import format_share, rung_resources

#: Never start more configurations than this, whatever the budget.
MAX_INITIAL_CONFIGS = 512


@dataclass(frozen=True)
class Plan:
    """The schedule a budget buys.

    Attributes
    ----------
    num_initial_configs : int
        Configurations of the first iteration.
    rungs : tuple of float
        Data fraction of each iteration.
    min_resource, max_resource : float
    reduction_factor, epochs : int
    n_jobs : int
        Evaluations the schedule runs when nothing fails.
    cost : float
        Their training cost (full-data-epoch equivalents).
    probe_cost : float
        Estimated landscape-probe cost of one evaluation (on top of ``cost``).
    runners_up : int
        The prior's runners-up trained on the top rung (``portfolio_size - 1`` for
        :meth:`~llp.meta_probing.MetaProbing.run_meta_optimization`).
    """

    num_initial_configs: int
    rungs: tuple[float, ...]
    reduction_factor: int
    epochs: int
    n_jobs: int
    cost: float
    probe_cost: float
    runners_up: int = 0

    @property
    def min_resource(self) -> float:
        return self.rungs[0]

    @property
    def max_resource(self) -> float:
        return self.rungs[-1]

    def describe(self) -> str:
        shares = " → ".join(format_share(r) for r in self.rungs)
        probes = (
            f" (+ about {self.probe_cost * self.n_jobs:.1f} for landscape probes)"
            if self.probe_cost
            else ""
        )
        runners = (
            f" + the prior's {self.runners_up} runner{'s' if self.runners_up > 1 else ''}-up "
            "on the top rung"
            if self.runners_up
            else ""
        )
        return (
            f"{self.num_initial_configs} configurations to start{runners}, rungs {shares} "
            f"of the data, {self.epochs} epochs each; about {self.n_jobs} evaluations, "
            f"{self.cost:.1f} full-data epochs of training{probes}"
        )


def probe_cost_per_evaluation(n_train: int, *, measure_flatness: bool) -> float:
    """Upper bound of the cheap landscape tier's cost for one evaluation: at most
    ``CHEAP_TIER_MAX_COST_FB`` passes over the probe set (at most ``PROBE_SIZE``
    training examples), in full-data-epoch equivalents."""
    if not measure_flatness:
        return 0.0
    from llp.landscape import CHEAP_TIER_MAX_COST_FB
    from llp.training._trainer import PROBE_SIZE

    return CHEAP_TIER_MAX_COST_FB * min(PROBE_SIZE, n_train) / n_train


def simulate(
    n: int,
    rungs: tuple[float, ...],
    reduction_factor: int,
    epochs: int,
    *,
    anchored: bool = False,
    runners_up: int = 0,
) -> tuple[int, float]:
    """``(number of evaluations, training cost)`` of the meta-guided schedule started
    with ``n`` configurations, when nothing fails. ``anchored``: one of the ``n`` is the
    meta-model's pick, carried to every rung; ``runners_up``: configurations trained on
    the top rung in the last iteration."""
    last = len(rungs) - 1
    # Rung index of each job of the current iteration (the anchor's is tracked apart).
    batch = [0] * (n - 1 if anchored else n)
    anchor = anchored
    extra = [last] * runners_up
    if last == 0:
        batch += extra
    jobs, cost = 0, 0.0
    for k in range(len(rungs)):
        jobs += len(batch) + anchor
        cost += sum(rungs[r] * epochs for r in batch) + (rungs[k] * epochs if anchor else 0.0)
        if k == last:
            break
        promoted_now = sum(1 for r in batch if r == k)
        keep = max(1, math.floor(max(promoted_now, 1) / reduction_factor))
        batch = [k + 1] * min(keep, len(batch))
        if k + 1 < last:
            batch += [0] * max(1, keep // 2)
        else:
            batch += extra
    return jobs, cost


def plan_schedule(
    budget: float,
    *,
    epochs: int,
    iterations: int,
    reduction_factor: int,
    probe_cost: float = 0.0,
    anchored: bool = False,
    runners_up: int = 0,
) -> Plan:
    """The largest schedule whose training cost fits ``budget``; ``probe_cost`` (per
    evaluation) is only recorded on the plan. Up to ``runners_up`` of the prior's
    runners-up are planned on the top rung: as many as leave room for a search at all.

    Raises
    ------
    CliError
        If not even one configuration fits, naming the smallest budget that would.
    """
    rungs = tuple(
        rung_resources(1.0 / reduction_factor ** (iterations - 1), 1.0, reduction_factor)
    )[-iterations:]
    best: Plan | None = None
    for runners in range(max(runners_up, 0), -1, -1):
        for n in range(1, MAX_INITIAL_CONFIGS + 1):
            jobs, cost = simulate(
                n, rungs, reduction_factor, epochs, anchored=anchored, runners_up=runners
            )
            if cost > budget + 1e-9:
                break
            best = Plan(n, rungs, reduction_factor, epochs, jobs, cost, probe_cost, runners)
        if best is not None:
            break
    if best is None:
        _, needed = simulate(1, rungs, reduction_factor, epochs, anchored=anchored)
        raise CliError(
            f"The '--budget' option must be at least {math.ceil(needed * 10) / 10:g} "
            f"full-data epochs for this schedule ({iterations} iterations of {epochs} "
            f"epochs). Got {budget:g} instead; raise it, or lower --epochs or --iterations."
        )
    return best


__all__ = ["MAX_INITIAL_CONFIGS", "Plan", "plan_schedule", "probe_cost_per_evaluation", "simulate"]
