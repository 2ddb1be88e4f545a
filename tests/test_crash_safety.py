"""A study survives the death of its driver, and studies share one knowledge base.

The driver is a real child process killed with SIGKILL in the middle of a study; the
study is then run again to completion in another process. Run as a module, this file
is that child: ``python -m tests.test_crash_safety --storage PATH --study NAME``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
N_SAMPLES = 600
SEED = 11
CONFIGS = [
    {"lr": lr, "width": w, "optimizer": opt}
    for lr in (1e-3, 1e-2, 3e-2, 1e-1)
    for w in (16, 48)
    for opt in ("sgd", "adam")
]  # 16 configurations: 16 + 8 + 4 evaluations of successive halving
N_EVALUATIONS = 28

# Seconds each evaluation sleeps in a child (its worker processes inherit it): a study
# long enough for the test to kill it in the middle, computing exactly the same things.
SLEEP_VARIABLE = "LLP_TEST_SLEEP_PER_EVALUATION"


def slow_mlp_model_fn(config: Mapping[str, Any]) -> Any:
    from tests.conftest import mlp_model_fn

    time.sleep(float(os.environ.get(SLEEP_VARIABLE, "0")))
    return mlp_model_fn(config)


def run_study(storage: str | None, study: str | None, *, workers: int = 1) -> Any:
    """The study every test here runs: successive halving of a small MLP on digits."""
    from sklearn.datasets import load_digits
    from torch import nn

    from llp.data import FidelityData
    from llp.executors import make_executor
    from llp.two_tier_probing import TwoTierProbing
    from tests.conftest import mlp_optimizer_fn

    X, y = load_digits(return_X_y=True)
    data = FidelityData(X[:N_SAMPLES], y[:N_SAMPLES], standardize=True, seed=SEED)
    kind = "process" if workers > 1 else "inprocess"
    with make_executor(kind, n_workers=workers) as executor:
        probe = TwoTierProbing(
            CONFIGS,
            slow_mlp_model_fn,
            data,
            nn.CrossEntropyLoss(),
            mlp_optimizer_fn,
            max_epochs=2,
            seed=SEED,
            show_progress=False,
            storage=storage,
            study_name=study,
            executor=executor,
            n_workers=workers,
        )
        return probe.run_successive_halving(0.25, 1.0, 2)


def summary(result: Any) -> dict[str, Any]:
    """What the test compares, as JSON."""
    return {
        "n_evaluations": len(result.evaluations),
        "n_reused": result.n_reused,
        "reused": sorted([e.trial_id, e.resource] for e in result.evaluations if e.reused),
        "scores": sorted([e.trial_id, e.resource, e.score] for e in result.evaluations),
        "best_config": result.best_config,
    }


def main(argv: list[str] | None = None) -> None:
    import torch

    torch.set_num_threads(1)  # as in the tests' own process: identical numbers
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    result = run_study(args.storage, args.study, workers=args.workers)
    print(json.dumps(summary(result)), flush=True)


# ---------------------------------------------------------------------- test helpers
class Driver:
    """A study running in a child process, in a process group of its own so that
    killing it also kills the worker processes it started."""

    def __init__(self, storage: str, study: str, *, slow: float = 0.0, workers: int = 1) -> None:
        command = [sys.executable, "-m", "tests.test_crash_safety", "--storage", storage]
        command += ["--study", study, "--workers", str(workers)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), SLEEP_VARIABLE: str(slow)}
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def result(self, timeout: float = 120) -> dict[str, Any]:
        out, err = self.process.communicate(timeout=timeout)
        assert self.process.returncode == 0, err
        assert "database is locked" not in err, err
        return dict(json.loads(out.strip().splitlines()[-1]))

    def close(self) -> None:
        """Leave no process behind, whatever happened."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.communicate(timeout=30)


@pytest.fixture
def drivers() -> Iterator[list[Driver]]:
    started: list[Driver] = []
    yield started
    for driver in started:
        driver.close()


def stored_rows(path: Path) -> list[tuple[int, int, float, int]]:
    """(study, trial number, fraction, epochs) of every stored evaluation, read without
    writing anything (the study may be running)."""
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            return list(
                conn.execute(
                    "SELECT t.study_id, t.number, e.fraction, e.epochs FROM evaluations e "
                    "JOIN trials t ON t.id = e.trial_id ORDER BY e.id"
                )
            )
    except sqlite3.OperationalError:  # the tables do not exist yet
        return []


