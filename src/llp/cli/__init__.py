"""The ``llp`` command line: ``llp tune``, ``llp predict``, ``llp kb list|show|export|import``
and ``llp report``.

Run ``llp --help`` (or ``python -m llp --help``); the reference is ``docs/cli.md``. Exit
statuses: 0 success, 1 nothing usable (every evaluation failed, no knowledge to predict
from), 2 a user mistake (one line on stderr, no traceback; ``LLP_DEBUG=1`` shows it),
130 interrupted with Ctrl-C (everything finished so far is stored).
"""

from __future__ import annotations

from llp.cli._app import app, kb_app, main, run
from llp.cli._errors import (
    EXIT_INTERRUPTED,
    EXIT_NOTHING_USABLE,
    EXIT_OK,
    EXIT_USER_ERROR,
    CliError,
)

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_NOTHING_USABLE",
    "EXIT_OK",
    "EXIT_USER_ERROR",
    "CliError",
    "app",
    "kb_app",
    "main",
    "run",
]
