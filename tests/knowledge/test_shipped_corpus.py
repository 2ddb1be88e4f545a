"""The corpus that ships with llp: complete, consistent and usable by the meta-model."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from llp.features import DATASET_FEATURES
from llp.knowledge import (
    DEFAULT_SPACE,
    SHIPPED_CORPUS_PATH,
    load_shipped_experiences,
    read_corpus,
    shipped_datasets,
)
from llp.meta import Experience, MetaModelTrainer
from llp.training import EvaluationStatus


@pytest.fixture(scope="module")
def corpus():
    return read_corpus(SHIPPED_CORPUS_PATH)


def test_the_corpus_ships_as_a_gzip_file_under_ten_megabytes() -> None:
    assert SHIPPED_CORPUS_PATH.name == "corpus.jsonl.gz"
    assert SHIPPED_CORPUS_PATH.stat().st_size < 10_000_000


def test_it_covers_both_families_and_many_groups(corpus) -> None:
    assert {"mlp", "cnn"} <= set(corpus.model_families)
    assert len(corpus.groups) >= 30
    assert len(corpus.datasets) >= 60
    assert "mnist1d" in corpus.groups and "sklearn-digits" in corpus.groups


def test_the_header_says_how_it_was_built(corpus) -> None:
    header = corpus.header
    assert header["space"] == DEFAULT_SPACE.to_dict()
    assert header["command"].startswith("python benchmarks/build_corpus.py")
    assert header["build"]["wall_seconds"] > 0
    design = header["design"]
    assert design["n_configs"] >= 8 and design["epochs"] >= 2
    assert design["fractions"] == sorted(design["fractions"]) and design["fractions"][-1] == 1.0


def test_every_dataset_has_complete_finite_meta_features(corpus) -> None:
    max_rows = corpus.header["design"]["max_rows"]
    families = defaultdict(set)
    for exp in corpus.experiences:
        families[exp.dataset].add(exp.model_family)
    for dataset in corpus.datasets:
        assert set(DATASET_FEATURES) <= set(dataset.meta_features), dataset.name
        assert all(math.isfinite(v) for v in dataset.meta_features.values()), dataset.name
        assert dataset.n_samples <= min(max_rows[f] for f in families[dataset.fingerprint])


def test_every_study_is_one_successive_halving_bracket_over_the_fixed_design(corpus) -> None:
    # Corpus v2: n configurations x 2 seeds (trials i and i + n) on the lowest fraction,
    # then at each fraction the better 1/eta by the mean of the seeds, as the header says.
    design = corpus.header["design"]
    n, eta, fractions = design["n_configs"], design["reduction_factor"], design["fractions"]
    assert design["replicates"] == 2
    configs = DEFAULT_SPACE.sample(n, seed=design["seed"])
    studies: dict[str, dict[float, dict[int, float | None]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for exp in corpus.experiences:
        assert exp.halving
        assert 0 <= exp.trial < 2 * n
        assert dict(exp.result.config) == configs[exp.trial % n], (exp.study, exp.trial)
        assert exp.result.fidelity.epochs == design["epochs"]
        studies[exp.study][exp.result.fidelity.fraction][exp.trial] = exp.result.score
    assert len(studies) == corpus.header["counts"]["studies"]
    for study, rungs in studies.items():
        assert sorted(rungs) == fractions, study
        for k, fraction in enumerate(fractions):
            trials = rungs[fraction]
            kept = {t % n for t in trials}
            assert len(kept) == n // eta**k, (study, fraction)
            assert set(trials) == kept | {c + n for c in kept}  # both seeds of each
            if k == 0:
                continue

            def mean(c: int, scores: dict[int, float | None] = rungs[fractions[k - 1]]) -> float:
                pair = (scores[c], scores[c + n])
                return -math.inf if None in pair else (pair[0] + pair[1]) / 2  # type: ignore[operator]

            before = {t % n for t in rungs[fractions[k - 1]]}
            assert kept <= before, (study, fraction)
            # (Scores are stored to 5 significant digits: ties may break either way.)
            assert (
                min(mean(c) for c in kept)
                >= max((mean(c) for c in before - kept), default=-math.inf) - 1e-5
            ), (study, fraction)


def test_configs_are_identical_across_the_datasets_of_each_group_and_family(corpus) -> None:
    seen: dict[tuple[str | None, str | None], dict[str, dict[int, dict]]] = defaultdict(dict)
    for exp in corpus.experiences:
        by_trial = seen[(exp.group, exp.model_family)].setdefault(exp.dataset, {})
        by_trial[exp.trial] = dict(exp.result.config)
    for key, datasets in seen.items():
        designs = list(datasets.values())
        assert all(d == designs[0] for d in designs), key


def test_scores_are_accuracies_and_failures_keep_their_reason(corpus) -> None:
    statuses = {EvaluationStatus.COMPLETE: 0, EvaluationStatus.FAILED: 0}
    for exp in corpus.experiences:
        result = exp.result
        statuses[result.status] += 1
        if result.ok:
            assert 0.0 <= result.score <= 1.0
            assert result.curve[-1].val_accuracy == pytest.approx(result.score)
        else:
            assert result.score is None and result.failure_reason
    assert statuses[EvaluationStatus.COMPLETE] > statuses[EvaluationStatus.FAILED]


def test_load_shipped_experiences_returns_experience_records(corpus) -> None:
    experiences = load_shipped_experiences()
    assert len(experiences) == len(corpus.experiences)
    assert all(isinstance(e, Experience) for e in experiences[:100])
    # The landscape features were measured on the completed runs on all of the data.
    complete = [e for e in experiences if e.result.ok and e.result.fidelity.fraction == 1.0]
    assert sum("landscape_hessian_top_eig" in e.result.landscape for e in complete) > 0.9 * len(
        complete
    )


def test_exclude_groups_removes_the_whole_group() -> None:
    everything = load_shipped_experiences()
    without = load_shipped_experiences(exclude_groups=["mnist1d", "abalone"])
    assert {"mnist1d", "abalone"} & {e.group for e in everything} == {"mnist1d", "abalone"}
    assert not {"mnist1d", "abalone"} & {e.group for e in without}
    assert len(without) == sum(e.group not in {"mnist1d", "abalone"} for e in everything)


def test_exclude_datasets_accepts_names_and_fingerprints() -> None:
    datasets = shipped_datasets()
    iris = next(d for d in datasets if d["name"] == "sklearn-iris")
    by_name = load_shipped_experiences(exclude_datasets=["sklearn-iris"])
    by_fingerprint = load_shipped_experiences(exclude_datasets=[iris["fingerprint"]])
    assert iris["fingerprint"] not in {e.dataset for e in by_name}
    assert len(by_name) == len(by_fingerprint) < len(load_shipped_experiences())


def test_shipped_datasets_are_plain_copies() -> None:
    datasets = shipped_datasets()
    assert set(datasets[0]) == {
        "fingerprint",
        "name",
        "group",
        "n_samples",
        "source",
        "meta_features",
    }
    datasets[0]["meta_features"]["num_samples"] = -1.0
    assert shipped_datasets()[0]["meta_features"]["num_samples"] != -1.0


@pytest.mark.slow
def test_the_meta_model_fits_on_the_shipped_knowledge() -> None:
    trainer = MetaModelTrainer(DEFAULT_SPACE).add(load_shipped_experiences()).fit()
    assert trainer.predictor_ is not None and trainer.surrogate_ is not None
    features = shipped_datasets()[0]["meta_features"]
    suggestions = trainer.suggest(features, "mlp", 3, seed=0)
    assert len(suggestions) == 3
    assert all(DEFAULT_SPACE.validate(s.config) == s.config for s in suggestions)
