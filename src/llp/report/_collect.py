"""The numbers behind every figure, read from the knowledge base.

Each function here takes the evaluations of one study as
:meth:`llp.store.KnowledgeBase.evaluations_frame` returns them and gives back plain
columns; the figures only draw these, and ``report.json`` holds them, so every plotted
number can be traced back to the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from llp.store import (
        AnswerRecord,
        DatasetRecord,
        DecisionRecord,
        KnowledgeBase,
        StoredEvaluation,
        StudyRecord,
    )


@dataclass(frozen=True)
class StudyData:
    """One study as stored: its record, its dataset, every evaluation, its decisions and
    its answer after each evaluation.

    ``frame`` has one row per evaluation in the order they were recorded (the columns of
    :meth:`llp.store.KnowledgeBase.evaluations_frame`); ``evaluations`` are the same
    records as :class:`~llp.store.StoredEvaluation` objects. ``decisions`` and
    ``answers`` are as the study stored them (empty for a study stored before they were).
    """

    study: StudyRecord
    dataset: DatasetRecord | None
    frame: pd.DataFrame
    evaluations: tuple[StoredEvaluation, ...]
    decisions: tuple[DecisionRecord, ...] = ()
    answers: tuple[AnswerRecord, ...] = ()

    @property
    def answer(self) -> AnswerRecord | None:
        """The study's answer after its last evaluation, as it stored it."""
        return self.answers[-1] if self.answers else None

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
    return StudyData(
        study, dataset, frame, evaluations, tuple(kb.decisions(name)), tuple(kb.answers(name))
    )


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
    """The study's answer (its row of ``data.frame``) as the study stored it after its
    last evaluation; ``None`` when it stored none (nothing completed, or a study stored
    before answers were recorded). Never judged again here."""
    answer = data.answer
    if answer is None:
        return None
    rows = data.frame[data.frame["evaluation_id"] == answer.evaluation_id]
    return None if rows.empty else rows.iloc[0].to_dict()


def proposals(data: StudyData) -> dict[int, DecisionRecord]:
    """Trial number -> the decision that first proposed its configuration."""
    out: dict[int, DecisionRecord] = {}
    for d in data.decisions:
        if d.action == "proposed" and d.trial_number is not None:
            out.setdefault(d.trial_number, d)
    return out


def source_table(data: StudyData, best: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Where the study's configurations came from (the source of the decision that
    proposed each: prior, model, local, random, user): per source, how many
    configurations, the best score any of them reached at the highest fidelity the
    study reached, and whether the answer is one of them. Empty for a study whose
    scheduler does not record decisions (plain successive halving, Hyperband, random
    search)."""
    sources = {t: d.source for t, d in proposals(data).items() if d.source is not None}
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
    """The study's answer, then the best other evaluations at the highest fidelity
    reached by measured score (equal scores by the lower validation loss, then the
    lower trial, as :func:`llp.training.tie_loss` and the search's kept weights order
    them): ``k`` in all."""
    top = _top_fidelity(data.frame)
    if top is None:
        return []
    ok = data.complete
    at_top = ok[(ok["fraction"] == top[0]) & (ok["epochs"] == top[1])]
    ranked = at_top.sort_values(
        ["score", "final_val_loss", "trial_number"],
        ascending=[False, True, True],
        na_position="last",
    )
    rows = [row.to_dict() for _, row in ranked.iterrows()]
    answer = best_evaluation(data)
    if answer is not None:
        rows = [answer] + [r for r in rows if r["evaluation_id"] != answer["evaluation_id"]]
    return rows[:k]


def budget_series(data: StudyData) -> dict[str, list[Any]]:
    """Cost spent and the study's answer, evaluation by evaluation (recording order).

    ``cumulative_cost`` counts training and landscape probes (full-data-epoch
    equivalents). ``incumbent`` is the measured score of the answer the study stored
    after that evaluation (what it would have returned had it stopped there), at the
    data share the answer was measured on: it steps down when the answer moves to more
    data, where scores are lower. ``answer_trial`` is that answer's trial; both are
    ``None`` until something completed, and throughout for a study stored before
    answers were recorded.
    """
    out: dict[str, list[Any]] = {
        "evaluation_id": [],
        "trial_number": [],
        "fraction": [],
        "status": [],
        "score": [],
        "cumulative_cost": [],
        "incumbent": [],
        "answer_trial": [],
    }
    after = {a.after_evaluation_id: a for a in data.answers}
    spent = 0.0
    for row in data.frame.itertuples(index=False):
        spent += float(row.cost) + float(row.probe_cost)
        answer = after.get(int(row.evaluation_id))
        out["evaluation_id"].append(int(row.evaluation_id))
        out["trial_number"].append(int(row.trial_number))
        out["fraction"].append(float(row.fraction))
        out["status"].append(str(row.status))
        out["score"].append(None if row.status != "complete" else float(row.score))
        out["cumulative_cost"].append(spent)
        out["incumbent"].append(None if answer is None else answer.score)
        out["answer_trial"].append(None if answer is None else answer.trial_number)
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


#: Decisions that sent a configuration to train (the ones a prediction can be checked on).
_TRAINING_ACTIONS = ("proposed", "promoted", "carried", "runner-up")


def prediction_series(data: StudyData) -> dict[str, list[Any]]:
    """The search's stored predictions, next to what was measured.

    One entry per stored decision that sent a configuration to train with a prediction:
    ``trial``, ``fraction`` (where the decision sent it), ``action``, ``predicted``
    (final percentile rank, 1 = best: the checked surrogate's for a promotion it ranked,
    the prior score for a proposal), ``uncertainty`` (0 for a prior score), and the
    trial's ``measured`` score at the highest fraction it completed
    (``measured_fraction``; ``None`` if it never completed).
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
    for d in data.decisions:
        if d.action not in _TRAINING_ACTIONS or d.trial_number is None:
            continue
        predicted: float | None
        spread: float | None
        if d.action == "proposed":
            predicted, spread = d.prior_score, 0.0
        else:
            predicted, spread = d.predicted, d.uncertainty
        if predicted is None:
            continue
        measured = final.get(d.trial_number)
        out["trial"].append(d.trial_number)
        out["fraction"].append(d.fraction)
        out["action"].append(d.action)
        out["predicted"].append(predicted)
        out["uncertainty"].append(0.0 if spread is None else spread)
        out["measured"].append(None if measured is None else measured[1])
        out["measured_fraction"].append(None if measured is None else measured[0])
    return out


__all__ = [
    "StudyData",
    "best_evaluation",
    "budget_series",
    "curve_series",
    "load_study",
    "objective_label",
    "prediction_series",
    "proposals",
    "rung_series",
    "top_trials",
]
