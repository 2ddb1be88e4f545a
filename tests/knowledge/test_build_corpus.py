"""benchmarks/build_corpus.py: dataset preparation and a tiny build, end to end."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from llp.knowledge import DEFAULT_SPACE, read_corpus, select_experiences
from llp.store import KnowledgeBase

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "build_corpus.py"


@pytest.fixture(scope="module")
def build_corpus() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_corpus", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_corpus"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("ecoli-0-1_vs_5", "ecoli"),
        ("ecoli1", "ecoli"),
        ("abalone9-18", "abalone"),
        ("abalone-17_vs_7-8-9-10", "abalone"),
        ("kr-vs-k-zero_vs_eight", "kr-vs-k"),
        ("new-thyroid2", "new-thyroid"),
        ("page-blocks0", "page-blocks"),
        ("winequality-red-4", "winequality"),
        ("shuttle-c0-vs-c4", "shuttle"),
        ("vehicle3", "vehicle"),
        ("iris0", "sklearn-iris"),
        ("zoo-3", "zoo"),
    ],
)
def test_keel_sets_are_grouped_by_base_dataset(
    build_corpus: ModuleType, name: str, group: str
) -> None:
    assert build_corpus.keel_group(name) == group


def test_the_dataset_list_counts_duplicates_once_and_caps_imbalanced_groups(
    build_corpus: ModuleType,
) -> None:
    specs = build_corpus.dataset_specs(log=lambda message: None)
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    for duplicate in ("keel-iris", "keel-wine", "keel-wdbc"):
        assert duplicate not in names
    imbalanced: dict[str, int] = {}
    for spec in specs:
        if spec.source == "keel-imbalanced":
            imbalanced[spec.group] = imbalanced.get(spec.group, 0) + 1
    assert max(imbalanced.values()) <= build_corpus.MAX_IMBALANCED_PER_GROUP
    assert {s.family for s in specs} == {"mlp", "cnn"}
    assert {s.group for s in specs if s.source == "mnist1d"} == {"mnist1d"}
    digits = {s.name: s.group for s in specs if s.group == "sklearn-digits"}
    assert set(digits) == {"sklearn-digits", "sklearn-digits-images", "keel-optdigits"}


def test_prepare_table_strips_labels_encodes_categories_and_handles_missing(
    build_corpus: ModuleType,
) -> None:
    rows = 40
    df = pd.DataFrame(
        {
            0: [str(float(i)) for i in range(rows - 1)] + ["?"],  # numbers as text, one '?'
            1: (["red", "blue"] * rows)[:rows],
            2: np.arange(rows, dtype=float),
            3: ([" positive", "negative "] * rows)[:rows],
        }
    )
    X, y, info = build_corpus.prepare_table(df)
    assert set(y) == {"positive", "negative"}
    assert X.shape == (rows - 1, 4)  # numeric, two one-hot columns, numeric; '?' row dropped
    assert info == {"categorical_columns": 1, "missing": "dropped 1 rows"}
    many_missing = df.copy()
    many_missing[0] = ["?"] * 10 + [str(i) for i in range(rows - 10)]
    X, _, info = build_corpus.prepare_table(many_missing)
    assert X.shape[0] == rows and np.isfinite(X).all()
    assert info["missing"] == "imputed 10 rows"


def test_subsample_is_stratified_seeded_and_capped(build_corpus: ModuleType) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 3))
    y = np.where(np.arange(5000) < 500, "rare", "common")
    a, ya, info = build_corpus.subsample(X, y, 2000, seed=0)
    b, yb, _ = build_corpus.subsample(X, y, 2000, seed=0)
    assert a.shape == (2000, 3) and np.array_equal(a, b) and np.array_equal(ya, yb)
    assert (ya == "rare").sum() == 200
    assert info["original_rows"] == 5000 and info["subsample"]["seed"] == 0


@pytest.mark.slow
def test_a_quick_build_round_trips_through_the_loader(
    build_corpus: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, out = tmp_path / "corpus.db", tmp_path / "corpus.jsonl.gz"
    argv = ["--design", "v1", "--quick", "--workers", "1", "--db", str(db), "--out", str(out)]
    assert build_corpus.main(argv) == 0
    corpus = read_corpus(out, cache=False)
    assert corpus.model_families == ("cnn", "mlp")
    assert {d.name for d in corpus.datasets} == set(build_corpus.QUICK_DATASETS)
    assert len(corpus.experiences) == 2 * 3 * 2  # datasets x configs x fractions
    configs = DEFAULT_SPACE.sample(3, seed=build_corpus.DESIGN_SEED)
    assert all(dict(e.result.config) == configs[e.trial] for e in corpus.experiences)
    assert len(select_experiences(corpus, exclude_groups=["mnist1d"])) == 6
    assert corpus.header["build"]["wall_seconds"] > 0
    with KnowledgeBase.open(db) as kb:
        assert kb.counts()["evaluations"] == 12
        stored = sorted((e.study, e.trial_number, e.fidelity.fraction) for e in kb.evaluations())
    assert stored == sorted(
        (e.study, e.trial, e.result.fidelity.fraction) for e in corpus.experiences
    )
    # Resumable: a second run finds both studies complete and trains nothing.
    capsys.readouterr()
    assert build_corpus.main(argv) == 0
    assert "2 already complete" in capsys.readouterr().out
    with KnowledgeBase.open(db) as kb:
        assert kb.counts()["evaluations"] == 12


def test_a_knowledge_base_of_another_design_is_refused(
    build_corpus: ModuleType, tmp_path: Path
) -> None:
    db = tmp_path / "corpus.db"
    with KnowledgeBase.open(db) as kb:
        kb.get_or_create_study(
            "corpus/mlp/sklearn-iris",
            scheduler="FixedDesign",
            settings={"design": {"n_configs": 99}},
            space=None,
            seed=0,
            objective="val_accuracy",
        )
    argv = ["--datasets", "sklearn-iris", "--workers", "1", "--db", str(db), "--no-distill"]
    with pytest.raises(SystemExit, match="with another design"):
        build_corpus.main(argv)


@pytest.mark.slow
def test_a_quick_v2_build_halves_on_the_mean_of_two_seeds_and_resumes_from_its_file(
    build_corpus: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llp.meta import MetaModelTrainer

    db, out = tmp_path / "corpus.db", tmp_path / "corpus.jsonl.gz"
    argv = ["--design", "v2", "--quick", "--workers", "1", "--db", str(db), "--out", str(out)]
    assert build_corpus.main(argv) == 0
    corpus = read_corpus(out, cache=False)
    assert corpus.model_families == ("cnn", "mlp", "resmlp")
    design = corpus.header["design"]
    assert design["version"] == 2 and design["replicates"] == 2
    assert design["measure_flatness"] == "top fraction only"
    by_study: dict[str, list] = {}
    for e in corpus.experiences:
        by_study.setdefault(e.study, []).append(e)
    assert set(by_study) == {
        "corpus/cnn/mnist1d-n500-seed2",
        "corpus/mlp/sklearn-iris",
        "corpus/resmlp/sklearn-iris",
    }
    configs = DEFAULT_SPACE.sample(4, seed=build_corpus.DESIGN_SEED)
    for exps in by_study.values():
        assert len(exps) == 2 * (4 + 2)  # two seeds x (4 configurations, then the best 2)
        assert all(e.halving for e in exps)
        assert all(dict(e.result.config) == configs[e.trial % 4] for e in exps)
        seeds = {(e.trial, e.result.seed) for e in exps}
        assert all(seed != other for t, seed in seeds for u, other in seeds if u == t + 4)
        half = {e.trial: e.result for e in exps if e.result.fidelity.fraction == 0.5}

        def mean(i: int, scores: dict = half) -> float:
            pair = [scores[i].score, scores[i + 4].score]
            return -np.inf if None in pair else float(np.mean(pair))

        promoted = sorted({e.trial % 4 for e in exps if e.result.fidelity.fraction == 1.0})
        expected = sorted(sorted(range(4), key=lambda i: (-mean(i), i))[:2])
        assert promoted == expected
        # Landscape probes on the top fraction only.
        assert all(
            bool(e.result.landscape) == (e.result.fidelity.fraction == 1.0)
            for e in exps
            if e.result.status.value == "complete"
        )
    # Every trial is ranked, those that stopped on half of the data below the others.
    ranks = MetaModelTrainer(DEFAULT_SPACE).add(corpus.experiences).final_ranks()
    assert len(ranks) == 3 * 8
    # A lost knowledge base (it is not committed) is rebuilt from the distilled file.
    db.unlink()
    capsys.readouterr()
    assert build_corpus.main(argv) == 0
    printed = capsys.readouterr().out
    assert "restored 3 studies" in printed and "3 already complete" in printed
    header = read_corpus(out, cache=False).header
    assert header["build"]["invocations"] == 2
    assert header["build"]["wall_seconds"] >= corpus.header["build"]["wall_seconds"]


def test_make_resmlp_trains_on_batches_of_one_and_checks_its_config() -> None:
    import torch

    from llp.knowledge import make_resmlp

    config = DEFAULT_SPACE.sample(1, seed=0)[0]
    model = make_resmlp(config, n_features=4, n_classes=3)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(torch.zeros(1, 4)), torch.tensor([1]))
    loss.backward()  # per-example normalisation: a batch of one trains
    with pytest.raises(ValueError, match="'width', an int >= 1"):
        make_resmlp({**config, "width": 0}, n_features=4, n_classes=3)
    with pytest.raises(ValueError, match="'n_classes' parameter of make_resmlp"):
        make_resmlp(config, n_features=4, n_classes=0)


@pytest.mark.slow
def test_an_interrupted_build_keeps_and_distills_its_finished_studies(
    build_corpus: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real = build_corpus.run_study
    calls: list[str] = []

    def run_then_stop(spec: Any, design: Any, verbose: bool = False) -> Any:
        calls.append(spec.name)
        if len(calls) > 1:
            raise KeyboardInterrupt  # Ctrl-C, or SIGTERM at the end of a session
        return real(spec, design, verbose)

    monkeypatch.setattr(build_corpus, "run_study", run_then_stop)
    db, out = tmp_path / "corpus.db", tmp_path / "corpus.jsonl.gz"
    argv = ["--design", "v2", "--quick", "--workers", "1", "--db", str(db), "--out", str(out)]
    assert build_corpus.main(argv) == 130
    assert "interrupted" in capsys.readouterr().out
    header = read_corpus(out, cache=False).header
    assert header["counts"]["studies"] == 1 and header["build"]["invocations"] == 1
    # The next run resumes with the other two.
    monkeypatch.setattr(build_corpus, "run_study", real)
    assert build_corpus.main(argv) == 0
    header = read_corpus(out, cache=False).header
    assert header["counts"]["studies"] == 3 and header["build"]["invocations"] == 2
