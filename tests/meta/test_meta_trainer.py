from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType

import numpy as np
import pytest
from scipy.stats import spearmanr

from llp.features import DATASET_FEATURES, TRAINING_FEATURES
from llp.meta import Experience, MetaModelTrainer, encode_projected, project_config
from llp.meta._trainer import _quantiles
from llp.space import Categorical, Float, Int, SearchSpace, canonical_config_json
from llp.space._space import INACTIVE
from llp.training import EpochRecord, EvaluationResult, EvaluationStatus, Fidelity

SPACE = SearchSpace(
    [
        Float("lr", 1e-5, 1.0, log=True),
        Int("width", 16, 256, log=True),
        Categorical("optimizer", ("sgd", "adam")),
    ]
)
FIDELITIES = (0.125, 0.25, 0.5, 1.0)


def best_log_lr(f: float) -> float:
    """The synthetic truth: the best learning rate is 10 ** (-4 + 3 f)."""
    return -4 + 3 * f


def synthetic_score(f: float, config: dict, fraction: float) -> float:
    gap = math.log10(config["lr"]) - best_log_lr(f)
    return 0.9 - 0.08 * gap**2 - 0.05 * (1 - fraction) + 0.01 * (config["optimizer"] == "adam")


def make_meta_features(f: float) -> dict[str, float]:
    features = dict.fromkeys(DATASET_FEATURES, 0.0)
    features["feature_mean"] = f
    features["num_samples"] = 1000.0
    return features


def make_result(config: dict, fraction: float, score: float | None) -> EvaluationResult:
    failed = score is None
    curve = tuple(
        EpochRecord(e, 1.0 / e, 1.2 / e, None if failed else score - 0.02 * (3 - e), 0.01)
        for e in (1, 2, 3)
    )
    return EvaluationResult(
        config=config,
        fidelity=Fidelity(fraction, 3),
        status=EvaluationStatus.FAILED if failed else EvaluationStatus.COMPLETE,
        curve=curve,
        score=score,
        objective="val_accuracy",
        cost=fraction * 3,
        seconds=0.1,
        train_seconds=0.1,
        n_train=100,
        seed=0,
        failure_reason="diverged" if failed else None,
    )


def make_experiences(fs: list[float], n_configs: int = 24, seed: int = 0) -> list[Experience]:
    out = []
    for d, f in enumerate(fs):
        configs = SPACE.sample(n_configs, seed=seed + d)
        for t, config in enumerate(configs):
            for fraction in FIDELITIES:
                score = synthetic_score(f, config, fraction)
                out.append(
                    Experience(
                        f"d{d}",
                        f"g{d}",
                        make_meta_features(f),
                        "mlp",
                        f"study-{d}",
                        t,
                        make_result(config, fraction, score),
                    )
                )
    return out


@pytest.fixture(scope="module")
def trained() -> MetaModelTrainer:
    fs = list(np.linspace(0.0, 1.0, 12))
    return MetaModelTrainer(SPACE, n_estimators=100).add(make_experiences(fs)).fit()


def test_predictor_learns_which_learning_rate_suits_a_new_dataset(trained) -> None:
    for f in (0.2, 0.75):
        x = trained.dataset_vector(make_meta_features(f), "mlp")[None, :]
        config = trained.predictor_.predict_configs(x)[0]
        assert abs(math.log10(config["lr"]) - best_log_lr(f)) < 0.6


def test_predictor_is_trained_on_the_top_k_of_each_study_only(trained) -> None:
    X, _, w = trained.predictor_training_set()
    assert X.shape[0] == 12 * trained.top_k
    assert ((w > 0) & (w <= 1.1)).all()


def test_surrogate_ranks_configurations_of_an_unseen_dataset(trained) -> None:
    f = 0.4
    configs = SPACE.sample(40, seed=99)
    rows = np.vstack([trained.surrogate_row(make_meta_features(f), "mlp", c) for c in configs])
    mean, std = trained.predict_final(rows)
    truth = [synthetic_score(f, c, 1.0) for c in configs]
    assert spearmanr(mean, truth).statistic > 0.8
    assert (std >= 0).all()


