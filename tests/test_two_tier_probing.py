from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from llp.runner import StudyFailedError
from llp.training import EvaluationStatus
from llp.two_tier_probing import TwoTierProbing
from tests.conftest import mlp_model_fn, mlp_optimizer_fn

CONFIGS = [
    {"lr": lr, "width": w, "optimizer": opt}
    for lr in (1e-3, 3e-2)
    for w in (16, 64)
    for opt in ("sgd", "adam")
]


def make_probe(data, configs=CONFIGS, **kwargs) -> TwoTierProbing:
    kwargs.setdefault("max_epochs", 2)
    kwargs.setdefault("show_progress", False)
    return TwoTierProbing(
        configs, mlp_model_fn, data, nn.CrossEntropyLoss(), mlp_optimizer_fn, **kwargs
    )


def test_successive_halving_end_to_end(make_digits_data) -> None:
    probe = make_probe(make_digits_data())
    result = probe.run_successive_halving(min_resource=0.25, max_resource=1.0, reduction_factor=2)
    assert probe.result_ is result
    assert result.best_config in CONFIGS
    assert result.best_evaluation.resource == 1.0
    assert [e.resource for e in result.evaluations].count(0.25) == 8
    assert result.total_cost == pytest.approx((8 * 0.25 + 4 * 0.5 + 2 * 1.0) * 2)
    assert result.total_cost == pytest.approx(result.planned_cost)
    for e in result.evaluations:
        assert e.status is EvaluationStatus.COMPLETE
        assert len(e.curve) == 2 and e.cost == pytest.approx(e.resource * 2)
    assert result.best_score == max(e.score for e in result.evaluations if e.resource == 1.0)
    frame = result.to_dataframe()
    assert len(frame) == 14 and {"config.lr", "reason", "cost"} <= set(frame.columns)


def test_same_seed_same_evaluations(make_digits_data) -> None:
    def run(seed: int):
        res = make_probe(make_digits_data(seed=seed), seed=seed).run_successive_halving(
            0.25, 1.0, 2
        )
        return [(e.trial_id, e.resource, e.score, e.curve[-1].train_loss) for e in res.evaluations]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_a_diverging_config_is_recorded_and_the_study_goes_on(make_digits_data) -> None:
    configs = [*CONFIGS[:3], {"lr": 1e6, "width": 16, "optimizer": "sgd"}]
    result = make_probe(make_digits_data(), configs).run_successive_halving(0.5, 1.0, 2)
    failed = [e for e in result.evaluations if e.status is EvaluationStatus.FAILED]
    assert len(failed) == 1 and failed[0].config["lr"] == 1e6
    assert "diverged" in failed[0].result.failure_reason
    assert result.best_config["lr"] != 1e6


def test_hyperband_and_random_search_run_on_the_inferred_space(make_digits_data) -> None:
    probe = make_probe(make_digits_data(), max_epochs=1)
    hb = probe.run_hyperband(min_resource=0.25, max_resource=1.0, reduction_factor=2)
    assert hb.total_cost == pytest.approx(hb.planned_cost)
    assert all(probe.space.validate(dict(e.config)) for e in hb.evaluations)
    rs = probe.run_random_search(n_trials=3, resource=0.5)
    assert len(rs.evaluations) == 3 and rs.total_cost == pytest.approx(1.5)


def test_from_arrays_builds_the_data_itself(digits) -> None:
    X, y = digits
    probe = TwoTierProbing.from_arrays(
        X[:400],
        y[:400],
        CONFIGS[:2],
        mlp_model_fn,
        nn.CrossEntropyLoss(),
        mlp_optimizer_fn,
        standardize=True,
        max_epochs=1,
        show_progress=False,
    )
    result = probe.run_successive_halving(0.5, 1.0, 2)
    assert len(result.evaluations) == 3


def test_all_failing_configs_raise_a_study_error(make_digits_data) -> None:
    configs = [
        {"lr": 1e6, "width": 16, "optimizer": "sgd"},
        {"lr": 1e7, "width": 16, "optimizer": "sgd"},
    ]
    with pytest.raises(StudyFailedError, match="All 2 evaluations failed.*diverged"):
        make_probe(make_digits_data(), configs).run_successive_halving(0.5, 1.0, 2)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda p: p.run_successive_halving(0.1, 0.5, 1),
            ValueError,
            "'reduction_factor' parameter of SuccessiveHalving must be an int >= 2. Got 1",
        ),
        (
            lambda p: p.run_successive_halving(0.6, 0.5, 2),
            ValueError,
            "'min_resource' parameter of SuccessiveHalving must be <= 'max_resource'",
        ),
        (
            lambda p: p.run_successive_halving(0.0, 0.5, 2),
            ValueError,
            r"'min_resource'.*must be a finite float in \(0.0, 1.0\]. Got 0.0",
        ),
        (lambda p: p.run_successive_halving(-0.1, 0.5, 2), ValueError, "'min_resource'"),
        (lambda p: p.run_successive_halving(0.1, 2.0, 2), ValueError, "'max_resource'"),
        (lambda p: p.run_random_search(0), ValueError, "'n_trials'"),
    ],
)
def test_bad_run_arguments(make_digits_data, call, error, match) -> None:
    with pytest.raises(error, match=match):
        call(make_probe(make_digits_data()))


@pytest.mark.parametrize(
    ("configs", "error", "match"),
    [
        ([], ValueError, "'configs' parameter must be a non-empty list"),
        ([{"lr": 0.1, "width": 16}, {"lr": 0.1}], ValueError, "same keys"),
        ("lr=0.1", TypeError, "must be a list of dicts"),
    ],
)
def test_bad_configs(make_digits_data, configs, error, match) -> None:
    with pytest.raises(error, match=match):
        make_probe(make_digits_data(), configs)


