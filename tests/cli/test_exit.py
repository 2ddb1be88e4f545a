"""How the ``llp`` process ends: :func:`llp.cli.run` (the console script) skips the
interpreter's teardown but nothing a command or a library registered to run at exit, and
keeps the status."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llp.store import KnowledgeBase


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(("code", "status"), [("None", 0), ("0", 0), ("3", 3), ("130", 130)])
def test_leave_runs_the_exit_handlers_flushes_and_keeps_the_status(code: str, status: int) -> None:
    done = python(
        f"""
        import atexit, weakref
        from llp.cli._app import leave
        class Thing: pass
        thing = Thing()
        weakref.finalize(thing, print, "finalizer ran")
        atexit.register(print, "handler ran")
        print("written before", end="")  # no newline: still in the buffer
        leave({code})
        print("never")
        """
    )
    assert done.returncode == status, done.stderr
    assert done.stdout.startswith("written before")
    assert "handler ran" in done.stdout and "finalizer ran" in done.stdout
    assert "never" not in done.stdout


def test_leave_with_a_message_prints_it_and_exits_1() -> None:
    done = python("from llp.cli._app import leave; leave('llp: something went wrong')")
    assert done.returncode == 1
    assert done.stderr.strip() == "llp: something went wrong"


@pytest.mark.parametrize(("code", "status"), [("0", 120), ("3", 3)])
def test_leave_after_the_reader_has_gone_exits_as_the_interpreter_would(
    code: str, status: int
) -> None:
    # The reader closes the pipe before the command's output is flushed (`llp ... |
    # head`): the interpreter's own exit reports that as status 120, a command's own
    # error status is kept.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from llp.cli._app import leave; print('x' * 100, end=''); leave({code})",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Buffered, as a pipe's output is by default: the flush is what fails.
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    assert child.wait(timeout=120) == status
    child.stderr.close()


def test_leave_lets_the_interpreter_join_a_running_thread() -> None:
    done = python(
        """
        import threading, time
        from llp.cli._app import leave
        def work():
            time.sleep(0.3)
            print("thread finished", flush=True)
        threading.Thread(target=work).start()
        leave(4)
        """
    )
    assert done.returncode == 4
    assert "thread finished" in done.stdout


def test_the_command_line_exits_with_its_status_and_its_output(tmp_path: Path) -> None:
    storage = tmp_path / "kb.db"
    with KnowledgeBase.open(storage):
        pass
    listing = subprocess.run(
        [sys.executable, "-m", "llp", "kb", "list", "--storage", str(storage), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.rstrip().endswith("}")  # the whole JSON document came out
    missing = subprocess.run(
        [sys.executable, "-m", "llp", "report", "nosuch", "--storage", str(storage)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2
    assert "nosuch" in missing.stderr and "Traceback" not in missing.stderr


def test_the_console_script_is_run() -> None:
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "llp"]
    assert script.value == "llp.cli:run"
