"""Schedulers with one ask/tell protocol: random search, successive halving, Hyperband and
the meta-guided search; the posterior rule that weighs a prior against measurements."""

from __future__ import annotations

from llp._decisions import DECISION_ACTIONS
from llp.search._base import (
    BEST_RULE,
    Answer,
    Decision,
    Evaluation,
    Job,
    Scheduler,
    best_answer,
    rank_for_promotion,
    rung_resources,
    score_order,
    select_best,
)
from llp.search._evidence import (
    ANSWER_RULE,
    Judgement,
    PriorFit,
    answer_note,
    judge,
    prior_fit,
    select_answer,
    validation_variance,
)
from llp.search._hyperband import Hyperband
from llp.search._meta_guided import (
    SOURCES,
    MetaGuidedScheduler,
    SurrogateCheck,
    affordable_rungs,
    bracket_cost,
    bracket_sizes,
    expected_improvement,
    simulate_brackets,
)
from llp.search._random import RandomSearch
from llp.search._successive_halving import SuccessiveHalving

__all__ = [
    "ANSWER_RULE",
    "BEST_RULE",
    "DECISION_ACTIONS",
    "SOURCES",
    "Answer",
    "Decision",
    "Evaluation",
    "Hyperband",
    "Job",
    "Judgement",
    "MetaGuidedScheduler",
    "PriorFit",
    "RandomSearch",
    "Scheduler",
    "SuccessiveHalving",
    "SurrogateCheck",
    "affordable_rungs",
    "answer_note",
    "best_answer",
    "bracket_cost",
    "bracket_sizes",
    "expected_improvement",
    "judge",
    "prior_fit",
    "rank_for_promotion",
    "rung_resources",
    "score_order",
    "select_answer",
    "select_best",
    "simulate_brackets",
    "validation_variance",
]
