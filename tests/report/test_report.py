"""``llp report``: an HTML page whose figures exist and whose numbers come from the store."""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from torch import nn

from llp.meta_probing import MetaProbing
from llp.report import (
    FIGURE_FILES,
    budget_series,
    build_report,
    load_study,
    prediction_series,
    rung_series,
    source_table,
)
from llp.report._figures import budget_figure, rung_figure
from llp.report._landscape import N_POINTS_1D, N_POINTS_2D
from llp.store import DecisionRecord, KnowledgeBase
from tests.cli.conftest import invoke
from tests.report.conftest import run_llp

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_page_references_images_that_exist_and_are_non_empty_pngs(
    written_report: dict[str, Any],
) -> None:
    index = Path(written_report["index"])
    html = index.read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert sorted(sources) == sorted(FIGURE_FILES.values())  # all six figures
    for source in sources:
        image = index.parent / source
        assert image.is_file() and image.stat().st_size > 10_000, source
        assert image.read_bytes()[:8] == PNG_SIGNATURE
    assert written_report["notes"] == []


def test_the_page_names_the_study_its_best_configuration_and_its_source(
    written_report: dict[str, Any], stored_study: dict[str, Any]
) -> None:
    html = Path(written_report["index"]).read_text(encoding="utf-8")
    assert f"llp report: {stored_study['study']}" in html
    assert f"{stored_study['best_score']:.4f}" in html
    for name in stored_study["best_config"]:
        assert f"<td>{name}</td>" in html
    assert str(stored_study["storage_path"]) in html


def test_plotted_budget_numbers_are_the_stored_costs_and_scores(
    written_report: dict[str, Any], stored_study: dict[str, Any]
) -> None:
    plotted = json.loads(Path(written_report["data"]).read_text())["budget"]
    with KnowledgeBase.open(stored_study["storage_path"]) as kb:
        frame = kb.evaluations_frame(study=stored_study["study"]).sort_values("evaluation_id")
    spent = np.cumsum(frame["cost"].to_numpy() + frame["probe_cost"].to_numpy())
    assert plotted["cumulative_cost"] == pytest.approx(spent.tolist())
    scores = [None if s != "complete" else v for s, v in zip(frame["status"], frame["score"])]
    assert plotted["score"] == pytest.approx(scores)
    assert plotted["incumbent"][-1] == pytest.approx(stored_study["best_score"])
    assert plotted["cumulative_cost"][-1] == pytest.approx(stored_study["total_cost"])


def test_the_figures_draw_exactly_the_collected_series(stored_study: dict[str, Any]) -> None:
    with KnowledgeBase.open(stored_study["storage_path"]) as kb:
        data = load_study(kb, stored_study["study"])
    series = budget_series(data)
    fig = budget_figure(series, data.objective)
    (step,) = [line for line in fig.axes[0].get_lines() if line.get_drawstyle() != "default"]
    xs, ys = step.get_xdata(), step.get_ydata()
    expected = [(c, b) for c, b in zip(series["cumulative_cost"], series["incumbent"]) if b]
    assert list(xs) == pytest.approx([c for c, _ in expected])
    assert list(ys) == pytest.approx([b for _, b in expected])

    rungs = rung_series(data)
    best_trial = rungs["best_trial"]
    assert best_trial == stored_study["best_trial"]
    fig = rung_figure(rungs, data.objective)
    best_line = next(
        line
        for line in fig.axes[0].get_lines()
        if line.get_label() == f"answer: trial {best_trial}"
    )
    stored_scores = (
        data.frame[data.frame["trial_number"] == best_trial]
        .sort_values("fraction")["score"]
        .tolist()
    )
    assert list(best_line.get_ydata()) == pytest.approx(stored_scores)


