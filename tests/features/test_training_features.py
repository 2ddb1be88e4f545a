"""Training-result features: values, edge cases, and that they read what llp records."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from llp.features import TRAINING_FEATURES, TrainingResultFeatureExtractor
from llp.features._training import (
    LANDSCAPE_FEATURES,
    UNUSED_EPOCH_RECORD_FIELDS,
    curve_features,
)
from llp.training import Curve, EpochRecord, EvaluationResult, EvaluationStatus, Fidelity, Trainer
from tests.conftest import mlp_model_fn, mlp_optimizer_fn

# Val loss 0.05 t**2 - 0.4 t + 1.55 (a parabola, curvature 0.1) at epochs 1..4.
CURVE = [(1.0, 1.2, 0.5), (0.6, 0.95, 0.6), (0.4, 0.8, 0.7), (0.3, 0.75, 0.65)]
LANDSCAPE = {
    "landscape_loss": 0.7,
    "landscape_grad_norm": 0.2,
    "landscape_adaptive_sharpness_avg": 0.05,
    "landscape_hessian_top_eig": 12.0,
    "landscape_lr_times_top_eig": 1.2,
    "landscape_cost_fb": 14.0,
}


def all_finite(features: dict[str, float]) -> bool:
    return all(isinstance(v, float) and math.isfinite(v) for v in features.values())


def test_features_match_hand_computed_values(make_result) -> None:
    result = make_result(CURVE, fraction=0.25, landscape=LANDSCAPE)
    f = TrainingResultFeatureExtractor(last_k=3).extract_features(result)

    assert list(f) == list(TRAINING_FEATURES)
    assert (f["status_complete"], f["resource"], f["epochs"], f["epochs_completed"]) == (
        1.0,
        0.25,
        4.0,
        4.0,
    )
    assert f["cost"] == pytest.approx(1.0)
    assert (f["initial_train_loss"], f["final_train_loss"]) == (1.0, 0.3)
    assert (f["initial_val_loss"], f["final_val_loss"], f["best_val_loss"]) == (1.2, 0.75, 0.75)
    assert (f["initial_val_accuracy"], f["final_val_accuracy"]) == (0.5, 0.65)
    assert (f["best_val_accuracy"], f["accuracy_missing"]) == (0.7, 0.0)
    # Three equally spaced points: the least-squares slope is (last - first) / 2.
    assert f["train_loss_slope"] == pytest.approx((0.3 - 0.6) / 2)
    assert f["val_loss_slope"] == pytest.approx((0.75 - 0.95) / 2)
    assert f["val_accuracy_slope"] == pytest.approx((0.65 - 0.6) / 2)
    assert f["val_loss_curvature"] == pytest.approx(2 * 0.05)
    assert f["train_loss_sum"] == pytest.approx(2.3)
    assert f["generalization_gap"] == pytest.approx(0.75 - 0.3)
    assert f["best_epoch_share"] == 3 / 4  # best accuracy at epoch 3 of 4
    assert f["curve_nonfinite"] == 0.0
    for name in LANDSCAPE_FEATURES:
        assert f[name] == LANDSCAPE[name]
    assert f["landscape_missing"] == 0.0


def test_three_epoch_curvature_is_the_second_difference(make_result) -> None:
    f = TrainingResultFeatureExtractor().extract_features(
        make_result([(1.0, 1.0, 0.5), (0.8, 0.7, 0.6), (0.7, 0.6, 0.6)])
    )
    assert f["val_loss_curvature"] == pytest.approx(1.0 - 2 * 0.7 + 0.6)
    assert f["best_epoch_share"] == 2 / 3  # the first of two equal accuracies


def test_slopes_use_only_the_last_k_epochs(make_result) -> None:
    f = TrainingResultFeatureExtractor(last_k=2).extract_features(make_result(CURVE))
    assert f["train_loss_slope"] == pytest.approx(0.3 - 0.4)


def test_one_epoch_curve_has_zero_rates(make_result) -> None:
    f = TrainingResultFeatureExtractor().extract_features(make_result([(0.9, 1.1, 0.4)]))
    assert f["train_loss_slope"] == f["val_loss_slope"] == f["val_accuracy_slope"] == 0.0
    assert f["val_loss_curvature"] == 0.0
    assert f["best_epoch_share"] == 1.0
    assert f["initial_train_loss"] == f["final_train_loss"] == 0.9
    assert all_finite(f)


def test_regression_curve_has_zero_accuracy_and_an_indicator(make_result) -> None:
    f = TrainingResultFeatureExtractor().extract_features(
        make_result([(2.0, 2.5, None), (1.0, 1.5, None), (0.8, 1.7, None)])
    )
    assert f["accuracy_missing"] == 1.0
    for name in ("initial_val_accuracy", "final_val_accuracy", "val_accuracy_slope"):
        assert f[name] == 0.0
    assert f["best_epoch_share"] == 2 / 3  # lowest val loss without accuracy
    assert f["val_loss_slope"] == pytest.approx((1.7 - 2.5) / 2)
    assert all_finite(f)


def test_failed_run_without_curve_or_landscape(make_result) -> None:
    f = TrainingResultFeatureExtractor().extract_features(make_result([], epochs=3, failed=True))
    assert f["status_complete"] == 0.0
    assert f["epochs"] == 3.0 and f["epochs_completed"] == 0.0
    assert f["accuracy_missing"] == 1.0 and f["landscape_missing"] == 1.0
    assert f["final_val_loss"] == f["train_loss_sum"] == 0.0
    assert all_finite(f)


def test_diverged_epoch_is_forward_filled_and_flagged(make_result) -> None:
    curve = [(1.0, 1.2, 0.5), (0.8, float("nan"), 0.6)]
    f = TrainingResultFeatureExtractor().extract_features(make_result(curve, failed=True))
    assert f["final_val_loss"] == 1.2
    assert f["curve_nonfinite"] == 1.0
    assert all_finite(f)


def test_missing_or_nan_landscape_values_are_filled_and_flagged(make_result) -> None:
    partial = {**LANDSCAPE, "landscape_hessian_top_eig": float("nan")}
    del partial["landscape_lr_times_top_eig"]
    f = TrainingResultFeatureExtractor().extract_features(make_result(CURVE, landscape=partial))
    assert f["landscape_hessian_top_eig"] == 0.0
    assert f["landscape_lr_times_top_eig"] == 0.0
    assert f["landscape_loss"] == 0.7
    assert f["landscape_missing"] == 1.0


def test_to_vector_has_fixed_order_and_width(make_result) -> None:
    f = TrainingResultFeatureExtractor().extract_features(make_result(CURVE, landscape=LANDSCAPE))
    vector = TrainingResultFeatureExtractor.to_vector(f)
    assert vector.shape == (len(TRAINING_FEATURES),)
    assert vector[TRAINING_FEATURES.index("final_val_loss")] == 0.75
    assert list(TrainingResultFeatureExtractor.get_feature_names_out()) == list(TRAINING_FEATURES)


def test_landscape_names_are_those_llp_landscape_produces() -> None:
    landscape = pytest.importorskip("llp.landscape")
    expected = (*landscape.CHEAP_TIER_FEATURES, landscape.LR_TIMES_TOP_EIG_FEATURE)
    assert expected == LANDSCAPE_FEATURES


def test_input_errors(make_result) -> None:
    with pytest.raises(
        ValueError,
        match=r"'last_k' parameter of TrainingResultFeatureExtractor must be an int >= 2. Got 1",
    ):
        TrainingResultFeatureExtractor(last_k=1).extract_features(make_result(CURVE))
    with pytest.raises(TypeError, match=r"'result' parameter must be an llp.training"):
        TrainingResultFeatureExtractor().extract_features({"curve": []})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'features' parameter lacks 28 feature"):
        TrainingResultFeatureExtractor.to_vector({})


# --------------------------------------------------------------------------- real runs
class RecordingRecord:
    """Wraps an EpochRecord and notes every attribute that is read."""

    def __init__(self, record: EpochRecord, read: set[str]) -> None:
        self._record = record
        self._read = read

    def __getattr__(self, name: str):
        self._read.add(name)
        return getattr(self._record, name)


@pytest.fixture(scope="module")
def trained_result():
    """A real 3-epoch evaluation on digits, with the cheap landscape tier when available."""
    from sklearn.datasets import load_digits

    from llp.data import FidelityData

    X, y = load_digits(return_X_y=True)
    data = FidelityData(X[:600], y[:600], standardize=True, seed=0)
    try:
        import llp.landscape  # noqa: F401

        measure = True
    except ImportError:  # the landscape package is optional for this test
        measure = False
    trainer = Trainer(
        mlp_model_fn,
        mlp_optimizer_fn,
        nn.CrossEntropyLoss(),
        data,
        device="cpu",
        measure_flatness=measure,
        seed=0,
    )
    result = trainer.evaluate({"lr": 1e-2, "width": 32}, Fidelity(0.5, 3), trial_id=1)
    assert result.status is EvaluationStatus.COMPLETE, result.failure_reason
    return result


def test_features_of_a_real_trainer_run_are_finite_and_read_the_curve(trained_result) -> None:
    result = trained_result
    f = TrainingResultFeatureExtractor().extract_features(result)
    assert all_finite(f)
    first, last = result.curve[0], result.curve[-1]
    # No silent zeros: every curve feature is the recorded value it claims to be.
    assert f["initial_train_loss"] == first.train_loss > 0
    assert f["final_val_loss"] == last.val_loss > 0
    assert f["final_val_accuracy"] == last.val_accuracy > 0
    assert f["train_loss_sum"] == pytest.approx(sum(r.train_loss for r in result.curve))
    assert f["train_loss_slope"] < 0  # three epochs of Adam on digits lower the loss
    assert f["generalization_gap"] == pytest.approx(last.val_loss - last.train_loss)
    assert (f["resource"], f["epochs"], f["cost"]) == (0.5, 3.0, pytest.approx(1.5))
    assert f["accuracy_missing"] == 0.0
    if result.landscape:
        assert f["landscape_missing"] == 0.0
        for name in LANDSCAPE_FEATURES:
            assert f[name] == result.landscape[name]


@pytest.mark.parametrize("field", ["epoch", "train_loss", "val_loss", "val_accuracy"])
def test_changing_any_read_field_of_the_curve_changes_the_features(trained_result, field) -> None:
    extractor = TrainingResultFeatureExtractor()
    before = extractor.extract_features(trained_result)

    def changed(record: EpochRecord, i: int) -> EpochRecord:
        value = getattr(record, field)
        new = value * 2 if field == "epoch" else value * (1.0 + 0.1 * i) * 0.9
        return dataclasses.replace(record, **{field: new})

    curve = tuple(changed(r, i) for i, r in enumerate(trained_result.curve))
    score = curve[-1].val_accuracy
    after = extractor.extract_features(
        dataclasses.replace(trained_result, curve=curve, score=score)
    )
    assert after != before


def test_the_fields_read_are_the_epoch_record_fields_minus_documented_ones(
    trained_result,
) -> None:
    # A result keeps its curve column-wise (reading every field), so the fields the
    # features read are recorded on a curve given as records.
    read: set[str] = set()
    curve = tuple(RecordingRecord(r, read) for r in trained_result.curve)

    features = curve_features(curve, 3)

    all_fields = {f.name for f in dataclasses.fields(EpochRecord)}
    assert read == all_fields - UNUSED_EPOCH_RECORD_FIELDS
    assert all_fields >= UNUSED_EPOCH_RECORD_FIELDS  # the documented exceptions exist
    # The column-wise curve every result holds gives the same features.
    assert isinstance(trained_result.curve, Curve)
    assert features == curve_features(trained_result.curve, 3)
    # ... and the unused fields change nothing.
    retimed = Curve(dataclasses.replace(r, seconds=r.seconds * 7 + 1) for r in trained_result.curve)
    assert features == curve_features(retimed, 3)


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e6, 1e6), st.just(0.0)
)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@settings(max_examples=60, deadline=None)
@given(
    curve=st.lists(st.tuples(values, values, st.one_of(st.none(), values)), max_size=6),
    landscape=st.dictionaries(st.sampled_from(LANDSCAPE_FEATURES), values),
    last_k=st.integers(2, 5),
)
def test_every_feature_is_a_finite_float_whatever_the_curve(curve, landscape, last_k) -> None:
    result = generated_result(curve, landscape)
    f = TrainingResultFeatureExtractor(last_k=last_k).extract_features(result)
    assert list(f) == list(TRAINING_FEATURES)
    assert all_finite(f)


def generated_result(curve, landscape=None, *, epochs: int | None = None) -> EvaluationResult:
    records = tuple(EpochRecord(i + 1, *point, 0.0) for i, point in enumerate(curve))
    return EvaluationResult(
        config={},
        fidelity=Fidelity(1.0, epochs or max(1, len(records))),
        status=EvaluationStatus.FAILED,
        curve=records,
        score=None,
        objective="val_accuracy",
        cost=float(len(records)),
        seconds=0.0,
        train_seconds=0.0,
        n_train=10,
        seed=0,
        failure_reason="generated",
        landscape=landscape or {},
    )


@pytest.mark.filterwarnings("error::RuntimeWarning")
@settings(max_examples=60, deadline=None)
@given(
    curves=st.lists(
        st.lists(st.tuples(values, values, st.one_of(st.none(), values)), max_size=5),
        min_size=1,
        max_size=8,
    ),
    last_k=st.integers(2, 4),
)
def test_many_results_at_once_give_each_one_its_own_features(curves, last_k) -> None:
    # transform() computes curves of one length together: a diverged curve beside a
    # healthy one must not change the healthy one's features, and nothing is mixed up.
    results = [generated_result(curve) for curve in curves]
    extractor = TrainingResultFeatureExtractor(last_k=last_k)

    batch = extractor.transform(results)

    assert batch.shape == (len(results), len(TRAINING_FEATURES))
    for row, result in zip(batch, results, strict=True):
        alone = TrainingResultFeatureExtractor.to_vector(extractor.extract_features(result))
        np.testing.assert_allclose(row, alone, rtol=1e-9, atol=1e-12)


def test_many_results_mixing_lengths_epochs_and_landscapes(make_result) -> None:
    results = [
        make_result(CURVE, fraction=0.25, landscape=LANDSCAPE),
        make_result([], epochs=3, failed=True),
        make_result([(1.0, 1.0, 0.5), (0.8, 0.7, 0.6), (0.7, 0.6, 0.6)]),
        make_result([(2.0, 2.5, None), (1.0, 1.5, None), (0.8, 1.7, None)]),
        make_result(CURVE[:1]),
    ]
    # Epochs numbered 2, 4, 6: another x for the curvature fit than 1, 2, 3.
    spaced = dataclasses.replace(
        results[2],
        curve=tuple(dataclasses.replace(r, epoch=2 * r.epoch) for r in results[2].curve),
    )
    results.append(spaced)
    extractor = TrainingResultFeatureExtractor()

    batch = extractor.transform(results)

    for row, result in zip(batch, results, strict=True):
        assert list(row) == pytest.approx(
            list(extractor.to_vector(extractor.extract_features(result))), rel=1e-12, abs=1e-15
        )
    curvature = TRAINING_FEATURES.index("val_loss_curvature")
    assert batch[0, curvature] == pytest.approx(0.1)  # the parabola of CURVE
    assert batch[2, curvature] == pytest.approx(1.0 - 2 * 0.7 + 0.6)
    assert batch[5, curvature] == pytest.approx((1.0 - 2 * 0.7 + 0.6) / 4)  # per epoch squared
    assert extractor.transform([]).shape == (0, len(TRAINING_FEATURES))
    with pytest.raises(TypeError, match=r"EvaluationResult. Got dict instead \(at position 1\)"):
        extractor.transform([results[0], {"curve": []}])  # type: ignore[list-item]
