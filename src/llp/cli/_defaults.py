"""Defaults of the ``llp`` command, in a module that imports nothing heavy (so that
``llp --help`` and ``llp --version`` answer at once)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Folder of everything the command writes by default (knowledge base, reports).
RUNS_DIR = Path("llp-runs")
#: The knowledge base used when neither --storage nor LLP_STORAGE is given.
DEFAULT_STORAGE = str(RUNS_DIR / "knowledge.db")
#: Environment variable read when --storage is not given.
STORAGE_ENV = "LLP_STORAGE"

#: Defaults of the ``llp tune`` options that shape a search (also used to write the
#: command that resumes a study).
TUNE_DEFAULTS: dict[str, Any] = {
    "family": "auto",
    "budget": 100.0,
    "epochs": 10,
    "iterations": 4,
    "reduction_factor": 2,
    "seed": 0,
    "workers": 1,
    "prior": "default",
    "flatness": False,
}

__all__ = ["DEFAULT_STORAGE", "RUNS_DIR", "STORAGE_ENV", "TUNE_DEFAULTS"]
