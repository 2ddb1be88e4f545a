"""``llp kb list`` and ``llp kb show``: what the knowledge base holds, as plain data.

The functions return JSON-ready dicts (the ``--json`` output); the command renders them
as tables otherwise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from llp.cli._errors import CliError

if TYPE_CHECKING:
    import pandas as pd

    from llp.store import DatasetRecord, KnowledgeBase, StudyRecord


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


#: What ``answer_note`` says for a study with evaluations but no stored answer.
NO_ANSWER_NOTE = (
    "no answer is stored with this study: it was recorded before llp stored answers "
    "(knowledge-base schema 1)"
)


def _study_stats(kb: KnowledgeBase, name: str, frame: pd.DataFrame) -> dict[str, Any]:
    """Evaluations, failures, cost and the study's answer as it stored it after its last
    evaluation (:meth:`llp.store.KnowledgeBase.answer`; e.g. MetaProbing's posterior
    rule), never judged again here."""
    answer = kb.answer(name)
    note = answer.note if answer is not None else (NO_ANSWER_NOTE if not frame.empty else None)
    return {
        "n_evaluations": len(frame),
        "n_failed": int((frame["status"] != "complete").sum()) if not frame.empty else 0,
        "total_cost": float(frame["cost"].sum() + frame["probe_cost"].sum())
        if not frame.empty
        else 0.0,
        "best_score": None if answer is None else _finite(answer.score),
        "best_fraction": None if answer is None else answer.fraction,
        "best_trial": None if answer is None else answer.trial_number,
        "answer_rule": None if answer is None else answer.rule,
        "answer_note": note,
    }


def _shipped_summary() -> dict[str, Any] | None:
    try:
        from llp.knowledge import SHIPPED_CORPUS_PATH, read_corpus

        corpus = read_corpus(SHIPPED_CORPUS_PATH)
    except (ImportError, FileNotFoundError, ValueError):
        return None
    return {
        "path": str(SHIPPED_CORPUS_PATH),
        "datasets": len(corpus.datasets),
        "evaluations": len(corpus.experiences),
    }


def list_knowledge(kb: KnowledgeBase) -> dict[str, Any]:
    """Datasets and studies with their sizes and best scores."""
    datasets = kb.list_datasets()
    studies = kb.list_studies()
    frame = kb.evaluations_frame()
    by_id = {d.id: d for d in datasets}
    n_studies: dict[int, int] = {}
    for s in studies:
        if s.dataset_id is not None:
            n_studies[s.dataset_id] = n_studies.get(s.dataset_id, 0) + 1
    study_rows = []
    for s in studies:
        rows = frame[frame["study"] == s.name] if not frame.empty else frame
        dataset = by_id.get(s.dataset_id) if s.dataset_id is not None else None
        study_rows.append(
            {
                "name": s.name,
                "dataset": _dataset_label(dataset),
                "scheduler": s.scheduler,
                "model_family": s.model_family,
                "objective": s.objective,
                "seed": s.seed,
                "created_at": s.created_at.isoformat(),
                **_study_stats(kb, s.name, rows),
            }
        )
    return {
        "storage": kb.storage,
        "counts": kb.counts(),
        "datasets": [
            {
                "name": d.name,
                "fingerprint": d.fingerprint,
                "group": d.group,
                "n_samples": d.n_samples,
                "n_studies": n_studies.get(d.id, 0),
            }
            for d in datasets
        ],
        "studies": study_rows,
        "shipped_knowledge": _shipped_summary(),
    }


def _dataset_label(dataset: DatasetRecord | None) -> str | None:
    if dataset is None:
        return None
    return dataset.name or dataset.fingerprint[:12]


def find_dataset(kb: KnowledgeBase, key: str) -> DatasetRecord | None:
    """A dataset by name, fingerprint, or a fingerprint prefix of 6+ characters; an
    ambiguous key is an error."""
    datasets = kb.list_datasets()
    exact = [d for d in datasets if key in (d.name, d.fingerprint)]
    if len(exact) == 1:
        return exact[0]
    prefix = [d for d in datasets if len(key) >= 6 and d.fingerprint.startswith(key)]
    matches = exact or prefix
    if len(matches) > 1:
        raise CliError(
            f"{key!r} names {len(matches)} datasets; give the fingerprint "
            f"({', '.join(d.fingerprint[:16] for d in matches)})."
        )
    return matches[0] if matches else None


def show_study(kb: KnowledgeBase, study: StudyRecord) -> dict[str, Any]:
    """One study: settings, space, dataset, evaluations per data share, its answer, then
    the best other trials on the largest data share (:func:`llp.report.top_trials`)."""
    from llp.report import load_study, top_trials

    data = load_study(kb, study.name)
    frame = data.frame
    dataset = data.dataset
    configs = {t: dict(c) for t, c in data.configs.items()}
    rungs = []
    if not frame.empty:
        for fraction, rows in frame.groupby("fraction", sort=True):
            ok = rows[rows["status"] == "complete"]
            rungs.append(
                {
                    "fraction": float(fraction),
                    "n_evaluations": len(rows),
                    "n_failed": int((rows["status"] != "complete").sum()),
                    "best_score": _finite(ok["score"].max()) if not ok.empty else None,
                }
            )
    stats = _study_stats(kb, study.name, frame)
    top = [
        {
            "trial": int(row["trial_number"]),
            "score": _finite(row["score"]),
            "config": configs.get(int(row["trial_number"]), {}),
        }
        for row in top_trials(data, 5)
    ]
    failures = (
        frame[frame["status"] != "complete"]["failure_reason"].dropna().astype(str).head(3).tolist()
        if not frame.empty
        else []
    )
    return {
        "kind": "study",
        "name": study.name,
        "dataset": _dataset_label(dataset),
        "dataset_fingerprint": dataset.fingerprint if dataset else None,
        "scheduler": study.scheduler,
        "model_family": study.model_family,
        "objective": study.objective,
        "seed": study.seed,
        "created_at": study.created_at.isoformat(),
        "llp_version": study.llp_version,
        "settings": dict(study.settings),
        "space": None if study.space is None else dict(study.space),
        **stats,
        "best_config": configs.get(stats["best_trial"])
        if stats["best_trial"] is not None
        else None,
        "rungs": rungs,
        "top_trials": top,
        "failure_reasons": failures,
    }


def show_dataset(kb: KnowledgeBase, dataset: DatasetRecord) -> dict[str, Any]:
    """One dataset: identity, meta-features and its studies."""
    studies = [s.name for s in kb.list_studies() if s.dataset_id == dataset.id]
    return {
        "kind": "dataset",
        "name": dataset.name,
        "fingerprint": dataset.fingerprint,
        "group": dataset.group,
        "n_samples": dataset.n_samples,
        "created_at": dataset.created_at.isoformat(),
        "meta_features": {k: _finite(v) for k, v in dataset.meta_features.items()},
        "studies": studies,
    }


def show(kb: KnowledgeBase, key: str) -> dict[str, Any]:
    """A study by name, else a dataset by name or fingerprint."""
    study = kb.get_study(key)
    if study is not None:
        return show_study(kb, study)
    dataset = find_dataset(kb, key)
    if dataset is not None:
        return show_dataset(kb, dataset)
    raise CliError(
        f"The knowledge base {kb.storage!r} has no study or dataset {key!r} ('llp kb list' "
        "shows what it holds)."
    )


__all__ = ["find_dataset", "list_knowledge", "show", "show_dataset", "show_study"]
