"""Fixture factories for the shipped-knowledge suite: small corpus files written by
``distill`` from synthetic evaluations (no training), and a writer for tampered copies."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llp.features import DATASET_FEATURES
from llp.knowledge import DEFAULT_SPACE, DESIGN_SCHEDULER, distill
from llp.store import KnowledgeBase, NewEvaluation
from llp.training import EpochRecord, EvaluationResult, EvaluationStatus, Fidelity

FRACTIONS = (0.5, 1.0)
EPOCHS = 2


def synthetic_result(config: dict[str, Any], fraction: float, trial: int) -> EvaluationResult:
    """A plausible evaluation without training: trial 2 diverges, the others learn."""
    if trial == 2:
        return EvaluationResult(
            config=config,
            fidelity=Fidelity(fraction, EPOCHS),
            status=EvaluationStatus.FAILED,
            curve=(EpochRecord(1, 2.3, float("nan"), 0.1, 0.01),),
            score=None,
            objective="val_accuracy",
            cost=fraction,
            seconds=0.02,
            train_seconds=0.01,
            n_train=int(100 * fraction),
            seed=trial,
            failure_reason="diverged: validation loss became nan in epoch 1",
            traceback=None,
        )
    accuracy = 0.5 + 0.1 * trial + 0.2 * fraction
    curve = tuple(
        EpochRecord(e, 1.0 / e, 1.1 / e, accuracy - 0.05 * (EPOCHS - e), 0.0123456)
        for e in range(1, EPOCHS + 1)
    )
    return EvaluationResult(
        config=config,
        fidelity=Fidelity(fraction, EPOCHS),
        status=EvaluationStatus.COMPLETE,
        curve=curve,
        score=curve[-1].val_accuracy,
        objective="val_accuracy",
        cost=fraction * EPOCHS,
        seconds=0.0312345678,
        train_seconds=0.0212345678,
        n_train=int(100 * fraction),
        seed=trial,
        landscape={"landscape_loss": 0.123456789, "landscape_hessian_top_eig": float("nan")},
        probe_cost=0.5,
    )


def fill_knowledge_base(kb: KnowledgeBase, datasets: int = 2, configs: int = 3) -> None:
    design = DEFAULT_SPACE.sample(configs, seed=0)
    settings = {"design": {"seed": 0, "n_configs": configs, "epochs": EPOCHS}}
    for d in range(datasets):
        features = {name: float(i + d) / 7 for i, name in enumerate(DATASET_FEATURES)}
        dataset_id = kb.upsert_dataset(
            f"{d:064x}",
            name=f"toy-{d}",
            group=f"group-{d % 2}",
            n_samples=100,
            meta_features=features,
        )
        study = kb.get_or_create_study(
            f"corpus/{'mlp' if d % 2 == 0 else 'cnn'}/toy-{d}",
            scheduler=DESIGN_SCHEDULER,
            settings={**settings, "dataset": {"source": "synthetic"}},
            space=DEFAULT_SPACE.to_dict(),
            seed=0,
            objective="val_accuracy",
            dataset_id=dataset_id,
            model_family="mlp" if d % 2 == 0 else "cnn",
        )
        kb.record_evaluations(
            study.id,
            [
                NewEvaluation(t, config, synthetic_result(config, f, t))
                for t, config in enumerate(design)
                for f in FRACTIONS
            ],
        )


def read_records(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def write_records(path: Path, records: list[Any]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for record in records:
            text = record if isinstance(record, str) else json.dumps(record)
            handle.write(text + "\n")
    return path


@pytest.fixture
def make_corpus_file(tmp_path: Path) -> Callable[..., Path]:
    """``make(datasets=2, configs=3)``: a valid corpus file distilled from synthetic runs."""

    def make(datasets: int = 2, configs: int = 3, name: str = "corpus.jsonl.gz") -> Path:
        path = tmp_path / name
        with KnowledgeBase.open(":memory:") as kb:
            fill_knowledge_base(kb, datasets, configs)
            distill(kb, path, command="synthetic", build={"wall_seconds": 1.0})
        return path

    return make


@pytest.fixture
def make_records(make_corpus_file: Callable[..., Path]) -> Callable[[], list[dict[str, Any]]]:
    """``make()``: the records of a fresh valid corpus, as dicts to tamper with."""

    def make() -> list[dict[str, Any]]:
        return read_records(make_corpus_file())

    return make
