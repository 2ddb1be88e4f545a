"""The report's feature importances, kept from one report of a study to the next: the
same numbers without refitting, never stale, and nothing trusted that was damaged."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import llp.knowledge
from llp.report import _meta, build_report, load_study
from llp.report._meta import Importances, importances_key, study_importances
from llp.store import KnowledgeBase, NewEvaluation
from tests.report.conftest import stored_result


@pytest.fixture
def cache() -> Iterator[Path]:
    """The session's cache folder (its fitted meta-models kept), with no importances."""
    folder = Path(os.environ["LLP_CACHE_DIR"])
    shutil.rmtree(folder / "importances", ignore_errors=True)
    yield folder
    shutil.rmtree(folder / "importances", ignore_errors=True)


THREADS: list[int] = []


@pytest.fixture
def refits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the refits, each one a real one; the threads each was given are kept in
    :data:`THREADS`."""
    calls: list[str] = []
    THREADS.clear()
    real = _meta.refit_importances

    def counted(kb: KnowledgeBase, data: Any, n_jobs: int = 1) -> Importances:
        calls.append(data.study.name)
        THREADS.append(n_jobs)
        return real(kb, data, n_jobs)

    monkeypatch.setattr(_meta, "refit_importances", counted)
    return calls


#: What the stand-in refit below returns.
FITTED = Importances(
    True, basis="b", names=["config: lr"], groups=["configuration"], values=[1.0],
    n_evaluations=3, n_datasets=1, sources=["this study"],
)  # fmt: skip


@pytest.fixture
def fake_refits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the refits, each one standing in for a real one with :data:`FITTED`."""
    calls: list[str] = []

    def fake(kb: KnowledgeBase, data: Any, n_jobs: int = 1) -> Importances:
        calls.append(data.study.name)
        return FITTED

    monkeypatch.setattr(_meta, "refit_importances", fake)
    return calls


def _importances(stored_study: dict[str, Any], out: Path, workers: int = 1) -> dict[str, Any]:
    report = build_report(
        stored_study["storage_path"], stored_study["study"], out, landscape=False, n_workers=workers
    )
    return json.loads(report.data.read_text())["importances"]


def test_a_second_report_reads_the_importances_the_first_refitted(
    stored_study: dict[str, Any], tmp_path: Path, cache: Path, refits: list[str]
) -> None:
    lines: list[str] = []
    first = _importances(stored_study, tmp_path / "r1")
    assert first["fitted"] is True and len(refits) == 1
    with KnowledgeBase.open(stored_study["storage_path"]) as kb:
        again = study_importances(kb, load_study(kb, stored_study["study"]), lines.append)
    assert again.to_json() == first and len(refits) == 1
    assert lines == ["report: feature importances kept from an earlier report of this study"]
    assert len(list((cache / "importances").glob("*.json"))) == 1


def test_the_refit_builds_its_forests_in_the_report_workers_threads_to_the_same_numbers(
    stored_study: dict[str, Any], tmp_path: Path, cache: Path, refits: list[str]
) -> None:
    one = _importances(stored_study, tmp_path / "r1", workers=1)
    shutil.rmtree(cache / "importances")
    two = _importances(stored_study, tmp_path / "r2", workers=2)
    assert THREADS == [1, 2] and two == one


