"""The knowledge-base contract, run against every backend (see conftest.py)."""

from __future__ import annotations

import dataclasses
import doctest
import itertools
import math
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import CursorResult

from llp.store import (
    SCHEMA_VERSION,
    DuplicateEvaluationError,
    KnowledgeBase,
    KnowledgeBaseError,
    NewEvaluation,
    StudyRecord,
)
from llp.store._codec import STORED_RESULT_FIELDS
from llp.store._file_records import MAX_MAGNITUDE
from llp.training import EpochRecord, EvaluationResult, EvaluationStatus, Fidelity

from .conftest import DEFAULT_CONFIG, raw_engine, result_fields

#: The arguments of a plain study, for the cases that change one of them.
PLAIN_STUDY: dict[str, Any] = {
    "scheduler": "SH", "settings": {}, "space": None, "seed": 0, "objective": "val_loss"
}  # fmt: skip

MakeResult = Callable[..., EvaluationResult]
MakeStudy = Callable[..., StudyRecord]


def record(kb: KnowledgeBase, study: StudyRecord, result: EvaluationResult, **kw: Any) -> int:
    kw.setdefault("trial_number", 0)
    return kb.record_evaluation(study.id, config=result.config, result=result, **kw)


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("failed", [False, True], ids=["complete", "failed"])
def test_evaluation_round_trips_exactly(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult, failed: bool
) -> None:
    study = make_study()
    result = make_result(failed=failed, fraction=0.25, epochs=4)
    record(kb, study, result, trial_number=7, bracket=1, rung=2, reason="promoted: top 1/2")

    found = kb.find_evaluation(
        study.id, trial_number=7, config=result.config, fraction=0.25, epochs=4
    )
    assert found == result
    (stored,) = kb.evaluations()
    assert stored.result == result
    assert (stored.study, stored.trial_number, stored.bracket, stored.rung, stored.reason) == (
        "study",
        7,
        1,
        2,
        "promoted: top 1/2",
    )
    assert stored.model_family == "mlp"
    assert stored.config == DEFAULT_CONFIG
    assert stored.created_at.tzinfo is not None
    if failed:
        assert stored.result.failure_reason == result.failure_reason
        assert stored.result.traceback == result.traceback
        assert stored.result.status is EvaluationStatus.FAILED


def test_a_negative_zero_score_reads_back_as_zero(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    study = make_study()
    record(kb, study, make_result(score=-0.0))
    (stored,) = kb.evaluations()
    assert repr(stored.result.score) == "0.0"
    assert record(kb, study, make_result(score=-0.0)) == stored.id  # still identical


def test_every_field_of_an_evaluation_result_is_stored() -> None:
    # A new field in EvaluationResult needs a column (and a schema version) here.
    assert {f.name for f in dataclasses.fields(EvaluationResult)} == STORED_RESULT_FIELDS


def test_non_finite_curve_values_and_missing_accuracy_round_trip(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    curve = (
        EpochRecord(1, 2.5, 2.0, None, 0.5),
        EpochRecord(2, math.inf, math.nan, None, 0.5),
    )
    result = make_result(failed=True, epochs=2, curve=curve, landscape={"trace": -math.inf})
    record(kb, make_study(), result)
    (stored,) = kb.evaluations()
    assert result_fields(stored.result) == result_fields(result)
    assert math.isnan(stored.result.curve[1].val_loss)


def test_evaluations_are_read_back_with_dataset_provenance(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    dataset_id = kb.upsert_dataset("sha256:aa", name="digits", meta_features={"n_classes": 10})
    study = make_study("with-data", dataset_id=dataset_id)
    record(kb, study, make_result())
    record(kb, make_study("no-data"), make_result())

    with_data, no_data = kb.evaluations()
    assert with_data.dataset_fingerprint == "sha256:aa"
    assert dict(with_data.meta_features) == {"n_classes": 10.0}
    assert no_data.dataset_fingerprint is None
    assert dict(no_data.meta_features) == {}


# ---------------------------------------------------------------- never counted twice
def test_identical_rewrite_is_a_no_op_returning_the_stored_id(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    study = make_study()
    result = make_result()
    first = record(kb, study, result, reason="initial")
    again = record(kb, study, make_result(), reason="initial")  # equal, not the same object
    assert again == first
    assert kb.counts()["evaluations"] == 1


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"score": 0.81}, "score"),
        ({"seed": 7}, "seed"),
        ({"curve": ()}, "curve"),
        ({"landscape": {"sharpness": 0.5}}, "landscape"),
    ],
)
def test_different_rewrite_raises_and_keeps_the_stored_evaluation(
    kb: KnowledgeBase,
    make_study: MakeStudy,
    make_result: MakeResult,
    change: dict[str, Any],
    column: str,
) -> None:
    study = make_study()
    original = make_result()
    record(kb, study, original)
    with pytest.raises(
        DuplicateEvaluationError,
        match=rf"Trial 0 of study 'study' already has a finished evaluation at "
        rf"fraction=0.5, epochs=3 \(id \d+\) that differs in {column}\. "
        "A finished evaluation is never overwritten",
    ):
        record(kb, study, make_result(**change))
    (stored,) = kb.evaluations()
    assert stored.result == original