def test_log_scales_are_labelled_with_plain_numbers_and_no_maths(
    stored_study: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # matplotlib typesets its default log labels (4 x 10^-2) as maths: slower, and it
    # looks for fonts it may not find. The report's are plain numbers.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.mathtext import MathTextParser

    from llp.report import curve_series
    from llp.report._figures import curves_figure

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a figure typeset maths")

    monkeypatch.setattr(MathTextParser, "parse", refuse)
    with KnowledgeBase.open(stored_study["storage_path"]) as kb:
        data = load_study(kb, stored_study["study"])
    fig = curves_figure(curve_series(data), data.objective, stored_study["best_trial"])
    FigureCanvasAgg(fig).draw()
    right = fig.axes[1]
    assert right.get_yscale() == "log"
    labels = [t.get_text() for t in right.get_yticklabels() if t.get_text()]
    assert labels and all(float(text) > 0 for text in labels)


def test_landscape_slices_come_from_the_weights_the_search_kept(
    written_report: dict[str, Any], stored_study: dict[str, Any]
) -> None:
    slices = json.loads(Path(written_report["data"]).read_text())["landscape"]
    assert 1 <= len(slices) <= 3
    best = slices[0]
    assert best["trial"] == stored_study["best_trial"]
    assert best["config"] == stored_study["best_config"]
    assert best["stored_score"] == pytest.approx(stored_study["best_score"])
    # The search kept its top rung's weights: no retraining, the score measured again.
    assert [s["origin"] for s in slices] == ["kept"] * len(slices)
    assert best["reproduced"] is True and best["measured_score"] == best["stored_score"]
    assert len(best["alphas"]) == len(best["losses"]) == N_POINTS_1D
    assert len(best["losses_2d"]) == len(best["grid"]) == N_POINTS_2D
    centre = best["losses"][N_POINTS_1D // 2]
    assert all(math.isfinite(v) and v > 0 for v in best["losses"])
    assert centre == pytest.approx(min(best["losses"]), rel=0.5)


def test_importances_are_those_of_a_refitted_surrogate(written_report: dict[str, Any]) -> None:
    importances = json.loads(Path(written_report["data"]).read_text())["importances"]
    assert importances["fitted"] is True
    assert sum(importances["values"]) == pytest.approx(1.0)
    assert importances["values"] == sorted(importances["values"], reverse=True)
    assert any(name.startswith("config: ") for name in importances["names"][:10])
    # Refitted with the study's own flags: it measured no flatness, so its surrogate
    # read no landscape features (as in the search, through llp.knowledge.build_prior).
    landscape = [
        v for v, g in zip(importances["values"], importances["groups"]) if g == "landscape"
    ]
    assert landscape and all(v == 0.0 for v in landscape)


def test_predictions_in_the_report_are_the_ones_stored_with_the_evaluations(
    written_report: dict[str, Any], stored_study: dict[str, Any]
) -> None:
    plotted = json.loads(Path(written_report["data"]).read_text())["predictions"]
    with KnowledgeBase.open(stored_study["storage_path"]) as kb:
        stored = kb.decisions(stored_study["study"])
    # Read from the stored decisions, exactly (no text parsed, nothing rounded).
    expected = [
        (d.prior_score, 0.0) if d.action == "proposed" else (d.predicted, d.uncertainty)
        for d in stored
        if d.action in ("proposed", "promoted")
    ]
    expected = [(p, u) for p, u in expected if p is not None]
    assert plotted["predicted"] and plotted["predicted"] == [p for p, _ in expected]
    assert plotted["uncertainty"] == [u for _, u in expected]
    assert set(plotted["action"]) <= {"promoted", "proposed"}


def test_a_report_in_a_later_process_reads_everything_from_the_store(
    stored_study: dict[str, Any], tmp_path: Path
) -> None:
    out = run_llp(
        "report", stored_study["study"], "--storage", stored_study["storage_path"],
        "--out", tmp_path, "--no-landscape", "--no-meta",
    )  # fmt: skip
    assert sorted(out["figures"]) == ["budget", "curves", "predictions", "rungs"]
    for path in out["figures"].values():
        assert Path(path).stat().st_size > 0


def test_the_prediction_caption_gives_spearmans_rho_with_ties_as_scipy_does() -> None:
    from scipy.stats import spearmanr

    from llp.report._build import _prediction_caption

    predicted = [1.0, 2.0, 2.0, 4.0, 5.0, 5.0]
    measured = [0.9, 0.7, 0.8, 0.8, None, 0.1]
    caption = _prediction_caption({"predicted": predicted, "measured": measured})
    kept = [(p, m) for p, m in zip(predicted, measured) if m is not None]
    rho = spearmanr([p for p, _ in kept], [m for _, m in kept])[0]
    assert f"Spearman rank correlation over 5 predictions: {rho:.2f}." in caption
    assert "Spearman" not in _prediction_caption({"predicted": [1, 2], "measured": [0.1, 0.2]})


def test_a_report_with_predictions_and_no_retraining_loads_neither_torch_nor_scipy_stats(
    stored_study: dict[str, Any], tmp_path: Path
) -> None:
    # This study has promotions to caption (a Spearman over them): pandas' own "spearman"
    # would import scipy.stats, half a second of a report meant to take under two.
    from tests.cli.conftest import modules_after

    args = ["report", stored_study["study"], "--storage", stored_study["storage_path"]]
    args += ["--out", tmp_path / "r", "--no-landscape", "--no-meta", "--quiet"]
    code, loaded, err = modules_after(args, tmp_path, ["torch", "scipy.stats"])
    assert (code, loaded) == (0, []), err
    assert "Spearman rank correlation" in (tmp_path / "r" / "index.html").read_text()


def test_stored_predictions_are_exactly_what_the_meta_guided_search_predicted(
    tmp_path: Path,
) -> None:
    from llp.knowledge import DEFAULT_SPACE, make_mlp, make_optimizer

    torch.manual_seed(0)
    X, y = load_wine(return_X_y=True)
    storage = tmp_path / "kb.db"
    mp = MetaProbing.from_arrays(
        X, y, DEFAULT_SPACE.sample(2, seed=0),
        lambda c: make_mlp(c, 13, 3), nn.CrossEntropyLoss(), make_optimizer,
        standardize=True, space=DEFAULT_SPACE, model_family="mlp", prior="shipped",
        exclude_groups=("sklearn-wine",), max_epochs=2, show_progress=False,
        storage=storage, study_name="wine",
    )  # fmt: skip
    mp.run_meta_optimization(
        min_resource=0.25, max_resource=1.0, reduction_factor=2,
        measure_flatness=False, num_initial_configs=12, num_iterations=3, budget=30,
    )  # fmt: skip
    result = mp.result_
    assert result is not None
    proposed = {
        p.trial_id: p.predicted
        for p in result.predictions
        if p.action == "propose" and math.isfinite(p.predicted)
    }
    assert proposed, "the prior scored no proposal"
    with KnowledgeBase.open(storage) as kb:
        series = prediction_series(load_study(kb, "wine"))
        decisions = kb.decisions("wine")
    stored = {
        t: p for t, p, a in zip(series["trial"], series["predicted"], series["action"])
        if a == "proposed"
    }  # fmt: skip
    trained = {e.trial_id for e in result.evaluations}
    assert set(stored) == set(proposed) & trained
    assert stored == {t: proposed[t] for t in stored}  # exact, not rounded
    # Every decision of the search is stored, in order, "kept out" ones included.
    assert [d.sequence for d in decisions] == list(range(len(result.study.decisions)))
    assert [d.action for d in decisions] == [d.action for d in result.study.decisions]
    assert any(d.action == "kept out" for d in decisions)


def test_budget_series_counts_every_cost_and_draws_the_stored_answer(
    make_study: Callable[..., Any],
) -> None:
    kb, name = make_study(
        [
            (0, 0.25, None, "initial configuration"),
            (1, 0.25, 0.70, "initial configuration"),
            (2, 0.25, 0.90, "initial configuration"),
            (2, 0.5, 0.80, "promoted"),
            (1, 0.5, 0.85, "promoted"),
        ],
        decisions=[
            DecisionRecord(0, "promoted", "checked surrogate", "up", trial_number=2,
                           fraction=0.5, predicted=None, posterior=0.88),
            DecisionRecord(1, "promoted", "checked surrogate", "up", trial_number=1,
                           fraction=0.5, predicted=0.61, uncertainty=0.2),
        ],
        # The stored answer stays with trial 2 although trial 1 measured higher on 50%.
        answers=[None, (1, 0.25), (2, 0.25), (2, 0.5), (2, 0.5)],
    )  # fmt: skip
    series = budget_series(load_study(kb, name))
    assert series["cumulative_cost"] == pytest.approx([1.5, 3.0, 4.5, 6.0, 7.5])
    assert series["score"] == [None, 0.70, 0.90, 0.80, 0.85]
    # The stored answer's score, never re-judged: None until one is stored; steps down
    # when the answer moves to more data.
    assert series["incumbent"] == [None, 0.70, 0.90, 0.80, 0.80]
    assert series["answer_trial"] == [None, 1, 2, 2, 2]
    predictions = prediction_series(load_study(kb, name))
    assert predictions["trial"] == [1] and predictions["predicted"] == [0.61]
    assert predictions["uncertainty"] == [0.2]
    assert predictions["measured"] == [0.85] and predictions["measured_fraction"] == [0.5]


def test_the_report_says_where_the_configurations_came_from(
    written_report: dict[str, Any], stored_study: dict[str, Any]
) -> None:
    html = Path(written_report["index"]).read_text(encoding="utf-8")
    assert "Where the configurations came from" in html
    data = json.loads(Path(written_report["data"]).read_text())
    rows = {r["source"]: r for r in data["sources"]}
    expected = Counter(stored_study["sources"].values())
    assert {s: r["configurations"] for s, r in rows.items()} == expected
    assert "prior" in rows  # the meta-model's pick and the prior's best configurations
    (holder,) = [r for r in rows.values() if r["answer"]]
    assert holder["source"] == stored_study["sources"][str(stored_study["best_trial"])]
    assert holder["best_at_top"] >= stored_study["best_score"]
    # The budget the study was given, and what it left.
    unspent = stored_study["budget_saved"]
    assert f"{unspent:.1f}</" in html and "of 24 left unspent" in html


def test_source_table_reads_the_first_proposal_of_each_trial(
    make_study: Callable[..., Any],
) -> None:
    def proposed(sequence: int, trial: int, source: str) -> DecisionRecord:
        return DecisionRecord(sequence, "proposed", "r", "words", trial_number=trial,
                              fraction=0.5, source=source)  # fmt: skip

    kb, name = make_study(
        [
            (0, 0.5, 0.6, "the pick"),
            (1, 0.5, 0.7, "a draw"),
            (0, 1.0, 0.8, "promoted"),
            (1, 1.0, 0.7, "promoted"),
            (2, 0.5, 0.5, "a draw"),
        ],
        decisions=[
            proposed(0, 0, "prior"),
            proposed(1, 1, "random"),
            DecisionRecord(2, "promoted", "posterior", "w", trial_number=0, source="prior"),
            proposed(3, 2, "random"),
            proposed(4, 0, "model"),  # only the first proposal of a trial counts
        ],
    )
    study = load_study(kb, name)
    rows = source_table(study, {"trial_number": 0})
    assert rows == [
        {"source": "prior", "configurations": 1, "best_at_top": 0.8, "answer": True},
        {"source": "random", "configurations": 2, "best_at_top": 0.7, "answer": False},
    ]


def test_a_study_without_meta_model_decisions_gets_a_note_instead_of_a_figure(
    make_study: Callable[..., Any], tmp_path: Path
) -> None:
    kb, name = make_study([(0, 1.0, 0.5, "initial"), (1, 1.0, 0.6, "initial")])
    assert source_table(load_study(kb, name), None) == []  # no decisions, no sources
    report = build_report(kb, name, tmp_path / "r", meta_model=False)
    assert "predictions" not in report.figures
    assert any("No meta-model predictions" in n for n in report.notes)
    assert any("No loss-landscape slices" in n for n in report.notes)
    assert set(report.figures) == {"budget", "rungs", "curves"}


def test_data_with_another_fingerprint_is_not_used_for_slices(
    stored_study: dict[str, Any], tmp_path: Path
) -> None:
    from llp.data import FidelityData

    X, y = load_wine(return_X_y=True)
    with KnowledgeBase.open(stored_study["storage_path"]) as kb:
        report = build_report(
            kb, stored_study["study"], tmp_path, data=FidelityData(X, y), meta_model=False
        )
    assert "landscape" not in report.figures
    assert any("not the study's data" in n for n in report.notes)


def test_a_study_whose_data_file_moved_still_gets_its_report_without_slices(
    tmp_path: Path,
) -> None:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    csv = tmp_path / "flowers.csv"
    import pandas as pd

    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["target"] = y
    frame.to_csv(csv, index=False)
    storage = tmp_path / "kb.db"
    tuned = run_llp(
        "tune", csv, "--storage", storage, "--budget", "8", "--epochs", "2",
        "--no-flatness", "--prior", "none", "--no-report",
    )  # fmt: skip
    csv.rename(tmp_path / "moved.csv")
    out = run_llp(
        "report", tuned["study"], "--storage", storage, "--out", tmp_path / "r", "--no-meta"
    )
    assert "landscape" not in out["figures"]
    assert any("without the study's data" in n for n in out["notes"])
    again = run_llp(
        "report", tuned["study"], "--storage", storage, "--out", tmp_path / "r2",
        "--data", tmp_path / "moved.csv", "--no-meta",
    )  # fmt: skip
    assert "landscape" in again["figures"]


def test_the_report_kb_show_and_kb_list_agree_on_an_answer_that_is_not_the_best_score(
    make_study: Callable[..., Any], tmp_path: Path
) -> None:
    from llp.cli._kb import list_knowledge, show_study
    from llp.report import top_trials

    kb, name = make_study(
        [(0, 1.0, 0.80, "pick"), (1, 1.0, 0.83, "draw"), (2, 1.0, 0.60, "draw")],
        answers=[(0, 1.0), (0, 1.0), (0, 1.0)],
    )
    data = load_study(kb, name)
    assert data.answer is not None and data.answer.trial_number == 0
    # The answer leads the table and the landscape, then the others by measured score.
    assert [int(r["trial_number"]) for r in top_trials(data, 3)] == [0, 1, 2]
    report = build_report(kb, name, tmp_path / "r", landscape=False, meta_model=False)
    payload = json.loads(report.data.read_text())
    assert payload["best"]["trial"] == 0 and payload["rungs"]["best_trial"] == 0
    html = report.index.read_text(encoding="utf-8")
    assert "0.8000 (trial 0)" in html and "Why this answer" in html and "trial 0" in html
    shown = show_study(kb, kb.get_study(name))
    assert (shown["best_trial"], shown["best_score"]) == (0, 0.80)
    assert shown["answer_note"] == "trial 0" and shown["answer_rule"] == "posterior"
    assert [t["trial"] for t in shown["top_trials"]] == [0, 1, 2]
    (listed,) = list_knowledge(kb)["studies"]
    assert (listed["best_trial"], listed["best_score"]) == (0, 0.80)


def test_the_report_orders_equal_scores_as_the_search_keeps_their_weights(
    make_study: Callable[..., Any],
) -> None:
    from llp.report import top_trials
    from llp.search import Evaluation, Job
    from llp.training._weights import top_trials_of
    from tests.report.conftest import stored_result

    rows = [(0, 1.0, 0.80, "draw", 0.9), (1, 1.0, 0.80, "draw", 0.5), (2, 1.0, 0.80, "draw", 0.7)]
    kb, name = make_study(rows)
    data = load_study(kb, name)
    shown = [int(r["trial_number"]) for r in top_trials(data, 3)]
    evaluations = []
    for t, f, s, _, loss in rows:
        result = stored_result({"x": t}, f, s, val_loss=loss)
        evaluations.append(Evaluation(Job(t, t, {"x": t}, result.fidelity, 0, 0, ""), result))
    assert shown == top_trials_of(evaluations, None) == [1, 2, 0]


def test_the_budget_legend_fits_the_figure() -> None:
    """Four data shares, failures and the long best-so-far label: the legend's columns
    shrink until it fits the figure's width (it was clipped on both sides)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fractions = [0.125, 0.25, 0.5, 1.0]
    series = {
        "cumulative_cost": [1.0, 2.0, 3.0, 4.0, 5.0],
        "score": [0.5, 0.6, 0.7, 0.8, None],
        "fraction": [*fractions, 1.0],
        "incumbent": [None, None, None, 0.8, 0.8],
        "status": ["complete"] * 4 + ["failed"],
    }
    fig = budget_figure(series, "val_accuracy")
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    (legend,) = fig.legends
    box = legend.get_window_extent(canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width
    assert len(legend.get_texts()) == 6  # every entry is still there


def test_a_figure_drawn_once_has_the_pixels_savefig_draws_twice(tmp_path: Path) -> None:
    """``save_figure`` lays the figure out and renders it in one draw; matplotlib's
    ``savefig`` (a layout pass, then the drawing) gives the same image and resolution."""
    from PIL import Image

    from llp.report._figures import DPI, report_style, save_figure

    series = {
        "cumulative_cost": [1.0, 2.0, 3.0, 4.0, 5.0],
        "score": [0.5, 0.6, 0.7, 0.8, None],
        "fraction": [0.125, 0.25, 0.5, 1.0, 1.0],
        "incumbent": [None, 0.5, 0.6, 0.8, 0.8],
        "status": ["complete"] * 4 + ["failed"],
    }
    with report_style():
        save_figure(budget_figure(series, "val_accuracy"), tmp_path / "once.png")
        budget_figure(series, "val_accuracy").savefig(tmp_path / "twice.png", dpi=DPI)
    once, twice = Image.open(tmp_path / "once.png"), Image.open(tmp_path / "twice.png")
    assert once.size == twice.size
    assert np.array_equal(np.asarray(once), np.asarray(twice))
    assert round(once.info["dpi"][0]) == DPI


def test_the_report_says_each_slow_stage_as_it_starts(
    make_study: Callable[..., Any], tmp_path: Path, stored_study: dict[str, Any]
) -> None:
    kb, name = make_study([(0, 1.0, 0.5, "initial"), (1, 1.0, 0.6, "initial")])
    lines: list[str] = []
    build_report(kb, name, tmp_path / "r", landscape=False, meta_model=False, progress=lines.append)
    assert lines == ["report: drawing the figures"]
    # Through the command line, on stderr (stdout stays for the result).
    result = invoke(
        ["report", stored_study["study"], "--storage", stored_study["storage_path"],
         "--out", tmp_path / "cli", "--no-landscape"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    # Refitted, or kept from an earlier report of the same study (another test's).
    assert re.search(
        r"report: (the meta-model.s feature importances|feature importances kept)", said
    )
    assert "report: drawing the figures" in said
    assert "report:" not in result.stdout


def test_a_report_folder_that_cannot_be_made_is_a_one_line_error(
    stored_study: dict[str, Any], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = invoke(
        ["report", stored_study["study"], "--storage", stored_study["storage_path"],
         "--out", blocker / "report", "--no-landscape", "--no-meta"]
    )  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = [x for x in result.stderr.splitlines() if x.strip()][-1:]
    assert line.startswith("llp report: error: Cannot write the report to ")
    assert "Choose another folder with --out." in line


def test_a_damaged_data_recipe_costs_the_slices_not_the_report(tmp_path: Path) -> None:
    from llp.store import NewEvaluation
    from tests.report.conftest import stored_result

    storage = tmp_path / "kb.db"
    recipe = {"data": "iris", "target": None, "family": "mlp", "val_fraction": "abc"}
    with KnowledgeBase.open(storage) as kb:
        dataset = kb.upsert_dataset("f" * 64, name="iris", meta_features={})
        study = kb.get_or_create_study(
            "damaged", scheduler="MetaProbing", settings={"cli": recipe}, space=None, seed=0,
            objective="val_accuracy", dataset_id=dataset,
        )  # fmt: skip
        result = stored_result({"x": 0}, 1.0, 0.5)
        kb.record_evaluations(study.id, [NewEvaluation(0, {"x": 0}, result, rung=0, reason="r")])
    done = invoke(["report", "damaged", "--storage", storage, "--out", tmp_path / "r", "--no-meta"])
    assert done.exit_code == 0, done.output
    said = " ".join(done.stderr.split())
    assert "no landscape slices: the study's data cannot be read again" in said
    assert "could not convert string to float: 'abc'" in said
    assert (tmp_path / "r" / "index.html").is_file()


def test_a_default_budget_is_shown_grown_by_what_probes_cost(tmp_path: Path) -> None:
    """A study given no budget may spend its training budget plus the probes' share
    (``budget_scales_with_probes``): the report's "left unspent" counts from that."""
    from llp.store import NewEvaluation
    from tests.report.conftest import stored_result

    storage = tmp_path / "kb.db"
    settings = {"budget": 10.0, "budget_scales_with_probes": True}
    with KnowledgeBase.open(storage) as kb:
        dataset = kb.upsert_dataset("f" * 64, name="synthetic", meta_features={})
        study = kb.get_or_create_study(
            "scaled", scheduler="MetaProbing", settings=settings, space=None, seed=0,
            objective="val_accuracy", dataset_id=dataset,
        )  # fmt: skip
        # Two evaluations: training 1.0 and probes 0.5 each, so the budget is 10 * 1.5.
        kb.record_evaluations(
            study.id,
            [
                NewEvaluation(t, {"x": t}, stored_result({"x": t}, 1.0, 0.5), rung=0, reason="r")
                for t in (0, 1)
            ],
        )
        report = build_report(kb, "scaled", tmp_path / "r", landscape=False, meta_model=False)
    html = report.index.read_text(encoding="utf-8")
    assert "12.0</" in html and "of 15 left unspent" in html  # 15 - 3 spent


def test_retrain_checks_reproducibility_and_a_tampered_weight_file_is_retrained(
    stored_study: dict[str, Any],
    written_report: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llp.executors import ProcessExecutor
    from llp.training._weights import KeptWeights

    submitted: list[int] = []
    submit = ProcessExecutor.submit

    def counted(self: ProcessExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        submitted.append(kwargs["trial_id"])
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(ProcessExecutor, "submit", counted)
    storage, name = stored_study["storage_path"], stored_study["study"]
    args = ["report", name, "--storage", storage, "--retrain", "--workers", "2"]
    # The study trained them in far less than PARALLEL_MIN_SECONDS: no worker processes.
    serial = json.loads(Path(run_llp(*args, "--out", tmp_path / "s")["data"]).read_text())
    assert submitted == []
    monkeypatch.setattr("llp.report._landscape.PARALLEL_MIN_SECONDS", 0.0)
    retrained = run_llp(*args, "--out", tmp_path / "a")
    slices = json.loads(Path(retrained["data"]).read_text())["landscape"]
    assert [s["origin"] for s in slices] == ["retrained"] * len(slices)
    assert all(s["reproduced"] for s in slices)  # same seed, same data, same model
    # Retrained side by side in worker processes, every one of them, to the same models.
    assert len(slices) >= 2 and sorted(submitted) == sorted(s["trial"] for s in slices)
    assert [s["losses"] for s in serial["landscape"]] == [s["losses"] for s in slices]
    # The same models either way: the kept weights slice exactly as the retrained ones.
    kept_slices = json.loads(Path(written_report["data"]).read_text())["landscape"]
    assert [s["trial"] for s in kept_slices] == [s["trial"] for s in slices]
    assert [s["losses"] for s in kept_slices] == [s["losses"] for s in slices]
    assert kept_slices[0]["losses_2d"] == slices[0]["losses_2d"]
    # Weights that do not give the stored score again are not used: retrained instead.
    with KnowledgeBase.open(storage) as kb:
        data = load_study(kb, name)
    record = data.study
    assert data.dataset is not None
    kept = KeptWeights.for_study(name, record.seed, record.created_at, data.dataset.fingerprint)
    assert kept is not None
    (path,) = kept.folder.glob(f"{kept.key}-t{stored_study['best_trial']}-*.npz")
    saved = dict(np.load(path))
    backup = path.read_bytes()
    try:
        saved = {k: (np.zeros_like(v) if k != "names" else v) for k, v in saved.items()}
        with path.open("wb") as handle:
            np.savez(handle, **saved)
        again = run_llp("report", name, "--storage", storage, "--out", tmp_path / "b")
    finally:
        path.write_bytes(backup)
    slices = json.loads(Path(again["data"]).read_text())["landscape"]
    assert slices[0]["trial"] == stored_study["best_trial"]
    assert slices[0]["origin"] == "retrained" and slices[0]["reproduced"] is True
    html = Path(again["index"]).read_text(encoding="utf-8")
    assert "retrained from their stored configurations and seeds" in html


def test_retraining_that_cannot_go_to_worker_processes_runs_here(
    stored_study: dict[str, Any],
    written_report: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llp.cli._app import _study_data
    from llp.knowledge import make_mlp, make_optimizer

    storage, name = stored_study["storage_path"], stored_study["study"]
    with KnowledgeBase.open(storage) as kb:
        data, note = _study_data(kb.get_study(name), None, None)
        assert note is None
        # A lambda cannot be sent to a worker process: the two retrain here instead.
        monkeypatch.setattr("llp.report._landscape.PARALLEL_MIN_SECONDS", 0.0)
        report = build_report(
            kb, name, tmp_path, data=data, meta_model=False, retrain=True, n_workers=2,
            model_fn=lambda config: make_mlp(config, n_features=64, n_classes=10),
            optimizer_fn=make_optimizer,
        )  # fmt: skip
        with pytest.raises(ValueError, match="'n_workers' parameter of build_report"):
            build_report(kb, name, tmp_path, landscape=False, meta_model=False, n_workers=0)
    slices = json.loads(report.data.read_text())["landscape"]
    kept = json.loads(Path(written_report["data"]).read_text())["landscape"]
    assert [s["origin"] for s in slices] == ["retrained"] * len(slices)
    assert [s["losses"] for s in slices] == [s["losses"] for s in kept]


class _Fits:
    """A stand-in trainer for ``_retrain``: a job whose configuration says so kills its
    worker process (and with it the jobs in flight beside it, which are tried again on
    their own); the others return their trial and configuration."""

    def fit(self, config: dict[str, Any], fidelity: Any, *, trial_id: int) -> Any:
        if config.get("die"):
            os._exit(3)
        return None, (trial_id, config["x"])


def test_a_retraining_whose_worker_is_lost_is_left_out_and_the_others_kept() -> None:
    from llp.report._landscape import _retrain

    jobs = [(1, {"x": 1}, None), (2, {"die": True}, None), (3, {"x": 3}, None)]
    out = _retrain(_Fits(), jobs, n_workers=2)
    assert out == {1: (None, (1, 1)), 3: (None, (3, 3))}
    # One worker: the jobs run here, one after another.
    assert _retrain(_Fits(), [jobs[0], jobs[2]], n_workers=1) == out


def test_report_refuses_zero_workers(stored_study: dict[str, Any]) -> None:
    storage = stored_study["storage_path"]
    result = invoke(["report", stored_study["study"], "--storage", storage, "--workers", "0"])
    assert result.exit_code == 2
    assert "The '--workers' option must be an int >= 1. Got 0 instead." in result.output
