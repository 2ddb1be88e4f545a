"""The store's Python API checks what it writes by the same declared schema an import
parses files with (:func:`llp.store._file_records.check_declared`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import msgspec
import numpy as np
import pytest

from llp.store import DecisionRecord, NewAnswer
from llp.store._codec import answer_row, decision_row
from llp.store._file_records import ExportAnswer, ExportDecision, check_declared, field_names

GOOD = DecisionRecord(
    3, "promoted", "posterior", "up", trial_number=2, bracket=1, rung=2, fraction=0.5,
    epochs=10, source="model", predicted=0.7, uncertainty=0.1, prior_score=0.4,
    measured=0.81, posterior=0.8, prior_weight=0.2,
)  # fmt: skip


def exported(decision: DecisionRecord) -> dict[str, Any]:
    """The decision as an export file holds it."""
    return {
        name: getattr(decision, "trial_number" if name == "trial" else name)
        for name in field_names(ExportDecision)
    }


@pytest.mark.parametrize(
    "change",
    [
        {"sequence": -1},
        {"sequence": 2**31},
        {"trial_number": -2},
        {"bracket": True},
        {"rung": 1.5},
        {"fraction": 0.0},
        {"fraction": 1.5},
        {"epochs": 0},
        {"predicted": math.nan},
        {"posterior": math.inf},
        {"prior_weight": 1e31},
        {"rule": ""},
        {"rule": "x" * 1001},
        {"reason": "a\x00b"},
        {"source": 3},
        {"measured": "0.8"},
    ],
)
def test_a_decision_the_api_refuses_an_import_refuses_too(change: dict[str, Any]) -> None:
    bad = dataclasses.replace(GOOD, **change)
    with pytest.raises((TypeError, ValueError), match=rf"'{next(iter(change))}' parameter"):
        decision_row(bad, owner="the test")
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(exported(bad), ExportDecision)


def test_a_good_decision_passes_both_and_numpy_scalars_are_plain_numbers() -> None:
    msgspec.convert(exported(GOOD), ExportDecision)
    row = decision_row(
        dataclasses.replace(
            GOOD, trial_number=np.int64(2), predicted=np.float32(0.5), measured=np.float64(0.8)
        ),
        owner="the test",
    )
    assert row["trial_number"] == 2 and type(row["trial_number"]) is int
    assert row["predicted"] == 0.5 and type(row["predicted"]) is float
    assert type(row["measured"]) is float


def test_an_answer_is_checked_by_the_exported_answers_schema() -> None:
    row = answer_row(NewAnswer(0, 0.5, 2, rule="posterior", note="n", posterior=1), owner="t")
    assert row == {"rule": "posterior", "note": "n", "posterior": 1.0, "prior_weight": None}
    with pytest.raises(ValueError, match=r"'prior_weight' parameter of t must be a finite"):
        answer_row(NewAnswer(0, 0.5, 2, rule="r", note="n", prior_weight=math.nan), owner="t")
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(
            {"after": {"trial": 0, "fraction": 0.5, "epochs": 2}, "answer":
             {"trial": 0, "fraction": 0.5, "epochs": 2}, "rule": "r", "note": "n",
             "posterior": None, "prior_weight": "NaN"},
            ExportAnswer,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (True, TypeError, r"must be an int >= 0 and <= 2147483647. Got True instead"),
        ("1", TypeError, r"must be an int >= 0 and <= 2147483647. Got '1' instead"),
        (-1, ValueError, r"must be an int >= 0 and <= 2147483647. Got -1 instead"),
    ],
)
def test_check_declared_says_the_rule_and_the_parameters_own_name(
    value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=rf"The 'bracket_index' parameter of f\(\) {message}"):
        check_declared(
            ExportDecision, {"bracket": value}, owner="f()", names={"bracket": "bracket_index"}
        )


def test_a_lone_surrogate_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'reason' parameter of f\(\) must be valid Unicode"):
        check_declared(ExportDecision, {"reason": "\ud800"}, owner="f()")


def test_a_text_too_long_is_shown_by_its_length() -> None:
    with pytest.raises(ValueError, match=r"of at most 1000 characters. Got a text of 1001 "):
        check_declared(ExportDecision, {"rule": "x" * 1001}, owner="f()")