def test_a_meta_probing_study_shows_the_surrogate_its_search_ranked_with(
    stored_study: dict[str, Any], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The search fitted its prior's surrogate and never refitted it: the report shows
    # that one, read back from the cache of fitted meta-models, not a refit of its own.
    from llp.meta import MetaModelTrainer

    fits: list[int] = []
    real = MetaModelTrainer._fit_uncached

    def counted(self: MetaModelTrainer) -> None:
        fits.append(len(self.experiences))
        real(self)

    monkeypatch.setattr(MetaModelTrainer, "_fit_uncached", counted)
    shown = _importances(stored_study, tmp_path / "r")
    assert shown["basis"].startswith("the one the search ranked with: its prior's")
    assert fits == [] and "this study" not in shown["sources"]
    with KnowledgeBase.open(stored_study["storage_path"]) as kb:
        data = load_study(kb, stored_study["study"])
        prior_size = shown["n_evaluations"]
        # A study whose scheduler ranks with no surrogate gets one fitted here, on the
        # prior and its own evaluations up to its last promotion, and the page says so.
        other = dataclasses.replace(data, study=dataclasses.replace(data.study, scheduler="X"))
        fitted = _meta.refit_importances(kb, other)
        # A study without a prior ranked with none either: its surrogate would be its own.
        cold = dataclasses.replace(
            data, study=dataclasses.replace(data.study, settings={"prior": "none"})
        )
        alone = _meta.refit_importances(kb, cold)
    assert fitted.basis == (
        "fitted for this report on the prior and the study's evaluations up to its last "
        "promotion (its scheduler, X, ranks with none)"
    )
    assert fits[0] == fitted.n_evaluations > prior_size
    assert fitted.sources[-1] == "this study"
    # (Its evaluations are too few for a surrogate of their own, and it says so.)
    assert not alone.fitted and alone.why.startswith("too little experience to fit")
    assert alone.sources == ["this study"]
    assert fits[-1] == alone.n_evaluations == len(data.evaluations)


def test_a_study_without_a_prior_gets_a_surrogate_of_its_own_and_the_page_says_why(
    stored_study: dict[str, Any],
) -> None:
    from llp.space import SearchSpace

    with KnowledgeBase.open(stored_study["storage_path"]) as kb:
        data = load_study(kb, stored_study["study"])
        space = SearchSpace.from_dict(data.study.space)
        # Enough evaluations of its own, on all of the data, each a configuration of its
        # space with its own score.
        own = [
            dataclasses.replace(
                data.evaluations[0], trial_number=i, result=stored_result(c, 1.0, 0.5 + 0.02 * i)
            )
            for i, c in enumerate(space.sample(16, seed=0))
        ]
        cold = dataclasses.replace(
            data,
            study=dataclasses.replace(data.study, settings={"prior": "none"}),
            evaluations=own,
        )
        alone = _meta.refit_importances(kb, cold)
    assert alone.fitted
    assert alone.basis == (
        "fitted for this report on all the study's evaluations (it ranked with none: no prior)"
    )
    assert alone.sources == ["this study"] and alone.n_evaluations == 16


def test_without_a_cache_folder_every_report_refits_and_writes_nothing(
    two_studies: tuple[KnowledgeBase, Any],
    monkeypatch: pytest.MonkeyPatch,
    cache: Path,
    fake_refits: list[str],
) -> None:
    monkeypatch.setenv("LLP_CACHE_DIR", "")
    kb, data = two_studies
    assert study_importances(kb, data) == study_importances(kb, data) == FITTED
    assert len(fake_refits) == 2 and not (cache / "importances").exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # cut short
        lambda text: "\x00\xff" + text,  # not text
        lambda text: text.replace(f'"format": {_meta.FORMAT}', '"format": 99'),  # another layout
        lambda text: text.replace('"key": "', '"key": "0'),  # another study's
        lambda text: text.replace('"fitted": true', '"fitted": "yes"'),
        lambda text: text.replace('"values": [', '"values": [-1.0, '),
        lambda text: text.replace('"names": [', '"names": [7, '),
        lambda text: text.replace('"n_datasets": ', '"n_datasets": -'),
        lambda text: json.dumps({"format": _meta.FORMAT}),  # fields missing
        lambda text: "[]",
    ],
    ids=[
        "truncated", "binary", "format", "key", "fitted", "negative", "name", "count",
        "missing", "list",
    ],
)  # fmt: skip
def test_a_damaged_or_foreign_file_is_ignored_refitted_and_replaced(
    two_studies: tuple[KnowledgeBase, Any], cache: Path, fake_refits: list[str], damage: Any
) -> None:
    kb, data = two_studies
    assert study_importances(kb, data) == FITTED
    (kept,) = (cache / "importances").glob("*.json")
    text = kept.read_text()
    kept.write_text(damage(text), encoding="utf-8")
    assert study_importances(kb, data) == FITTED
    assert len(fake_refits) == 2
    assert kept.read_text() == text  # replaced
    assert study_importances(kb, data) == FITTED and len(fake_refits) == 2


def test_a_second_report_loads_neither_scikit_learn_nor_torch(
    stored_study: dict[str, Any], tmp_path: Path, cache: Path
) -> None:
    from tests.cli.conftest import modules_after

    args = ["report", stored_study["study"], "--storage", stored_study["storage_path"]]
    args += ["--no-landscape", "--quiet"]
    first = modules_after([*args, "--out", tmp_path / "r1"], tmp_path, ["sklearn", "torch"])
    assert first[:2] == (0, ["sklearn"]), first[2]  # the first report refits
    second = modules_after([*args, "--out", tmp_path / "r2"], tmp_path, ["sklearn", "torch"])
    assert second[:2] == (0, []), second[2]
    pages = [json.loads((tmp_path / r / "report.json").read_text()) for r in ("r1", "r2")]
    assert pages[0]["importances"] == pages[1]["importances"]


