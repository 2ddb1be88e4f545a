"""Fixture factories for the command-line tests: small real data files, a temporary
SQLite knowledge base, and a study tuned once per session that several tests read."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, load_iris, load_wine
from typer.testing import CliRunner, Result

from llp.cli import app

#: Small and fast: the first 600 digits (480 to train, 120 to validate), 3 epochs.
N_DIGITS = 600
FAST = ["--epochs", "3", "--prior", "store", "--no-report"]


def invoke(args: Sequence[str], **kwargs: Any) -> Result:
    """Run ``llp ARGS`` in-process through typer's test runner."""
    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


def modules_after(
    args: Sequence[str], cwd: Path, modules: Sequence[str]
) -> tuple[Any, list[str], str]:
    """Run ``llp ARGS`` in a fresh interpreter, as a user types it: its exit code, which
    of ``modules`` it had imported by the end (what made it slow to start) and its
    stderr."""
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from llp.cli import main\n"
        f"sys.argv = ['llp', *{[str(a) for a in args]!r}]\n"
        "code = 0\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        f"print(json.dumps([code, sorted(m for m in {list(modules)!r} if m in sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, check=True
    )
    code, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    return code, loaded, done.stderr


def invoke_json(args: Sequence[str]) -> dict[str, Any]:
    """Run ``llp ARGS --json`` and return the parsed stdout (fails with the output)."""
    result = invoke([*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


def _write_table(path: Path, X: np.ndarray, y: np.ndarray, target: str = "label") -> Path:
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame[target] = y
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def digits_csv(data_dir: Path) -> Path:
    """The first 600 scikit-learn digits as a CSV with a ``label`` column."""
    X, y = load_digits(return_X_y=True)
    return _write_table(data_dir / "digits.csv", X[:N_DIGITS], y[:N_DIGITS])


@pytest.fixture(scope="session")
def make_table(data_dir: Path) -> Callable[..., Path]:
    """``make_table(name, dataset="iris", suffix=".csv", target="label")``."""

    def make(name: str, dataset: str = "iris", suffix: str = ".csv", target: str = "label") -> Path:
        loader = {"iris": load_iris, "wine": load_wine, "digits": load_digits}[dataset]
        X, y = loader(return_X_y=True)
        return _write_table(data_dir / f"{name}{suffix}", X, y, target)

    return make


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """A fresh SQLite knowledge base path (created by the first command)."""
    return tmp_path / "knowledge.db"


@pytest.fixture(scope="session")
def tuned(tmp_path_factory: pytest.TempPathFactory, digits_csv: Path) -> dict[str, Any]:
    """One meta-guided study on 600 digits, stored in a session-wide knowledge base;
    returns the ``--json`` output of ``llp tune`` plus ``storage`` and ``report_dir``."""
    folder = tmp_path_factory.mktemp("tuned")
    storage = folder / "knowledge.db"
    out = invoke_json(
        [
            "tune", digits_csv, "--storage", storage, "--budget", "24", "--epochs", "3",
            "--prior", "store", "--report-dir", folder / "report",
        ]
    )  # fmt: skip
    out["storage_path"] = storage
    out["report_dir"] = folder / "report"
    return out