def test_surrogate_uses_partial_results_of_the_current_rung(trained) -> None:
    f = 0.4
    good = {"lr": 10 ** best_log_lr(f), "width": 64, "optimizer": "adam"}
    bad = {"lr": 1e-5 if best_log_lr(f) > -2.5 else 0.9, "width": 64, "optimizer": "sgd"}
    meta = make_meta_features(f)
    rows = np.vstack(
        [
            trained.surrogate_row(meta, "mlp", good, make_result(good, 0.125, 0.85), 1.0),
            trained.surrogate_row(meta, "mlp", bad, make_result(bad, 0.125, 0.3), 0.0),
        ]
    )
    mean, _ = trained.predict_final(rows)
    assert mean[0] > mean[1] + 0.3


def test_failed_trials_rank_last() -> None:
    exps = make_experiences([0.5], n_configs=6)
    config = {"lr": 0.5, "width": 32, "optimizer": "sgd"}
    exps.append(
        Experience(
            "d0",
            "g0",
            make_meta_features(0.5),
            "mlp",
            "study-0",
            99,
            make_result(config, 0.125, None),
        )
    )
    trainer = MetaModelTrainer(SPACE).add(exps)
    finals = trainer.final_scores()
    assert finals[("study-0", 99)][0] is None
    X, y, groups = trainer.surrogate_training_set()
    assert X.shape[0] == len(y) == len(groups) and y.min() == 0.0


@pytest.mark.parametrize("landscape", [True, False])
def test_the_surrogate_training_set_is_made_of_surrogate_rows(landscape) -> None:
    # The set is assembled in bulk; each row must be what surrogate_row gives for its
    # configuration (with no partial result) or for one of the study's evaluations.
    exps = make_experiences([0.2, 0.7], n_configs=5)
    measured = {"landscape_loss": 0.4, "landscape_hessian_top_eig": 3.0}
    exps[1] = dataclasses.replace(
        exps[1], result=dataclasses.replace(exps[1].result, landscape=measured)
    )
    exps[2] = dataclasses.replace(exps[2], result=make_result(exps[2].result.config, 0.5, None))
    trainer = MetaModelTrainer(SPACE, use_landscape_features=landscape).add(exps)

    X, y, groups = trainer.surrogate_training_set()

    available = X[:, -2]
    config_rows, evaluated_rows = X[available == 0], X[available == 1]
    configs = {canonical_config_json(e.result.config): e for e in exps}
    assert len(config_rows) == len(configs)
    for row in config_rows:
        assert any(
            np.array_equal(row, trainer.surrogate_row(e.meta_features, "mlp", e.result.config))
            for e in configs.values()
        )
    completed = [e for e in exps if e.result.status is EvaluationStatus.COMPLETE]
    assert len(evaluated_rows) == len(completed)
    for row in evaluated_rows:
        # The last column is the evaluation's rank within its rung.
        assert any(
            np.allclose(
                row,
                trainer.surrogate_row(e.meta_features, "mlp", e.result.config, e.result, row[-1]),
                rtol=0,
                atol=1e-12,
            )
            for e in completed
        )
    width = len(TRAINING_FEATURES)
    landscape_column = X.shape[1] - 2 - width + TRAINING_FEATURES.index("landscape_loss")
    assert (X[:, landscape_column] == 0.4).sum() == (1 if landscape else 0)
    assert sorted(set(groups)) == ["d0", "d1"] and len(y) == len(X)


def test_forests_built_in_several_threads_are_the_same_models(monkeypatch) -> None:
    from llp.meta import _trainer

    monkeypatch.setenv("LLP_CACHE_DIR", "")  # nothing read back: both are fitted
    exps = make_experiences([0.1, 0.5, 0.9], n_configs=8)
    fitted = []
    for n_jobs in (None, 2):
        monkeypatch.setattr(_trainer, "_FIT_CACHE", {})
        trainer = MetaModelTrainer(SPACE, n_estimators=20, n_jobs=n_jobs).add(exps).fit()
        fitted.append(trainer)
    one, two = fitted
    assert two.n_jobs == 2
    X, _, _ = one.surrogate_training_set()
    np.testing.assert_array_equal(one.predict_final(X)[0], two.predict_final(X)[0])
    np.testing.assert_array_equal(one.predict_final(X)[1], two.predict_final(X)[1])
    x = one.dataset_vector(make_meta_features(0.3), "mlp")[None, :]
    assert one.predictor_.predict_configs(x) == two.predictor_.predict_configs(x)
    with pytest.raises(ValueError, match="'n_jobs' parameter of MetaModelTrainer"):
        MetaModelTrainer(SPACE, n_jobs=0)


