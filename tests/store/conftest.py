"""Backends and fixture factories for the knowledge-base suite.

Every test that takes ``storage`` (or ``kb``) runs against each backend: in-memory
SQLite, a SQLite file and, when ``LLP_TEST_POSTGRES_URL`` points to a server whose user
may create databases (``source .ci/postgres.sh``), PostgreSQL -- each test in a
database of its own, dropped afterwards. Without the variable the PostgreSQL cases are
skipped, except under ``CI=true``, where they fail: CI must exercise PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, make_url

from llp.store import KnowledgeBase, StudyRecord
from llp.training import EpochRecord, EvaluationResult, EvaluationStatus, Fidelity

POSTGRES_ENV = "LLP_TEST_POSTGRES_URL"

#: The configuration of a result unless a test gives another (str, float, int, bool).
DEFAULT_CONFIG: Mapping[str, Any] = {"lr": 0.01, "width": 64, "optimizer": "adam", "nesterov": True}


def postgres_admin_url() -> str:
    """The server the PostgreSQL cases use, or skip/fail as the module docstring says."""
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(
                f"CI=true but {POSTGRES_ENV} is unset: CI must run the knowledge-base tests "
                "against PostgreSQL. Run `source .ci/postgres.sh` before the tests."
            )
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (source .ci/postgres.sh)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail(f'{POSTGRES_ENV} is set but psycopg is missing: pip install "llp[postgres]"')
    return url


def _libpq_url(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    import psycopg

    admin = _libpq_url(postgres_admin_url())
    name = f"llp_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _libpq_url(admin, name)
    finally:
        # FORCE ends our own sessions; a server process of another role (an autovacuum
        # worker that just started on the new database) cannot be ended by this user and
        # makes the drop fail: it is gone in a moment, so try again.
        for attempt in range(10):
            try:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
                if attempt == 9:
                    raise
                time.sleep(0.5)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``storage`` argument of one backend."""
    if request.param == "memory":
        return ":memory:"
    if request.param == "sqlite":
        return str(tmp_path / "kb" / "knowledge.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def persistent_storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A backend that outlives the KnowledgeBase object (for reopening)."""
    if request.param == "sqlite":
        return str(tmp_path / "knowledge.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def kb(storage: str) -> Iterator[KnowledgeBase]:
    with KnowledgeBase.open(storage) as knowledge_base:
        yield knowledge_base


def raw_engine(storage: str) -> Engine:
    """A plain SQLAlchemy engine on the same database, for tampering with it by hand."""
    if "://" not in storage:
        return create_engine(f"sqlite:///{storage}")
    return create_engine(make_url(storage).set(drivername="postgresql+psycopg"))


def make_curve(
    n: int, *, score: float | None = 0.8, accuracy: bool = True
) -> tuple[EpochRecord, ...]:
    return tuple(
        EpochRecord(
            epoch=e,
            train_loss=1.0 / e,
            val_loss=1.1 / e + 0.01,
            val_accuracy=(score or 0.5) * e / n if accuracy else None,
            seconds=0.01 * e,
        )
        for e in range(1, n + 1)
    )


@pytest.fixture(scope="session")
def make_result() -> Callable[..., EvaluationResult]:
    """``make_result(config=None, *, fraction=0.5, epochs=3, failed=False, **fields)``.

    A realistic result: a curve of ``epochs`` points, landscape features when complete,
    a reason and traceback when failed; any field can be overridden.
    """

    def make(
        config: Mapping[str, Any] | None = None,
        *,
        fraction: float = 0.5,
        epochs: int = 3,
        failed: bool = False,
        **fields: Any,
    ) -> EvaluationResult:
        values: dict[str, Any] = {
            "config": DEFAULT_CONFIG if config is None else config,
            "fidelity": Fidelity(fraction, epochs),
            "status": EvaluationStatus.FAILED if failed else EvaluationStatus.COMPLETE,
            "curve": make_curve(epochs - 1 if failed else epochs),
            "score": None if failed else 0.8,
            "objective": "val_accuracy",
            "cost": fraction * epochs,
            "seconds": 1.25,
            "train_seconds": 1.0,
            "n_train": 600,
            "seed": 12345,
            "failure_reason": "training diverged: val_loss is nan at epoch 3" if failed else None,
            "traceback": (
                'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom\n'
                if failed
                else None
            ),
            "landscape": {} if failed else {"sharpness": 0.125, "hessian_top": 42.5},
            "probe_cost": 0.0 if failed else 0.03125,
        }
        values.update(fields)
        return EvaluationResult(**values)

    return make


@pytest.fixture
def make_study(kb: KnowledgeBase) -> Callable[..., StudyRecord]:
    """``make_study(name="study", **overrides)`` in the ``kb`` of the test."""

    def make(name: str = "study", **overrides: Any) -> StudyRecord:
        args: dict[str, Any] = {
            "scheduler": "SuccessiveHalving",
            "settings": {"min_resource": 0.125, "max_resource": 1.0, "reduction_factor": 2},
            "space": {"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}},
            "seed": 0,
            "objective": "val_accuracy",
            "model_family": "mlp",
        }
        args.update(overrides)
        return kb.get_or_create_study(name, **args)

    return make


def result_fields(result: EvaluationResult) -> dict[str, Any]:
    """Every field of a result as text (``repr`` tells NaN, -0.0 and ints apart), so two
    results compare equal exactly when every value round-tripped."""
    out: dict[str, Any] = {
        f.name: repr(getattr(result, f.name)) for f in dataclasses.fields(result)
    }
    out["config"] = dict(result.config)  # key order is not part of a configuration
    out["config_types"] = {k: type(v) for k, v in result.config.items()}
    out["landscape"] = repr(sorted(result.landscape.items()))
    for name in ("score", "cost", "seconds", "train_seconds", "probe_cost"):
        value = getattr(result, name)
        # The store drops the sign of a zero in scalar columns (see llp.store._codec).
        out[name] = repr(None if value is None else value + 0.0)
    return out
