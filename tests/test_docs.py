"""Every example in the README and in examples/ runs as written (smoke tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("index", range(len(readme_python_blocks())))
def test_readme_python_examples_run(index: int, monkeypatch, tmp_path) -> None:
    code = readme_python_blocks()[index]
    # As a user would run it, in a folder of their own: its knowledge base (a relative
    # path) must not be one a developer's earlier runs left in the checkout.
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    exec(compile(code, f"README.md[python block {index}]", "exec"), namespace)


@pytest.mark.slow
def test_digits_example_runs_and_reports_its_figures() -> None:
    out = subprocess.run(
        [sys.executable, "examples/digits_mlp.py", "--n-configs", "8", "--epochs", "3", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    for expected in ("best configuration:", "validation accuracy", "budget spent", "test accuracy"):
        assert expected in out
    accuracy = float(re.search(r"test accuracy\s+: ([0-9.]+)", out).group(1))
    assert accuracy > 0.5


@pytest.mark.slow
def test_meta_demo_runs_and_compares_with_successive_halving() -> None:
    out = subprocess.run(
        [sys.executable, "examples/meta_demo.py", "--epochs", "2", "--sh-configs", "4", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    for expected in ("| successive halving |", "| MetaProbing |", "MetaProbing's prior"):
        assert expected in out