def test_bad_constructor_arguments(make_digits_data, digits) -> None:
    with pytest.raises(ValueError, match="'max_epochs' parameter of TwoTierProbing must be an"):
        make_probe(make_digits_data(), max_epochs=0)
    X, _ = digits
    with pytest.raises(ValueError, match="single class"):
        TwoTierProbing.from_arrays(
            X[:50], np.zeros(50), CONFIGS, mlp_model_fn, nn.CrossEntropyLoss(), mlp_optimizer_fn
        )


def test_dataset_fn_returning_the_wrong_thing_is_reported_at_once() -> None:
    probe = make_probe(lambda fraction: "loader")
    with pytest.raises(TypeError, match=r"dataset_fn\(0.5\) must return a pair"):
        probe.run_successive_halving(0.5, 1.0, 2)


def test_measure_flatness_records_landscape_and_counts_its_cost(make_digits_data) -> None:
    probe = make_probe(make_digits_data())
    result = probe.run_successive_halving(0.5, 1.0, 2, measure_flatness=True)
    assert all(e.result.landscape for e in result.evaluations)
    assert result.probe_cost > 0
    assert result.total_cost == pytest.approx(result.planned_cost + result.probe_cost)


# ---------------------------------------------------------------------- knowledge base
class Crash(Exception):
    """Stands in for a crash in the middle of a study."""


def test_every_evaluation_lands_in_the_knowledge_base(make_digits_data, tmp_path) -> None:
    from llp.store import KnowledgeBase

    db = tmp_path / "kb.db"
    data = make_digits_data()
    probe = make_probe(data, storage=db, dataset_name="digits", model_family="mlp")
    result = probe.run_successive_halving(0.25, 1.0, 2, measure_flatness=True)
    assert result.study_name is not None and result.n_reused == 0
    with KnowledgeBase.open(db) as kb:
        stored = kb.evaluations(study=result.study_name)
        assert len(stored) == len(result.evaluations) == 14
        assert {s.dataset_fingerprint for s in stored} == {data.fingerprint}
        assert kb.get_dataset(data.fingerprint).name == "digits"
        assert kb.get_dataset(data.fingerprint).meta_features["num_classes"] == 10
        assert all(s.model_family == "mlp" and s.result.landscape for s in stored)


def test_a_crashed_study_resumes_without_losing_or_repeating_work(
    make_digits_data, tmp_path
) -> None:
    from llp.search import BEST_RULE
    from llp.store import KnowledgeBase

    db = tmp_path / "kb.db"
    clean = make_probe(make_digits_data()).run_successive_halving(0.25, 1.0, 2)

    def crash_after_five(event) -> None:
        if event.n_finished == 5:
            raise Crash

    with pytest.raises(Crash):
        make_probe(make_digits_data(), storage=db).run_successive_halving(
            0.25, 1.0, 2, progress_callback=crash_after_five
        )
    resumed = make_probe(make_digits_data(), storage=db).run_successive_halving(0.25, 1.0, 2)
    assert resumed.n_reused == 5
    assert len(resumed.evaluations) == len(clean.evaluations)
    assert resumed.best_config == clean.best_config
    assert [e.score for e in resumed.evaluations] == [e.score for e in clean.evaluations]
    assert resumed.total_cost == pytest.approx(clean.total_cost)
    with KnowledgeBase.open(db) as kb:
        assert kb.counts()["evaluations"] == 14
        # One answer after every evaluation, by the best-score rule; no decisions (plain
        # successive halving records none).
        answers = kb.answers(resumed.study_name)
        assert kb.decisions(resumed.study_name) == []
    assert len(answers) == 14 and {a.rule for a in answers} == {BEST_RULE}
    assert answers[-1].trial_number == resumed.best_evaluation.trial_id
    assert [a.trial_number for a in answers] == [
        None if a is None else a.trial_id for a in resumed.answers
    ]
    again = make_probe(make_digits_data(), storage=db).run_successive_halving(0.25, 1.0, 2)
    assert again.n_reused == 14
    with KnowledgeBase.open(db) as kb:
        assert len(kb.answers(again.study_name)) == 14


def test_resuming_a_study_with_other_settings_is_refused(make_digits_data, tmp_path) -> None:
    db = tmp_path / "kb.db"
    make_probe(make_digits_data(), storage=db, study_name="s").run_successive_halving(0.5, 1.0, 2)
    with pytest.raises(ValueError, match="reduction_factor"):
        make_probe(make_digits_data(), storage=db, study_name="s").run_successive_halving(
            0.5, 1.0, 3
        )


def test_user_dataset_fn_studies_are_keyed_by_their_data(make_digits_data, tmp_path) -> None:
    data = make_digits_data()
    db = tmp_path / "kb.db"
    first = make_probe(lambda f: data(f), storage=db).run_successive_halving(0.5, 1.0, 2)
    second = make_probe(lambda f: data(f), storage=db).run_successive_halving(0.5, 1.0, 2)
    assert first.study_name == second.study_name
    assert second.n_reused == len(first.evaluations) == 12


def test_resuming_a_study_with_other_configs_is_refused(make_digits_data, tmp_path) -> None:
    db = tmp_path / "kb.db"
    make_probe(make_digits_data(), storage=db, study_name="s").run_successive_halving(0.5, 1.0, 2)
    with pytest.raises(ValueError, match="configs"):
        make_probe(
            make_digits_data(), CONFIGS[:4], storage=db, study_name="s"
        ).run_successive_halving(0.5, 1.0, 2)