def test_a_lost_workers_failure_is_replaced_by_the_evaluation_run_again(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    study = make_study()
    lost = make_result(failed=True, failure_reason="worker lost: the process died", cost=0.0)
    first = record(kb, study, lost)
    assert kb.evaluations()[0].result.worker_lost
    rerun = make_result()
    second = record(kb, study, rerun)
    assert second == first  # the same row, now holding the new result
    (stored,) = kb.evaluations()
    assert stored.result == rerun and not stored.result.worker_lost
    # Any other finished evaluation stays as it is.
    with pytest.raises(DuplicateEvaluationError, match="never overwritten"):
        record(kb, study, make_result(score=0.5))
    # A failure of the configuration itself is never replaced either.
    other = make_study("other")
    record(kb, other, make_result(failed=True))
    with pytest.raises(DuplicateEvaluationError, match="never overwritten"):
        record(kb, other, make_result())


def test_evaluation_stamps_change_exactly_when_a_stored_evaluation_does(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    assert kb.evaluation_stamps() == []
    study = make_study()
    record(kb, study, make_result(failed=True, failure_reason="worker lost: gone", cost=0.0))
    record(kb, make_study("other"), make_result(score=0.5))
    stamps = kb.evaluation_stamps()
    assert stamps == [(e.id, e.created_at) for e in kb.evaluations()]
    assert [i for i, _ in stamps] == sorted(i for i, _ in stamps)
    record(kb, study, make_result())  # the lost worker's evaluation, run again
    again = kb.evaluation_stamps()
    assert again[1] == stamps[1] and again[0][0] == stamps[0][0]
    assert again[0][1] > stamps[0][1]  # the same row, a new time


def test_changed_provenance_is_a_different_evaluation(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    study = make_study()
    record(kb, study, make_result(), rung=0, reason="initial")
    with pytest.raises(DuplicateEvaluationError, match="differs in rung, reason"):
        record(kb, study, make_result(), rung=1, reason="promoted")


def test_same_trial_at_other_fidelities_are_separate_evaluations(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    study = make_study()
    ids = {
        record(kb, study, make_result(fraction=f, epochs=e))
        for f, e in [(0.25, 3), (0.5, 3), (0.5, 6), (1.0, 3)]
    }
    assert len(ids) == 4
    assert kb.counts() == {"datasets": 0, "studies": 1, "trials": 1, "evaluations": 4}


def test_trial_recorded_with_another_config_is_refused(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    study = make_study()
    record(kb, study, make_result({"lr": 0.1}), trial_number=3)
    other = make_result({"lr": 0.2}, fraction=1.0)
    with pytest.raises(
        ValueError,
        match=r"The 'config' parameter of KnowledgeBase.record_evaluation must be the "
        r"configuration trial 3 of study 'study' was first recorded with, \{\"lr\":0.1\}\. "
        r"Got \{\"lr\":0.2\} instead",
    ):
        record(kb, study, other, trial_number=3)
    assert kb.counts()["evaluations"] == 1
    assert (
        kb.find_evaluation(study.id, trial_number=3, config={"lr": 0.2}, fraction=0.5, epochs=3)
        is None
    )


def test_config_and_result_config_must_agree(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    study = make_study()
    with pytest.raises(ValueError, match=r"The 'config' parameter .* must equal result.config"):
        kb.record_evaluation(
            study.id, trial_number=0, config={"lr": 0.5}, result=make_result({"lr": 0.1})
        )


def test_int_and_float_values_are_different_configs(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    study = make_study()
    record(kb, study, make_result({"width": 64}), trial_number=0)
    with pytest.raises(ValueError, match="first recorded with"):
        record(kb, study, make_result({"width": 64.0}, fraction=1.0), trial_number=0)


# ---------------------------------------------------------------- batched writes
def test_record_evaluations_returns_ids_in_order_and_dedups_within_the_batch(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    study = make_study()
    existing = record(kb, study, make_result({"lr": 0.1}), trial_number=0)
    batch = [
        NewEvaluation(0, {"lr": 0.1}, make_result({"lr": 0.1})),  # stored already
        NewEvaluation(1, {"lr": 0.2}, make_result({"lr": 0.2})),
        NewEvaluation(1, {"lr": 0.2}, make_result({"lr": 0.2}, fraction=1.0), rung=1),
        NewEvaluation(1, {"lr": 0.2}, make_result({"lr": 0.2})),  # repeated in the batch
    ]
    ids = kb.record_evaluations(study.id, batch)
    assert ids[0] == existing
    assert ids[3] == ids[1]
    assert len(set(ids)) == 3
    assert kb.counts()["evaluations"] == 3
    assert [e.id for e in kb.evaluations()] == sorted(set(ids))
    assert kb.record_evaluations(study.id, []) == []


def test_a_refused_evaluation_rolls_back_the_whole_batch(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    study = make_study()
    batch = [NewEvaluation(n, {"lr": n / 10}, make_result({"lr": n / 10})) for n in range(1, 5)]
    batch.append(NewEvaluation(1, {"lr": 0.1}, make_result({"lr": 0.1}, score=0.1)))
    with pytest.raises(DuplicateEvaluationError, match="earlier in the same batch"):
        kb.record_evaluations(study.id, batch)
    assert kb.counts() == {"datasets": 0, "studies": 1, "trials": 0, "evaluations": 0}


# ---------------------------------------------------------------- studies
def test_resuming_a_study_with_the_same_settings_returns_it(
    kb: KnowledgeBase, make_study: MakeStudy
) -> None:
    first = make_study()
    again = make_study()
    assert again == first
    assert kb.get_study("study") == first
    assert kb.get_study("absent") is None
    assert [s.name for s in kb.list_studies()] == ["study"]
    assert dict(first.settings)["reduction_factor"] == 2
    assert first.llp_version


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"scheduler": "Hyperband"}, r"other 'scheduler': scheduler is 'SuccessiveHalving'"),
        (
            {"settings": {"min_resource": 0.125, "max_resource": 1.0, "reduction_factor": 3}},
            r"other 'settings': settings\['reduction_factor'\] is 2 in the knowledge base "
            r"but 3 was asked",
        ),
        ({"seed": 1}, r"other 'seed': seed is 0 in the knowledge base but 1 was asked"),
        ({"objective": "val_loss"}, r"other 'objective'"),
        ({"seed": 2, "model_family": "cnn"}, r"other 'seed', 'model_family'"),
    ],
)
def test_resuming_a_study_with_other_settings_names_the_field(
    kb: KnowledgeBase, make_study: MakeStudy, override: dict[str, Any], match: str
) -> None:
    make_study()
    with pytest.raises(ValueError, match=r"The study 'study' already exists with " + match):
        make_study(**override)
    assert len(kb.list_studies()) == 1


# ---------------------------------------------------------------- datasets
def test_datasets_are_upserted_by_fingerprint(kb: KnowledgeBase) -> None:
    first = kb.upsert_dataset("fp", name="digits", n_samples=1797)
    again = kb.upsert_dataset("fp", group="sklearn", meta_features={"n_features": 64.0})
    assert again == first
    (dataset,) = kb.list_datasets()
    assert (dataset.id, dataset.fingerprint, dataset.name, dataset.group) == (
        first,
        "fp",
        "digits",
        "sklearn",
    )
    assert dataset.n_samples == 1797
    assert dict(dataset.meta_features) == {"n_features": 64.0}
    assert kb.get_dataset("fp") == dataset
    assert kb.get_dataset("other") is None
    kb.upsert_dataset("fp", meta_features={"n_classes": 10.0})  # replaces, does not merge
    assert dict(kb.get_dataset("fp").meta_features) == {"n_classes": 10.0}  # type: ignore[union-attr]
    assert kb.upsert_dataset("fp2") != first


# ---------------------------------------------------------------- queries
def test_evaluations_filter_by_study_dataset_and_status(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    ds = kb.upsert_dataset("fp-a", meta_features={"n_features": 4.0})
    a = make_study("a", dataset_id=ds)
    b = make_study("b")
    record(kb, a, make_result(), trial_number=0)
    record(kb, a, make_result(failed=True), trial_number=1)
    record(kb, b, make_result(), trial_number=0)

    assert len(kb.evaluations()) == 3
    assert {e.study for e in kb.evaluations(study="b")} == {"b"}
    assert [e.trial_number for e in kb.evaluations(dataset_fingerprint="fp-a")] == [0, 1]
    failed = kb.evaluations(status=EvaluationStatus.FAILED)
    assert [(e.study, e.trial_number) for e in failed] == [("a", 1)]
    assert len(kb.evaluations(study="a", status="complete")) == 1
    assert kb.evaluations(study="nobody") == []


def test_evaluations_frame_has_config_meta_and_landscape_columns(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult
) -> None:
    ds = kb.upsert_dataset("fp", meta_features={"n_features": 64.0, "n_classes": 10.0})
    study = make_study(dataset_id=ds)
    record(kb, study, make_result(), trial_number=0)
    record(kb, study, make_result(failed=True, config={"lr": 0.5}), trial_number=1)

    frame = kb.evaluations_frame()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 2
    row = frame.iloc[0]
    assert row["config.lr"] == 0.01
    assert row["config.optimizer"] == "adam"
    assert row["meta.n_features"] == 64.0
    assert row["landscape.sharpness"] == 0.125
    assert row["probe_cost"] == 0.03125
    assert row["dataset"] == "fp"
    assert row["epochs_run"] == 3
    assert row["final_val_accuracy"] == pytest.approx(0.8)
    assert frame.loc[1, "status"] == "failed"
    assert pd.isna(frame.loc[1, "config.width"])
    assert frame.loc[1, "failure_reason"].startswith("training diverged")

    empty = kb.evaluations_frame(study="nobody")
    assert len(empty) == 0
    assert {"score", "fraction", "status", "curve"} <= set(empty.columns)


def test_counts_and_find_evaluation_of_nothing(kb: KnowledgeBase, make_study: MakeStudy) -> None:
    assert kb.counts() == {"datasets": 0, "studies": 0, "trials": 0, "evaluations": 0}
    study = make_study()
    assert kb.find_evaluation(study.id, trial_number=0, config={}, fraction=1.0, epochs=1) is None


# ---------------------------------------------------------------- input errors
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda kb, study, r: kb.record_evaluation(
                999, trial_number=0, config=r.config, result=r
            ),
            ValueError,
            r"The 'study_id' parameter of KnowledgeBase.record_evaluation must be the id of "
            r"a stored study \(see get_or_create_study\). Got 999, which is not",
        ),
        (
            lambda kb, study, r: kb.record_evaluation(
                study.id, trial_number=-1, config=r.config, result=r
            ),
            ValueError,
            r"The 'trial_number' parameter of KnowledgeBase.record_evaluation must be an "
            r"int >= 0. Got -1 instead",
        ),
        (
            lambda kb, study, r: kb.record_evaluation(
                study.id, trial_number=0, config=r.config, result=r, rung="top"
            ),
            TypeError,
            r"The 'rung' parameter of KnowledgeBase.record_evaluation must be an int >= 0. "
            r"Got 'top' instead",
        ),
        (
            lambda kb, study, r: kb.record_evaluation(
                study.id, trial_number=0, config=r.config, result={"score": 1}
            ),
            TypeError,
            r"The 'result' parameter of KnowledgeBase.record_evaluation must be an "
            r"EvaluationResult. Got dict instead",
        ),
        (
            lambda kb, study, r: kb.record_evaluation(
                study.id, trial_number=0, config=r.config, result=r, reason="a\x00b"
            ),
            ValueError,
            r"The 'reason' parameter of KnowledgeBase.record_evaluation must be a str \(a text "
            r"without NUL characters\) of at most 1000000 characters. Got 'a\\x00b' instead",
        ),
        (
            lambda kb, study, r: kb.record_evaluation(
                study.id, trial_number=0, config=r.config, result=r, reason="\ud800"
            ),
            ValueError,
            r"The 'reason' parameter of KnowledgeBase.record_evaluation must be valid "
            r"Unicode text; lone surrogates cannot be stored",
        ),
        (
            lambda kb, study, r: kb.record_evaluation(
                study.id, trial_number=0, config={"f": object()}, result=r
            ),
            TypeError,
            r"The 'config' parameter of KnowledgeBase.record_evaluation must map str keys "
            r"to JSON values",
        ),
        (
            lambda kb, study, r: kb.record_evaluation(
                study.id, trial_number=0, config=[("lr", 0.1)], result=r
            ),
            TypeError,
            r"The 'config' parameter of KnowledgeBase.record_evaluation must be a mapping. "
            r"Got list instead",
        ),
        (
            lambda kb, study, r: kb.record_evaluations(study.id, [r]),
            TypeError,
            r"The 'evaluations' parameter of KnowledgeBase.record_evaluations must hold "
            r"NewEvaluation records. Got EvaluationResult at index 0",
        ),
        (
            lambda kb, study, r: kb.record_evaluations(
                study.id, [NewEvaluation(0, r.config, r), NewEvaluation(-2, r.config, r)]
            ),
            ValueError,
            r"The 'trial_number' parameter of KnowledgeBase.record_evaluations "
            r"\(evaluations\[1\]\) must be an int >= 0. Got -2 instead",
        ),
        (
            lambda kb, study, r: kb.find_evaluation(
                study.id, trial_number=0, config=r.config, fraction=1.5, epochs=1
            ),
            ValueError,
            r"The 'fraction' parameter of KnowledgeBase.find_evaluation must be a finite "
            r"float in \(0.0, 1.0\]. Got 1.5 instead",
        ),
        (
            lambda kb, study, r: kb.evaluations(status="done"),
            ValueError,
            r"The 'status' parameter of KnowledgeBase.evaluations must be an "
            r"EvaluationStatus or one of \['complete', 'failed'\]. Got 'done' instead",
        ),
        (
            lambda kb, study, r: kb.get_or_create_study(
                "s", scheduler="SH", settings={}, space=None, seed=0, objective="accuracy"
            ),
            ValueError,
            r"The 'objective' parameter of KnowledgeBase.get_or_create_study must be one of "
            r"'val_accuracy', 'val_loss'. Got 'accuracy' instead",
        ),
        (
            lambda kb, study, r: kb.get_or_create_study("s", **{**PLAIN_STUDY, "seed": 2**64}),
            ValueError,
            r"The 'seed' parameter of KnowledgeBase.get_or_create_study must be an int >= "
            r"-9223372036854775808 and <= 9223372036854775807. Got 18446744073709551616",
        ),
        (
            lambda kb, study, r: kb.get_or_create_study("s", **{**PLAIN_STUDY, "model_family": ""}),
            ValueError,
            r"The 'model_family' parameter of KnowledgeBase.get_or_create_study must be a str "
            r"\(a text that is not blank",
        ),
        (
            lambda kb, study, r: kb.get_or_create_study(
                "s",
                scheduler="SH",
                settings={"x": {1, 2}},
                space=None,
                seed=0,
                objective="val_loss",
            ),
            TypeError,
            r"The 'settings' parameter of KnowledgeBase.get_or_create_study must hold only "
            r"JSON values",
        ),
        (
            lambda kb, study, r: kb.get_or_create_study(
                "", scheduler="SH", settings={}, space=None, seed=0, objective="val_loss"
            ),
            ValueError,
            r"The 'name' parameter of KnowledgeBase.get_or_create_study must be a str \(a text "
            r"that is not blank and holds no NUL character\) .* Got '' instead",
        ),
        (
            lambda kb, study, r: kb.get_or_create_study(
                "s",
                scheduler="SH",
                settings={},
                space=None,
                seed=0,
                objective="val_loss",
                dataset_id=42,
            ),
            ValueError,
            r"The 'dataset_id' parameter of KnowledgeBase.get_or_create_study must be the "
            r"id of a stored dataset \(see upsert_dataset\). Got 42, which is not",
        ),
        (
            lambda kb, study, r: kb.upsert_dataset("fp", meta_features={"n": "many"}),
            TypeError,
            r"The 'meta_features' parameter of KnowledgeBase.upsert_dataset must be a "
            r"mapping of a str .* to a finite number .* Got 'n': 'many' in it",
        ),
        (
            lambda kb, study, r: kb.upsert_dataset("fp", meta_features={"": 1.0}),
            ValueError,
            r"'meta_features' parameter .* must be a mapping of a str \(a text that is not "
            r"blank .* Got '': 1.0 in it",
        ),
        (
            lambda kb, study, r: kb.upsert_dataset("fp", meta_features={"n": 1e35}),
            ValueError,
            r"'meta_features' parameter .* Got 'n': 1e\+35 in it",
        ),
        (
            lambda kb, study, r: kb.upsert_dataset("fp", n_samples=-5),
            ValueError,
            r"The 'n_samples' parameter of KnowledgeBase.upsert_dataset must be an int >= 0",
        ),
    ],
)
def test_input_errors(
    kb: KnowledgeBase,
    make_study: MakeStudy,
    make_result: MakeResult,
    call: Callable[..., Any],
    error: type[Exception],
    match: str,
) -> None:
    study = make_study()
    before = kb.counts()
    with pytest.raises(error, match=match):
        call(kb, study, make_result())
    assert kb.counts() == before


@pytest.mark.parametrize("field", ["cost", "seconds", "train_seconds", "probe_cost"])
def test_non_finite_scalar_results_are_refused(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult, field: str
) -> None:
    result = make_result(**{field: math.nan})
    with pytest.raises(
        ValueError,
        match=rf"The 'result.{field}' parameter of KnowledgeBase.record_evaluation must be a "
        rf"finite number >= 0 and <= 1e\+09. Got nan instead",
    ):
        record(kb, make_study(), result)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"cost": 1e308},
            r"'result.cost' .* must be a finite number >= 0 and <= 1e\+09. Got 1e\+308",
        ),
        (
            {"probe_cost": -1.0},
            r"'result.probe_cost' .* must be a finite number >= 0 and <= 1e\+09",
        ),
        ({"score": 17.0}, r"'result.score' .* must lie in \[0, 1\] for an accuracy. Got 17.0"),
        ({"seed": 2**64}, r"'result.seed' .* must be an int >= -9223372036854775808 and <= 9223"),
        ({"n_train": -1}, r"'result.n_train' .* must be an int >= 0 and <= 9223372036854775807"),
        ({"objective": "val_loss", "score": -1e31}, r"'result.score' .* >= -1e\+30 and <= 1e\+30"),
    ],
)
def test_values_an_import_would_refuse_are_refused_by_the_api_too(
    kb: KnowledgeBase, make_study: MakeStudy, make_result: MakeResult, fields, message: str
) -> None:
    # One record like these used to break every later meta-model fit on the knowledge
    # base; the API and ``llp kb import`` now apply the same rules.
    study = make_study()
    with pytest.raises(ValueError, match=message):
        record(kb, study, make_result(**fields))
    assert kb.counts()["evaluations"] == 0


