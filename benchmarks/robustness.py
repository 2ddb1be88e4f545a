"""How many hostile inputs and failure scenarios llp was tried on, and how many it handled.

Runs the robustness suites of ``tests/`` and counts, per suite, the cases tried and the
cases handled: a case is handled when its test passes, i.e. the input was refused with one
clear line (or a clear exception through the API), nothing stored was changed or lost, no
traceback reached the user and no process was left behind, as each test checks. Skipped
cases (PostgreSQL without a server, a GPU-only path) are counted apart.

- ``tests/test_bad_inputs.py``: the catalogue of bad inputs, through the API and the CLI;
- ``tests/cli/test_errors.py``: user mistakes of every command, one line and exit 2;
- ``tests/store/test_hostile_exports.py``: export files with a hostile field, generated
  (``--examples`` of them, default 1,000);
- ``tests/store/test_exchange.py``, ``tests/store/test_decisions.py``,
  ``tests/store/test_migrations.py``, ``tests/store/test_opening.py``: imports all or
  nothing, bad records, migrations cut short, full disk and read-only stores;
- ``tests/cli/test_signals.py``, ``tests/test_crash_safety.py``: SIGTERM, two Ctrl-Cs,
  SIGKILL and concurrent writers, in child processes.

Run: ``python benchmarks/robustness.py`` (add ``source .ci/postgres.sh`` first to include
the PostgreSQL cases). Writes ``benchmarks/results/robustness.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "robustness.json"
SUITES = [
    "tests/test_bad_inputs.py",
    "tests/cli/test_errors.py",
    "tests/store/test_hostile_exports.py",
    "tests/store/test_exchange.py",
    "tests/store/test_decisions.py",
    "tests/store/test_migrations.py",
    "tests/store/test_opening.py",
    "tests/cli/test_signals.py",
    "tests/test_crash_safety.py",
]


class Tally:
    """A pytest plugin that counts outcomes per suite file."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)

    def pytest_runtest_logreport(self, report: Any) -> None:
        suite = report.nodeid.split("::")[0]
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.counts[suite][report.outcome] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="generated hostile export files")
    args = parser.parse_args()
    os.environ["LLP_HOSTILE_EXAMPLES"] = str(args.examples)
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    tally = Tally()
    started = time.perf_counter()
    code = pytest.main(["-q", "-p", "no:cacheprovider", *SUITES], plugins=[tally])
    seconds = time.perf_counter() - started
    rows = []
    for suite in SUITES:
        c = tally.counts.get(suite, Counter())
        tried = c["passed"] + c["failed"]
        rows.append(
            {"suite": suite, "tried": tried, "handled": c["passed"], "skipped": c["skipped"]}
        )
    total = {k: sum(r[k] for r in rows) for k in ("tried", "handled", "skipped")}
    report = {
        "command": "python benchmarks/robustness.py"
        + (f" --examples {args.examples}" if args.examples != 1000 else ""),
        "postgresql": bool(os.environ.get("LLP_TEST_POSTGRES_URL")),
        "hostile_export_examples": args.examples,
        "wall_seconds": seconds,
        "suites": rows,
        "total": total,
        "pytest_exit_code": int(code),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print("\n| suite | tried | handled | skipped |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['suite']} | {r['tried']} | {r['handled']} | {r['skipped']} |")
    print(f"| **all** | {total['tried']} | {total['handled']} | {total['skipped']} |")
    print(f"\n{seconds:.0f} s; the hostile-export suite generated {args.examples} files")
    print(f"Wrote {RESULTS}")


if __name__ == "__main__":
    main()
