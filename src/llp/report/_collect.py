"""The numbers behind every figure, read from the knowledge base.

Each function here takes the evaluations of one study as
:meth:`llp.store.KnowledgeBase.evaluations_frame` returns them and gives back plain
columns; the figures only draw these, and ``report.json`` holds them, so every plotted
number can be traced back to the store.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from llp.store import DatasetRecord, KnowledgeBase, StoredEvaluation, StudyRecord

#: What the meta-guided scheduler writes into the reason of a job it promoted or proposed
#: (see :class:`llp.search.MetaGuidedScheduler`): the surrogate's predicted percentile
#: rank of the configuration's final score, and the spread of its trees.
PREDICTION = re.compile(r"predicted final rank (?P<mean>-?[0-9.]+) ± (?P<std>[0-9.]+)")


def parse_prediction(reason: str) -> tuple[float, float] | None:
    """``(predicted final rank, uncertainty)`` from a stored reason, or ``None`` when
    the evaluation was not a meta-model decision."""
    match = PREDICTION.search(reason or "")
    if match is None:
        return None
    return float(match["mean"]), float(match["std"])


#: The prior's score of a configuration, written into the reason of the job that first
#: trained it (see :class:`llp.search.MetaGuidedScheduler`).
PRIOR_SCORE = re.compile(r"prior score (?P<score>-?[0-9.]+)")


#: Where a proposal came from, and the posterior score a promotion was ranked by.
SOURCE = re.compile(r"\(source: (?P<source>[a-z]+)\)")
POSTERIOR = re.compile(r"posterior (?P<posterior>-?[0-9.]+)")


def parse_source(reason: str) -> str | None:
    """``"prior"``, ``"model"``, ``"local"``, ``"random"`` or ``"user"`` from the reason
    of a proposal, else ``None``."""
    match = SOURCE.search(reason or "")
    return None if match is None else match["source"]


def parse_posterior(reason: str) -> float | None:
    """The posterior score a promotion was ranked by, or ``None``."""
    match = POSTERIOR.search(reason or "")
    return None if match is None else float(match["posterior"])


def parse_prior_score(reason: str) -> float | None:
    """The prior score stored in a reason, or ``None``."""
    match = PRIOR_SCORE.search(reason or "")
    return None if match is None else float(match["score"])


def decision_action(reason: str) -> str:
    """What the meta-guided scheduler did with a configuration, from the reason it
    stored: ``"promoted"`` or ``"proposed"``; studies stored by earlier versions also
    have ``"carried"`` (the meta-model's pick, taken to every rung) and ``"runner-up"``
    (one of the prior's next-best, sent straight to the top rung)."""
    for action in ("promoted", "carried", "runner-up"):
        if reason.startswith(action):
            return action
    return "proposed"


@dataclass(frozen=True)
class StudyData:
    """One study as stored: its record, its dataset and every evaluation.

    ``frame`` has one row per evaluation in the order they were recorded (the columns of
    :meth:`llp.store.KnowledgeBase.evaluations_frame`); ``evaluations`` are the same
    records as :class:`~llp.store.StoredEvaluation` objects.
    """

    study: StudyRecord
    dataset: DatasetRecord | None
    frame: pd.DataFrame
    evaluations: tuple[StoredEvaluation, ...]

    @property
    def configs(self) -> dict[int, Mapping[str, Any]]:
        """Trial number -> configuration exactly as stored (the frame's ``config.*``
        columns turn ints into floats where a conditional hyperparameter is absent)."""
        return {e.trial_number: e.config for e in self.evaluations}

    @property
    def objective(self) -> str:
        return self.study.objective

    @property
    def complete(self) -> pd.DataFrame:
        return self.frame[self.frame["status"] == "complete"]

    @property
    def config_columns(self) -> list[str]:
        return [c for c in self.frame.columns if str(c).startswith("config.")]


def load_study(kb: KnowledgeBase, name: str) -> StudyData:
    """Read a study from the knowledge base.

    Raises
    ------
    KeyError
        If there is no study called ``name``.
    """
    study = kb.get_study(name)
    if study is None:
        raise KeyError(name)
    frame = kb.evaluations_frame(study=name).sort_values("evaluation_id", kind="stable")
    frame = frame.reset_index(drop=True)
    evaluations = tuple(kb.evaluations(study=name))
    dataset = None
    if study.dataset_id is not None:
        dataset = next((d for d in kb.list_datasets() if d.id == study.dataset_id), None)
    return StudyData(study, dataset, frame, evaluations)


def objective_label(objective: str) -> str:
    """Axis label of a score: the objective in words (scores are higher-is-better)."""
    return "validation accuracy" if objective == "val_accuracy" else "− validation loss"


def _top_fidelity(frame: pd.DataFrame) -> tuple[float, int] | None:
    ok = frame[frame["status"] == "complete"]
    if ok.empty:
        return None
    pairs = list(zip(ok["fraction"].astype(float), ok["epochs"].astype(int)))
    return max(pairs)


def best_evaluation(data: StudyData) -> Mapping[str, Any] | None:
    """The answer of the study (its row of ``data.frame``), judged as the study judged
    it; ``None`` if nothing completed.

    The runner's :func:`~llp.runner.select_best`: the best evaluation at the highest
    fidelity reached (ties: lower trial). A MetaProbing study that recorded its answer
    rule is judged by it with the same inputs, exactly as
    :meth:`llp.meta_probing.MetaProbing.run_meta_optimization` chose: the posterior rule
    (:func:`llp.search.select_answer`, settings ``answer_rule = "posterior"``, with the
    prior scores stored in the reasons), or for studies of earlier versions the noise
    margin of :func:`~llp.runner.select_incumbent` (settings ``answer_noise_z``).
    """
    from llp.runner import select_best, select_incumbent
    from llp.search import Evaluation, Job, select_answer
    from llp.search._meta_guided import ANCHOR_REASON

    evaluations = [
        Evaluation(
            Job(
                job_id=e.id,
                trial_id=e.trial_number,
                config=e.config,
                fidelity=e.result.fidelity,
                bracket=e.bracket,
                rung=e.rung,
                reason=e.reason,
            ),
            e.result,
        )
        for e in sorted(data.evaluations, key=lambda e: e.id)
    ]
    settings = data.study.settings or {}
    z, n_val = settings.get("answer_noise_z"), settings.get("n_val")
    anchor = next((e.trial_id for e in evaluations if e.job.reason.startswith(ANCHOR_REASON)), None)
    if settings.get("answer_rule") == "posterior":
        scores: dict[int, float] = {}
        for e in evaluations:
            score = parse_prior_score(e.job.reason)
            if score is not None:
                scores.setdefault(e.trial_id, score)
        judged = select_answer(
            evaluations, prior_scores=scores, n_val=int(n_val or 0), objective=data.objective
        )
        chosen = None if judged is None else judged.evaluation
    elif z is None or n_val is None or anchor is None:
        chosen = select_best(evaluations)
    else:
        chosen = select_incumbent(
            evaluations,
            anchor_trial=anchor,
            n_val=int(n_val),
            objective=data.objective,
            z=float(z),
            judge_at=(float(settings.get("max_resource", 0.0)), int(settings.get("epochs", 0))),
        )
    if chosen is None:
        return None
    rows = data.frame[data.frame["evaluation_id"] == chosen.job.job_id]
    return rows.iloc[0].to_dict()


def source_table(data: StudyData, best: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Where the study's configurations came from (the ``(source: ...)`` of the reason
    each was first proposed with: prior, model, local, random, user): per source, how
    many configurations, the best score any of them reached at the highest fidelity the
    study reached, and whether the answer is one of them. Empty for a study whose
    scheduler does not say (plain successive halving, Hyperband, random search)."""
    sources: dict[int, str] = {}
    for e in sorted(data.evaluations, key=lambda e: e.id):
        source = parse_source(e.reason)
        if source is not None:
            sources.setdefault(e.trial_number, source)
    if not sources:
        return []
    top = _top_fidelity(data.frame)
    best_at_top: dict[int, float] = {}
    if top is not None:
        ok = data.complete
        at_top = ok[(ok["fraction"] == top[0]) & (ok["epochs"] == top[1])]
        best_at_top = {int(t): float(v) for t, v in zip(at_top["trial_number"], at_top["score"])}
    answer = None if best is None else int(best["trial_number"])
    rows = []
    for source in dict.fromkeys(sources.values()):
        trials = [t for t, s in sources.items() if s == source]
        scores = [best_at_top[t] for t in trials if t in best_at_top]
        rows.append(
            {
                "source": source,
                "configurations": len(trials),
                "best_at_top": max(scores) if scores else None,
                "answer": answer in trials,
            }
        )
    return rows


def top_trials(data: StudyData, k: int) -> list[Mapping[str, Any]]:
    """The ``k`` best evaluations at the highest fidelity reached, best first."""
    top = _top_fidelity(data.frame)
    if top is None:
        return []
    ok = data.complete
    at_top = ok[(ok["fraction"] == top[0]) & (ok["epochs"] == top[1])]
    ranked = at_top.sort_values(["score", "trial_number"], ascending=[False, True])
    return [row.to_dict() for _, row in ranked.head(k).iterrows()]


def budget_series(data: StudyData) -> dict[str, list[Any]]:
    """Cost spent and best score so far, evaluation by evaluation (recording order).

    ``cumulative_cost`` counts training and landscape probes (full-data-epoch
    equivalents). ``incumbent`` is the best score at the highest fidelity reached so far
    (what the search would return if stopped there), so it can step down when a higher
    fidelity is first reached; ``None`` until something completed.
    """
    out: dict[str, list[Any]] = {
        "evaluation_id": [],
        "trial_number": [],
        "fraction": [],
        "status": [],
        "score": [],
        "cumulative_cost": [],
        "incumbent": [],
    }
    spent = 0.0
    top: tuple[float, int] | None = None
    best: float | None = None
    for row in data.frame.itertuples(index=False):
        spent += float(row.cost) + float(row.probe_cost)
        if row.status == "complete":
            fidelity = (float(row.fraction), int(row.epochs))
            if top is None or fidelity > top:
                top, best = fidelity, float(row.score)
            elif fidelity == top:
                best = max(best if best is not None else -math.inf, float(row.score))
        out["evaluation_id"].append(int(row.evaluation_id))
        out["trial_number"].append(int(row.trial_number))
        out["fraction"].append(float(row.fraction))
        out["status"].append(str(row.status))
        out["score"].append(None if row.status != "complete" else float(row.score))
        out["cumulative_cost"].append(spent)
        out["incumbent"].append(best)
    return out


def rung_series(data: StudyData) -> dict[str, Any]:
    """Per trial, the data fractions it was trained on and its scores there.

    A trial evaluated on a larger fraction than its first was promoted. Returns
    ``fractions`` (sorted distinct fractions) and ``trials``: a list of
    ``{"trial": n, "fractions": [...], "scores": [...], "failed": [...]}`` (``scores``
    hold ``None`` where the evaluation failed), plus ``best_trial``.
    """
    frame = data.frame
    fractions = sorted({float(f) for f in frame["fraction"]})
    trials = []
    for trial, rows in frame.groupby("trial_number", sort=True):
        rows = rows.sort_values(["fraction", "epochs"], kind="stable")
        trials.append(
            {
                "trial": int(trial),
                "fractions": [float(f) for f in rows["fraction"]],
                "scores": [
                    None if s != "complete" else float(v)
                    for s, v in zip(rows["status"], rows["score"])
                ],
                "failed": [s != "complete" for s in rows["status"]],
            }
        )
    best = best_evaluation(data)
    return {
        "fractions": fractions,
        "trials": trials,
        "best_trial": None if best is None else int(best["trial_number"]),
    }


def curve_series(data: StudyData) -> list[dict[str, Any]]:
    """Every evaluation's learning curve: ``trial``, ``fraction``, ``status`` and the
    per-epoch ``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy`` lists."""
    out = []
    for row in data.frame.itertuples(index=False):
        curve = row.curve
        out.append(
            {
                "trial": int(row.trial_number),
                "fraction": float(row.fraction),
                "status": str(row.status),
                "epoch": [r.epoch for r in curve],
                "train_loss": [r.train_loss for r in curve],
                "val_loss": [r.val_loss for r in curve],
                "val_accuracy": [r.val_accuracy for r in curve],
            }
        )
    return out


def prediction_series(data: StudyData) -> dict[str, list[Any]]:
    """The meta-model's predictions stored in the reasons, next to what was measured.

    One entry per promoted or proposed evaluation that carries a prediction: ``trial``,
    ``fraction`` (where the decision sent it), ``action`` (:func:`decision_action`),
    ``predicted`` (final percentile rank, 1 = best:
    the checked surrogate's for a promotion it ranked, the prior score for a proposal),
    ``uncertainty`` (0 for a prior score), and the trial's ``measured`` score at the
    highest fraction it completed (``measured_fraction``; ``None`` if it never
    completed).
    """
    frame = data.frame
    final: dict[int, tuple[float, float]] = {}
    for row in frame[frame["status"] == "complete"].itertuples(index=False):
        trial, fraction = int(row.trial_number), float(row.fraction)
        if trial not in final or fraction >= final[trial][0]:
            final[trial] = (fraction, float(row.score))
    out: dict[str, list[Any]] = {
        "trial": [],
        "fraction": [],
        "action": [],
        "predicted": [],
        "uncertainty": [],
        "measured": [],
        "measured_fraction": [],
    }
    for row in frame.itertuples(index=False):
        parsed = parse_prediction(str(row.reason))
        if parsed is None:
            # A proposal's prediction is its prior score (no spread is stored for it).
            prior = parse_prior_score(str(row.reason))
            if prior is None:
                continue
            parsed = (prior, 0.0)
        trial = int(row.trial_number)
        measured = final.get(trial)
        out["trial"].append(trial)
        out["fraction"].append(float(row.fraction))
        out["action"].append(decision_action(str(row.reason)))
        out["predicted"].append(parsed[0])
        out["uncertainty"].append(parsed[1])
        out["measured"].append(None if measured is None else measured[1])
        out["measured_fraction"].append(None if measured is None else measured[0])
    return out


__all__ = [
    "PREDICTION",
    "StudyData",
    "best_evaluation",
    "budget_series",
    "curve_series",
    "decision_action",
    "load_study",
    "objective_label",
    "parse_prediction",
    "prediction_series",
    "rung_series",
    "top_trials",
]