# ---------------------------------------------------------------------- the key
@pytest.fixture
def two_studies(tmp_path: Path) -> Iterator[tuple[KnowledgeBase, Any]]:
    """A knowledge base with another dataset's study recorded first, then a study whose
    prior is the knowledge base; returns it and the later study's data."""
    kb = KnowledgeBase.open(tmp_path / "two.db")
    for name, fingerprint in (("earlier", "e" * 64), ("later", "f" * 64)):
        dataset = kb.upsert_dataset(fingerprint, name=name, meta_features={"n": 1.0})
        study = kb.get_or_create_study(
            name, scheduler="MetaProbing", settings={"prior": "store"}, space=None, seed=0,
            objective="val_accuracy", dataset_id=dataset,
        )  # fmt: skip
        kb.record_evaluations(
            study.id, [NewEvaluation(0, {"x": 0}, stored_result({"x": 0}, 0.5, 0.6), rung=0)]
        )
    yield kb, load_study(kb, "later")
    kb.close()


def test_the_key_changes_with_what_the_refit_reads_and_only_that(
    two_studies: tuple[KnowledgeBase, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb, data = two_studies
    key = importances_key(kb, data)
    assert importances_key(kb, load_study(kb, "later")) == key  # the same study, read again
    # Every dataset's record is read; a study recorded after this one started is not.
    third = kb.get_or_create_study(
        "third", scheduler="MetaProbing", settings={}, space=None, seed=0,
        objective="val_accuracy", dataset_id=kb.upsert_dataset("0" * 64, name="third"),
    )  # fmt: skip
    changed = {"a new dataset": importances_key(kb, data)}
    kb.record_evaluations(
        third.id, [NewEvaluation(0, {"x": 1}, stored_result({"x": 1}, 0.5, 0.7), rung=0)]
    )
    assert importances_key(kb, data) == changed["a new dataset"]
    # ... but the same evaluations, had this study started after them, would be.
    later = dataclasses.replace(data.study, created_at=kb.evaluation_stamps()[-1][1])
    changed["an earlier evaluation"] = importances_key(kb, dataclasses.replace(data, study=later))
    # The study's own evaluations, its dataset's record, its settings.
    study = kb.get_or_create_study(
        "later", scheduler="MetaProbing", settings={"prior": "store"}, space=None, seed=0,
        objective="val_accuracy", dataset_id=kb.upsert_dataset("f" * 64, name="later"),
    )  # fmt: skip
    kb.record_evaluations(
        study.id, [NewEvaluation(1, {"x": 2}, stored_result({"x": 2}, 0.5, 0.5), rung=0)]
    )
    changed["its own evaluation"] = importances_key(kb, load_study(kb, "later"))
    kb.upsert_dataset("e" * 64, name="earlier", group="moved")
    changed["a group"] = importances_key(kb, data)
    shipped = dataclasses.replace(data.study, settings={"prior": "shipped"})
    changed["the prior"] = importances_key(kb, dataclasses.replace(data, study=shipped))
    assert key not in changed.values() and len(set(changed.values())) == len(changed)
    # With the shipped knowledge in the prior, its file's bytes are read; the knowledge
    # base's records are not.
    data_shipped = dataclasses.replace(data, study=shipped)
    before = importances_key(kb, data_shipped)
    kb.upsert_dataset("e" * 64, name="earlier", group="moved again")
    assert importances_key(kb, data_shipped) == before
    copy = tmp_path / "corpus.jsonl.gz"
    shutil.copyfile(llp.knowledge.SHIPPED_CORPUS_PATH, copy)
    monkeypatch.setattr(llp.knowledge, "SHIPPED_CORPUS_PATH", copy)
    assert importances_key(kb, data_shipped) == before
    with copy.open("ab") as handle:
        handle.write(b"\n")
    assert importances_key(kb, data_shipped) != before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fitted", 1),
        ("basis", None),
        ("names", "config: lr"),
        ("groups", ["weather"]),
        ("values", [float("nan")]),
        ("values", [1]),
        ("n_evaluations", True),
        ("n_datasets", 1.5),
        ("sources", [None]),
        ("why", 0),
    ],
)
def test_stored_importances_are_checked_field_by_field(field: str, value: Any) -> None:
    good = FITTED
    assert Importances.from_json(json.loads(json.dumps(good.to_json()))) == good
    with pytest.raises((ValueError, KeyError, TypeError)):
        Importances.from_json({**good.to_json(), field: value})
