"""``llp predict``: zero-shot recommendations from what the knowledge base learned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llp.cli._predict import expected_score, nearest_datasets
from llp.features import DATASET_FEATURES
from llp.knowledge import DEFAULT_SPACE
from llp.store import KnowledgeBase
from tests.cli.conftest import invoke, invoke_json


@pytest.fixture(scope="module")
def three_datasets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A knowledge base holding one small study each of iris, wine and breast_cancer."""
    storage = tmp_path_factory.mktemp("predict") / "knowledge.db"
    for data in ("iris", "wine", "breast_cancer"):
        invoke_json(
            ["tune", data, "--storage", storage, "--budget", "12", "--epochs", "3",
             "--no-flatness", "--prior", "none", "--no-report"]
        )  # fmt: skip
    return storage


def test_predict_recommends_configurations_with_an_expected_score_and_neighbours(
    three_datasets: Path,
) -> None:
    out = invoke_json(
        ["predict", "digits", "--storage", three_datasets, "--prior", "store", "-n", "2"]
    )
    assert out["n_datasets"] == 3 and out["sources"] == [f"knowledge base {three_datasets}"]
    assert len(out["recommendations"]) == 2
    first = out["recommendations"][0]
    assert DEFAULT_SPACE.validate(first["config"]) == first["config"]
    assert first["source"] in ("portfolio", "predictor", "predictor variation", "space sample")
    # The zero-shot pick (what MetaProbing starts from) comes first.
    from llp.meta import MetaModelTrainer
    from llp.store import KnowledgeBase

    with KnowledgeBase.open(three_datasets) as kb:
        trainer = MetaModelTrainer(DEFAULT_SPACE).add_from_store(kb)
    # The three studies share their starting configurations: the best of those by mean
    # rank (measured in all three, enough support) is the pick.
    ((pick, _, source),) = trainer.prior_candidates({}, "mlp", 1)
    assert source == "portfolio" and first["config"] == pick and first["source"] == "portfolio"
    assert 0.0 <= first["expected_score"] <= 1.0 and first["expected_score_std"] >= 0.0
    names = [d["name"] for d in out["similar_datasets"]]
    assert sorted(names) == ["breast_cancer", "iris", "wine"]
    assert all(d["best_score"] is not None for d in out["similar_datasets"])


def test_predict_prints_a_readable_recommendation(three_datasets: Path) -> None:
    result = invoke(["predict", "digits", "--storage", three_datasets, "--prior", "store"])
    assert result.exit_code == 0, result.output
    for text in ("recommended", "expected validation accuracy", "most similar past datasets"):
        assert text in result.stdout
    import re

    rows = [line for line in result.stdout.splitlines() if "│" in line]
    assert rows and all(re.fullmatch(r"\d\.\d{4}|-", r.split("│")[-1].strip()) for r in rows)


def test_predict_leaves_the_dataset_itself_out_of_its_knowledge(three_datasets: Path) -> None:
    out = invoke_json(["predict", "iris", "--storage", three_datasets, "--prior", "store"])
    assert sorted(d["name"] for d in out["similar_datasets"]) == ["breast_cancer", "wine"]
    assert out["n_datasets"] == 2


