"""How a study weighs the prior against what it measured.

Every configuration a study trains gets the same treatment: its measured validation
score is shrunk toward what the prior predicts for it, by empirical Bayes, and the study
promotes and answers by the shrunk score (the *posterior mean*). The prior's pull is
learned from this study's own measurements, so it guides while they agree with it and
fades when they do not:

- **The prior's line.** Each configuration has a prior score ``pi`` (the meta-model's
  predicted percentile rank of its final score on this dataset, before any training).
  Within each data share (rung) the study regresses measured scores on prior scores; the
  slope ``b`` is pooled over rungs (each centred on its own means), fitted on the better
  half of a rung (the decisions are made there; the prior gets no credit for predicting
  which configurations diverge) and held at ``>= 0``. Before there is much to fit on,
  the slope is pulled toward a default that assumes a moderate agreement
  (:data:`PRIOR_AGREEMENT` correlation, worth :data:`PRIOR_PSEUDO_COUNT` evaluations).
  A configuration's prior mean on a rung is ``m = mean(score) + b (pi - mean(pi))``,
  the means taken over the rung's leaders (below).
- **How much the measurements say.** The validation noise of an accuracy ``p`` measured
  on ``n_val`` examples is ``s2 = p (1 - p) / n_val``. The spread of the true scores
  around the prior's line is ``t2 = max(0, var(score - m) - mean(s2))`` (method of
  moments) over the rung's *leaders*: the better half of its configurations when it has
  four or more (poor ones would drag the line down and make every difference among the
  leaders look larger than noise), else all of them.
- **The posterior mean** is ``m + t2 / (t2 + s2) * (score - m)``, kept within
  ``PRIOR_REACH * max(1, sqrt(2 ln K))`` standard errors (``sqrt(s2)``) of the measured
  score, ``K`` the number of leaders (a limited-translation estimator: the prior may
  reorder configurations whose differences are within noise, including the winner's
  curse of the best of ``K``, but never overturn a difference far beyond it). Where the
  measured differences among the leaders are no larger than validation noise
  (``t2 = 0``), the prior's order decides within that reach; where they are larger, the
  measurements dominate, in proportion. Equal posteriors go to the higher measured
  score, then the lower validation loss (:func:`~llp.training.tie_loss`: equal accuracies
  are common on a small validation split), then the higher prior score, then the lower
  trial id.
- **What was tried and rejected.** Averaging the weight over the posterior of ``t2`` (a
  uniform prior on its square root) instead of the point estimate keeps more of the
  measurements' weight when a rung has few leaders. On the development tasks it left the
  pick far more often and did worse at every budget (BENCHMARKS.md): on small validation
  splits the point estimate's deference to the prior is what protects the answer from
  the winner's curse.

Without a prior (a cold start), for an objective without a noise model (a loss), or
for a rung with one configuration, the posterior is the measured score. The rule reads
nothing but the evaluations, the prior scores and ``n_val``, so a stored study is judged
again exactly as it ran.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llp.search._base import Evaluation, score_order
from llp.training import EvaluationStatus, tie_loss

#: The name of the rule :func:`select_answer` applies (stored with each answer).
ANSWER_RULE = "posterior"

#: Correlation between prior scores and measured scores assumed before the study has
#: measured enough to estimate it (among the better half of a rung's configurations).
PRIOR_AGREEMENT = 0.5
#: How many evaluations that assumption is worth against the study's own estimate.
PRIOR_PSEUDO_COUNT = 4.0
#: The farthest the prior may move a measured score, in standard errors of validation
#: noise (a limited-translation estimator, after Efron and Morris), for up to two
#: leaders; with K leaders it grows to ``sqrt(2 ln K)`` times this, the winner's curse
#: of the best of K equal configurations.
PRIOR_REACH = 1.0


@dataclass(frozen=True)
class Judgement:
    """The posterior view of one evaluation (see the module docstring).

    ``posterior`` is the shrunk score; ``prior_mean`` what the prior's line predicts for
    it on this rung; ``prior_weight`` the share of the posterior that comes from the
    prior (0: the measurement alone, 1: the prior alone).
    """

    evaluation: Evaluation
    posterior: float
    prior_mean: float
    prior_weight: float
    prior_score: float | None


def validation_variance(score: float, n_val: int, objective: str) -> float:
    """Sampling variance of a validation accuracy ``score`` on ``n_val`` examples (0 for a
    loss, or when ``n_val`` is unknown): ``p (1 - p) / n_val``, with ``p`` kept at least
    one example away from 0 and 1 so a perfect score is not certainty."""
    if objective != "val_accuracy" or n_val <= 0:
        return 0.0
    p = min(max(float(score), 1.0 / n_val), 1.0 - 1.0 / n_val)
    return p * (1.0 - p) / n_val


def _complete(evaluations: Sequence[Evaluation]) -> list[Evaluation]:
    return [
        e
        for e in evaluations
        if e.status is EvaluationStatus.COMPLETE and e.score is not None and math.isfinite(e.score)
    ]


def _fidelity(e: Evaluation) -> tuple[float, int]:
    return (e.fidelity.fraction, e.fidelity.epochs)


@dataclass(frozen=True)
class PriorFit:
    """How the prior's scores line up with this study's measurements.

    ``slope``: measured score per unit of prior score (``>= 0``), pooled over rungs;
    ``agreement``: their correlation, pulled toward :data:`PRIOR_AGREEMENT` while few
    evaluations back it and held in ``[0, 1]``; ``n``: the evaluations both rest on.
    """

    slope: float
    agreement: float
    n: int


def prior_fit(evaluations: Sequence[Evaluation], prior_scores: Mapping[int, float]) -> PriorFit:
    """Fit the prior's line on the study's evaluations (see the module docstring)."""
    by_rung: dict[tuple[float, int], list[tuple[float, float]]] = defaultdict(list)
    for e in _complete(evaluations):
        pi = prior_scores.get(e.trial_id)
        if pi is not None and math.isfinite(pi):
            by_rung[_fidelity(e)].append((float(pi), float(e.score or 0.0)))
    sxx = sxy = syy = 0.0
    n = 0
    for pairs in by_rung.values():
        if len(pairs) >= 6:
            # The better half: where promotions and answers are decided.
            pairs = sorted(pairs, key=lambda p: -p[1])[: math.ceil(len(pairs) / 2)]
        if len(pairs) < 2:
            continue
        mx = sum(p for p, _ in pairs) / len(pairs)
        my = sum(y for _, y in pairs) / len(pairs)
        sxx += sum((p - mx) ** 2 for p, _ in pairs)
        sxy += sum((p - mx) * (y - my) for p, y in pairs)
        syy += sum((y - my) ** 2 for _, y in pairs)
        n += len(pairs)
    k = PRIOR_PSEUDO_COUNT
    if n == 0 or sxx <= 0.0:
        return PriorFit(0.0, PRIOR_AGREEMENT, n)
    correlation = sxy / math.sqrt(sxx * syy) if syy > 0.0 else 0.0
    agreement = min(max((n * correlation + k * PRIOR_AGREEMENT) / (n + k), 0.0), 1.0)
    fitted = sxy / sxx
    default = PRIOR_AGREEMENT * math.sqrt(syy / sxx)
    slope = max((n * fitted + k * default) / (n + k), 0.0)
    return PriorFit(slope, agreement, n)


def judge(
    evaluations: Sequence[Evaluation],
    *,
    prior_scores: Mapping[int, float],
    n_val: int,
    objective: str,
    slope: float | None = None,
) -> list[Judgement]:
    """The posterior of every complete evaluation of one rung, best first.

    ``evaluations`` are the rung's evaluations (one fidelity); ``slope`` is
    :func:`prior_fit`'s over the whole study (fitted on ``evaluations`` when omitted).
    """
    ok = _complete(evaluations)
    if not ok:
        return []
    if slope is None:
        slope = prior_fit(ok, prior_scores).slope
    scores = [float(e.score or 0.0) for e in ok]
    pis = [prior_scores.get(e.trial_id) for e in ok]
    noise = [validation_variance(y, n_val, objective) for y in scores]
    # The line is anchored, and the spread measured, among the leaders: a rung's poor
    # configurations would drag the line down and make every difference near the top look
    # larger than noise.
    lead = sorted(range(len(ok)), key=lambda i: -scores[i])
    if len(lead) >= 4:
        lead = lead[: math.ceil(len(lead) / 2)]
    known = [p for p in (pis[i] for i in lead) if p is not None and math.isfinite(p)]
    mean_y = sum(scores[i] for i in lead) / len(lead)
    mean_pi = sum(known) / len(known) if known else 0.0
    means = [
        mean_y + slope * (p - mean_pi) if p is not None and math.isfinite(p) else mean_y
        for p in pis
    ]
    if len(lead) >= 2:
        spread = sum((scores[i] - means[i]) ** 2 for i in lead) / (len(lead) - 1)
        t2 = max(spread - sum(noise[i] for i in lead) / len(lead), 0.0)
    else:
        t2 = math.inf  # one configuration: nothing to shrink it against
    # The best of K equally good configurations measures about sqrt(2 ln K) standard
    # errors above its true score (the winner's curse): the prior may take that back.
    reach_se = PRIOR_REACH * max(1.0, math.sqrt(2.0 * math.log(len(lead))))
    out: list[Judgement] = []
    for e, y, m, s2, p in zip(ok, scores, means, noise, pis):
        if s2 <= 0.0 or not known or math.isinf(t2):
            # No noise model, no prior to shrink toward, or nothing to measure the
            # spread on: the measurement is the score.
            weight = 0.0
        else:
            weight = s2 / (t2 + s2) if t2 > 0.0 else 1.0
        shrunk = m + (1.0 - weight) * (y - m)
        # Limited translation: the prior moves a measured score by at most `reach`
        # standard errors of validation noise, so it can reorder configurations whose
        # difference is within noise but never overturn one far beyond it.
        reach = reach_se * math.sqrt(s2)
        posterior = min(max(shrunk, y - reach), y + reach)
        out.append(Judgement(e, posterior, m, weight, p))
    # Equal posteriors (every difference within noise and no prior line to tell them
    # apart) fall back to the measurements, then to the prior's order.
    out.sort(
        key=lambda j: (
            -j.posterior,
            -float(j.evaluation.score or 0.0),
            tie_loss(j.evaluation.result),
            -(j.prior_score if j.prior_score is not None else -math.inf),
            j.evaluation.trial_id,
        )
    )
    return out


def select_answer(
    evaluations: Sequence[Evaluation],
    *,
    prior_scores: Mapping[int, float],
    n_val: int,
    objective: str,
) -> Judgement | None:
    """The study's answer: the best posterior among the evaluations at the highest
    fidelity any success reached (a low-fidelity score is never compared with a
    high-fidelity one); ``None`` when nothing completed."""
    ok = _complete(evaluations)
    if not ok:
        return None
    top = max(_fidelity(e) for e in ok)
    slope = prior_fit(ok, prior_scores).slope
    ranked = judge(
        [e for e in ok if _fidelity(e) == top],
        prior_scores=prior_scores,
        n_val=n_val,
        objective=objective,
        slope=slope,
    )
    return ranked[0]


def answer_note(
    final: Judgement, evaluations: Sequence[Evaluation], anchor_trial: int | None, n_val: int
) -> str:
    """Why the answer is the answer, in one sentence."""
    chosen = final.evaluation
    measured = f"measured {chosen.score:.4f}" + (
        f" on {n_val} validation examples" if n_val else ""
    )
    how = f"posterior {final.posterior:.4f}, prior weight {final.prior_weight:.2f}"
    fidelity = chosen.fidelity
    same_data = [
        e for e in evaluations if e.fidelity == fidelity and e.status is EvaluationStatus.COMPLETE
    ]
    best_raw = min(same_data, key=score_order)
    if anchor_trial is not None and chosen.trial_id == anchor_trial:
        note = f"the meta-model's pick (trial {anchor_trial}) is the answer: {measured} ({how})"
        if best_raw.trial_id != chosen.trial_id:
            note += (
                f"; trial {best_raw.trial_id} measured higher ({best_raw.score:.4f}), by less "
                "than the evidence needed to outweigh the prior"
            )
        return note
    note = f"trial {chosen.trial_id} is the answer: {measured} ({how})"
    if anchor_trial is None:
        return note
    picks = [e for e in same_data if e.trial_id == anchor_trial]
    if picks:
        return note + (
            f"; the meta-model's pick (trial {anchor_trial}) measured {picks[-1].score:.4f} "
            "on the same data"
        )
    return note + (f"; the meta-model's pick (trial {anchor_trial}) was not promoted to that data")


__all__ = [
    "ANSWER_RULE",
    "PRIOR_AGREEMENT",
    "PRIOR_PSEUDO_COUNT",
    "PRIOR_REACH",
    "Judgement",
    "PriorFit",
    "answer_note",
    "judge",
    "prior_fit",
    "select_answer",
    "validation_variance",
]
