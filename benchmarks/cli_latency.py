"""How long the command line makes a person wait, next to the search it runs.

Every command runs in a fresh interpreter (what the ``llp`` script does, as a user types
it) in a scratch folder, several times; the median wall time is reported:

- ``import``: ``python -c "import llp.cli"``;
- first errors: ``llp tune missing.csv`` (a missing file) and ``llp report nosuch``
  (an unknown study);
- ``llp predict iris``, first with an empty cache of fitted meta-models (it fits them and
  writes them to the cache) and then as it runs afterwards (it reads them back), also
  timed inside the interpreter once PyTorch, scikit-learn and llp are imported, as is
  ``llp predict digits`` (the issue's example);
- whole ``llp tune digits`` commands (each its own study, its report included: what a
  user waits for), after an untimed one that fits and caches the prior's meta-model,
  with the search's and the report's own seconds from its ``--json``;
  then ``llp report`` on the first study: the study's first (it refits the feature
  importances), later ones (importances kept; the landscape slices' models from the
  weights the search kept), with ``--retrain`` (the slices' models trained again),
  without the slices (``--no-landscape``: the importances kept by the first report, and
  refitted, as a first report does), and without the importances (``--no-meta``).

Commands run as the console script does (``python -m llp``: :func:`llp.cli.run`), with
llp's bytecode written once and read back, as an installed package has it.

Goals from the issue that asked for it: an error in < 1.5 s, ``llp predict`` < 2 s
warm, the report < 25 % of the search's wall time with the slices, < 2 s without.

Run: ``python benchmarks/cli_latency.py`` (``--repeats N``). Writes
``benchmarks/results/cli_latency.json`` (``--name`` for another name in that folder) and
prints a markdown table.

``--baseline SRC`` (the ``src`` folder of another checkout, e.g. one made with ``git
worktree add /tmp/base REV``) also times the whole ``llp tune``, ``llp report`` (slices
from kept weights), ``llp report --no-landscape`` and ``llp predict ... after imports``
with that code, each repeat right after the current code's, and reports the median ratio
current / baseline of each: on a shared machine whose speed drifts from hour to hour,
that ratio is what a change is judged by. Both use the same cache folder and knowledge
base, so the baseline must read the current code's files (checked for ``llp predict``:
its answer must match).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def timed(
    args: list[str], cwd: Path, *, expect: int = 0, source: str | None = None
) -> tuple[float, str]:
    """Wall seconds of one command in a fresh interpreter, and its stdout. The cache of
    fitted meta-models is the scratch folder's own (never the user's). ``source``: a
    folder to import llp from instead of the installed one."""
    env = {**os.environ, "LLP_CACHE_DIR": str(cwd / "meta-model-cache")}
    # As an installed package runs: its modules' bytecode written once and read back
    # (with PYTHONDONTWRITEBYTECODE set, every run compiled llp's modules again).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if source is not None:
        env["PYTHONPATH"] = source
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != expect:
        raise RuntimeError(f"{args} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, done.stdout


#: Imports what ``llp predict`` needs, then times the command in the same interpreter.
AFTER_IMPORTS = """
import contextlib, io, json, sys, time
import sklearn.datasets, sklearn.ensemble, torch
import llp.cli._data, llp.cli._predict, llp.features, llp.knowledge, llp.meta, llp.store
from llp.cli import main
sys.argv = {argv!r} + ["--json"]
started = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
    main()
