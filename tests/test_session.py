"""One study lifecycle behind both facades: storage opened once, meta-features cached by
fingerprint, one prior assembled the same way everywhere."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_wine

from llp.features import DatasetFeatureExtractor
from llp.knowledge import build_prior, prior_flags
from llp.store import KnowledgeBase
from llp.two_tier_probing import TwoTierProbing
from tests.test_meta_probing import SPACE, make_data, make_meta, make_model_fn, optimizer_fn


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def probe(data, storage, name: str, *, loaders: bool = False) -> TwoTierProbing:
    """A two-tier study on ``data``; with ``loaders``, behind a plain ``dataset_fn`` (llp
    sees loaders, not a FidelityData)."""
    from torch import nn

    return TwoTierProbing(
        SPACE.sample(2, seed=0), make_model_fn(data.input_shape[0], data.n_classes),
        (lambda fraction: data(fraction)) if loaders else data,
        nn.CrossEntropyLoss(), optimizer_fn, max_epochs=1, show_progress=False,
        storage=storage, study_name=name,
    )  # fmt: skip


def test_meta_features_stored_for_a_fingerprint_are_not_computed_again(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_data(load_wine)
    db = tmp_path / "kb.db"
    extractions = count_calls(monkeypatch, DatasetFeatureExtractor, "extract_from")
    first = probe(data, db, "first")
    first.run_successive_halving(0.5, 1.0, 2)
    assert len(extractions) == 1
    second = probe(data, db, "second")
    second.run_successive_halving(0.5, 1.0, 2)
    assert len(extractions) == 1  # read from the knowledge base by fingerprint
    with KnowledgeBase.open(db) as kb:
        stored = kb.get_dataset(data.fingerprint)
    assert stored is not None
    assert dict(second._session.describe().meta_features) == dict(stored.meta_features)
    # Without a knowledge base they are computed (plain successive halving without one
    # needs none; the meta-guided search does).
    probe(data, None, "x").run_successive_halving(0.5, 1.0, 2)
    assert len(extractions) == 1
    make_meta(data).run_meta_optimization(0.5, 1.0, 2, num_initial_configs=2, budget=2)
    assert len(extractions) == 2


def test_stored_meta_features_missing_a_feature_are_computed_again(tmp_path, monkeypatch) -> None:
    data = make_data(load_wine)
    db = tmp_path / "kb.db"
    with KnowledgeBase.open(db) as kb:
        kb.upsert_dataset(data.fingerprint, meta_features={"num_samples": 1.0})
    extractions = count_calls(monkeypatch, DatasetFeatureExtractor, "extract_from")
    probe(data, db, "s").run_successive_halving(0.5, 1.0, 2)
    assert len(extractions) == 1


def test_stored_meta_features_beyond_what_the_store_takes_are_computed_again(
    tmp_path, monkeypatch
) -> None:
    """An older llp stored the largest float for overflowing data; the knowledge base now
    takes magnitudes up to MAX_MAGNITUDE only (what its exports import), so such features
    are computed again, not written back."""
    import json
    import sqlite3

    from llp._checks import MAX_MAGNITUDE
    from llp.features import DATASET_FEATURES

    data = make_data(load_wine)
    db = tmp_path / "kb.db"
    with KnowledgeBase.open(db) as kb:
        kb.upsert_dataset(data.fingerprint, meta_features={n: 1.0 for n in DATASET_FEATURES})
    with sqlite3.connect(db) as raw:
        raw.execute(
            "UPDATE datasets SET meta_features = ?",
            (json.dumps({n: 1.7976931348623157e308 for n in DATASET_FEATURES}),),
        )
    extractions = count_calls(monkeypatch, DatasetFeatureExtractor, "extract_from")
    probe(data, db, "s").run_successive_halving(0.5, 1.0, 2)
    assert len(extractions) == 1
    with KnowledgeBase.open(db) as kb:
        stored = kb.get_dataset(data.fingerprint)
    assert stored is not None
    assert all(abs(v) <= MAX_MAGNITUDE for v in stored.meta_features.values())


def test_a_study_an_older_llp_keyed_by_its_sorted_rows_still_resumes(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llp.data import RowFingerprint
    from llp.features._describe import _sorted_rows_fingerprint

    data = make_data(load_wine)
    db = tmp_path / "kb.db"
    older = _sorted_rows_fingerprint(data(1.0)[0])
    with monkeypatch.context() as patch:  # an llp before RowFingerprint keyed it so
        patch.setattr(RowFingerprint, "hexdigest", lambda self: older)
        first = probe(data, db, "loaders", loaders=True)
        first.run_successive_halving(0.5, 1.0, 2)
    trainings = count_calls(monkeypatch, first._session.trainer.__class__, "fit")
    again = probe(data, db, "loaders", loaders=True)
    again.run_successive_halving(0.5, 1.0, 2)  # resumes: no "other dataset_id" error
    assert again._session.describe().fingerprint == older
    assert trainings == []  # every evaluation came from the store
    with KnowledgeBase.open(db) as kb:
        assert [d.fingerprint for d in kb.list_datasets()] == [older]


def test_the_older_key_is_computed_only_when_a_stored_dataset_has_as_many_examples(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llp.features._describe as describe

    data = make_data(load_wine)
    db = tmp_path / "kb.db"
    older = count_calls(monkeypatch, describe, "_sorted_rows_fingerprint")
    probe(data, db, "a", loaders=True).run_successive_halving(0.5, 1.0, 2)
    probe(data, db, "b", loaders=True).run_successive_halving(0.5, 1.0, 2)
    assert older == []  # the first found no dataset of its size, the second its own key
    with KnowledgeBase.open(db) as kb:
        (stored,) = kb.list_datasets()
        kb.upsert_dataset("0" * 64, n_samples=stored.n_samples)  # same size, another key
    with KnowledgeBase.open(db) as kb:  # a new key: now the older one is tried
        kb.upsert_dataset(stored.fingerprint, n_samples=stored.n_samples)
    third = probe(make_data(load_wine, seed=1), db, "c", loaders=True)
    third.run_successive_halving(0.5, 1.0, 2)
    assert len(older) == 1 and third._session.describe().fingerprint != "0" * 64


def test_a_meta_probing_run_opens_its_knowledge_base_once(tmp_path, monkeypatch) -> None:
    opens = count_calls(monkeypatch, KnowledgeBase, "open")
    mp = make_meta(make_data(load_wine), storage=tmp_path / "kb.db", prior="default")
    mp.run_meta_optimization(0.5, 1.0, 2, num_initial_configs=2, num_iterations=2, budget=3)
    assert len(opens) == 1


def test_study_settings_are_stored_and_may_not_shadow_llp_settings(tmp_path) -> None:
    db = tmp_path / "kb.db"
    mp = make_meta(make_data(load_wine), storage=db, study_settings={"cli": {"data": "x"}})
    mp.run_meta_optimization(0.5, 1.0, 2, num_initial_configs=2, num_iterations=2, budget=3)
    with KnowledgeBase.open(db) as kb:
        (study,) = kb.list_studies()
    assert study.settings["cli"] == {"data": "x"} and study.settings["budget"] == 3
    clash = make_meta(make_data(load_wine), storage=db, study_settings={"budget": 1})
    with pytest.raises(ValueError, match=r"'study_settings' parameter .* Got \['budget'\]"):
        clash.run_meta_optimization(0.5, 1.0, 2, num_initial_configs=2, num_iterations=2)
    with pytest.raises(TypeError, match="'study_settings' parameter of MetaProbing must be"):
        make_meta(make_data(load_wine), study_settings=["cli"])


def test_one_prior_reads_landscape_features_only_when_the_study_measures_them() -> None:
    assert prior_flags({})["use_landscape_features"] is False
    assert prior_flags({"measure_flatness": True})["use_landscape_features"] is True
    assert prior_flags({"measure_flatness": True, "use_landscape_features": False}) == {
        "use_dataset_features": True,
        "use_training_features": True,
        "use_landscape_features": False,
    }
    built = build_prior(SPACE, prior="shipped", exclude_groups=("sklearn-wine",))
    assert built.sources == ("shipped knowledge",) and built.trainer.experiences
    assert build_prior(SPACE, prior="none").trainer.experiences == []
    with pytest.raises(ValueError, match="'prior' parameter must be one of"):
        build_prior(SPACE, prior="everything")


def test_the_progress_display_prints_names_from_the_store_as_plain_text(capsys) -> None:
    from llp.runner._display import ProgressDisplay

    with ProgressDisplay("search", 3, enabled=True) as display:
        display.log("earlier studies that predict this one: [/]x\x1b[2J 0.50, this study 0.50")
    err = capsys.readouterr().err
    assert "[/]x\\x1b[2J 0.50" in err and "\x1b[2J" not in err


def test_meta_probing_prints_names_and_values_from_the_user_as_plain_text(tmp_path, capsys) -> None:
    from sklearn.datasets import load_iris
    from torch import nn

    from llp.meta_probing import MetaProbing
    from llp.space import Categorical, Float, SearchSpace

    hostile = "[/]relu\x1b[2J"  # rich markup and a terminal escape, as a choice's value
    space = SearchSpace([Float("lr", 1e-3, 1e-1, log=True), Categorical("act", (hostile,))])

    def run(loader, prior: str) -> None:
        data = make_data(loader)

        def model_fn(config):
            return nn.Sequential(nn.Linear(data.input_shape[0], data.n_classes))

        def optimizer(model, config):
            import torch

            return torch.optim.SGD(model.parameters(), lr=config["lr"])

        mp = MetaProbing(
            space.sample(3, seed=0), model_fn, data, nn.CrossEntropyLoss(), optimizer,
            space=space, max_epochs=1, show_progress=True, storage=tmp_path / "kb.db",
            prior=prior,
        )  # fmt: skip
        mp.run_meta_optimization(0.5, 1.0, 2, num_initial_configs=3, budget=3)

    run(load_iris, "none")
    capsys.readouterr()
    run(load_wine, "store")  # the prior's pick, with the hostile value, is printed
    err = capsys.readouterr().err
    assert "meta-model predicts for this dataset" in err
    assert "act=[/]relu\\x1b[2J" in err and "\x1b[2J" not in err


def test_a_stored_study_keeps_the_weights_of_its_top_rung_for_its_report(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torch import nn

    from llp.training._weights import KEPT_PER_STUDY, KeptWeights

    monkeypatch.setenv("LLP_CACHE_DIR", str(tmp_path / "cache"))
    data = make_data(load_wine)
    study = TwoTierProbing(
        SPACE.sample(6, seed=0), make_model_fn(data.input_shape[0], data.n_classes), data,
        nn.CrossEntropyLoss(), optimizer_fn, max_epochs=1,
        show_progress=False, storage=tmp_path / "kb.db", study_name="kept",
    )  # fmt: skip
    result = study.run_successive_halving(0.25, 1.0, 2)
    with KnowledgeBase.open(tmp_path / "kb.db") as kb:
        record = kb.get_study("kept")
    assert record is not None
    weights = KeptWeights.for_study(
        "kept", record.seed, record.created_at, data.fingerprint, min_fraction=1.0
    )
    assert weights is not None
    files = sorted(weights.folder.glob(f"{weights.key}-t*.npz"))
    on_top = [e for e in result.evaluations if e.fidelity.fraction == 1.0 and e.score is not None]
    # Only top-rung models, pruned to the answer and the best others.
    assert 1 <= len(files) == min(len(on_top), KEPT_PER_STUDY)
    assert all("-f1-e1.npz" in f.name for f in files)
    assert f"{weights.key}-t{result.best_evaluation.trial_id}-" in " ".join(f.name for f in files)
    # Without a knowledge base no report can name the study: nothing is kept.
    probe(data, None, "x").run_successive_halving(0.5, 1.0, 2)
    assert len(list(weights.folder.glob("*.npz"))) == len(files)