def test_predict_says_clearly_when_there_is_no_knowledge(tmp_path: Path) -> None:
    storage = tmp_path / "empty.db"
    KnowledgeBase.open(storage).close()
    result = invoke(["predict", "iris", "--storage", storage, "--prior", "store"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "There is no knowledge to recommend from" in result.stderr
    assert "Run 'llp tune' on a few datasets first" in result.stderr


def test_predict_needs_studies_of_two_datasets(tmp_path: Path) -> None:
    storage = tmp_path / "one.db"
    invoke_json(
        ["tune", "iris", "--storage", storage, "--budget", "8", "--epochs", "2",
         "--no-flatness", "--prior", "none", "--no-report"]
    )  # fmt: skip
    result = invoke(["predict", "wine", "--storage", storage, "--prior", "store"])
    assert result.exit_code == 1
    assert "needs studies of at least 2 datasets" in result.stderr


def test_predict_with_a_knowledge_base_that_does_not_exist(tmp_path: Path) -> None:
    result = invoke(["predict", "iris", "--storage", tmp_path / "absent.db", "--prior", "store"])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_nearest_datasets_are_ranked_by_standardised_meta_feature_distance() -> None:
    def features(**values: float) -> dict[str, float]:
        return {name: values.get(name, 0.0) for name in DATASET_FEATURES}

    pool = {
        "near": features(num_samples=100.0, num_classes=3.0),
        "far": features(num_samples=10000.0, num_classes=50.0),
    }
    ranked = nearest_datasets(features(num_samples=120.0, num_classes=3.0), pool, k=2)
    assert [name for name, _ in ranked] == ["near", "far"]
    assert ranked[0][1] < ranked[1][1]


def test_expected_score_reads_the_score_at_the_predicted_rank() -> None:
    scores = list(np.linspace(0.5, 0.9, 5))  # 0.5 0.6 0.7 0.8 0.9
    mean, std = expected_score(1.0, 0.0, [(scores, 1.0)]) or (0.0, 0.0)
    assert mean == pytest.approx(0.9) and std == pytest.approx(0.0)
    mean, std = expected_score(0.5, 0.25, [(scores, 1.0), ([0.9] * 5, 1.0)]) or (0.0, 0.0)
    assert mean == pytest.approx((0.7 + 0.9) / 2)
    assert std > 0.1  # the datasets disagree, and the rank is uncertain
    assert expected_score(0.5, 0.1, [([], 1.0)]) is None


def test_predict_pauses_the_cycle_collector_and_gives_back_its_state(monkeypatch) -> None:
    # llp predict reads ~200,000 long-lived records the collector would scan for nothing;
    # it turns the collector off while it runs and leaves the caller's setting as it was.
    import gc

    from llp.cli import _app, _predict
    from llp.cli._errors import CliError

    seen: list[bool] = []

    def recommend(*args, **kwargs):
        seen.append(gc.isenabled())
        raise CliError("stop here")

    monkeypatch.setattr(_predict, "recommend", recommend)
    assert gc.isenabled()
    result = invoke(["predict", "iris", "--prior", "shipped"])
    assert seen == [False] and result.exit_code == 2 and "stop here" in result.output
    assert gc.isenabled()  # restored, also when the command failed
    gc.disable()
    try:
        with _app._no_cycle_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()  # a collector the caller had off stays off
    finally:
        gc.enable()
    # What the command built goes to the oldest generation unscanned (in the youngest,
    # the first allocation after would scan it all), and nothing stays frozen.
    with _app._no_cycle_collection():
        built = [[n] for n in range(1000)]
    assert any(o is built for o in gc.get_objects(generation=2))
    assert gc.get_freeze_count() == 0


def test_predict_answers_past_a_stored_row_float32_cannot_hold_and_says_so(
    three_datasets: Path, tmp_path: Path
) -> None:
    import shutil
    from dataclasses import replace

    from llp.search import Job
    from llp.training import EpochRecord
    from tests.conftest import fake_result

    storage = tmp_path / "poisoned.db"
    shutil.copy(three_datasets, storage)
    with KnowledgeBase.open(storage) as kb:
        study = kb.list_studies()[0]
        stored = kb.evaluations(study=study.name)[-1]
        job = Job(0, 999, dict(stored.config), stored.fidelity, 0, 0, "a diverged run")
        result = fake_result(job, 0.5)
        curve = (EpochRecord(1, 1e39, 1e39, 0.5, 0.1),)  # finite, beyond float32
        kb.record_evaluation(
            study.id, trial_number=999, config=job.config, result=replace(result, curve=curve)
        )
    result = invoke(["predict", "digits", "--storage", storage, "--prior", "store"])
    assert result.exit_code == 0, result.output
    assert "the meta-model left out 1 stored rows with values beyond float32's range" in (
        result.stderr
    )


def test_predict_fits_the_prior_in_as_many_threads_as_there_are_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing else runs while the command fits, so its forests take every core.
    import llp.knowledge
    from llp.cli._predict import gather_prior
    from llp.executors._process import available_cores

    real = llp.knowledge.build_prior
    threads: list[int | None] = []

    def recorded(*args: object, **kwargs: object) -> object:
        threads.append(kwargs.get("n_jobs"))  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(llp.knowledge, "build_prior", recorded)
    gather_prior(
        DEFAULT_SPACE, prior="shipped", storage=None, fingerprint="0" * 64, seed=0,
        note=lambda _line: None,
    )  # fmt: skip
    assert threads == [available_cores()]
