"""``llp kb list | show | export | import``: what the knowledge base holds, and sharing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llp.store import KnowledgeBase, export_document
from tests.cli.conftest import invoke, invoke_json

#: Bookkeeping the importing knowledge base writes itself (time of writing, its llp).
BOOKKEEPING = ("created_at", "llp_version", "exported_at", "source")


def content(doc: Any) -> Any:
    """An export document without its bookkeeping fields."""
    if isinstance(doc, dict):
        return {k: content(v) for k, v in doc.items() if k not in BOOKKEEPING}
    if isinstance(doc, list):
        return [content(v) for v in doc]
    return doc


def frame_content(kb: KnowledgeBase) -> pd.DataFrame:
    frame = kb.evaluations_frame().drop(columns=["evaluation_id", "llp_version"])
    frame["curve"] = frame["curve"].map(lambda c: json.dumps([r.as_dict() for r in c]))
    return frame.sort_values(["study", "trial_number", "fraction"]).reset_index(drop=True)


def test_list_shows_the_datasets_and_studies_with_their_best_scores(
    tuned: dict[str, Any],
) -> None:
    listing = invoke_json(["kb", "list", "--storage", tuned["storage_path"]])
    assert listing["counts"]["studies"] == 1
    assert listing["counts"]["evaluations"] == tuned["n_evaluations"]
    (dataset,) = listing["datasets"]
    assert dataset["name"] == "digits" and dataset["n_studies"] == 1
    assert dataset["fingerprint"] == tuned["data"]["fingerprint"]
    (study,) = listing["studies"]
    assert study["name"] == tuned["study"]
    assert study["best_score"] == pytest.approx(tuned["best_score"])
    assert study["n_evaluations"] == tuned["n_evaluations"]


def test_list_as_a_table(tuned: dict[str, Any]) -> None:
    result = invoke(["kb", "list", "--storage", tuned["storage_path"]])
    assert result.exit_code == 0, result.output
    assert tuned["study"] in result.stdout and "datasets" in result.stdout


def test_show_a_study_and_a_dataset(tuned: dict[str, Any]) -> None:
    study = invoke_json(["kb", "show", tuned["study"], "--storage", tuned["storage_path"]])
    assert study["kind"] == "study"
    assert study["best_config"] == tuned["best_config"]
    assert [r["fraction"] for r in study["rungs"]] == [0.125, 0.25, 0.5, 1.0]
    assert sum(r["n_evaluations"] for r in study["rungs"]) == tuned["n_evaluations"]
    dataset = invoke_json(
        ["kb", "show", tuned["data"]["fingerprint"][:10], "--storage", tuned["storage_path"]]
    )
    assert dataset["kind"] == "dataset" and dataset["studies"] == [tuned["study"]]
    assert dataset["meta_features"]["num_classes"] == 10
    plain = invoke(["kb", "show", "digits", "--storage", tuned["storage_path"]])
    assert plain.exit_code == 0 and "meta-features" in plain.stdout
    # Scores read as on every other surface: four decimals, in the answer and the rungs.
    shown = invoke(["kb", "show", tuned["study"], "--storage", tuned["storage_path"]]).stdout
    assert f"validation accuracy {tuned['best_score']:.4f} on" in shown
    (top,) = [line for line in shown.splitlines() if line.strip().startswith("100%")]
    best_top = max(r["best_score"] for r in study["rungs"] if r["fraction"] == 1.0)
    assert top.split()[-1] == f"{best_top:.4f}"


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_export_then_import_reproduces_the_knowledge_base(
    tuned: dict[str, Any], tmp_path: Path, suffix: str
) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    exported = tmp_path / f"kb{suffix}"
    summary = invoke_json(["kb", "export", exported, "--storage", tuned["storage_path"]])
    assert summary["evaluations"] == tuned["n_evaluations"] and exported.stat().st_size > 0

    copy = tmp_path / "copy.db"
    imported = invoke_json(["kb", "import", exported, "--storage", copy])
    assert imported["studies_new"] == 1
    assert imported["evaluations_new"] == tuned["n_evaluations"]

    with KnowledgeBase.open(tuned["storage_path"]) as a, KnowledgeBase.open(copy) as b:
        assert a.counts() == b.counts()
        doc = export_document(a)
        assert content(doc) == content(export_document(b))
        pd.testing.assert_frame_equal(frame_content(a), frame_content(b))
        # The decisions and the answer after every evaluation travel with the study.
        (study,) = doc["studies"]
        assert len(study["answers"]) == tuned["n_evaluations"] and study["decisions"]
        ours, theirs = a.answer(tuned["study"]), b.answer(tuned["study"])
        fields = ("trial_number", "fraction", "epochs", "score", "rule", "note", "posterior")
        assert [getattr(theirs, f) for f in fields] == [getattr(ours, f) for f in fields]


def test_tune_kb_list_and_kb_show_name_the_same_answer_with_the_same_note(
    tuned: dict[str, Any],
) -> None:
    listing = invoke_json(["kb", "list", "--storage", tuned["storage_path"]])
    shown = invoke_json(["kb", "show", tuned["study"], "--storage", tuned["storage_path"]])
    (listed,) = listing["studies"]
    for surface in (listed, shown):
        assert surface["best_trial"] == tuned["best_trial"]
        assert surface["best_score"] == pytest.approx(tuned["best_score"])
        assert surface["answer_note"] == tuned["answer_note"]
        assert surface["answer_rule"] == tuned["answer_rule"] == "posterior"
    assert shown["top_trials"][0]["trial"] == tuned["best_trial"]
    plain = invoke(["kb", "show", tuned["study"], "--storage", tuned["storage_path"]])
    assert "why this answer: " in " ".join(plain.stdout.split())
    # The report tune wrote reads the same stored answer and prints the same note.
    import html

    report = Path(tuned["report"]).parent
    best = json.loads((report / "report.json").read_text())["best"]
    assert best["trial"] == tuned["best_trial"]
    assert best["score"] == pytest.approx(tuned["best_score"])
    assert html.escape(tuned["answer_note"]) in (report / "index.html").read_text()


def test_an_export_of_format_1_still_imports_without_answers(
    tuned: dict[str, Any], tmp_path: Path
) -> None:
    from llp.cli._kb import NO_ANSWER_NOTE

    exported = tmp_path / "kb.json"
    invoke_json(["kb", "export", exported, "--storage", tuned["storage_path"]])

    def to_format_1(doc: dict[str, Any]) -> None:
        doc["format_version"] = 1
        for study in doc["studies"]:
            del study["decisions"], study["answers"]

    copy = tmp_path / "copy.db"
    imported = invoke_json(["kb", "import", _tamper(exported, to_format_1), "--storage", copy])
    assert imported["evaluations_new"] == tuned["n_evaluations"]
    shown = invoke_json(["kb", "show", tuned["study"], "--storage", copy])
    assert shown["best_trial"] is None and shown["answer_note"] == NO_ANSWER_NOTE


def test_importing_twice_changes_nothing(tuned: dict[str, Any], tmp_path: Path) -> None:
    exported = tmp_path / "kb.json"
    invoke_json(["kb", "export", exported, "--storage", tuned["storage_path"]])
    copy = tmp_path / "copy.db"
    invoke_json(["kb", "import", exported, "--storage", copy])
    again = invoke_json(["kb", "import", exported, "--storage", copy])
    assert again["studies_new"] == 0 and again["evaluations_new"] == 0


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(name="poisoned"),
        lambda d: d.update(n_samples=d["n_samples"] + 1),
        lambda d: d["meta_features"].update(num_classes=99.0),
    ],
)
def test_an_import_never_replaces_a_stored_dataset(
    tuned: dict[str, Any], tmp_path: Path, change: Any
) -> None:
    exported = tmp_path / "kb.json"
    invoke_json(["kb", "export", exported, "--storage", tuned["storage_path"]])
    copy = tmp_path / "copy.db"
    invoke_json(["kb", "import", exported, "--storage", copy])
    with KnowledgeBase.open(copy) as kb:
        (before,) = kb.list_datasets()
    # Same fingerprint, other facts, under a study name the knowledge base lacks.
    doc = json.loads(exported.read_text())
    change(doc["datasets"][0])
    doc["studies"][0]["name"] = "another-study"
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    result = invoke(["kb", "import", tampered, "--storage", copy])
    assert result.exit_code == 2, result.output
    assert "nothing was imported (an import never replaces a stored dataset)" in " ".join(
        result.stderr.split()
    )
    with KnowledgeBase.open(copy) as kb:
        assert kb.list_datasets() == [before] and kb.get_study("another-study") is None


def test_dry_run_validates_without_writing(tuned: dict[str, Any], tmp_path: Path) -> None:
    exported = tmp_path / "kb.json"
    invoke_json(["kb", "export", exported, "--storage", tuned["storage_path"]])
    copy = tmp_path / "copy.db"
    checked = invoke_json(["kb", "import", exported, "--dry-run", "--storage", copy])
    assert checked["dry_run"] is True and checked["studies_new"] == 1
    with KnowledgeBase.open(copy) as kb:
        assert kb.counts()["evaluations"] == 0


def test_export_of_one_study(tuned: dict[str, Any], tmp_path: Path) -> None:
    exported = tmp_path / "one.json"
    invoke_json(
        ["kb", "export", exported, "--study", tuned["study"], "--storage", tuned["storage_path"]]
    )
    doc = json.loads(exported.read_text())
    assert [s["name"] for s in doc["studies"]] == [tuned["study"]]
    assert len(doc["datasets"]) == 1


def _tamper(path: Path, change: Any) -> Path:
    doc = json.loads(path.read_text())
    change(doc)
    out = path.with_name("tampered.json")
    out.write_text(json.dumps(doc))
    return out


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = {"a": value}
    return value


def _first_evaluation(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["studies"][0]["evaluations"][0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="something-else"), r"'format' must be 'llp-knowledge-export'"),
        (lambda d: d.update(format_version=99), r"'format_version' is 99, newer than the 2"),
        (
            lambda d: _first_evaluation(d).update(score="high"),
            r"study '.*'\.evaluations\[0\]: Expected `float \| null`, got `str` - at `\$\.score`",
        ),
        (
            lambda d: _first_evaluation(d).update(fraction=1.5),
            r"evaluations\[0\]: Expected `float` <= 1\.0 - at `\$\.fraction`",
        ),
        (
            lambda d: _first_evaluation(d)["config"].update(lr=50.0),
            r"evaluations\[0\]\.config is not legal in the study's space",
        ),
        (
            lambda d: _first_evaluation(d).update(extra=1),
            r"evaluations\[0\]: Object contains unknown field `extra`",
        ),
        (
            lambda d: d["studies"][0].update(dataset="0" * 64),
            r"\.dataset '0{64}' is not one of the file's datasets",
        ),
        (
            lambda d: _first_evaluation(d)["curve"]["train_loss"].pop(),
            r"evaluations\[0\]: the curve's columns must have one equal length",
        ),
        (
            lambda d: d["datasets"][0]["meta_features"].update(num_classes="ten"),
            r"datasets\[0\]: Expected `float`, got `str` - at `\$\.meta_features",
        ),
        # Finite values the meta-model's float32 cannot hold, and impossible scores: one
        # such record used to break every later fit (llp predict, llp tune).
        (
            lambda d: _first_evaluation(d).update(cost=1e308),
            r"evaluations\[0\]: Expected `float` <= 1000000000\.0 - at `\$\.cost`",
        ),
        # (A loss or landscape feature beyond 1e30 is not among these: the store keeps a
        # diverging run's, so an export carries them; tests/store/test_exchange.py.)
        (
            lambda d: _first_evaluation(d)["curve"]["train_loss"].__setitem__(0, "huge"),
            r"at `\$\.curve\.train_loss\[0\]`",
        ),
        (
            lambda d: _first_evaluation(d)["landscape"].update(sharpness=True),
            r"at `\$\.landscape",
        ),
        (
            lambda d: _first_evaluation(d).update(score=17.0),
            r"evaluations\[0\]: 'score' must lie in \[0\.0, 1\.0\] for an accuracy\. Got 17\.0",
        ),
        (
            lambda d: _first_evaluation(d).update(score=-1e39),
            r"evaluations\[0\]: Expected `float` >= -1e\+30 - at `\$\.score`",
        ),
        (
            lambda d: d["datasets"][0]["meta_features"].update(num_classes=1e39),
            r"datasets\[0\]: Expected `float` <= 1e\+30 - at `\$\.meta_features",
        ),
        # What the store cannot hold is refused before anything is written (it used to
        # fail halfway, leaving a study written and the next one empty).
        (
            lambda d: _first_evaluation(d).update(seed=2**64),
            r"evaluations\[0\]: Expected `int` <= 9223372036854775807 - at `\$\.seed`",
        ),
        (
            lambda d: _first_evaluation(d).update(trial=2**70),
            r"evaluations\[0\]: Expected `int` <= 2147483647 - at `\$\.trial`",
        ),
        (
            lambda d: _first_evaluation(d).update(reason="x" * 1_000_001),
            r"evaluations\[0\]: Expected `str` of length <= 1000000 - at `\$\.reason`",
        ),
        # A study's settings and space: nested at most 32 levels, at most 1,000,000
        # characters as JSON.
        (
            lambda d: d["studies"][0]["settings"].update(deep=_nested(40)),
            r"study '.*'\.settings must nest lists and mappings at most 32 levels deep",
        ),
        (
            lambda d: d["studies"][0]["settings"].update(big=["x" * 1000] * 1001),
            r"study '.*'\.settings must be at most 1000000 characters as JSON",
        ),
        # Decisions and answers follow the store's rules and name the file's evaluations.
        (
            lambda d: d["studies"][0]["decisions"][0].update(action=3),
            r"study '.*': Expected `str`, got `int` - at `\$\.decisions\[0\]\.action`",
        ),
        (
            lambda d: d["studies"][0]["decisions"][0].update(posterior=1e39),
            r"Expected `float` <= 1e\+30 - at `\$\.decisions\[0\]\.posterior`",
        ),
        (
            lambda d: d["studies"][0]["decisions"][0].update(rung=-1),
            r"Expected `int` >= 0 - at `\$\.decisions\[0\]\.rung`",
        ),
        (
            lambda d: d["studies"][0]["decisions"][1].update(sequence=0),
            r"decisions repeat a sequence number",
        ),
        (
            lambda d: d["studies"][0]["answers"][0]["answer"].update(trial=999),
            r"answers\[0\]\.answer names trial 999 .* not one of the study's evaluations",
        ),
        (
            lambda d: d["studies"][0]["answers"][0].pop("note"),
            r"Object missing required field `note` - at `\$\.answers\[0\]`",
        ),
    ],
)
def test_import_validates_every_record_and_writes_nothing_when_one_is_wrong(
    tuned: dict[str, Any], tmp_path: Path, change: Any, message: str
) -> None:
    exported = tmp_path / "kb.json"
    invoke_json(["kb", "export", exported, "--storage", tuned["storage_path"]])
    bad = _tamper(exported, change)
    copy = tmp_path / "copy.db"
    result = invoke(["kb", "import", bad, "--storage", copy])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    import re

    assert re.search(message, result.stderr), result.stderr
    with KnowledgeBase.open(copy) as kb:
        assert kb.counts() == {"datasets": 0, "studies": 0, "trials": 0, "evaluations": 0}


def test_import_refuses_a_study_stored_with_other_settings(
    tuned: dict[str, Any], tmp_path: Path
) -> None:
    exported = tmp_path / "kb.json"
    invoke_json(["kb", "export", exported, "--storage", tuned["storage_path"]])
    bad = _tamper(exported, lambda d: d["studies"][0].update(seed=12345))
    result = invoke(["kb", "import", bad, "--storage", tuned["storage_path"]])
    assert result.exit_code == 2
    assert "already exists in" in result.stderr and "with other seed" in result.stderr


def test_import_refuses_non_standard_json_tokens(tuned: dict[str, Any], tmp_path: Path) -> None:
    exported = tmp_path / "kb.json"
    invoke_json(["kb", "export", exported, "--storage", tuned["storage_path"]])
    text = exported.read_text().replace('"cost": ', '"cost": NaN, "x": ', 1)
    bad = tmp_path / "nan.json"
    bad.write_text(text)
    result = invoke(["kb", "import", bad, "--storage", tmp_path / "copy.db"])
    assert result.exit_code == 2
    assert "non-standard token NaN" in result.stderr


def test_hostile_names_and_reasons_print_as_inert_text(tmp_path: Path) -> None:
    """Names and reasons come from files anyone may share: rich markup in them is printed
    as written (it used to crash `kb list`), terminal escapes and line breaks are shown
    escaped, never sent to the terminal."""
    from dataclasses import replace

    from llp.store import KnowledgeBase, NewEvaluation
    from tests.report.conftest import stored_result

    storage = tmp_path / "hostile.db"
    study_name = "[/]broken[bold"
    with KnowledgeBase.open(storage) as kb:
        dataset = kb.upsert_dataset(
            "e" * 64, name="\x1b]0;pwned\x07[link=file:///etc/passwd]x", meta_features={}
        )
        study = kb.get_or_create_study(
            study_name, scheduler="MetaProbing", settings={}, space=None, seed=0,
            objective="val_accuracy", dataset_id=dataset,
        )  # fmt: skip
        failed = replace(
            stored_result({"x": 1}, 1.0, None),
            failure_reason="[enforce fail at x] [/]\nllp: forged",
        )
        kb.record_evaluations(
            study.id,
            [
                NewEvaluation(0, {"x": 0}, stored_result({"x": 0}, 1.0, 0.5), rung=0, reason="r"),
                NewEvaluation(1, {"x": 1}, failed, rung=0, reason="r"),
            ],
        )
    for args in (["kb", "list"], ["kb", "show", study_name], ["kb", "show", "e" * 64]):
        result = invoke([*args, "--storage", storage])
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output
    listed = invoke(["kb", "list", "--storage", storage]).stdout
    assert study_name in listed and "\\x1b]0;pwned\\x07" in listed
    shown = invoke(["kb", "show", study_name, "--storage", storage]).stdout
    assert "failure: [enforce fail at x] [/]\\nllp: forged" in shown
    assert "\nllp: forged" not in shown  # no forged line of output
    # --json is for programs: it keeps the exact text (JSON escapes control characters).
    (entry,) = invoke_json(["kb", "list", "--storage", storage])["studies"]
    assert entry["name"] == study_name
    assert entry["dataset"] == "\x1b]0;pwned\x07[link=file:///etc/passwd]x"
    shown_json = invoke_json(["kb", "show", study_name, "--storage", storage])
    assert shown_json["failure_reasons"] == ["[enforce fail at x] [/]\nllp: forged"]


def test_a_parquet_study_column_of_another_type_is_a_one_line_error(
    tuned: dict[str, Any], tmp_path: Path
) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    exported = tmp_path / "kb.parquet"
    invoke_json(["kb", "export", exported, "--storage", tuned["storage_path"]])
    table = pq.read_table(exported)
    lists = pa.array([[name] for name in table.column("study").to_pylist()])
    bad = table.set_column(table.column_names.index("study"), "study", lists)
    tampered = tmp_path / "tampered.parquet"
    pq.write_table(bad.replace_schema_metadata(table.schema.metadata), tampered)
    copy = tmp_path / "copy.db"
    result = invoke(["kb", "import", tampered, "--storage", copy])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "row 0 column 'study' must be a study name (a string). Got a list." in " ".join(
        result.stderr.split()
    )
    with KnowledgeBase.open(copy) as kb:
        assert kb.counts()["evaluations"] == 0
