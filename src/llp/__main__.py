"""``python -m llp``: the ``llp`` command."""

from __future__ import annotations

from llp.cli import run

if __name__ == "__main__":
    run()