def test_suggest_returns_distinct_legal_configs_best_predicted_first(trained) -> None:
    suggestions = trained.suggest(make_meta_features(0.3), "mlp", 6, seed=0)
    assert len(suggestions) == 6
    predicted = [s.predicted_quantile for s in suggestions]
    assert predicted == sorted(predicted, reverse=True)
    configs = [s.config for s in suggestions]
    assert all(SPACE.validate(c) == c for c in configs)
    assert len({tuple(sorted(c.items())) for c in configs}) == 6
    assert trained.suggest(make_meta_features(0.3), "mlp", 6, seed=0) == suggestions
    best = suggestions[0].config
    assert abs(math.log10(best["lr"]) - best_log_lr(0.3)) < 0.6


def test_studies_that_share_no_configuration_offer_their_best_ones(trained) -> None:
    # Twelve studies that each drew their own configurations (a team's own knowledge
    # base): no configuration has the support for a mean rank, so a new study starts
    # from each study's best one, the surrogate's favourite for this dataset first.
    meta = make_meta_features(0.4)
    candidates = trained.prior_candidates(meta, "mlp", 5)
    assert [source for _, _, source in candidates] == ["best of a past study"] * 5
    finals = trained.final_scores()
    bests = set()
    for study in {e.study for e in trained.experiences}:
        rows = [(score, exp) for (st, _), (score, exp) in finals.items() if st == study]
        bests.add(canonical_config_json(max(rows, key=lambda r: r[0])[1].result.config))
    assert {canonical_config_json(c) for c, _, _ in candidates} <= bests
    scores = [score for _, score, _ in candidates]
    assert scores == sorted(scores, reverse=True)
    rows = np.vstack([trained.surrogate_row(meta, "mlp", c) for c, _, _ in candidates])
    assert scores == pytest.approx(list(trained.predict_final(rows)[0]))
    pick = trained.zero_shot(meta, "mlp")
    assert pick is not None and pick.source == "best of a past study"
    assert pick.config == candidates[0][0]


def test_configurations_shared_by_enough_studies_come_first_by_mean_rank() -> None:
    shared = SPACE.sample(6, seed=21)
    exps = []
    for d, f in enumerate((0.3, 0.4, 0.5)):
        own = SPACE.sample(3, seed=40 + d)  # and a few of each study's own
        for t, config in enumerate(shared + own):
            exps.append(
                Experience(
                    f"d{d}", None, make_meta_features(f), "mlp", f"s{d}", t,
                    make_result(config, 1.0, synthetic_score(f, config, 1.0)),
                )
            )  # fmt: skip
    trainer = MetaModelTrainer(SPACE, n_estimators=20, random_state=0).add(exps).fit()
    candidates = trainer.prior_candidates(make_meta_features(0.4), "mlp", 8)
    sources = [source for _, _, source in candidates]
    assert sources[:6] == ["portfolio"] * 6 and set(sources[6:]) == {"best of a past study"}
    by_rank = [c for c, _ in trainer.ranked_portfolio("mlp", 6, same_family=False)]
    assert [c for c, _, _ in candidates[:6]] == by_rank
    assert trainer.zero_shot(make_meta_features(0.4), "mlp").source == "portfolio"


def test_study_models_hold_each_study_s_encoded_configurations_and_final_ranks() -> None:
    shared = SPACE.sample(4, seed=5)
    exps = []
    for d, (f, n_own) in enumerate(((0.3, 2), (0.6, 1), (0.5, 0))):
        configs = (shared + SPACE.sample(n_own, seed=50 + d)) if d < 2 else shared[:1]
        for t, config in enumerate(configs):
            exps.append(
                Experience(
                    f"d{d}", None, make_meta_features(f), "mlp", f"s{d}", t,
                    make_result(config, 1.0, synthetic_score(f, config, 1.0)),
                )
            )  # fmt: skip
    models = MetaModelTrainer(SPACE, n_estimators=5).add(exps).study_models()
    assert sorted(models) == ["s0", "s1"]  # s2 has one final score: nothing to rank
    for study, (X, y) in models.items():
        rows = [e for e in exps if e.study == study]
        assert np.array_equal(X, np.vstack([SPACE.encode(e.result.config) for e in rows]))
        assert np.allclose(y, _quantiles([e.result.score for e in rows]))


