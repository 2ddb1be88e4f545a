"""The command-line examples of the documentation run as written (smoke tests).

Each document is replayed from top to bottom in a fresh folder: ``console`` blocks run
their ``$ llp ...`` lines through typer's test runner (each must exit 0), ``python``
blocks are executed, and a ``toml`` block whose first line is ``# NAME`` is written to the
file NAME. Other blocks (expected output, errors shown on purpose) are text.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.cli.conftest import invoke

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", "docs/tutorial.md"]
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def needs_missing_shipped_knowledge(code: str) -> bool:
    """A block that builds a MetaProbing with the default prior needs the shipped
    knowledge, which another change installs; until then the block is skipped."""
    from llp.knowledge import SHIPPED_CORPUS_PATH

    return "MetaProbing(" in code and "prior=" not in code and not SHIPPED_CORPUS_PATH.exists()


@pytest.mark.slow
def test_documented_commands_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README first, then the tutorial, in one folder, as a new user would follow them:
    their study names and files must not collide."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLP_STORAGE", raising=False)
    for document in DOCUMENTS:
        ran = 0
        text = (ROOT / document).read_text(encoding="utf-8")
        for kind, body in BLOCK.findall(text):
            if kind == "console":
                for line in body.splitlines():
                    if not line.startswith("$ llp "):
                        continue
                    result = invoke(shlex.split(line[len("$ llp ") :]))
                    assert result.exit_code == 0, f"{document}: {line}\n{result.output}"
                    ran += 1
            elif kind == "python" and document != "README.md":  # tests/test_docs.py runs those
                if needs_missing_shipped_knowledge(body):
                    continue
                exec(compile(body, f"{document} (python block)", "exec"), {"__name__": "__docs__"})
                ran += 1
            elif kind == "toml" and body.startswith("# "):
                name = body.splitlines()[0][2:].strip()
                (tmp_path / name).write_text(body, encoding="utf-8")
        assert ran > 0, document
