"""``build_report``: a study's HTML page and PNG figures, from the knowledge base."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llp._checks import check_int
from llp.report._collect import (
    StudyData,
    best_evaluation,
    budget_series,
    curve_series,
    load_study,
    objective_label,
    prediction_series,
    rung_series,
    source_table,
    top_trials,
)
from llp.report._html import FigureBlock, render_page, table
from llp.search._base import format_share

if TYPE_CHECKING:
    from llp.report._landscape import SliceResult
    from llp.report._meta import Importances
    from llp.store import KnowledgeBase

#: File names of the figures, in page order.
FIGURE_FILES = {
    "budget": "budget.png",
    "rungs": "rungs.png",
    "curves": "learning_curves.png",
    "landscape": "landscape.png",
    "importances": "importances.png",
    "predictions": "predictions.png",
}


@dataclass(frozen=True)
class Report:
    """What :func:`build_report` wrote.

    Attributes
    ----------
    index : Path
        The HTML page.
    figures : dict of str to Path
        The PNG of each figure drawn (keys of :data:`FIGURE_FILES`).
    data : Path
        ``report.json``: every plotted number.
    notes : list of str
        Sections left out or limited, and why.
    """

    index: Path
    figures: dict[str, Path]
    data: Path
    notes: list[str] = field(default_factory=list)


def build_report(
    knowledge_base: KnowledgeBase | str,
    study: str,
    out_dir: str | Path,
    *,
    data: Any = None,
    model_fn: Callable[[Mapping[str, Any]], Any] | None = None,
    optimizer_fn: Callable[[Any, Mapping[str, Any]], Any] | None = None,
    criterion: Any = None,
    top_k: int = 3,
    landscape: bool = True,
    meta_model: bool = True,
    progress: Callable[[str], None] | None = None,
    retrain: bool = False,
    n_workers: int = 1,
) -> Report:
    """Write the report of a stored study: ``index.html``, PNG figures, ``report.json``.

    Everything is read from the knowledge base, so it works in any later process. Two
    sections compute: the loss-landscape slices of the ``top_k`` best configurations
    (which needs ``data``: the models come from the weights the study kept in the
    cache folder once their validation score checks out, else they are retrained), and
    the feature importances, those of the surrogate the search ranked with (its prior's,
    read back from the cache of fitted meta-models as a rule), or of one fitted from stored
    records when it ranked with none.

    Parameters
    ----------
    knowledge_base : KnowledgeBase or str
        An open knowledge base or its storage (path or URL).
    study : str
        Name of the study.
    out_dir : str or Path
        Folder of the page and its figures (created if needed).
    data : FidelityData or dataset_fn, optional
        The study's data, prepared as for the search; without it there are no slices.
        A :class:`~llp.data.FidelityData` whose fingerprint differs from the study's
        dataset is refused (with a note).
    model_fn, optimizer_fn, criterion : optional
        As the study used them. For studies of the ``"mlp"``/``"cnn"`` families on a
        FidelityData they default to :mod:`llp.knowledge`'s builders and cross-entropy.
    top_k : int, default=3
        Configurations sliced.
    landscape, meta_model : bool, default=True
        Draw those sections.
    progress : callable, optional
        Receives a line as each stage starts (the slow ones are the retraining for
        slices and the meta-model refit).
    retrain : bool, default=False
        Retrain every sliced configuration, even where the study kept its weights: a
        check that training reproduces the stored scores.
    n_workers : int, default=1
        Local processes that retrain the sliced configurations side by side when two or
        more need retraining (a ``model_fn`` that cannot be sent to a process, such as
        a lambda, retrains here, one configuration after another), and threads for the
        meta-model's refit.

    Returns
    -------
    Report

    Raises
    ------
    KeyError
        If the knowledge base has no study called ``study``.
    ValueError
        If the study has no evaluations.

    Examples
    --------
    >>> from llp.report import build_report
    >>> report = build_report("llp-runs/knowledge.db", "digits-mlp-1a2b3c4d",
    ...                       "llp-runs/reports/digits")  # doctest: +SKIP
    >>> report.index  # doctest: +SKIP
    PosixPath('llp-runs/reports/digits/index.html')
    """
    from llp.store import KnowledgeBase

    check_int("n_workers", n_workers, min_value=1, owner="build_report")
    kb = (
        knowledge_base
        if isinstance(knowledge_base, KnowledgeBase)
        else KnowledgeBase.open(knowledge_base)
    )
    try:
        return _build(
            kb,
            study,
            Path(out_dir),
            data,
            model_fn,
            optimizer_fn,
            criterion,
            top_k,
            landscape,
            meta_model,
            progress or (lambda _line: None),
            retrain,
            n_workers,
        )
    finally:
        if kb is not knowledge_base:
            kb.close()


def _build(
    kb: KnowledgeBase,
    name: str,
    out: Path,
    data: Any,
    model_fn: Any,
    optimizer_fn: Any,
    criterion: Any,
    top_k: int,
    landscape: bool,
    meta_model: bool,
    progress: Callable[[str], None],
    retrain: bool = False,
    n_workers: int = 1,
) -> Report:
    from llp.report import _figures as figs

    study = load_study(kb, name)
    if study.frame.empty:
        raise ValueError(f"The study {name!r} has no evaluations yet; there is nothing to report.")
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    objective = study.objective
    best = best_evaluation(study)
    if best is None and not study.complete.empty:
        notes.append(
            "No answer is stored with this study: it was recorded before llp stored each "
            "study's answer (knowledge-base schema 1), so the report names none and draws "
            "no answer line; tables rank by measured score."
        )
    budget = budget_series(study)
    rungs = rung_series(study)
    curves = curve_series(study)
    predictions = prediction_series(study)
    slices: list[SliceResult] = []
    if landscape:
        if data is not None:
            progress(f"report: loss slices of the {top_k} best configurations")
        slices = _slices(
            study, data, model_fn, optimizer_fn, criterion, top_k, notes, retrain, n_workers
        )
    importances: Importances | None = None
    if meta_model:
        from llp.report._meta import study_importances

        importances = study_importances(kb, study, progress, n_workers)
        if not importances.fitted:
            notes.append(f"No feature importances: {importances.why}.")
    progress("report: drawing the figures")
    blocks: list[FigureBlock] = []
    written: dict[str, Path] = {}
    label = objective_label(objective)

    def draw(key: str, make: Callable[[], Any], title: str, caption: str, alt: str) -> None:
        with figs.report_style():
            fig = make()
            written[key] = figs.save_figure(fig, out / FIGURE_FILES[key])
        blocks.append(FigureBlock(FIGURE_FILES[key], title, caption, alt))

    n_failed = sum(1 for s in budget["status"] if s != "complete")
    draw(
        "budget",
        lambda: figs.budget_figure(budget, objective),
        "The answer against budget spent",
        f"Each dot is one evaluation, placed at the compute spent when it finished and at "
        f"its {label}; the line is the study's answer after each evaluation, as the study "
        "stored it (what it would have returned had it stopped there), drawn at the score "
        "the answer measured on its data share: it steps down when the answer moves to "
        "more data, where scores are lower. "
        f"{len(budget['score'])} evaluations, {n_failed} failed (red crosses).",
        "score of each evaluation against cumulative compute",
    )
    draw(
        "rungs",
        lambda: figs.rung_figure(rungs, objective),
        "Rung diagram",
        "Each configuration's score on each share of the training data it was trained on. "
        "Blue lines join the rungs of promoted configurations; grey dots stayed behind; "
        "the study's answer is highlighted.",
        "scores per rung, promoted configurations joined by lines",
    )
    draw(
        "curves",
        lambda: figs.curves_figure(curves, objective, rungs["best_trial"]),
        "Learning curves",
        "Per-epoch validation metric and training loss of every evaluation, coloured by "
        "the share of the data it trained on; black: the study's answer at the "
        "largest share it reached.",
        "learning curves of all evaluations",
    )
    if slices:
        draw(
            "landscape",
            lambda: figs.landscape_figure(slices),
            "Loss landscape of the answer and the best other configurations",
            f"The study's answer and the best others by measured score ({len(slices)} in "
            f"all; {_origins(slices)}), and their training loss on the study's fixed probe set "
            "along a filter-normalised random direction (left) and, for the answer, on a plane "
            "of two such directions (right). Flat, wide basins tend to generalise better.",
            "loss slices around the best configurations",
        )
    if importances is not None and importances.fitted:
        draw(
            "importances",
            lambda: figs.importance_figure(importances),
            "Meta-model feature importances",
            f"The performance surrogate ({importances.basis}; "
            f"{importances.n_evaluations} evaluations of {importances.n_datasets} datasets: "
            f"{', '.join(importances.sources)}): which inputs its forest splits on most. "
            "'partial:' inputs describe a configuration's training at a lower rung, "
            "'dataset:' inputs the dataset.",
            "feature importances of the performance surrogate",
        )
    if predictions["trial"]:
        draw(
            "predictions",
            lambda: figs.prediction_figure(predictions, objective),
            "Predicted against measured",
            _prediction_caption(predictions),
            "predicted final rank against measured score",
        )
    else:
        notes.append(
            "No meta-model predictions are stored for this study (only meta-guided "
            "searches promote and propose by prediction)."
        )
    payload = {
        "study": study.study.name,
        "objective": objective,
        "best": _best_json(best),
        "budget": budget,
        "rungs": rungs,
        "curves": curves,
        "predictions": predictions,
        "sources": source_table(study, best),
        "landscape": [s.to_json() for s in slices],
        "importances": importances.to_json() if importances is not None else None,
        "notes": notes,
    }
    data_path = out / "report.json"
    data_path.write_text(json.dumps(_json_safe(payload), indent=1, allow_nan=False) + "\n")
    index = out / "index.html"
    index.write_text(_page(kb, study, best, budget, blocks, slices, notes), encoding="utf-8")
    return Report(index=index, figures=written, data=data_path, notes=notes)


def _slices(
    study: StudyData,
    data: Any,
    model_fn: Any,
    optimizer_fn: Any,
    criterion: Any,
    top_k: int,
    notes: list[str],
    retrain: bool = False,
    n_workers: int = 1,
) -> list[SliceResult]:
    from llp.data import FidelityData

    if data is None:
        notes.append(
            "No loss-landscape slices: the report was built without the study's data "
            "(llp report reads it again from the recipe 'llp tune' stored, or from --data)."
        )
        return []
    if (
        isinstance(data, FidelityData)
        and study.dataset is not None
        and data.fingerprint != study.dataset.fingerprint
    ):
        notes.append(
            "No loss-landscape slices: the data given are not the study's data "
            f"(fingerprint {data.fingerprint[:12]}…, the study's is "
            f"{study.dataset.fingerprint[:12]}…)."
        )
        return []
    family = study.study.model_family
    if model_fn is None or optimizer_fn is None:
        if family not in ("mlp", "cnn") or not isinstance(data, FidelityData):
            notes.append(
                "No loss-landscape slices: the study's model is not one of llp's families "
                "(mlp, cnn); pass model_fn and optimizer_fn to build_report."
            )
            return []
        import functools

        from llp.knowledge import make_cnn, make_mlp, make_optimizer

        n_classes = data.n_classes or 1
        model_fn = model_fn or (
            functools.partial(make_cnn, input_shape=data.input_shape, n_classes=n_classes)
            if family == "cnn"
            else functools.partial(
                make_mlp, n_features=int(data.input_shape[0]), n_classes=n_classes
            )
        )
        optimizer_fn = optimizer_fn or make_optimizer
    if criterion is None:
        from torch import nn

        criterion = nn.CrossEntropyLoss()
    from llp.report._landscape import landscape_slices
    from llp.training._weights import KeptWeights

    record = study.study
    kept = (
        None
        if retrain
        else KeptWeights.for_study(
            record.name,
            record.seed,
            record.created_at,
            None if study.dataset is None else study.dataset.fingerprint,
        )
    )
    slices = landscape_slices(
        study, data, model_fn, optimizer_fn, criterion, top_k=top_k, kept=kept, n_workers=n_workers
    )
    if not slices:
        notes.append("No loss-landscape slices: retraining the best configurations failed.")
    return slices


def _origins(slices: Sequence[SliceResult]) -> str:
    """Where the sliced models came from, for the caption."""
    kept = [s for s in slices if s.origin == "kept"]
    retrained = [s for s in slices if s.origin == "retrained"]
    parts = []
    if kept:
        parts.append(
            f"{len(kept)} from the weights the search kept, whose validation score measured "
            "again equals the stored one"
        )
    if retrained:
        reproduced = sum(s.reproduced for s in retrained)
        parts.append(
            f"{len(retrained)} retrained from their stored configurations and seeds, "
            f"{reproduced} of which reproduced the stored score exactly"
        )
    return "; ".join(parts)


def _prediction_caption(predictions: Mapping[str, list[Any]]) -> str:
    text = (
        "Every promotion and proposal of the meta-guided search, as stored with the "
        "evaluation: the surrogate's predicted final rank of the configuration (1 = best "
        "of the study; bars: ± the spread of its trees) against the score the "
        "configuration reached on the largest data share it completed."
    )
    pairs = [
        (p, m) for p, m in zip(predictions["predicted"], predictions["measured"]) if m is not None
    ]
    if len(pairs) >= 3 and len({p for p, _ in pairs}) > 1 and len({m for _, m in pairs}) > 1:
        import pandas as pd  # already loaded with the study

        # Spearman's rho as Pearson's on average ranks: pandas' own "spearman" imports
        # scipy.stats, about 0.5 s of a report that should take under 2.
        predicted = pd.Series([p for p, _ in pairs], dtype=float).rank()
        rho = float(predicted.corr(pd.Series([m for _, m in pairs], dtype=float).rank()))
        text += f" Spearman rank correlation over {len(pairs)} predictions: {rho:.2f}."
    return text


def _best_json(best: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if best is None:
        return None
    return {
        "trial": int(best["trial_number"]),
        "score": float(best["score"]),
        "fraction": float(best["fraction"]),
        "epochs": int(best["epochs"]),
    }


def _page(
    kb: KnowledgeBase,
    study: StudyData,
    best: Mapping[str, Any] | None,
    budget: Mapping[str, list[Any]],
    blocks: list[FigureBlock],
    slices: list[SliceResult],
    notes: list[str],
) -> str:
    from llp import __version__

    record = study.study
    dataset_name = (study.dataset.name or study.dataset.fingerprint[:12]) if study.dataset else "-"
    n = len(budget["score"])
    failed = sum(1 for s in budget["status"] if s != "complete")
    cost = budget["cumulative_cost"][-1] if budget["cumulative_cost"] else 0.0
    wall = float(study.frame["seconds"].sum())
    cards = [
        (
            f"{best['score']:.4f} (trial {int(best['trial_number'])})" if best else "-",
            f"the answer's {objective_label(record.objective)}",
        ),
        (
            f"{format_share(float(best['fraction']))}" if best else "-",
            "data share it was judged on",
        ),
        (f"{n} ({failed} failed)", "evaluations"),
        (f"{cost:.1f}", "full-data epochs spent"),
        (f"{wall:.1f} s", "training time, summed"),
    ]
    planned = record.settings.get("budget")
    if isinstance(planned, int | float) and planned > 0:
        if record.settings.get("budget_scales_with_probes"):
            # A default budget: training, plus probes in the proportion they cost.
            training = float(study.frame["cost"].sum())
            probes = float(study.frame["probe_cost"].sum())
            planned = float(planned) * (1.0 + (probes / training if training > 0 else 0.0))
        cards.append((f"{max(float(planned) - cost, 0.0):.1f}", f"of {planned:.4g} left unspent"))
    sections: list[tuple[str, str]] = []
    if study.answer is not None:
        sections.append(
            (
                "Why this answer",
                table(["rule", "why"], [[study.answer.rule, study.answer.note]]),
            )
        )
    origins = source_table(study, best)
    if origins:
        rows = [
            [
                o["source"],
                o["configurations"],
                "-" if o["best_at_top"] is None else o["best_at_top"],
                "yes" if o["answer"] else "",
            ]
            for o in origins
        ]
        header = f"best {objective_label(record.objective)} on the largest data share"
        sections.append(
            (
                "Where the configurations came from",
                table(["source", "configurations", header, "the answer"], rows),
            )
        )
    ranked = top_trials(study, 10)
    if ranked:
        names = sorted(study.configs[int(ranked[0]["trial_number"])])
        answer = None if best is None else int(best["evaluation_id"])
        rows = [
            [
                int(r["trial_number"]),
                "yes" if int(r["evaluation_id"]) == answer else "",
                float(r["score"]),
            ]
            + [study.configs[int(r["trial_number"])].get(k, "") for k in names]
            for r in ranked
        ]
        sections.append(
            (
                "Top configurations at the largest data share: the answer, then by measured score",
                table(["trial", "the answer", objective_label(record.objective), *names], rows),
            )
        )
    if slices:
        rows = [
            [
                s.trial,
                "kept by the search" if s.origin == "kept" else "retrained",
                s.stored_score,
                s.measured_score if s.measured_score is not None else "-",
                "yes" if s.reproduced else "no",
            ]
            for s in slices
        ]
        sections.append(
            (
                "Models of the landscape slices",
                table(["trial", "model", "stored score", "measured again", "equal"], rows),
            )
        )
    subtitle = (
        f"dataset {dataset_name} · {record.scheduler} · model family "
        f"{record.model_family or '-'} · seed {record.seed} · created "
        f"{record.created_at:%Y-%m-%d %H:%M} UTC"
    )
    best_config = dict(study.configs[int(best["trial_number"])]) if best else None
    return render_page(
        title=f"llp report: {record.name}",
        subtitle=subtitle,
        cards=cards,
        best_config=best_config,
        figures=blocks,
        sections=sections,
        notes=notes,
        settings=dict(record.settings),
        footer=(
            f"Generated by llp {__version__} from the knowledge base {kb.storage}; every "
            "plotted number is in report.json next to this page."
        ),
    )


def _json_safe(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null; numpy scalars become Python ones."""
    import numpy as np

    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


__all__ = ["FIGURE_FILES", "Report", "build_report"]
