"""Equal scores are told apart by the validation loss before the trial id."""

from __future__ import annotations

import math

from llp.search import Evaluation, Job, answer_note, judge, rank_for_promotion, select_best
from llp.search._evidence import Judgement
from llp.training import EvaluationResult, Fidelity, rank_key, tie_loss
from tests.conftest import fake_result
from tests.search.test_schedulers import drive, meta_guided


def evaluation(trial: int, score: float, val_loss: float, fraction: float = 1.0) -> Evaluation:
    job = Job(
        job_id=trial,
        trial_id=trial,
        config={"x": trial / 10},
        fidelity=Fidelity(fraction, 3),
        bracket=0,
        rung=0,
        reason="test",
    )
    return Evaluation(job, fake_result(job, score, val_loss=val_loss))


def test_the_tie_loss_is_the_final_validation_loss_or_infinity() -> None:
    assert tie_loss(evaluation(0, 0.7, 0.42).result) == 0.42
    assert tie_loss(evaluation(0, 0.7, math.nan).result) == math.inf
    job = evaluation(0, 0.7, 0.42).job
    failed = fake_result(job, None, failed=True)
    no_curve = EvaluationResult(**{**failed.__dict__, "curve": ()})
    assert tie_loss(no_curve) == math.inf


def test_the_rank_key_orders_by_score_then_loss_then_trial() -> None:
    results = {
        trial: evaluation(trial, score, loss).result
        for trial, score, loss in [(0, 0.7, 0.6), (1, 0.7, 0.5), (2, 0.8, 0.9), (3, 0.7, 0.5)]
    }
    ordered = sorted(results, key=lambda trial: rank_key(results[trial], trial))
    assert ordered == [2, 1, 3, 0]


def test_equal_accuracies_go_to_the_lower_validation_loss() -> None:
    # Trials 0 and 1 tie at 0.70 (a majority-class predictor and a real model on a small
    # validation split, say); trial 2 measures higher and wins whatever its loss.
    tied = [evaluation(0, 0.70, 0.61), evaluation(1, 0.70, 0.48)]
    assert select_best(tied).trial_id == 1
    assert select_best([*tied, evaluation(2, 0.72, 0.90)]).trial_id == 2
    # Equal losses too: the lower trial id.
    assert select_best([evaluation(3, 0.7, 0.5), evaluation(4, 0.7, 0.5)]).trial_id == 3
    ranked = rank_for_promotion([(e.job, e.result) for e in [*tied, evaluation(2, 0.72, 0.9)]])
    assert [job.trial_id for job, _ in ranked] == [2, 1, 0]
    judged = judge(tied, prior_scores={}, n_val=30, objective="val_accuracy")
    assert [j.evaluation.trial_id for j in judged] == [1, 0]


def test_a_cold_study_promotes_equal_scores_by_the_lower_validation_loss() -> None:
    # Eight configurations that all measure 0.60 on the first rung; the later trials have
    # the lower losses, so they, not the earlier ones, are promoted.
    grid = [{"x": round(i / 7, 3)} for i in range(8)]

    def evaluate(job: Job) -> EvaluationResult:
        return fake_result(job, 0.60, val_loss=1.0 - job.config["x"] / 2)

    scheduler = meta_guided(grid, num_iterations=2, epochs=1, budget=8.0, num_initial_configs=8)
    drive(scheduler, evaluate)
    promoted = [d for d in scheduler.decisions if d.action == "promoted"]
    kept_out = [d for d in scheduler.decisions if d.action == "kept out"]
    assert promoted and kept_out
    assert min(d.trial_id for d in promoted) > max(d.trial_id for d in kept_out)


def test_the_answer_note_names_the_tied_challenger_with_the_lower_loss() -> None:
    # The pick (trial 0) stays the answer; trials 1 and 2 measured equally higher, and the
    # note names the one a search would rank first: the lower validation loss, trial 2.
    evaluations = [evaluation(0, 0.70, 0.5), evaluation(1, 0.80, 0.6), evaluation(2, 0.80, 0.4)]
    final = Judgement(evaluations[0], 0.81, 0.81, 1.0, 0.9)
    note = answer_note(final, evaluations, anchor_trial=0, n_val=30)
    assert "trial 2 measured higher (0.8000)" in note
