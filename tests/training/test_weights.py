"""The weights a study keeps for its report (``llp.training._weights``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from llp.search import Evaluation, Job
from llp.training import Fidelity, Trainer
from llp.training._weights import KEPT_PER_STUDY, KeptWeights, study_key, top_trials_of
from tests.report.conftest import stored_result

TOP = Fidelity(1.0, 2)


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def kept(tmp_path: Path) -> KeptWeights:
    return KeptWeights(tmp_path / "weights", "k" * 16)


def test_kept_weights_come_back_exactly_parameters_and_buffers(tmp_path: Path) -> None:
    model = net()
    model.train()
    model(torch.randn(16, 4))  # BatchNorm's running statistics move
    weights = kept(tmp_path)
    assert weights.save(model, 7, TOP) == weights.path(7, TOP)
    back = weights.load(net, 7, TOP)
    assert back is not None and back is not model
    for (name, a), (other, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert name == other and a.dtype == b.dtype and torch.equal(a, b)
    assert weights.load(net, 8, TOP) is None  # another trial
    assert weights.load(net, 7, Fidelity(0.5, 2)) is None  # another fidelity


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b"not a zip"), id="not-an-npz"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:100]), id="cut-short"),
        pytest.param(
            lambda p: np.savez(p, names=np.array(["0.weight"]), w0=np.zeros((8, 4))),
            id="other-names",
        ),
        pytest.param(
            lambda p: np.savez(
                p,
                names=np.array(list(net().state_dict())),
                **{f"w{i}": np.zeros(3) for i in range(len(net().state_dict()))},
            ),
            id="other-shapes",
        ),
        pytest.param(
            lambda p: np.savez(p, names=np.array([object()], dtype=object)), id="pickled-object"
        ),
    ],
)
def test_a_damaged_or_foreign_file_is_not_used(tmp_path: Path, damage) -> None:
    weights = kept(tmp_path)
    path = weights.save(net(), 1, TOP)
    assert path is not None
    damage(path)
    assert weights.load(net, 1, TOP) is None


def test_a_model_numpy_cannot_hold_is_not_kept_and_fails_nothing(tmp_path: Path) -> None:
    weights = kept(tmp_path)
    assert weights.save(net().to(torch.bfloat16), 1, TOP) is None
    assert not weights.path(1, TOP).exists()


def test_an_unwritable_folder_keeps_nothing_and_fails_nothing(tmp_path: Path) -> None:
    (tmp_path / "weights").write_text("a file where the folder should be")
    assert kept(tmp_path).save(net(), 1, TOP) is None


def test_only_the_named_trials_of_the_study_are_kept(tmp_path: Path) -> None:
    weights = kept(tmp_path)
    other = KeptWeights(tmp_path / "weights", "o" * 16)
    for trial in range(5):
        weights.save(net(), trial, TOP)
    other.save(net(), 1, TOP)
    weights.keep_only([3, 1])
    assert weights.load(net, 1, TOP) is not None and weights.load(net, 3, TOP) is not None
    assert all(weights.load(net, t, TOP) is None for t in (0, 2, 4))
    assert other.load(net, 1, TOP) is not None  # another study's files are left alone


def test_the_cache_turned_off_keeps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLP_CACHE_DIR", "")
    assert KeptWeights.for_study("s", 0, None, None) is None


def test_the_study_key_is_the_same_however_the_store_gives_the_time_back() -> None:
    aware = dt.datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=dt.UTC)
    naive = aware.replace(tzinfo=None, microsecond=0)
    assert study_key("s", 0, aware, "f") == study_key("s", 0, naive, "f")
    elsewhere = aware.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert study_key("s", 0, elsewhere, "f") == study_key("s", 0, naive, "f")
    assert study_key("s", 0, aware, "f") != study_key("s", 1, aware, "f")
    assert study_key("s", 0, aware, "f") != study_key("t", 0, aware, "f")
    assert study_key("s", 0, aware, "f") != study_key("s", 0, aware, "g")


def evaluation(
    trial: int, fraction: float, score: float | None, val_loss: float = 0.8
) -> Evaluation:
    result = stored_result({"x": trial}, fraction, score, val_loss=val_loss)
    job = Job(trial, trial, {"x": trial}, result.fidelity, bracket=0, rung=0, reason="")
    return Evaluation(job, result)


def test_the_trials_kept_are_the_answer_then_the_best_others_on_the_top_rung() -> None:
    evaluations = [
        evaluation(0, 0.5, 0.99),  # the best score, but not on the top rung
        evaluation(1, 1.0, 0.80),
        evaluation(2, 1.0, 0.90),
        evaluation(3, 1.0, 0.90),
        evaluation(4, 1.0, None),
        evaluation(5, 1.0, 0.70),
    ]
    assert top_trials_of(evaluations, 5) == [5, 2, 3]
    assert top_trials_of(evaluations, None) == [2, 3, 1]
    assert len(top_trials_of(evaluations, 1)) == KEPT_PER_STUDY
    assert top_trials_of([evaluation(0, 1.0, None)], None) == []
    # Equal scores go to the lower validation loss, as the search's answer does.
    tied = [evaluation(1, 1.0, 0.9, val_loss=0.7), evaluation(2, 1.0, 0.9, val_loss=0.4)]
    assert top_trials_of(tied, None) == [2, 1]


def test_the_trainer_measures_a_kept_model_as_fit_did(tmp_path: Path) -> None:
    from llp.data import FidelityData

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)).astype("float32")
    y = (X[:, 0] > 0).astype("int64")
    data = FidelityData.from_arrays(X, y, seed=0)
    trainer = Trainer(
        lambda c: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
        lambda m, c: torch.optim.SGD(m.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        data,
    )
    model, result = trainer.fit({}, TOP, trial_id=3)
    assert model is not None
    weights = kept(tmp_path)
    weights.save(model, 3, TOP)
    back = weights.load(lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), 3, TOP)
    assert back is not None
    assert trainer.validation_score(back, TOP) == result.score
