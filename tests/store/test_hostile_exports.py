"""Hostile export files, generated: any one field of a valid export replaced by a hostile
value is imported whole or refused with an :class:`~llp.store.ExchangeError`, and a
refused import leaves the knowledge base exactly as it was."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llp.search import Job
from llp.store import (
    DecisionRecord,
    ExchangeError,
    KnowledgeBase,
    NewAnswer,
    export_document,
    import_knowledge,
)
from llp.training import Fidelity
from tests.conftest import fake_result


def valid_document() -> dict[str, Any]:
    with KnowledgeBase.open(":memory:") as kb:
        dataset = kb.upsert_dataset("f" * 64, name="d", meta_features={"a": 1.0})
        study = kb.get_or_create_study(
            "s", scheduler="MetaProbing", settings={"k": [1, 2]}, space=None, seed=0,
            objective="val_accuracy", dataset_id=dataset,
        )  # fmt: skip
        for trial in range(2):
            job = Job(trial, trial, {"lr": 0.1 * (trial + 1)}, Fidelity(1.0, 2), 0, 0, "r")
            kb.record_evaluation(
                study.id,
                trial_number=trial,
                config=job.config,
                result=fake_result(job, 0.6 + trial / 10),
                decisions=[
                    DecisionRecord(trial, "proposed", "uniform draw", "w", trial_number=trial)
                ],
                answer=NewAnswer(0, 1.0, 2, rule="posterior", note="n"),
            )
        return json.loads(json.dumps(export_document(kb)))


VALID = valid_document()


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the document a value sits at."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += paths(item, (*prefix, i))
    return out


PATHS = paths(VALID)

HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, 2**63, 2**64, -(2**70), 1e308, -1e39, 17.0, 0.5]),
    st.sampled_from(["", "NaN", "Infinity", "-Infinity", "\x00", "[/]x", "\x1b[2J", "../.."]),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.recursive(st.integers(), lambda inner: st.lists(inner, max_size=2), max_leaves=30),
)


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(doc))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


def digest(kb: KnowledgeBase) -> str:
    """Everything an import could touch, as one digest."""
    doc = export_document(kb)
    for study in doc["studies"]:
        study.pop("created_at", None)
    doc.pop("exported_at", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


@settings(
    # benchmarks/robustness.py raises it (LLP_HOSTILE_EXAMPLES); the suite runs 150.
    max_examples=int(os.environ.get("LLP_HOSTILE_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(where=st.sampled_from(PATHS), value=HOSTILE)
def test_a_hostile_field_is_imported_whole_or_refused_cleanly(
    tmp_path: Path, where: tuple[Any, ...], value: Any
) -> None:
    path = tmp_path / "hostile.json"
    try:
        text = json.dumps(replaced(VALID, where, value), allow_nan=False)
    except ValueError:
        return  # not JSON at all: the reader refuses it (tested elsewhere)
    path.write_text(text)
    with KnowledgeBase.open(":memory:") as kb:
        kb.upsert_dataset("kept", meta_features={"b": 2.0})
        before = digest(kb)
        try:
            import_knowledge(kb, path)
        except ExchangeError as exc:
            assert "\n" not in str(exc).strip()
            assert digest(kb) == before  # nothing written
        else:
            # Accepted: then it was imported whole, and importing it again adds nothing.
            after = digest(kb)
            import_knowledge(kb, path)
            assert digest(kb) == after
