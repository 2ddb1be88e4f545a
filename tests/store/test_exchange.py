"""Sharing knowledge from the library, without the command line."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from llp.search import Job
from llp.store import (
    DecisionRecord,
    ExchangeError,
    KnowledgeBase,
    NewAnswer,
    export_knowledge,
    import_knowledge,
    read_export,
)
from llp.training import Curve, EpochRecord, Fidelity
from tests.conftest import fake_result


def filled(kb: KnowledgeBase) -> None:
    study = kb.get_or_create_study(
        "s", scheduler="MetaProbing", settings={}, space=None, seed=0, objective="val_accuracy"
    )
    for trial in range(2):
        job = Job(trial, trial, {"lr": 0.1 * (trial + 1)}, Fidelity(1.0, 1), 0, 0, "r")
        kb.record_evaluation(
            study.id,
            trial_number=trial,
            config=job.config,
            result=fake_result(job, 0.6 + trial / 10),
            decisions=[DecisionRecord(trial, "proposed", "uniform draw", "w", trial_number=trial)],
            answer=NewAnswer(0, 1.0, 1, rule="posterior", note="the first stays"),
        )


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_a_study_travels_with_its_decisions_and_answers(tmp_path: Path, suffix: str) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"export{suffix}"
    with KnowledgeBase.open(":memory:") as source:
        filled(source)
        summary = export_knowledge(source, path)
        assert (summary.studies, summary.evaluations) == (1, 2)
        decisions, answers = source.decisions("s"), source.answers("s")
    with KnowledgeBase.open(":memory:") as target:
        imported = import_knowledge(target, path)
        assert (imported.studies_new, imported.evaluations_new) == (1, 2)
        assert [(d.sequence, d.action, d.rule) for d in target.decisions("s")] == [
            (d.sequence, d.action, d.rule) for d in decisions
        ]
        assert [(a.trial_number, a.note) for a in target.answers("s")] == [
            (a.trial_number, a.note) for a in answers
        ]
        again = import_knowledge(target, path)
        assert again.evaluations_new == 0 and len(target.answers("s")) == 2


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_a_diverging_run_stored_with_huge_losses_travels(tmp_path: Path, suffix: str) -> None:
    """The store keeps a diverging run's losses and landscape beyond 1e30 (the meta-model
    skips such rows); an export of them used to be refused by its own import."""
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"export{suffix}"
    job = Job(0, 0, {"lr": 9.0}, Fidelity(1.0, 2), 0, 0, "r")
    diverged = dataclasses.replace(
        fake_result(job, 0.1),
        curve=Curve(
            [EpochRecord(1, 1e35, 1e36, 0.1, 0.1), EpochRecord(2, math.inf, math.nan, 0.1, 0.1)]
        ),
        landscape={"sharpness": -1e40},
    )
    with KnowledgeBase.open(":memory:") as source:
        study = source.get_or_create_study(
            "s", scheduler="MetaProbing", settings={}, space=None, seed=0,
            objective="val_accuracy",
        )  # fmt: skip
        source.record_evaluation(study.id, trial_number=0, config=job.config, result=diverged)
        export_knowledge(source, path)
    with KnowledgeBase.open(":memory:") as target:
        assert import_knowledge(target, path).evaluations_new == 1
        (stored,) = target.evaluations(study="s")
    assert stored.result.curve[0].val_loss == 1e36
    assert math.isinf(stored.result.curve[1].train_loss)
    assert stored.result.landscape == {"sharpness": -1e40}


@pytest.mark.parametrize("key", ["fp", "sha256:aa", "0" * 64])
def test_whatever_dataset_key_the_store_takes_an_export_of_it_imports(
    tmp_path: Path, key: str
) -> None:
    """The store and an export share the declared schema: a dataset keyed otherwise than
    by 64 hex digits (through the Python API) used to export a file its import refused."""
    path = tmp_path / "export.json"
    with KnowledgeBase.open(":memory:") as source:
        dataset = source.upsert_dataset(key, name="mine", n_samples=10)
        source.get_or_create_study(
            "s", scheduler="test", dataset_id=dataset, settings={}, space=None, seed=0,
            objective="val_accuracy",
        )  # fmt: skip
        export_knowledge(source, path)
    with KnowledgeBase.open(":memory:") as target:
        assert import_knowledge(target, path).studies_new == 1
        study, dataset = target.get_study("s"), target.get_dataset(key)
        assert study is not None and dataset is not None and dataset.name == "mine"
        assert study.dataset_id == dataset.id


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        (
            {"fingerprint": " "},
            ValueError,
            r"'fingerprint' parameter .* must be a str \(a text "
            r"that is not blank",
        ),
        ({"name": ""}, ValueError, r"'name' parameter .* not blank"),
        ({"group": "x" * 1001}, ValueError, r"'group' parameter .* of at most 1000 characters"),
        ({"n_samples": -1}, ValueError, r"'n_samples' parameter .* must be an int >= 0"),
        ({"n_samples": "ten"}, TypeError, r"'n_samples' parameter .* must be an int"),
    ],
)
def test_a_dataset_the_store_refuses_is_one_an_import_would_refuse(
    fields: dict[str, Any], error: type[Exception], match: str
) -> None:
    args = {"fingerprint": "fp", **fields}
    with KnowledgeBase.open(":memory:") as kb, pytest.raises(error, match=match):
        kb.upsert_dataset(args.pop("fingerprint"), **args)


def test_a_bad_file_is_an_exchange_error_naming_the_record(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    with KnowledgeBase.open(":memory:") as kb:
        filled(kb)
        export_knowledge(kb, path)
    doc = json.loads(path.read_text())
    doc["studies"][0]["answers"][1]["after"]["trial"] = 9
    path.write_text(json.dumps(doc))
    with pytest.raises(ExchangeError, match=r"answers\[1\]\.after names trial 9"):
        read_export(path)
    with pytest.raises(ExchangeError, match="does not exist"):
        read_export(tmp_path / "missing.json")


def test_an_import_that_fails_halfway_writes_nothing(
    storage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "export.json"
    with KnowledgeBase.open(":memory:") as kb:
        filled(kb)
        export_knowledge(kb, path)
    doc = json.loads(path.read_text())
    second = json.loads(json.dumps(doc["studies"][0]))
    second["name"] = "t"
    doc["studies"].append(second)
    path.write_text(json.dumps(doc))
    with KnowledgeBase.open(storage) as kb:
        original = KnowledgeBase.record_answers
        calls: list[int] = []

        def fail_on_the_second_study(self, study_id, answers):
            calls.append(study_id)
            if len(calls) == 2:
                raise OSError("database or disk is full")
            return original(self, study_id, answers)

        monkeypatch.setattr(KnowledgeBase, "record_answers", fail_on_the_second_study)
        with pytest.raises(OSError, match="disk is full"):
            import_knowledge(kb, path)
        assert kb.counts() == {"datasets": 0, "studies": 0, "trials": 0, "evaluations": 0}
        monkeypatch.setattr(KnowledgeBase, "record_answers", original)
        assert import_knowledge(kb, path).studies_new == 2
        assert kb.decisions("t") and kb.answers("s")


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_an_export_that_would_expand_beyond_the_limit_is_refused_before_reading(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llp.store._exchange as exchange

    path = tmp_path / f"export{suffix}"
    with KnowledgeBase.open(":memory:") as kb:
        filled(kb)
        export_knowledge(kb, path)
    if suffix == ".parquet":
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        # One text cell of 40 MiB: a few KB on disk, 40 MiB once read.
        table = pq.read_table(path)
        column = next(
            name
            for name, kind in zip(table.column_names, table.schema.types)
            if kind == pa.string()
        )
        values = table.column(column).to_pylist()
        values[0] = "x" * (40 * 2**20)
        index = table.column_names.index(column)
        table = table.set_column(index, column, pa.array(values, pa.string()))
        pq.write_table(table, path, compression="zstd")
        assert path.stat().st_size < 1_000_000
    monkeypatch.setattr(exchange, "MAX_IMPORT_BYTES", 16 * 2**20 if suffix == ".parquet" else 100)
    reads: list[object] = []
    monkeypatch.setattr(exchange, "_validate", lambda doc: reads.append(doc))
    with KnowledgeBase.open(tmp_path / "target.db") as target:
        with pytest.raises(ExchangeError, match=r"MiB llp imports at once \(checked before"):
            import_knowledge(target, path)
        assert target.list_studies() == []
    assert reads == []  # refused before anything was decoded


def _rewritten_parquet(path: Path, change: Any) -> None:
    """Rewrite the Parquet export at ``path`` through ``change(table) -> table``."""
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(change(pq.read_table(path)), path)


@pytest.mark.parametrize(
    "case",
    [
        "uint64-column",
        "config-nested-deeper-than-recursion",
        "metadata-nested-deeper-than-recursion",
        "metadata-not-an-object",
    ],
)
def test_a_hostile_parquet_export_is_one_error_and_writes_nothing(
    tmp_path: Path, case: str
) -> None:
    pa = pytest.importorskip("pyarrow")
    path = tmp_path / "export.parquet"
    with KnowledgeBase.open(":memory:") as kb:
        filled(kb)
        export_knowledge(kb, path)

    def change(table: Any) -> Any:
        if case == "uint64-column":
            index = table.column_names.index("seed")
            values = pa.array([2**64 - 1] * table.num_rows, pa.uint64())
            return table.set_column(index, "seed", values)
        if case.startswith("config"):
            index = table.column_names.index("config")
            deep = "[" * 100_000 + "]" * 100_000
            return table.set_column(index, "config", pa.array([deep] * table.num_rows))
        text = "[" * 100_000 + "]" * 100_000 if case.startswith("metadata-nested") else "7"
        metadata = {**table.schema.metadata, b"llp.export": text.encode()}
        return table.replace_schema_metadata(metadata)

    _rewritten_parquet(path, change)
    with KnowledgeBase.open(tmp_path / "target.db") as target:
        with pytest.raises(ExchangeError) as info:
            import_knowledge(target, path)
        assert "\n" not in str(info.value)
        assert target.list_studies() == [] and target.list_datasets() == []