def test_a_greedy_portfolio_adds_the_configuration_that_covers_the_pick() -> None:
    # Four configurations on four datasets: a and b are good alike (and poor on d3),
    # c is middling but the best where a fails. By mean rank the portfolio is a, b, ...;
    # greedily, c comes second: it raises the best rank on d3, b raises nothing.
    configs = SPACE.sample(4, seed=11)
    table = {  # dataset -> score of configs a, b, c, d
        "d0": (0.90, 0.89, 0.70, 0.60),
        "d1": (0.91, 0.90, 0.71, 0.60),
        "d2": (0.92, 0.91, 0.72, 0.60),
        "d3": (0.50, 0.51, 0.80, 0.60),
    }
    exps = [
        Experience(name, None, make_meta_features(0.4), "mlp", name, t, make_result(c, 1.0, s))
        for name, scores in table.items()
        for t, (c, s) in enumerate(zip(configs, scores, strict=True))
    ]
    trainer = MetaModelTrainer(SPACE).add(exps)
    by_mean = [c for c, _ in trainer.ranked_portfolio("mlp", 3)]
    greedy = trainer.ranked_portfolio("mlp", 3, greedy=True)
    assert by_mean[:2] == [configs[0], configs[1]]
    assert [c for c, _ in greedy] == [configs[0], configs[2], configs[1]]
    # Each keeps its own mean rank as its score, whatever its place.
    mean_rank = {canonical_config_json(c): r for c, r in trainer.ranked_portfolio("mlp", 4)}
    assert [r for _, r in greedy] == [mean_rank[canonical_config_json(c)] for c, _ in greedy]


def test_portfolio_holds_the_configurations_best_on_average() -> None:
    shared = SPACE.sample(10, seed=5)
    exps = []
    for d, f in enumerate(np.linspace(0.3, 0.5, 4)):
        for t, config in enumerate(shared):
            score = synthetic_score(f, config, 1.0)
            exps.append(
                Experience(
                    f"d{d}",
                    None,
                    make_meta_features(f),
                    "mlp",
                    f"s{d}",
                    t,
                    make_result(config, 1.0, score),
                )
            )
    trainer = MetaModelTrainer(SPACE).add(exps)
    portfolio = trainer.portfolio("mlp", 3)
    mean_score = {
        i: np.mean([synthetic_score(f, c, 1.0) for f in np.linspace(0.3, 0.5, 4)])
        for i, c in enumerate(shared)
    }
    best = max(mean_score, key=mean_score.get)
    assert portfolio[0] == shared[best] and len(portfolio) == 3
    assert trainer.portfolio("cnn", 3) == portfolio  # no cnn studies: all studies count
    first = trainer.suggest(make_meta_features(0.4), "mlp", 2, seed=0)
    assert first[0].source == "portfolio"  # no surrogate fitted: the portfolio leads
    # The zero-shot pick is the best on average over every study, of any family, with
    # the surrogate's view of it attached once there is one.
    pick = trainer.zero_shot(make_meta_features(0.4), "cnn")
    assert pick is not None and pick.config == shared[best] and pick.source == "portfolio"
    assert math.isnan(pick.predicted_quantile)
    fitted = trainer.fit().zero_shot(make_meta_features(0.4), "mlp")
    assert fitted is not None and fitted.config == shared[best]
    assert 0.0 <= fitted.predicted_quantile <= 1.0 and fitted.uncertainty >= 0.0


def test_without_experience_the_models_stay_unfitted_and_suggest_samples() -> None:
    trainer = MetaModelTrainer(SPACE).fit()
    assert trainer.predictor_ is None and trainer.surrogate_ is None
    assert trainer.zero_shot(make_meta_features(0.3), "mlp") is None
    suggestions = trainer.suggest(make_meta_features(0.3), "mlp", 3, seed=1)
    assert len(suggestions) == 3 and all(s.source == "space sample" for s in suggestions)
    with pytest.raises(ValueError, match="surrogate is not fitted"):
        trainer.predict_final(np.zeros((1, 3)))


def test_ablations_change_the_surrogate_input_width() -> None:
    full = MetaModelTrainer(SPACE)
    no_meta = MetaModelTrainer(SPACE, use_dataset_features=False)
    no_train = MetaModelTrainer(SPACE, use_training_features=False)
    meta, config = make_meta_features(0.1), {"lr": 1e-3, "width": 32, "optimizer": "adam"}
    widths = [t.surrogate_row(meta, "mlp", config).shape[0] for t in (full, no_meta, no_train)]
    assert widths[0] == widths[1] + len(DATASET_FEATURES)
    assert widths[2] == len(DATASET_FEATURES) + 3 + len(SPACE)
    result = make_result(config, 0.5, 0.8)
    without_landscape = MetaModelTrainer(SPACE, use_landscape_features=False)
    assert without_landscape.surrogate_row(meta, "mlp", config, result, 0.5).shape == (
        full.surrogate_row(meta, "mlp", config, result, 0.5).shape
    )