seconds = time.perf_counter() - started
print(seconds, json.dumps(json.loads(out.getvalue())["recommendations"]))
"""


def median_of(repeats: int, args: list[str], cwd: Path, *, expect: int = 0) -> list[float]:
    return [timed(args, cwd, expect=expect)[0] for _ in range(repeats)]


def paired(
    rows: dict[str, list[float]],
    row: str,
    repeats: int,
    command: Callable[[int], list[str]],
    cwd: Path,
    baseline: str | None,
) -> list[str]:
    """Time ``command(2 i)`` for i < ``repeats`` (row ``row``), each right before
    ``command(2 i + 1)`` with the baseline's code (row ``row + ", baseline"``) when there
    is one; returns the current code's outputs."""
    outputs = []
    for i in range(repeats):
        seconds, out = timed(command(2 * i), cwd)
        rows.setdefault(row, []).append(seconds)
        outputs.append(out)
        if baseline is not None:
            rows.setdefault(f"{row}, baseline", []).append(
                timed(command(2 * i + 1), cwd, source=baseline)[0]
            )
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=40.0)
    parser.add_argument(
        "--name", default="cli_latency", help="the results file's name in benchmarks/results"
    )
    parser.add_argument(
        "--baseline",
        help="another checkout's src folder: time the warm llp predict with it too",
    )
    args = parser.parse_args()
    # The console script's own entry (``python -m llp`` runs it): the command, then the
    # process ends without the interpreter's teardown (``llp.cli.run``).
    llp = [sys.executable, "-m", "llp"]
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        cwd = Path(scratch)
        storage = cwd / "kb.db"
        rows["import llp.cli"] = median_of(
            args.repeats, [sys.executable, "-c", "import llp.cli"], cwd
        )
        rows["error: llp tune missing.csv"] = median_of(
            args.repeats, [*llp, "tune", "missing.csv"], cwd, expect=2
        )

        # Whole `llp tune` commands, each its own study, report included; the first
        # ("latency") is the study the reports below are made of.
        # Untimed: fits and caches the prior's meta-model (and writes the bytecode), so
        # that every timed study below, the baseline's too, starts as a user's later ones do.
        timed([*llp, "tune", "digits", "--budget", str(args.budget), "--storage",
               str(storage), "--study", "warm-up", "--no-report", "--quiet"], cwd)  # fmt: skip

        def tune(i: int) -> list[str]:
            study = "latency" if i == 0 else f"latency-{i}"
            return [*llp, "tune", "digits", "--budget", str(args.budget),
                    "--storage", str(storage), "--study", study, "--json", "--quiet",
                    "--report-dir", str(cwd / f"tune-report-{i}")]  # fmt: skip

        row = "llp tune digits, the whole command (its report included)"
        tunes = [
            json.loads(out) for out in paired(rows, row, args.repeats, tune, cwd, args.baseline)
        ]
        rows["error: llp report nosuch"] = median_of(
            args.repeats, [*llp, "report", "nosuch", "--storage", str(storage)], cwd, expect=2
        )
        predict = [*llp, "predict", "iris", "--storage", str(storage), "--quiet"]
        rows["llp predict iris (fits the meta-model)"] = [timed(predict, cwd)[0]]
        rows["llp predict iris (meta-model from the cache)"] = median_of(args.repeats, predict, cwd)
        # The same, timed inside one interpreter after everything it needs is imported;
        # digits is the issue's own example (its meta-model fitted once, untimed).
        timed([*llp, "predict", "digits", "--storage", str(storage), "--quiet"], cwd)
        for name in ("iris", "digits"):
            after_imports = [
                sys.executable,
                "-c",
                AFTER_IMPORTS.format(argv=["llp", "predict", name, "--storage", str(storage)]),
            ]
            row = f"llp predict {name} after imports (cached meta-model)"
            rows[row] = []
            if args.baseline is not None:  # whatever it writes to the cache, untimed
                timed(after_imports, cwd, source=args.baseline)
            for _ in range(args.repeats):
                seconds, answer = timed(after_imports, cwd)[1].split(" ", 1)
                rows[row].append(float(seconds))
                if args.baseline is not None:
                    before, answered = timed(after_imports, cwd, source=args.baseline)[1].split(
                        " ", 1
                    )
                    if answered != answer:
                        raise RuntimeError(f"the baseline recommends otherwise for {name}")
                    rows.setdefault(f"{row}, baseline", []).append(float(before))
        report = [*llp, "report", "latency", "--storage", str(storage), "--quiet"]
        full = [*report, "--out", str(cwd / "r1")]
        # The study's first report refits the importances; the slices' models come from
        # the weights the search kept. Later reports read the importances back.
        rows["llp report, the study's first"] = [timed(full, cwd)[0]]
        paired(rows, "llp report (slices from kept weights)", args.repeats, lambda _: full, cwd,
               args.baseline)  # fmt: skip
        rows["llp report --retrain"] = median_of(
            max(1, args.repeats // 2), [*full, "--retrain"], cwd
        )
        no_landscape = [*report, "--out", str(cwd / "r2"), "--no-landscape"]
        paired(rows, "llp report --no-landscape", args.repeats, lambda _: no_landscape, cwd,
               args.baseline)  # fmt: skip
        # The same without the feature importances an earlier report kept: the refit.
        kept = cwd / "meta-model-cache" / "importances"
        rows["llp report --no-landscape, importances refitted"] = []
        for _ in range(args.repeats):
            shutil.rmtree(kept, ignore_errors=True)
            rows["llp report --no-landscape, importances refitted"].append(
                timed(no_landscape, cwd)[0]
            )
        rows["llp report --no-landscape --no-meta"] = median_of(
            args.repeats, [*report, "--out", str(cwd / "r3"), "--no-landscape", "--no-meta"], cwd
        )
    search = statistics.median(t["search_seconds"] for t in tunes)
    table = {name: statistics.median(times) for name, times in rows.items()}
    result = {
        "command": "python benchmarks/cli_latency.py " + " ".join(sys.argv[1:]),
        "python": platform.python_version(),
        "repeats": args.repeats,
        "budget": args.budget,
        "search_seconds": search,
        "median_seconds": table,
        "all_seconds": rows,
        "baseline": args.baseline,
        "report_share_of_search": table["llp report (slices from kept weights)"] / search,
        # Inside `llp tune`, where the imports and the prior are already paid for.
        "tune_search_seconds": [t["search_seconds"] for t in tunes],
        "tune_report_seconds": [t["report_seconds"] for t in tunes],
        "report_in_tune_share_of_search": statistics.median(
            t["report_seconds"] / t["search_seconds"] for t in tunes
        ),
        "ratio_to_baseline": {
            name: statistics.median(
                now / before for now, before in zip(times, rows[f"{name}, baseline"], strict=True)
            )
            for name, times in rows.items()
            if f"{name}, baseline" in rows
        },
        "retrain_share_of_search": table["llp report --retrain"] / search,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    print("| command | median wall s |")
    print("|---|---:|")
    for name, seconds in table.items():
        print(f"| {name} | {seconds:.2f} |")
    for name, ratio in result["ratio_to_baseline"].items():
        print(f"| {name}: current / baseline, median of the pairs | {ratio:.2f} |")
    tune = f"`llp tune digits --budget {args.budget:g}`"
    print(f"| (the search inside {tune}, median) | {search:.2f} |")
    print(
        f"\nreport / search: {result['report_share_of_search']:.0%} (slices from kept weights), "
        f"{result['retrain_share_of_search']:.0%} (--retrain); inside llp tune "
        f"{result['report_in_tune_share_of_search']:.0%} (median of {len(tunes)})"
    )


if __name__ == "__main__":
    main()
