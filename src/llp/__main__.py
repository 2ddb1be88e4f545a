"""``python -m llp``: the ``llp`` command."""

from __future__ import annotations

from llp.cli import main

if __name__ == "__main__":
    main()