@pytest.fixture(scope="module")
def clean_run() -> dict[str, Any]:
    """The study run without interruption in this process (same seed, one thread)."""
    return summary(run_study(None, None))


# ---------------------------------------------------------------------- the tests
@pytest.mark.parametrize(
    "workers", [1, pytest.param(2, marks=pytest.mark.slow, id="2-process-workers")]
)
def test_a_study_killed_with_sigkill_resumes_without_losing_or_repeating_work(
    tmp_path: Path, drivers: list[Driver], clean_run: dict[str, Any], workers: int
) -> None:
    db = tmp_path / "kb.db"
    crashing = Driver(str(db), "crash", slow=0.1, workers=workers)
    drivers.append(crashing)
    deadline = time.monotonic() + 120
    while len(stored_rows(db)) < 3:
        assert crashing.process.poll() is None, crashing.process.communicate()[1]
        assert time.monotonic() < deadline, "the study stored nothing in 120 s"
        time.sleep(0.02)
    crashing.kill()
    before = stored_rows(db)
    assert crashing.process.returncode == -signal.SIGKILL
    assert 3 <= len(before) < N_EVALUATIONS, "the kill did not land in the middle"

    resuming = Driver(str(db), "crash", workers=workers)
    drivers.append(resuming)
    resumed = resuming.result()

    assert resumed["n_reused"] == len(before)
    assert resumed["reused"] == sorted([number, fraction] for _, number, fraction, _ in before)
    assert resumed["n_evaluations"] == clean_run["n_evaluations"] == N_EVALUATIONS
    assert resumed["scores"] == clean_run["scores"]
    assert resumed["best_config"] == clean_run["best_config"]
    after = stored_rows(db)
    assert len(after) == N_EVALUATIONS
    assert len(set(after)) == len(after), "an evaluation was stored twice"
    assert after[: len(before)] == before


def test_two_studies_write_one_sqlite_file_at_once(
    tmp_path: Path, drivers: list[Driver], clean_run: dict[str, Any]
) -> None:
    db = tmp_path / "shared.db"  # does not exist yet: both race to create it
    pair = [Driver(str(db), name, slow=0.01) for name in ("study-a", "study-b")]
    drivers.extend(pair)
    results = [driver.result() for driver in pair]
    for result in results:
        assert result["n_evaluations"] == N_EVALUATIONS and result["n_reused"] == 0
        assert result["scores"] == clean_run["scores"]
    rows = stored_rows(db)
    assert len(rows) == len(set(rows)) == 2 * N_EVALUATIONS


def test_two_studies_write_one_postgresql_database_at_once(
    drivers: list[Driver], clean_run: dict[str, Any]
) -> None:
    """Two drivers stand for two machines sharing one knowledge base."""
    from llp.store import KnowledgeBase
    from tests.store.conftest import postgres_admin_url

    postgres_admin_url()  # skips without a server (fails under CI=true)
    url = _fresh_postgres_database()
    try:
        pair = [Driver(url, name, slow=0.01) for name in ("study-a", "study-b")]
        drivers.extend(pair)
        results = [driver.result() for driver in pair]
        assert [r["scores"] for r in results] == [clean_run["scores"]] * 2
        with KnowledgeBase.open(url) as kb:
            assert kb.counts()["studies"] == 2
            assert kb.counts()["evaluations"] == 2 * N_EVALUATIONS
            resumed = summary(run_study(kb, "study-a"))
        assert resumed["n_reused"] == N_EVALUATIONS
    finally:
        _drop_postgres_database(url)


def _fresh_postgres_database() -> str:
    import uuid

    import psycopg

    from tests.store.conftest import _libpq_url, postgres_admin_url

    admin = _libpq_url(postgres_admin_url())
    name = f"llp_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _libpq_url(admin, name)


def _drop_postgres_database(url: str) -> None:
    import psycopg
    from sqlalchemy import make_url

    from tests.store.conftest import _libpq_url, postgres_admin_url

    name = make_url(url).database
    with psycopg.connect(_libpq_url(postgres_admin_url()), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