def test_a_closed_knowledge_base_says_so(storage: str) -> None:
    kb = KnowledgeBase.open(storage)
    kb.close()
    kb.close()  # idempotent
    assert "closed" in repr(kb)
    with pytest.raises(KnowledgeBaseError, match=r"The knowledge base at .* is closed"):
        kb.counts()


# ---------------------------------------------------------------- reopening
def test_a_reopened_knowledge_base_resumes_where_it_was(
    persistent_storage: str, make_result: MakeResult
) -> None:
    with KnowledgeBase.open(persistent_storage) as kb:
        study = kb.get_or_create_study(
            "s", scheduler="SH", settings={"eta": 2}, space=None, seed=3, objective="val_loss"
        )
        record(kb, study, make_result(objective="val_loss", score=-0.25))
    with KnowledgeBase.open(persistent_storage) as kb:
        again = kb.get_or_create_study(
            "s", scheduler="SH", settings={"eta": 2}, space=None, seed=3, objective="val_loss"
        )
        assert again.id == study.id
        found = kb.find_evaluation(
            again.id, trial_number=0, config=DEFAULT_CONFIG, fraction=0.5, epochs=3
        )
        assert found == make_result(objective="val_loss", score=-0.25)


def test_a_knowledge_base_from_a_newer_llp_is_refused(persistent_storage: str) -> None:
    KnowledgeBase.open(persistent_storage).close()
    engine = raw_engine(persistent_storage)
    with engine.begin() as conn:
        conn.execute(text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    engine.dispose()
    with pytest.raises(
        KnowledgeBaseError,
        match=rf"was created by a newer llp \(schema 99\); this llp [\d.]+ reads "
        rf"schema {SCHEMA_VERSION}\. Upgrade llp",
    ):
        KnowledgeBase.open(persistent_storage)


def test_another_applications_database_is_refused_untouched(persistent_storage: str) -> None:
    engine = raw_engine(persistent_storage)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE datasets (id INTEGER PRIMARY KEY, owner TEXT)"))
        conn.execute(text("CREATE TABLE meta (name TEXT, note TEXT)"))
    with pytest.raises(
        KnowledgeBaseError,
        match=r"holds tables but no llp 'meta' table, so it belongs to another application",
    ):
        KnowledgeBase.open(persistent_storage)
    with engine.connect() as conn:
        tables = conn.execute(
            text(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                if engine.dialect.name == "sqlite"
                else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ).scalars()
        assert sorted(tables) == ["datasets", "meta"]
    engine.dispose()


# ---------------------------------------------------------------- property
_json_scalars = st.one_of(
    st.text(max_size=12),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
_configs = st.dictionaries(st.text(min_size=1, max_size=8), _json_scalars, max_size=6)
# Text PostgreSQL and SQLite can both hold: UTF-8 encodable (no lone surrogates), no NUL.
_clean_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
_any_float = st.floats(allow_nan=True, allow_infinity=True)
_finite = st.floats(min_value=0.0, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def _results(draw: st.DrawFn) -> EvaluationResult:
    failed = draw(st.booleans())
    n_points = draw(st.integers(min_value=0, max_value=5))
    curve = tuple(
        EpochRecord(
            epoch=e,
            train_loss=draw(_any_float),
            val_loss=draw(_any_float),
            val_accuracy=draw(st.none() | _any_float),
            seconds=draw(_finite),
        )
        for e in range(1, n_points + 1)
    )
    objective = draw(st.sampled_from(["val_accuracy", "val_loss"]))
    # What the store accepts: an accuracy in [0, 1], any other score of magnitude at most
    # MAX_MAGNITUDE (as an import does), costs and times in [0, 1e9].
    scores = (
        st.floats(0.0, 1.0)
        if objective == "val_accuracy"
        else st.floats(-MAX_MAGNITUDE, MAX_MAGNITUDE)
    )
    return EvaluationResult(
        config=draw(_configs),
        fidelity=Fidelity(
            draw(st.floats(min_value=1e-6, max_value=1.0)), draw(st.integers(1, 1000))
        ),
        status=EvaluationStatus.FAILED if failed else EvaluationStatus.COMPLETE,
        curve=curve,
        score=None if failed else draw(scores),
        objective=objective,
        cost=draw(_finite),
        seconds=draw(_finite),
        train_seconds=draw(_finite),
        n_train=draw(st.integers(0, 2**40)),
        seed=draw(st.integers(0, 2**63 - 1)),
        failure_reason=draw(_clean_text.filter(bool)) if failed else None,
        traceback=draw(st.none() | _clean_text),
        landscape=draw(st.dictionaries(st.text(max_size=8), _any_float, max_size=4)),
        probe_cost=draw(_finite),
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(result=_results(), bracket=st.integers(0, 10), reason=_clean_text)
def test_any_result_round_trips_through_the_store(
    kb: KnowledgeBase,
    make_study: MakeStudy,
    result: EvaluationResult,
    bracket: int,
    reason: str,
) -> None:
    # One knowledge base serves every example (fixtures are per test), so each example
    # writes a trial number of its own.
    study = make_study()
    number = next(_trial_numbers)
    record(kb, study, result, trial_number=number, bracket=bracket, reason=reason)
    found = kb.find_evaluation(
        study.id,
        trial_number=number,
        config=result.config,
        fraction=result.fidelity.fraction,
        epochs=result.fidelity.epochs,
    )
    assert found is not None
    assert result_fields(found) == result_fields(result)
    (stored,) = kb.evaluations(study="study")[-1:]
    assert (stored.trial_number, stored.bracket, stored.reason) == (number, bracket, reason)
    assert result_fields(stored.result) == result_fields(result)
    # Writing it again is a no-op.
    assert record(kb, study, result, trial_number=number, bracket=bracket, reason=reason) == (
        stored.id
    )


_trial_numbers = itertools.count()


def test_the_docstring_example_runs() -> None:
    import llp.store._knowledge_base as module

    assert doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_settings_nested_too_deeply_or_too_long_are_refused_naming_the_limit() -> None:
    deep: Any = 0
    for _ in range(40):
        deep = {"a": deep}
    with KnowledgeBase.open(":memory:") as kb:
        for settings, message in (
            ({"deep": deep}, r"'settings' parameter .* at most 32 levels deep"),
            ({"big": "x" * 1_000_001}, r"'settings' parameter .* at most 1000000 characters"),
        ):
            with pytest.raises(ValueError, match=message):
                kb.get_or_create_study(
                    "s", scheduler="SH", settings=settings, space=None, seed=0,
                    objective="val_accuracy",
                )  # fmt: skip
        with pytest.raises(ValueError, match=r"'space' parameter .* at most 32 levels deep"):
            kb.get_or_create_study(
                "s", scheduler="SH", settings={}, space={"x": deep}, seed=0,
                objective="val_accuracy",
            )  # fmt: skip
        assert kb.list_studies() == []
        # A study's usual settings (a few levels) are stored as before.
        kb.get_or_create_study(
            "s", scheduler="SH", settings={"cli": {"data": {"path": "x"}}}, space=None, seed=0,
            objective="val_accuracy",
        )  # fmt: skip


def test_ctrl_c_while_a_write_reads_back_its_ids_leaves_the_knowledge_base_usable(
    kb: KnowledgeBase,
    make_study: MakeStudy,
    make_result: MakeResult,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ctrl-C between an INSERT ... RETURNING and reading its rows: the interrupted write is
    # rolled back, and the next read and write on the same object work. The caught
    # exception keeps the interrupted frames, and the statement's cursor, alive.
    study = make_study()
    record(kb, study, make_result(fraction=0.25))

    def interrupted(self: object, *args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(CursorResult, "scalars", interrupted)
        with pytest.raises(KeyboardInterrupt) as caught:
            record(kb, study, make_result(fraction=0.5))
    assert caught.value.__traceback__ is not None
    assert kb.get_study(study.name) is not None
    assert [e.fidelity.fraction for e in kb.evaluations(study=study.name)] == [0.25]
    record(kb, study, make_result(fraction=0.5))
    assert len(kb.evaluations(study=study.name)) == 2
