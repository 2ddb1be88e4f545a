"""How the ``llp`` command fails: one clear line and a documented exit status.

Exit statuses
-------------
- 0: success.
- 1: the work ran but produced nothing usable (every evaluation failed; no knowledge to
  recommend from).
- 2: a user mistake (missing file, unknown column, bad space file, unreachable storage,
  unknown study, bad option). One line on stderr, never a traceback.
- 130: interrupted with Ctrl-C; everything finished before is stored.
- 143: ``llp tune`` stopped by SIGTERM, as by Ctrl-C (what is stored, how to resume).

Set the environment variable ``LLP_DEBUG=1`` to see the traceback behind a user error.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from llp._text import inert

EXIT_OK = 0
EXIT_NOTHING_USABLE = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

_F = TypeVar("_F", bound=Callable[..., Any])


class CliError(Exception):
    """A mistake the user can fix; the message is shown as one line and the command
    exits with ``exit_code`` (2 unless said otherwise)."""

    def __init__(self, message: str, *, exit_code: int = EXIT_USER_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler, ``kill``) stops ``llp tune`` like Ctrl-C does."""


def one_line(text: str) -> str:
    """``text`` with its whitespace (line breaks included) collapsed to single spaces,
    made :func:`inert`."""
    return inert(" ".join(str(text).split()))


def _debug() -> bool:
    return os.environ.get("LLP_DEBUG", "").strip() not in ("", "0", "false", "no")


def exits_cleanly(command: str) -> Callable[[_F], _F]:
    """Decorate a typer command so that user errors print ``llp COMMAND: error: ...``
    on stderr and exit with their status instead of showing a traceback.

    User errors are :class:`CliError`, the knowledge base's
    :class:`~llp.store.KnowledgeBaseError` (unreadable file, unreachable server, newer
    schema) and :class:`~llp.store.ExchangeError` (a bad export file). Ctrl-C exits with
    130. Anything else is a bug and keeps its traceback.
    """

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            import typer

            from llp.store import ExchangeError, KnowledgeBaseError

            try:
                return fn(*args, **kwargs)
            except CliError as exc:
                if _debug():
                    raise
                typer.echo(f"llp {command}: error: {one_line(str(exc))}", err=True)
                raise typer.Exit(exc.exit_code) from None
            except (KnowledgeBaseError, ExchangeError) as exc:
                if _debug():
                    raise
                typer.echo(f"llp {command}: error: {one_line(str(exc))}", err=True)
                raise typer.Exit(EXIT_USER_ERROR) from None
            except KeyboardInterrupt as stop:
                if isinstance(stop, Terminated):
                    typer.echo(f"llp {command}: terminated", err=True)
                    raise typer.Exit(EXIT_TERMINATED) from None
                typer.echo(f"llp {command}: interrupted", err=True)
                raise typer.Exit(EXIT_INTERRUPTED) from None

        return wrapper  # type: ignore[return-value]

    return decorate


__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_NOTHING_USABLE",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USER_ERROR",
    "CliError",
    "Terminated",
    "exits_cleanly",
    "one_line",
]
