"""From ``--budget`` to a schedule: what the search can start with and how it goes on.

The budget is compute in full-data-epoch equivalents (an epoch over 25 % of the data
costs 0.25), as :meth:`llp.meta_probing.MetaProbing.run_meta_optimization` counts it:
the study spends it in Hyperband brackets (:class:`llp.search.MetaGuidedScheduler`) and
stops when what is left cannot train another configuration on the top rung. The plan:

- the rungs: ``iterations`` data shares growing by ``reduction_factor`` up to all the
  data, without the top ones while one evaluation there would cost more than half the
  budget (:func:`llp.search.affordable_rungs`);
- the first bracket: the most configurations whose successive-halving bracket costs at
  most half the budget, so that the other half goes to brackets guided by what the first
  one measured. With a prior, that first bracket is widened where it would screen too
  little (both rules chosen on the development tasks and confirmed on the test tasks,
  BENCHMARKS.md; without a prior the command's starting configuration alone did better
  on the development tasks, so a cold start keeps the half-budget bracket):

  - when what it leaves cannot carry another configuration to the top rung (a budget of
    two to three full trainings), it takes the most configurations the whole budget
    carries: a bracket of one configuration would make the meta-model's pick the answer
    before anything is measured;
  - when the budget reaches every rung but half of it buys fewer configurations than a
    full successive-halving bracket (``reduction_factor ** (rungs - 1)``, one left on
    the top rung after halving on every rung: budgets under about eight full
    trainings), it takes that many, or as many as the whole budget carries. Brackets of
    one or two configurations carried the pick to the top rung beside one challenger,
    which the prior then outweighed. Where the top rungs are out of reach (under about
    one full training) the answer comes from a small share of the data, whose scores
    say less than the prior: the plan is left as it is (a full bracket there did worse
    with a right prior on the development tasks);
- the brackets the whole budget buys when every evaluation costs what it is planned to
  cost (:func:`llp.search.simulate_brackets`); failures only leave more.

Landscape probes are paid from the budget: a budget that cannot pay for the most one
evaluation's probes may cost trains nothing (as MetaProbing refuses it); beyond that they
are counted as they are measured, and the plan estimates them for information.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llp.cli._errors import CliError
from llp.search import affordable_rungs, bracket_cost, rung_resources, simulate_brackets
from llp.search._base import format_share

#: Never start more configurations than this, whatever the budget.
MAX_INITIAL_CONFIGS = 512


@dataclass(frozen=True)
class Plan:
    """The schedule a budget buys.

    Attributes
    ----------
    num_initial_configs : int
        Configurations of the first bracket.
    rungs : tuple of float
        Data fraction of each rung.
    reduction_factor, epochs : int
    n_jobs : int
        Evaluations the schedule runs when nothing fails.
    cost : float
        Their training cost (full-data-epoch equivalents), at most the budget.
    probe_cost : float
        Estimated landscape-probe cost of one evaluation.
    budget : float
    brackets : int
        Brackets the budget buys.
    """

    num_initial_configs: int
    rungs: tuple[float, ...]
    reduction_factor: int
    epochs: int
    n_jobs: int
    cost: float
    probe_cost: float
    budget: float
    brackets: int = 1

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
        return (
            f"{self.num_initial_configs} configuration"
            f"{'s' if self.num_initial_configs != 1 else ''} to start, then "
            f"{self.brackets - 1} more bracket{'s' if self.brackets != 2 else ''} "
            f"guided by what they measure; rungs {shares} of the data, {self.epochs} epochs "
            f"each; about {self.n_jobs} evaluations, {self.cost:.1f} of {self.budget:g} "
            f"full-data epochs of training{probes}"
        )


def probe_cost_per_evaluation(n_train: int, *, measure_flatness: bool) -> float:
    """Upper bound of the cheap landscape tier's cost for one evaluation: at most
    ``CHEAP_TIER_MAX_COST_FB`` passes over the probe set (at most ``PROBE_SIZE``
    training examples), in full-data-epoch equivalents."""
    if not measure_flatness:
        return 0.0
    from llp.training._trainer import probe_cost_bound

    return probe_cost_bound(n_train)


class BudgetTooSmall(CliError):
    """Not even one evaluation on the smallest rung fits the budget; ``cheapest`` is what
    one would cost (full-data epochs)."""

    def __init__(self, message: str, *, cheapest: float) -> None:
        super().__init__(message)
        self.cheapest = cheapest


def plan_schedule(
    budget: float,
    *,
    epochs: int,
    iterations: int,
    reduction_factor: int,
    probe_cost: float = 0.0,
    with_prior: bool = True,
    num_initial_configs: int | None = None,
) -> Plan:
    """The schedule ``budget`` buys (see the module docstring). ``num_initial_configs``
    fixes the first bracket (a resumed study keeps the one it was planned with).

    Raises
    ------
    BudgetTooSmall
        If not even one evaluation on the smallest rung fits, naming the smallest budget
        that would.
    """
    full = rung_resources(1.0 / reduction_factor ** (iterations - 1), 1.0, reduction_factor)
    rungs = affordable_rungs(full[-iterations:], epochs, budget)
    # Landscape probes are paid from the budget, the first evaluation's included.
    cheapest = rungs[0] * epochs + probe_cost
    if budget < cheapest - 1e-9:
        probes = f" and its landscape probes, up to {probe_cost:.1f}" if probe_cost > 0 else ""
        raise BudgetTooSmall(
            f"The '--budget' option must be at least {math.ceil(cheapest * 10) / 10:g} "
            f"full-data epochs (one evaluation of {epochs} epochs on "
            f"{format_share(rungs[0])} of the data{probes}) to train anything. Got "
            f"{budget:g} instead; raise it, or lower --epochs or raise --iterations"
            + (", or leave out --flatness." if probe_cost > 0 else "."),
            cheapest=cheapest,
        )
    n = num_initial_configs or _most_configs(rungs, reduction_factor, epochs, budget / 2)
    brackets = simulate_brackets(n, rungs, reduction_factor, epochs, budget)
    one_bracket = len(brackets) == 1
    full_bracket = reduction_factor ** (len(rungs) - 1)
    narrow = len(rungs) == iterations and n < full_bracket
    if num_initial_configs is None and with_prior and (one_bracket or narrow):
        most = _most_configs(rungs, reduction_factor, epochs, budget)
        n = most if one_bracket else min(most, full_bracket)
        brackets = simulate_brackets(n, rungs, reduction_factor, epochs, budget)
    n_jobs = 0
    cost = 0.0
    for start, size in brackets:
        alive = size
        for _ in range(start, len(rungs)):
            n_jobs += alive
            alive = max(1, alive // reduction_factor)
        cost += bracket_cost(size, rungs, reduction_factor, epochs, start)
    return Plan(
        n, tuple(rungs), reduction_factor, epochs, n_jobs, cost, probe_cost, budget, len(brackets)
    )


def _most_configs(rungs: list[float], eta: int, epochs: int, cost: float) -> int:
    """The most configurations (at least one) whose bracket costs at most ``cost``."""
    n = 1
    while n < MAX_INITIAL_CONFIGS and bracket_cost(n + 1, rungs, eta, epochs) <= cost + 1e-9:
        n += 1
    return n


__all__ = [
    "MAX_INITIAL_CONFIGS",
    "BudgetTooSmall",
    "Plan",
    "plan_schedule",
    "probe_cost_per_evaluation",
]
