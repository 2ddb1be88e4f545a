"""The posterior rule that weighs the prior against a study's measurements."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llp.search import Evaluation, Job, judge, prior_fit, select_answer, validation_variance
from llp.search._evidence import PRIOR_AGREEMENT
from llp.training import Fidelity
from tests.conftest import fake_result


def rung(scores: list[float], fraction: float = 1.0, first_trial: int = 0) -> list[Evaluation]:
    """One rung's evaluations: trial ``first_trial + i`` measured ``scores[i]``."""
    out = []
    for i, score in enumerate(scores):
        job = Job(
            job_id=first_trial + i,
            trial_id=first_trial + i,
            config={"x": float(first_trial + i)},
            fidelity=Fidelity(fraction, 10),
            bracket=0,
            rung=0,
            reason="test",
        )
        out.append(Evaluation(job, fake_result(job, score)))
    return out


def by_trial(judgements) -> dict:
    return {j.evaluation.trial_id: j for j in judgements}


def test_validation_variance_is_the_binomial_variance_with_no_certainty() -> None:
    assert validation_variance(0.8, 100, "val_accuracy") == pytest.approx(0.8 * 0.2 / 100)
    # A perfect score is kept one example away from certainty.
    assert validation_variance(1.0, 100, "val_accuracy") == pytest.approx(0.99 * 0.01 / 100)
    assert validation_variance(0.8, 0, "val_accuracy") == 0.0  # no size known
    assert validation_variance(0.8, 100, "val_loss") == 0.0  # no noise model for a loss


def test_without_a_prior_the_posterior_is_the_measured_score() -> None:
    evaluations = rung([0.70, 0.74, 0.72, 0.71, 0.69, 0.73])
    ranked = judge(evaluations, prior_scores={}, n_val=50, objective="val_accuracy")
    assert [j.posterior for j in ranked] == sorted((e.score for e in evaluations), reverse=True)
    assert all(j.prior_weight == 0.0 for j in ranked)


def test_a_prior_the_measurements_agree_with_reorders_differences_within_noise() -> None:
    # Eight configurations whose measured scores are all within noise of each other on
    # 60 validation examples, and a prior that ranks them in the measured order across
    # the earlier rungs (so its line has a real slope): the pick, measured a little below
    # the best, is judged best.
    prior = {i: 1.0 - i / 10 for i in range(8)}  # trial 0 is the prior's pick
    earlier = rung([0.80 - 0.03 * i for i in range(8)], fraction=0.5)
    top = rung([0.78, 0.80, 0.79, 0.77, 0.76, 0.75, 0.74, 0.73])
    fit = prior_fit(earlier + top, prior)
    assert fit.slope > 0 and fit.agreement > PRIOR_AGREEMENT
    ranked = judge(top, prior_scores=prior, n_val=60, objective="val_accuracy", slope=fit.slope)
    assert ranked[0].evaluation.trial_id == 0
    assert ranked[0].prior_weight > 0.0


def test_a_difference_far_beyond_noise_is_never_overturned_by_the_prior() -> None:
    prior = {0: 1.0, 1: 0.0, 2: 0.5, 3: 0.5}
    # Trial 1 (the prior's worst) measures 10 points above the pick on 2,000 examples.
    top = rung([0.80, 0.90, 0.82, 0.81])
    ranked = judge(top, prior_scores=prior, n_val=2000, objective="val_accuracy", slope=1.0)
    assert ranked[0].evaluation.trial_id == 1
    for j in ranked:  # no score is moved by more than the reach (here 1.18 SE)
        se = math.sqrt(validation_variance(float(j.evaluation.score), 2000, "val_accuracy"))
        assert abs(j.posterior - float(j.evaluation.score)) <= 1.2 * se


def test_within_noise_even_a_flat_prior_line_decides() -> None:
    # Two configurations 2 validation examples apart on 54, and a prior line with almost
    # no slope that prefers the lower one. Their difference is within noise, so the rule
    # puts both on the line and the prior's order decides. This is the behaviour chosen on
    # the development tasks (BENCHMARKS.md, "the posterior rule"): a weight averaged over
    # the spread's uncertainty would let the measurement win here, and did worse there.
    prior = {0: 0.80, 1: 0.68}
    top = rung([0.5926, 0.6296])
    ranked = judge(top, prior_scores=prior, n_val=54, objective="val_accuracy", slope=0.01)
    assert ranked[0].evaluation.trial_id == 0
    assert all(j.prior_weight == 1.0 for j in ranked)
    # On 2,000 examples the same difference is about 3.4 standard errors: the
    # measurement wins.
    ranked = judge(top, prior_scores=prior, n_val=2000, objective="val_accuracy", slope=0.01)
    assert ranked[0].evaluation.trial_id == 1


@given(n_val=st.integers(20, 5000))
@settings(max_examples=30, deadline=None)
def test_the_prior_weighs_less_as_the_validation_split_grows(n_val: int) -> None:
    prior = {i: 1.0 - i / 6 for i in range(6)}
    # The leaders differ by more than noise on any split of 20 examples or more, so part
    # of their spread is real and the prior's weight is strictly between 0 and 1.
    top = rung([0.60, 0.90, 0.70, 0.85, 0.65, 0.95])

    def weight(n: int) -> float:
        ranked = judge(top, prior_scores=prior, n_val=n, objective="val_accuracy", slope=0.1)
        return by_trial(ranked)[0].prior_weight

    assert 0.0 < weight(n_val * 4) <= weight(n_val) < 1.0


def test_prior_fit_follows_the_measurements() -> None:
    prior = {i: i / 11 for i in range(12)}
    agree = rung([0.6 + 0.02 * i for i in range(12)])
    contradict = rung([0.8 - 0.02 * i for i in range(12)])
    assert prior_fit(agree, prior).agreement > PRIOR_AGREEMENT
    fit = prior_fit(contradict, prior)
    assert fit.slope == 0.0 and fit.agreement < PRIOR_AGREEMENT
    # Nothing to fit on: the default agreement.
    assert prior_fit(agree, {}).agreement == PRIOR_AGREEMENT and prior_fit([], prior).n == 0


def test_the_answer_is_judged_at_the_highest_fidelity_only() -> None:
    low = rung([0.99, 0.98], fraction=0.5)
    high = rung([0.70, 0.75], fraction=1.0, first_trial=2)
    answer = select_answer(low + high, prior_scores={}, n_val=100, objective="val_accuracy")
    assert answer is not None and answer.evaluation.trial_id == 3
    assert select_answer([], prior_scores={}, n_val=100, objective="val_accuracy") is None