def test_configs_from_other_spaces_are_projected_by_name() -> None:
    foreign = {"learning_rate": 10.0, "hidden_size": 1000, "optim": "adam", "extra": 1}
    assert project_config(foreign, SPACE) == {"lr": 1.0, "width": 256, "optimizer": "adam"}
    partial = encode_projected({"lr": 1e-3}, SPACE)
    assert partial[0] != INACTIVE and (partial[1:] == INACTIVE).all()
    trainer = MetaModelTrainer(SPACE, min_coverage=0.5)
    far = make_result({"momentum": 0.9}, 1.0, 0.5)
    trainer.add([Experience("d", None, make_meta_features(0.0), None, "s", 0, far)])
    assert trainer.experiences == []


def test_input_errors() -> None:
    with pytest.raises(TypeError, match="'space' parameter of MetaModelTrainer"):
        MetaModelTrainer({"lr": 1})
    with pytest.raises(ValueError, match="'top_k' parameter of MetaModelTrainer must be an int"):
        MetaModelTrainer(SPACE, top_k=0)
    with pytest.raises(ValueError, match="'min_coverage'"):
        MetaModelTrainer(SPACE, min_coverage=2.0)
    with pytest.raises(TypeError, match="Expected Experience records"):
        MetaModelTrainer(SPACE).add([{"config": {}}])


def test_rows_beyond_float32_are_skipped_and_counted_not_fatal() -> None:
    """A stored record with a value float32 cannot hold (from an old import or another
    tool) used to break every fit on the knowledge base; the fit leaves it out."""
    from dataclasses import replace

    fs = [0.2, 0.5, 0.8]
    clean = MetaModelTrainer(SPACE, n_estimators=10).add(make_experiences(fs, n_configs=8)).fit()
    assert clean.skipped_rows_ == {"predictor": 0, "surrogate": 0}
    poisoned = make_experiences(fs, n_configs=8)
    features = {**poisoned[0].meta_features, "feature_mean": 1e39}
    poisoned[0] = replace(poisoned[0], meta_features=features)
    trainer = MetaModelTrainer(SPACE, n_estimators=10).add(poisoned).fit()
    assert trainer.predictor_ is not None and trainer.surrogate_ is not None
    assert sum(trainer.skipped_rows_.values()) >= 1
    X, _, _ = trainer.surrogate_training_set()
    assert np.isfinite(X[~np.isnan(X)]).all() and np.abs(X[~np.isnan(X)]).max() < 3.4e38


def _bracket(halving: bool) -> list[Experience]:
    """One successive-halving bracket, configurations A-D, two seeds (trials i and i + 4):
    all on 1/2 of the data, A and B promoted to all of it. C measured higher on 1/2 than
    A and B do on all the data; one seed of D diverged."""
    configs = [
        {"lr": 0.01, "width": 32, "optimizer": "adam"},
        {"lr": 0.02, "width": 32, "optimizer": "adam"},
        {"lr": 0.03, "width": 32, "optimizer": "adam"},
        {"lr": 0.5, "width": 32, "optimizer": "sgd"},
    ]
    half = {0: (0.70, 0.72), 1: (0.71, 0.69), 2: (0.95, 0.50), 3: (0.99, None)}
    full = {0: (0.80, 0.82), 1: (0.84, 0.84)}
    rows = []
    for i, config in enumerate(configs):
        for fraction, scores in ((0.5, half), (1.0, full)):
            for replicate, score in enumerate(scores.get(i, ())):
                rows.append((i + 4 * replicate, make_result(config, fraction, score)))
    return [
        Experience("d0", "g0", make_meta_features(0.5), "mlp", "bracket", t, r, halving=halving)
        for t, r in rows
    ]


def test_a_halving_study_ranks_every_trial_by_where_it_stopped_and_its_mean_score() -> None:
    ranks = MetaModelTrainer(SPACE).add(_bracket(halving=True)).final_ranks()
    rank = {trial: q for (_, trial), (q, _) in ranks.items()}
    # B (mean 0.84 on all the data) > A (0.81) > C (stopped on half, whatever it scored
    # there); D failed one seed, so both of its trials failed.
    assert rank[1] == rank[5] > rank[0] == rank[4] > rank[2] == rank[6]
    assert rank[3] is None and rank[7] is None
    judged = {trial: exp.result.fidelity.fraction for (_, trial), (_, exp) in ranks.items()}
    assert judged[0] == 1.0 and judged[2] == 0.5
    assert ranks[("bracket", 7)][1].result.status is EvaluationStatus.FAILED


