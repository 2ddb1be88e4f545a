"""Frozen forests predict what scikit-learn's do, and fitted meta-models come back from
the cache on disk instead of being fitted again."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from llp.meta import MetaModelTrainer, _cache
from llp.meta import _trainer as trainer_module
from llp.meta._frozen import FrozenForest
from tests.meta.test_meta_trainer import SPACE, make_experiences, make_meta_features


def inputs(rng: np.random.Generator, n: int) -> np.ndarray:
    X = rng.normal(size=(n, 6))
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values go where the fitted tree says
    return X


def test_a_frozen_forest_predicts_exactly_what_the_forest_did() -> None:
    rng = np.random.default_rng(0)
    X = inputs(rng, 400)
    y = np.nan_to_num(X[:, 0]) + 0.1 * rng.normal(size=400)
    regressor = RandomForestRegressor(
        n_estimators=20, min_samples_leaf=3, max_features=0.5, max_samples=300, random_state=0
    ).fit(X, y)
    classifier = RandomForestClassifier(n_estimators=20, random_state=0).fit(
        X, (y > 0).astype(int) + (y > 1)
    )
    test = inputs(rng, 200)
    frozen = FrozenForest.from_sklearn(regressor)
    per_tree = np.vstack([tree.predict(test) for tree in regressor.estimators_])
    assert np.array_equal(frozen.predict_per_tree(test), per_tree)
    assert np.allclose(frozen.feature_importances_, regressor.feature_importances_)
    frozen_classifier = FrozenForest.from_sklearn(classifier)
    assert np.array_equal(frozen_classifier.classes_, classifier.classes_)
    assert np.allclose(frozen_classifier.predict_proba(test), classifier.predict_proba(test))
    # The arrays are all there is to it.
    again = FrozenForest(frozen.arrays(), frozen.n_features_in_)
    assert np.array_equal(again.predict_per_tree(test), per_tree)


def test_a_frozen_forest_walks_many_rows_in_blocks_to_the_same_leaves(monkeypatch) -> None:
    from llp.meta import _frozen

    rng = np.random.default_rng(1)
    X = inputs(rng, 300)
    regressor = RandomForestRegressor(n_estimators=7, random_state=0).fit(X, X[:, 1] > 0)
    frozen = FrozenForest.from_sklearn(regressor)
    whole = frozen.leaf_values(X)
    monkeypatch.setattr(_frozen, "_PAIRS_AT_ONCE", 7 * 64)  # blocks of 64 rows, one of 44
    assert np.array_equal(frozen.leaf_values(X), whole)
    monkeypatch.setattr(_frozen, "_PAIRS_AT_ONCE", 1)  # one row at a time
    assert np.array_equal(frozen.leaf_values(X[:5]), whole[:, :5])


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda a: a.update(left=a["left"][:-1]), "left has shape"),
        (lambda a: a["left"].__setitem__(0, 0), "bad left children"),  # a loop to itself
        (lambda a: a["right"].__setitem__(0, 10**6), "bad right children"),
        (lambda a: a["feature"].__setitem__(0, 99), "feature that does not exist"),
        (lambda a: a.update(offsets=a["offsets"][::-1]), "bad tree offsets"),
    ],
    ids=["short", "self-loop", "out-of-range", "feature", "offsets"],
)
def test_a_damaged_forest_is_refused(damage, match) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 6))
    forest = RandomForestRegressor(n_estimators=3, random_state=0).fit(X, X[:, 0])
    arrays = {k: v.copy() for k, v in FrozenForest.from_sklearn(forest).arrays().items()}
    damage(arrays)
    with pytest.raises(ValueError, match=match):
        FrozenForest(arrays, 6)


def fitted(exps) -> MetaModelTrainer:
    return MetaModelTrainer(SPACE, n_estimators=20, random_state=0).add(exps).fit()


def test_a_fit_is_read_back_from_disk_by_a_new_process(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(_cache.CACHE_ENV, str(tmp_path))
    exps = make_experiences([0.3, 0.5, 0.7], n_configs=12, seed=3)
    first = fitted(exps)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    # A new process: nothing fitted in memory, and fitting is not allowed.
    monkeypatch.setattr(trainer_module, "_FIT_CACHE", {})

    def no_fit(self) -> None:
        raise AssertionError("fitted again instead of read from the cache")

    monkeypatch.setattr(MetaModelTrainer, "_fit_uncached", no_fit)
    second = fitted(exps)
    rows = np.vstack(
        [first.surrogate_row(make_meta_features(0.4), "mlp", c) for c in SPACE.sample(5, seed=1)]
    )
    assert np.array_equal(first.predict_final(rows)[0], second.predict_final(rows)[0])
    assert np.array_equal(first.predict_final(rows)[1], second.predict_final(rows)[1])
    x = first.dataset_vector(make_meta_features(0.4), "mlp")[None, :]
    assert first.predictor_.predict_configs(x) == second.predictor_.predict_configs(x)
    assert second.skipped_rows_ == first.skipped_rows_
    # The final ranks come back with the fit, each with its own evaluation.
    rank = trainer_module._study_final_ranks
    monkeypatch.setattr(trainer_module, "_study_final_ranks", no_fit)
    read_back = second.final_ranks()
    monkeypatch.setattr(trainer_module, "_study_final_ranks", rank)
    ranked = MetaModelTrainer(SPACE).add(exps).final_ranks()
    assert read_back == ranked and list(read_back) == list(ranked)
    own = {id(e) for e in second.experiences}
    assert all(id(exp) in own for _, exp in read_back.values())


def test_final_ranks_that_do_not_fit_the_experiences_are_ranked_anew() -> None:
    exps = make_experiences([0.3, 0.5], n_configs=6, seed=3)
    trainer = MetaModelTrainer(SPACE).add(exps)
    positions, ranks = trainer._rank_table()
    expected = trainer.final_ranks()
    for bad in (
        (positions + len(exps), ranks),  # beyond the experiences
        (positions, ranks + 2.0),  # not a rank
        (positions[:-1], ranks),  # the arrays disagree
        (np.zeros_like(positions), ranks),  # one evaluation for every entry
    ):
        fresh = MetaModelTrainer(SPACE).add(exps)
        fresh._use_rank_table(*bad)
        assert fresh._ranks_memo is None
        assert fresh.final_ranks() == expected


def test_other_experiences_are_another_fit(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(_cache.CACHE_ENV, str(tmp_path))
    fitted(make_experiences([0.3, 0.5], n_configs=12, seed=3))
    fitted(make_experiences([0.3, 0.6], n_configs=12, seed=3))
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_the_same_scores_under_other_configurations_or_curves_are_another_fit() -> None:
    # compare.py's misleading prior keeps every score and relabels the configurations:
    # it must not be answered with the true prior's models (it once was, in-process).
    exps = make_experiences([0.3, 0.5], n_configs=6, seed=3)
    key = MetaModelTrainer(SPACE).add(exps)._fit_key()
    configs = [e.result.config for e in exps]
    relabelled = [
        dataclasses.replace(e, result=dataclasses.replace(e.result, config=configs[-1 - i]))
        for i, e in enumerate(exps)
    ]
    recurved = [
        dataclasses.replace(
            e,
            result=dataclasses.replace(
                e.result, curve=[dataclasses.replace(p, train_loss=9.0) for p in e.result.curve]
            ),
        )
        for e in exps
    ]
    probed = [
        dataclasses.replace(
            e, result=dataclasses.replace(e.result, landscape={"sam_sharpness": 1.0})
        )
        for e in exps
    ]
    keys = {key} | {
        MetaModelTrainer(SPACE).add(x)._fit_key() for x in (relabelled, recurved, probed)
    }
    assert len(keys) == 4
    assert MetaModelTrainer(SPACE).add(list(exps))._fit_key() == key  # the same: the same key


def test_an_unreadable_cache_file_is_fitted_again_and_replaced(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(_cache.CACHE_ENV, str(tmp_path))
    exps = make_experiences([0.3, 0.5], n_configs=12, seed=4)
    fitted(exps)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(b"not a zip file")
    monkeypatch.setattr(trainer_module, "_FIT_CACHE", {})
    again = fitted(exps)
    assert again.surrogate_ is not None
    assert _cache.load(path.stem, SPACE) is not None  # written anew


@pytest.mark.parametrize(
    "meta",
    ['["not", "a", "mapping"]', '{"format": 1, "key": "KEY", "predictor": {"models": 3}}'],
    ids=["list", "bad-predictor"],
)
def test_a_forged_cache_entry_is_ignored(monkeypatch, tmp_path, meta) -> None:
    monkeypatch.setenv(_cache.CACHE_ENV, str(tmp_path))
    key = "0" * 64
    np.savez(tmp_path / f"{key}.npz", meta=np.array(meta.replace("KEY", key)))
    assert _cache.load(key, SPACE) is None


def test_the_cache_can_be_turned_off_or_unwritable(monkeypatch, tmp_path) -> None:
    exps = make_experiences([0.3, 0.5], n_configs=12, seed=5)
    monkeypatch.setenv(_cache.CACHE_ENV, "")
    assert _cache.cache_dir() is None
    fitted(exps)
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder would be")
    monkeypatch.setenv(_cache.CACHE_ENV, str(blocked / "cache"))
    monkeypatch.setattr(trainer_module, "_FIT_CACHE", {})
    assert fitted(exps).surrogate_ is not None  # no error: the cache is only a cache


def test_only_the_most_recent_fits_are_kept(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(_cache.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(_cache, "MAX_ENTRIES", 2)
    for f in (0.3, 0.4, 0.5):
        fitted(make_experiences([0.2, f], n_configs=10, seed=6))
    assert len(list(tmp_path.glob("*.npz"))) == 2


@pytest.fixture
def no_named(monkeypatch):
    """A process that has named no experiences yet."""
    monkeypatch.setattr(trainer_module, "_NAMED", {})
    monkeypatch.setattr(trainer_module, "_NAMED_SOURCES", {})


def test_named_experiences_enter_the_fit_key_by_name_and_position(no_named) -> None:
    exps = make_experiences([0.3, 0.5], n_configs=6, seed=3)

    def key(records) -> str:
        return MetaModelTrainer(SPACE).add(records)._fit_key()

    plain = key(exps)
    trainer_module.name_experiences(exps, "file-a")
    named = key(exps)
    assert key(exps) == named != plain
    # Another subset, order or mix is another key.
    assert len({named, key(exps[:-1]), key(exps[::-1]), key(exps[1:] + exps[:1])}) == 4
    # Copies are not the named objects: digested whole, as before naming.
    assert key([dataclasses.replace(e) for e in exps]) == plain
    # An edited record is digested whole, so the edit changes the key.
    edited = key([*exps[:-1], dataclasses.replace(exps[-1], trial=99)])
    unnamed = [dataclasses.replace(e) for e in exps]
    assert edited not in (named, key(exps[:-1]), plain)
    assert edited == key([*exps[:-1], dataclasses.replace(unnamed[-1], trial=99)])
    # The same objects named by another digest (another file): another key.
    trainer_module.name_experiences(exps, "file-b")
    assert key(exps) != named


def test_only_the_last_named_sources_are_kept(no_named) -> None:
    batches = [make_experiences([0.3], n_configs=3, seed=i) for i in range(6)]
    for i, batch in enumerate(batches):
        trainer_module.name_experiences(batch, f"file-{i}")
    kept = trainer_module._NAMED_SOURCES_KEPT
    assert list(trainer_module._NAMED_SOURCES.values()) == [f"file-{i}" for i in range(6 - kept, 6)]
    assert all(id(e) not in trainer_module._NAMED for e in batches[0])
    assert all(trainer_module._NAMED[id(e)][0] is e for e in batches[-1])
