"""Fixture factories for the report tests: a study tuned by ``llp tune --no-report`` into
a temporary SQLite knowledge base, whose report is then written by ``llp report`` as a
later process would (everything read back from the store)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from llp.cli import app
from llp.store import KnowledgeBase
from llp.training import EpochRecord, EvaluationResult, EvaluationStatus, Fidelity


def run_llp(*args: object) -> dict[str, Any]:
    result = CliRunner().invoke(app, [*map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def stored_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``llp tune`` on 600 digits (CSV) with the shipped prior, without a report; returns
    its ``--json`` output plus ``storage`` (the SQLite path)."""
    folder = tmp_path_factory.mktemp("stored")
    X, y = load_digits(return_X_y=True)
    frame = pd.DataFrame(X[:600], columns=[f"pixel{i}" for i in range(64)])
    frame["digit"] = y[:600]
    csv = folder / "digits.csv"
    frame.to_csv(csv, index=False)
    storage = folder / "knowledge.db"
    out = run_llp(
        "tune", csv, "--target", "digit", "--storage", storage, "--budget", "24",
        "--epochs", "3", "--prior", "shipped", "--no-report",
    )  # fmt: skip
    out["storage_path"] = storage
    out["csv"] = csv
    return out


@pytest.fixture(scope="session")
def written_report(
    stored_study: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """``llp report STUDY --storage ... --out DIR --json`` on the stored study."""
    out_dir = tmp_path_factory.mktemp("report")
    return run_llp(
        "report", stored_study["study"], "--storage", stored_study["storage_path"], "--out", out_dir
    )


def stored_result(
    config: dict[str, Any],
    fraction: float,
    score: float | None,
    *,
    cost: float = 1.0,
    val_loss: float = 0.8,
) -> EvaluationResult:
    """A stored-looking result without training (for exact expectations); ``val_loss``
    is its final validation loss."""
    failed = score is None
    return EvaluationResult(
        config=config,
        fidelity=Fidelity(fraction, 2),
        status=EvaluationStatus.FAILED if failed else EvaluationStatus.COMPLETE,
        curve=(EpochRecord(1, 1.0, 1.0, score, 0.1), EpochRecord(2, 0.5, val_loss, score, 0.1)),
        score=score,
        objective="val_accuracy",
        cost=cost,
        seconds=0.2,
        train_seconds=0.2,
        n_train=100,
        seed=0,
        failure_reason="diverged" if failed else None,
        probe_cost=0.5,
    )


@pytest.fixture
def make_study(tmp_path: Path) -> Iterator[Callable[..., tuple[KnowledgeBase, str]]]:
    """``make_study([(trial, fraction, score, reason), ...], decisions=(), answers=())``
    (a row may end with the final validation loss, 0.8 otherwise):
    a knowledge base holding one study with exactly these evaluations (in this order),
    these :class:`~llp.store.DecisionRecord` and, when ``answers`` is given, the answer
    ``(trial, fraction)`` stored after each evaluation (``None``: none)."""
    from llp.store import NewAnswer, NewEvaluation

    opened: list[KnowledgeBase] = []

    def make(
        rows: Sequence[tuple[Any, ...]],
        decisions: Sequence[Any] = (),
        answers: Sequence[tuple[int, float] | None] = (),
    ) -> tuple[KnowledgeBase, str]:
        kb = KnowledgeBase.open(tmp_path / "synthetic.db")
        opened.append(kb)
        dataset = kb.upsert_dataset("f" * 64, name="synthetic", meta_features={})
        study = kb.get_or_create_study(
            "synthetic", scheduler="MetaProbing", settings={"prior": "none"},
            space=None, seed=0, objective="val_accuracy", dataset_id=dataset,
        )  # fmt: skip
        kb.record_evaluations(
            study.id,
            [
                NewEvaluation(
                    t, {"x": t}, stored_result({"x": t}, f, s, val_loss=loss), rung=0, reason=r
                )
                for t, f, s, r, loss in (row if len(row) == 5 else (*row, 0.8) for row in rows)
            ],
        )
        kb.record_decisions(study.id, decisions)
        for (t, f, *_), answer in zip(rows, answers):
            if answer is not None:
                kb.record_answer(
                    study.id,
                    after=(t, f, 2),
                    answer=NewAnswer(*answer, 2, rule="posterior", note=f"trial {answer[0]}"),
                )
        return kb, "synthetic"

    yield make
    for kb in opened:
        kb.close()