def test_other_studies_rank_only_the_trials_on_their_top_fidelity() -> None:
    # Hyperband's and MetaProbing's studies: where a trial stopped is not a ranking.
    ranks = MetaModelTrainer(SPACE).add(_bracket(halving=False)).final_ranks()
    assert sorted(t for (_, t) in ranks) == [0, 1, 4, 5, 7]  # 7 failed
    rank = {trial: q for (_, trial), (q, _) in ranks.items()}
    assert rank[1] == rank[5] > rank[0] == rank[4]


def test_replicates_give_one_config_only_row_and_every_measurement_a_row() -> None:
    trainer = MetaModelTrainer(SPACE).add(_bracket(halving=True))
    X, y, _ = trainer.surrogate_training_set()
    complete = sum(e.result.status is EvaluationStatus.COMPLETE for e in trainer.experiences)
    assert X.shape[0] == 4 + complete  # 4 configurations, then each completed evaluation
    assert list(y[:4]) == [2 / 3, 1.0, 1 / 3, 0.0]  # A, B, C, D (failed)
    # The predictor learns each configuration once, best first, failures left out.
    _, Y, w = trainer.predictor_training_set()
    assert Y.shape[0] == 3 and list(w) == [1.1, 0.6, 0.1]


def test_final_ranks_follow_the_experiences_as_they_grow_or_are_replaced() -> None:
    bracket = _bracket(halving=True)
    trainer = MetaModelTrainer(SPACE).add(bracket[:4])
    first = trainer.final_ranks()
    assert trainer.final_ranks() == first  # read again, unchanged
    trainer.add(bracket[4:])
    assert len(trainer.final_ranks()) > len(first)
    trainer.experiences = list(bracket[:4])  # as the report does
    assert trainer.final_ranks() == first


def test_quantiles_give_ties_their_mean_rank_and_failures_the_lowest() -> None:
    got = _quantiles([0.5, None, 0.9, 0.5, 0.7])
    np.testing.assert_array_equal(got, [0.375, 0.0, 1.0, 0.375, 0.75])
    np.testing.assert_array_equal(_quantiles([0.3]), [1.0])
    np.testing.assert_array_equal(_quantiles([None]), [0.0])


def test_configurations_read_once_give_what_reading_each_gives() -> None:
    # The trainer projects each distinct configuration once; shared read-only views (as a
    # knowledge file's results hold) and plain dicts must come out as reading each would.
    fs = list(np.linspace(0.0, 1.0, 4))
    experiences = make_experiences(fs, n_configs=6)
    views: dict[str, MappingProxyType] = {}
    shared = [
        dataclasses.replace(
            e,
            result=dataclasses.replace(
                e.result,
                config=views.setdefault(
                    canonical_config_json(e.result.config), MappingProxyType(dict(e.result.config))
                ),
            ),
        )
        for e in experiences
    ]
    assert shared[0].result.config is shared[1].result.config  # one view per configuration

    plain = MetaModelTrainer(SPACE).add(experiences)
    viewed = MetaModelTrainer(SPACE).add(shared)

    assert plain.final_ranks().keys() == viewed.final_ranks().keys()
    assert [q for q, _ in plain.final_ranks().values()] == [
        q for q, _ in viewed.final_ranks().values()
    ]
    X1, y1, _ = plain.surrogate_training_set()
    X2, y2, _ = viewed.surrogate_training_set()
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert plain.ranked_portfolio("mlp", 4) == viewed.ranked_portfolio("mlp", 4)
    # A caller's dict that changes between calls is read as it is now.
    config = dict(experiences[0].result.config)
    before = viewed.surrogate_row(make_meta_features(0.0), "mlp", config)
    config["lr"] = 1e-5 if config["lr"] > 1e-3 else 0.5
    after = viewed.surrogate_row(make_meta_features(0.0), "mlp", config)
    assert not np.array_equal(before, after)
    # What the trainer hands out is the caller's own copy.
    meta = make_meta_features(0.5)
    first = viewed.prior_candidates(meta, "mlp", 2)
    first[0][0]["lr"] = 123.0
    assert viewed.prior_candidates(meta, "mlp", 2)[0][0]["lr"] != 123.0
