"""Knowledge bases of an older schema are migrated on open, once, whole or not at all."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from llp.search import Job
from llp.store import SCHEMA_VERSION, DecisionRecord, KnowledgeBase, KnowledgeBaseError, NewAnswer
from llp.store import _migrations as migrations
from llp.store._migrations import RECOVERED_RULE
from llp.training import Fidelity
from tests.conftest import fake_result

#: A SQLite dump of a knowledge base written by llp before schema 2 (commit 1cc187f): a
#: MetaProbing study on iris with the shipped prior (4 proposals, 2 promotions) and a
#: successive-halving study (4 configurations, 2 promoted).
SCHEMA_1_DUMP = Path(__file__).parent / "fixtures" / "knowledge_schema1.sql"
#: A SQLite dump of a schema-2 knowledge base (commit 18857eb): three evaluations whose
#: curves and landscapes hold NaN and infinities as Python's JSON wrote them then (bare
#: tokens), one with no accuracy in its curve's last epoch.
SCHEMA_2_DUMP = Path(__file__).parent / "fixtures" / "knowledge_schema2.sql"


def schema_1_file(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_1_DUMP.read_text())
    return path


def meta_rows(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT key, value FROM meta"))


def test_a_schema_1_file_written_by_an_earlier_llp_migrates_on_open(tmp_path: Path) -> None:
    path = schema_1_file(tmp_path)
    assert meta_rows(path)["schema_version"] == "1"
    with sqlite3.connect(path) as conn:
        before = conn.execute("SELECT id, score, reason FROM evaluations ORDER BY id").fetchall()
    with KnowledgeBase.open(path) as kb:
        assert SCHEMA_VERSION == 3
        # Every stored evaluation reads back unchanged.
        stored = kb.evaluations()
        assert [(e.id, e.result.score, e.reason) for e in stored] == before
        decisions = kb.decisions("iris-meta")
        # The decisions of the meta-guided study are recovered from its reasons, as data.
        assert [d.action for d in decisions] == ["proposed"] * 4 + ["promoted"] * 2
        assert [d.sequence for d in decisions] == list(range(6))
        assert {d.rule for d in decisions} == {RECOVERED_RULE}
        assert [d.source for d in decisions[:4]] == ["prior", "prior", "user", "random"]
        assert decisions[0].prior_score == pytest.approx(0.8006)
        assert decisions[4].measured == pytest.approx(0.8)
        assert decisions[4].posterior == pytest.approx(0.7596)
        assert decisions[4].fraction == 1.0 and decisions[4].rung == 1
        # Plain successive halving stored no decisions; nothing is made up for it.
        assert kb.decisions("iris-sh") == []
        # Answers were never stored before schema 2: none are invented.
        assert kb.answers("iris-meta") == [] and kb.answer("iris-sh") is None
    meta = meta_rows(path)
    assert meta["schema_version"] == "3" and meta["migrated_to_2"] and meta["migrated_to_3"]
    # A second open finds it current and changes nothing.
    with KnowledgeBase.open(path) as kb:
        assert len(kb.decisions("iris-meta")) == 6
    assert meta_rows(path) == meta


def test_the_report_and_kb_show_of_a_migrated_study_say_its_answer_was_not_stored(
    tmp_path: Path,
) -> None:
    from llp.cli._kb import NO_ANSWER_NOTE, show_study
    from llp.report import build_report, source_table
    from llp.report._collect import load_study

    path = schema_1_file(tmp_path)
    with KnowledgeBase.open(path) as kb:
        shown = show_study(kb, kb.get_study("iris-meta"))
        assert shown["best_trial"] is None and shown["answer_note"] == NO_ANSWER_NOTE
        data = load_study(kb, "iris-meta")
        # The sources come from the recovered decisions.
        assert {r["source"] for r in source_table(data, None)} == {"prior", "user", "random"}
        report = build_report(kb, "iris-meta", tmp_path / "r", landscape=False, meta_model=False)
    assert any("No answer is stored with this study" in n for n in report.notes)


def downgrade_to_schema_1(storage: str) -> None:
    """Turn a knowledge base into what schema 1 had: no decisions, no answers."""
    url = storage if "://" in storage else f"sqlite:///{storage}"
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)  # psycopg 3, as llp
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE answers"))
        conn.execute(text("DROP TABLE decisions"))
        conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def file_or_server(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "kb.db")
    return str(request.getfixturevalue("postgres_url"))


def filled(storage: str) -> None:
    """One MetaProbing study with two evaluations whose reasons carry decisions."""
    with KnowledgeBase.open(storage) as kb:
        study = kb.get_or_create_study(
            "old", scheduler="MetaProbing", settings={}, space=None, seed=0,
            objective="val_accuracy",
        )  # fmt: skip
        for number, (fraction, reason) in enumerate(
            [
                (0.5, "the meta-model's pick for this dataset (source: prior); prior score 0.9"),
                (0.5, "a uniform draw from the space (source: random)"),
            ]
        ):
            job = Job(number, number, {"lr": 0.01 * (number + 1)}, Fidelity(fraction, 1), 0, 0, "")
            kb.record_evaluation(
                study.id,
                trial_number=number,
                config=job.config,
                result=fake_result(job, 0.7 + 0.1 * number),
                reason=reason,
            )


def test_every_backend_migrates_schema_1_in_place(file_or_server: str) -> None:
    filled(file_or_server)
    downgrade_to_schema_1(file_or_server)
    with KnowledgeBase.open(file_or_server) as kb:
        decisions = kb.decisions("old")
        assert [(d.action, d.source, d.prior_score) for d in decisions] == [
            ("proposed", "prior", 0.9),
            ("proposed", "random", None),
        ]
        # The migrated knowledge base takes new decisions and answers.
        study = kb.get_study("old")
        kb.record_decisions(
            study.id, [DecisionRecord(2, "stopped", "budget", "the budget is spent")]
        )
        kb.record_answer(
            study.id,
            after=(1, 0.5, 1),
            answer=NewAnswer(0, 0.5, 1, rule="posterior", note="trial 0 is the answer"),
        )
        assert kb.answer("old").trial_number == 0
        assert len(kb.decisions("old")) == 3


def test_a_migration_cut_short_leaves_the_old_schema_to_try_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "kb.db")
    filled(path)
    downgrade_to_schema_1(path)
    step = migrations.STEPS[1]

    def broken(op, conn) -> None:
        step(op, conn)  # the tables are created, then the step fails
        raise OSError("disk full")

    monkeypatch.setitem(migrations.STEPS, 1, broken)
    with pytest.raises(OSError, match="disk full"):
        KnowledgeBase.open(path)
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "decisions" not in tables and meta_rows(Path(path))["schema_version"] == "1"
    monkeypatch.setitem(migrations.STEPS, 1, step)
    with KnowledgeBase.open(path) as kb:
        assert len(kb.decisions("old")) == 2


def test_a_schema_1_file_missing_a_table_is_corrupted_not_migrated(tmp_path: Path) -> None:
    path = schema_1_file(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE trials")
    with pytest.raises(KnowledgeBaseError, match=r"tables \['trials'\] are missing"):
        KnowledgeBase.open(path)
    assert meta_rows(path)["schema_version"] == "1"


def test_a_schema_2_file_migrates_to_names_for_non_finite_floats(tmp_path: Path) -> None:
    import json
    import math

    path = tmp_path / "schema2.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_2_DUMP.read_text())
        before = conn.execute("SELECT curve, landscape FROM evaluations ORDER BY id").fetchall()
    assert meta_rows(path)["schema_version"] == "2"
    assert any("NaN" in c and '"NaN"' not in c for c, _ in before)  # bare tokens
    with KnowledgeBase.open(path) as kb:
        stored = kb.evaluations()
        frame = kb.evaluations_frame()
    # The same floats read back, every one.
    first, second, third = (e.result for e in stored)
    assert math.isnan(first.curve[1].train_loss) and first.curve[1].val_loss == math.inf
    assert math.isnan(first.landscape["sharpness"]) and first.landscape["trace"] == 1.5
    assert second.curve[1].val_loss == -math.inf and second.curve[1].val_accuracy is None
    assert second.landscape == {"sharpness": 0.25, "trace": math.inf}
    assert third.landscape == {} and [p.train_loss for p in third.curve] == [0.6, 0.4]
    assert math.isnan(frame["landscape.sharpness"].iloc[0])
    meta = meta_rows(path)
    assert meta["schema_version"] == "3" and meta["migrated_to_3"]
    with sqlite3.connect(path) as conn:
        after = conn.execute("SELECT curve, landscape FROM evaluations ORDER BY id").fetchall()
    # The text now follows the convention of every llp file: strict JSON.
    for curve, landscape in after:
        for stored_text in (curve, landscape):
            json.loads(stored_text, parse_constant=lambda token: pytest.fail(f"bare {token}"))
    assert json.loads(after[0][1]) == {"sharpness": "NaN", "trace": 1.5}
    assert after[2] == before[2]  # a row without non-finite values is left as it was


def record_one(kb: KnowledgeBase, study: str, curve: tuple, landscape: dict) -> None:
    """A study of one evaluation with this curve and landscape."""
    from dataclasses import replace

    record = kb.get_or_create_study(
        study, scheduler="SH", settings={}, space=None, seed=0, objective="val_accuracy"
    )
    job = Job(0, 0, {"lr": 0.1}, Fidelity(1.0, 1), 0, 0, "r")
    result = replace(fake_result(job, 0.5), curve=curve, landscape=landscape)
    kb.record_evaluation(record.id, trial_number=0, config=job.config, result=result)


def test_new_evaluations_write_non_finite_floats_by_name(tmp_path: Path) -> None:
    import json
    import math

    from llp.training import EpochRecord

    path = tmp_path / "kb.db"
    with KnowledgeBase.open(path) as kb:
        curve = (EpochRecord(1, math.inf, math.nan, 0.5, 0.1),)
        record_one(kb, "s", curve, {"sharpness": -math.inf})
        (back,) = kb.evaluations()
    assert back.result.curve[0].train_loss == math.inf and math.isnan(back.result.curve[0].val_loss)
    assert back.result.landscape == {"sharpness": -math.inf}
    with sqlite3.connect(path) as conn:
        curve, landscape = conn.execute("SELECT curve, landscape FROM evaluations").fetchone()
    assert json.loads(curve)["train_loss"] == ["Infinity"]
    assert json.loads(landscape) == {"sharpness": "-Infinity"}


def test_every_backend_migrates_schema_2_bare_tokens_in_place(file_or_server: str) -> None:
    import math

    from llp.training import EpochRecord

    with KnowledgeBase.open(file_or_server) as kb:
        curve = (EpochRecord(1, math.nan, math.inf, 0.5, 0.1),)
        record_one(kb, "nan", curve, {"trace": -math.inf})
    # What schema 2 wrote: bare tokens.
    url = file_or_server if "://" in file_or_server else f"sqlite:///{file_or_server}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE evaluations SET curve = REPLACE(REPLACE(curve, '\"NaN\"', 'NaN'), "
                "'\"Infinity\"', 'Infinity'), landscape = REPLACE(landscape, "
                "'\"-Infinity\"', '-Infinity')"
            )
        )
        conn.execute(text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))
        (landscape,) = conn.execute(text("SELECT landscape FROM evaluations")).one()
    assert landscape == '{"trace":-Infinity}'
    with KnowledgeBase.open(file_or_server) as kb:
        (back,) = kb.evaluations(study="nan")
    assert math.isnan(back.result.curve[0].train_loss) and back.result.curve[0].val_loss == math.inf
    assert back.result.landscape == {"trace": -math.inf}
    with engine.begin() as conn:
        (landscape,) = conn.execute(text("SELECT landscape FROM evaluations")).one()
        version = conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'"))
        assert version.scalar_one() == "3"
    engine.dispose()
    assert landscape == '{"trace":"-Infinity"}'
