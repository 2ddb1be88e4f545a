"""How long an ``llp`` process takes to end once its command is done.

Runs ``llp tune digits --budget 40 --no-report`` (after an untimed one that fits and
caches the prior's meta-model) in a fresh interpreter, ended two ways, alternately:

- ``main``: the command, then the interpreter's own exit (what the console script did
  before ``llp.cli.run``);
- ``run``: the console script's entry (:func:`llp.cli.run`): the command, the exit
  handlers, then ``os._exit``.

In each, an exit handler registered before llp is imported runs last and writes the
time; the teardown is from then until the process has ended (seen by this script). Also
reports how many objects the collector tracked at that point.

Run: ``python benchmarks/exit_teardown.py`` (``--repeats N``). Writes
``benchmarks/results/exit_teardown.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

PROBE = """
import atexit, gc, json, sys, time
def last():
    print(json.dumps({{"handlers_done": time.time(), "objects": len(gc.get_objects())}}),
          file=sys.stderr, flush=True)
atexit.register(last)
sys.argv = ["llp", *{argv!r}]
from llp.cli import {entry}
{entry}()
"""


def one(entry: str, argv: list[str], cwd: Path) -> dict[str, float]:
    env = {**os.environ, "LLP_CACHE_DIR": str(cwd / "cache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, entry=entry)],
        cwd=cwd, capture_output=True, text=True, env=env,
    )  # fmt: skip
    ended = time.time()
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    probe = json.loads(done.stderr.strip().splitlines()[-1])
    return {
        "wall": ended - started,
        "teardown": ended - probe["handlers_done"],
        "objects": probe["objects"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"main": [], "run": []}
    with tempfile.TemporaryDirectory() as scratch:
        cwd = Path(scratch)

        def tune(study: str) -> list[str]:
            return ["tune", "digits", "--budget", "40", "--storage", str(cwd / "kb.db"),
                    "--study", study, "--no-report", "--quiet"]  # fmt: skip

        one("main", tune("warm-up"), cwd)
        for i in range(args.repeats):
            for entry in ("main", "run"):
                runs[entry].append(one(entry, tune(f"{entry}-{i}"), cwd))
    result = {
        "command": "python benchmarks/exit_teardown.py " + " ".join(sys.argv[1:]),
        "runs": runs,
        "median_teardown_seconds": {
            entry: statistics.median(r["teardown"] for r in rs) for entry, rs in runs.items()
        },
        "median_wall_seconds": {
            entry: statistics.median(r["wall"] for r in rs) for entry, rs in runs.items()
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "exit_teardown.json").write_text(json.dumps(result, indent=1) + "\n")
    print("| ended by | teardown s (median) | whole command s (median) | objects tracked |")
    print("|---|---:|---:|---:|")
    for entry, rs in runs.items():
        print(
            f"| {entry} | {result['median_teardown_seconds'][entry]:.2f} | "
            f"{result['median_wall_seconds'][entry]:.2f} | "
            f"{int(statistics.median(r['objects'] for r in rs)):,} |"
        )


if __name__ == "__main__":
    main()
