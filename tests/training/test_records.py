"""The records of one evaluation: a column-wise learning curve and shared read-only views."""

from __future__ import annotations

import pickle
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llp.training import Curve, EpochRecord, EvaluationResult, EvaluationStatus, Fidelity

POINTS = (
    EpochRecord(1, 0.9, 0.8, 0.6, 0.5),
    EpochRecord(2, 0.5, float("inf"), None, 0.25),
)


def _columns(records) -> list[list]:
    fields = ("epoch", "train_loss", "val_loss", "val_accuracy", "seconds")
    return [[getattr(r, name) for r in records] for name in fields]


def _result(**changes) -> EvaluationResult:
    values = dict(
        config={"lr": 0.1},
        fidelity=Fidelity(1.0, 2),
        status=EvaluationStatus.COMPLETE,
        curve=POINTS,
        score=0.6,
        objective="val_accuracy",
        cost=2.0,
        seconds=1.0,
        train_seconds=0.9,
        n_train=10,
        seed=0,
    )
    values.update(changes)
    return EvaluationResult(**values)


def test_a_result_keeps_its_curve_column_wise_and_gives_records_back() -> None:
    result = _result()

    assert isinstance(result.curve, Curve)
    assert result.curve == POINTS and tuple(result.curve) == POINTS
    assert len(result.curve) == 2 and result.curve[-1] == POINTS[-1]
    assert result.curve[:1] == POINTS[:1] and result.curve[::-1] == POINTS[::-1]
    assert list(result.curve) == list(POINTS)
    assert result.curve.column("val_accuracy") == (0.6, None)
    assert result.final_val_loss == float("inf") and result.final_val_accuracy is None
    assert Curve(POINTS) == Curve.from_columns(*_columns(POINTS))
    assert hash(Curve(POINTS)) == hash(Curve.from_columns(*_columns(POINTS)))
    assert Curve() == () and len(_result(curve=()).curve) == 0
    assert result.curve != POINTS[:1] and result.curve != "not a curve"
    assert "EpochRecord(epoch=2" in repr(result.curve)


def test_a_curve_survives_pickling_with_its_result() -> None:
    # Results come back from worker processes pickled.
    result = _result()

    again = pickle.loads(pickle.dumps(result))

    assert again == result and isinstance(again.curve, Curve)


def test_curve_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match=r"one length.*\[2, 2, 1, 2, 2\]"):
        Curve.from_columns([1, 2], [0.1, 0.2], [0.1], [0.5, 0.6], [0.0, 0.0])
    with pytest.raises(ValueError, match="'name' parameter must be one of"):
        Curve(POINTS).column("loss")


@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=False), st.floats(allow_nan=False), st.none() | st.floats(0, 1)
        ),
        max_size=5,
    )
)
def test_curves_equal_exactly_when_their_records_do(points) -> None:
    records = tuple(EpochRecord(i + 1, a, b, c, 0.0) for i, (a, b, c) in enumerate(points))
    curve = Curve(records)

    assert curve == records and tuple(curve) == records
    assert curve == Curve.from_columns(*_columns(records))


def test_read_only_views_are_shared_and_other_mappings_copied() -> None:
    view = MappingProxyType({"lr": 0.1})
    mine = {"lr": 0.1}

    shared, copied = _result(config=view), _result(config=mine)
    mine["lr"] = 0.5

    assert shared.config is view
    assert copied.config == {"lr": 0.1}  # the caller's later change does not reach it
    assert _result(landscape={}).landscape == {}
    with pytest.raises(TypeError):
        copied.config["lr"] = 1.0  # type: ignore[index]
