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
  SIGKILL and concurrent writers, in child processes;
- the robustness cases of other suites (:data:`CASES`: hostile names printed, imports
  that would replace or poison what is stored, a full disk, races between processes,
  memory, workers of a killed driver, API misuse).

Then the memory cases (``--memory-only`` runs just these): small hostile files, each
under 1 MB on disk, given to ``llp tune`` (data files) or ``llp kb import`` (an export)
in a child process whose peak resident memory is read back (``ru_maxrss`` of its own
waiting parent). Goal: none above 4 GB, each
either tuned or refused with one line (exit 2).

Run: ``python benchmarks/robustness.py`` (add ``source .ci/postgres.sh`` first to include
the PostgreSQL cases). Writes ``benchmarks/results/robustness.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
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
#: The robustness cases that live in other suites (hostile names, imports that would
#: replace or poison what is stored, a full disk, races, memory, dead drivers, API misuse).
CASES = [
    "tests/cli/test_kb.py::test_hostile_names_and_reasons_print_as_inert_text",
    "tests/cli/test_kb.py::test_an_import_never_replaces_a_stored_dataset",
    "tests/cli/test_kb.py::test_import_validates_every_record_and_writes_nothing_when_one_is_wrong",
    "tests/cli/test_kb.py::test_a_parquet_study_column_of_another_type_is_a_one_line_error",
    "tests/cli/test_tune.py::test_a_full_disk_mid_study_is_one_line_with_what_is_stored_and_how_to_resume",
    "tests/cli/test_tune.py::test_a_real_full_disk_mid_study_is_one_line_and_the_store_stays_readable",
    "tests/cli/test_tune.py::test_two_runs_taking_the_same_default_name_at_once_get_the_documented_suffix",
    "tests/cli/test_tune.py::test_a_study_another_process_is_running_is_refused_before_training",
    "tests/cli/test_tune.py::test_an_identifier_column_is_left_out_with_a_note_instead_of_exhausting_memory",
    "tests/cli/test_tune.py::test_tune_names_the_earlier_studies_that_predict_it_inertly",
    "tests/cli/test_predict.py::test_predict_answers_past_a_stored_row_float32_cannot_hold_and_says_so",
    "tests/report/test_report.py::test_a_report_folder_that_cannot_be_made_is_a_one_line_error",
    "tests/report/test_report.py::test_a_damaged_data_recipe_costs_the_slices_not_the_report",
    "tests/features/test_fingerprint.py::test_an_endless_train_loader_is_refused",
    "tests/features/test_fingerprint.py::test_batches_of_different_widths_or_lengths_name_the_loader",
    "tests/executors/test_executors.py::test_workers_of_a_killed_driver_exit_within_seconds",
    "tests/store/test_knowledge_base.py::test_values_an_import_would_refuse_are_refused_by_the_api_too",
    "tests/meta/test_meta_trainer.py::test_rows_beyond_float32_are_skipped_and_counted_not_fatal",
    "tests/training/test_trainer.py::test_trainer_argument_errors",
]


class Tally:
    """A pytest plugin that counts outcomes per suite file."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)

    def pytest_runtest_logreport(self, report: Any) -> None:
        suite = report.nodeid.split("::")[0]
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.counts[suite][report.outcome] += 1


#: Peak resident memory no hostile input under 1 MB may drive ``llp tune`` above.
GOAL_RSS_BYTES = 4 * 2**30

#: Prints the peak resident memory of the command it runs (a child of its own, so the
#: maximum is that command's alone), after the command's own output.
_PEAK_OF = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
    "print(done.returncode, peak)\n"
    "print(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '')\n"
)


def _npz_bomb(path: Path, gib: float) -> None:
    """An NPZ whose ``X`` (zeros, float64) decompresses to ``gib`` GiB, written in chunks
    so this process never holds it."""
    columns = 16
    rows = int(gib * 2**30 / 8 / columns)
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, columns)))
    header["shape"] = (rows, columns)
    chunk = np.zeros((2**16, columns)).tobytes()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("X.npy", "w", force_zip64=True) as out:
            np.lib.format.write_array_header_1_0(out, header)
            for start in range(0, rows, 2**16):
                out.write(chunk[: min(2**16, rows - start) * columns * 8])
        np.lib.format.write_array(archive.open("y.npy", "w"), np.zeros(rows % 100 + 10))


def _parquet_bomb(path: Path, rows: int) -> None:
    """A Parquet file of ``rows`` constant rows: a few KB on disk, ``rows`` x 16 bytes in
    memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    block = pa.table({"x": np.zeros(2**20), "label": np.zeros(2**20, dtype=np.int64)})
    with pq.ParquetWriter(path, block.schema, compression="zstd") as writer:
        for _ in range(rows // 2**20):
            writer.write_table(block)


def _export_bomb(path: Path, folder: Path, gib: float) -> None:
    """A real llp export (Parquet) of a small study whose first evaluation's reason is
    ``gib`` GiB of one letter: a few KB on disk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    storage = folder / "source.db"
    subprocess.run(
        [sys.executable, "-m", "llp", "tune", "iris", "--budget", "3", "--epochs", "1",
         "--prior", "none", "--no-report", "--quiet", "--storage", str(storage)],
        check=True, capture_output=True, cwd=folder,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "llp", "kb", "export", str(path), "--storage", str(storage)],
        check=True, capture_output=True, cwd=folder,
    )  # fmt: skip
    table = pq.read_table(path)
    reasons = table.column("reason").to_pylist()
    reasons[0] = "x" * int(gib * 2**30)
    index = table.column_names.index("reason")
    table = table.set_column(index, "reason", pa.array(reasons, pa.large_string()))
    pq.write_table(table, path, compression="zstd")


def hostile_files(folder: Path) -> dict[str, tuple[Path, list[str]]]:
    """The memory cases: name -> (file, ``llp`` arguments before the file; ``llp tune``
    when empty)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 30_000
    files: dict[str, tuple[Path, list[str]]] = {}
    frame = pd.DataFrame(
        {
            "id": [f"{v:012x}" for v in rng.integers(0, 2**48, n)],
            "a": rng.integers(0, 9, n),
            "b": rng.integers(0, 9, n),
            "label": rng.integers(0, 3, n),
        }
    )
    files["30,000 rows, a unique text id column"] = (folder / "ids.csv", [])
    frame.to_csv(files["30,000 rows, a unique text id column"][0], index=False)
    frame["id2"] = frame["id"].str[::-1]
    files["30,000 rows, two unique text columns"] = (folder / "ids2.csv", [])
    frame.to_csv(files["30,000 rows, two unique text columns"][0], index=False)
    per_row = pd.DataFrame({"a": rng.integers(0, 9, n), "label": np.arange(n)})
    files["30,000 rows, a class per row"] = (folder / "classes.csv", [])
    per_row.to_csv(files["30,000 rows, a class per row"][0], index=False)
    wide = pd.DataFrame(rng.integers(0, 2, (6, 50_000)), columns=[f"c{i}" for i in range(50_000)])
    wide["label"] = [0, 1, 0, 1, 0, 1]
    files["6 rows x 50,000 columns"] = (folder / "wide.csv", [])
    wide.to_csv(files["6 rows x 50,000 columns"][0], index=False)
    files["NPZ that decompresses to 1 GB"] = (folder / "bomb.npz", [])
    _npz_bomb(files["NPZ that decompresses to 1 GB"][0], 0.93)
    files["Parquet of 2^26 constant rows (1 GiB in memory)"] = (folder / "bomb.parquet", [])
    _parquet_bomb(files["Parquet of 2^26 constant rows (1 GiB in memory)"][0], 2**26)
    name = "llp kb import: a Parquet export holding a 1 GiB text"
    files[name] = (folder / "export.parquet", ["kb", "import"])
    _export_bomb(files[name][0], folder, 1.0)
    return files


def measure_memory() -> list[dict[str, Any]]:
    """Peak RSS of ``llp tune`` (a budget of 3 full-data epochs) or ``llp kb import`` on
    each hostile file."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, (path, verb) in hostile_files(folder).items():
            command = (
                [sys.executable, "-m", "llp", *verb, str(path)]
                if verb
                else [sys.executable, "-m", "llp", "tune", str(path), "--target", "label",
                      "--budget", "3", "--epochs", "2", "--no-report", "--quiet"]
            ) + ["--storage", str(folder / f"{path.stem}.db")]  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", _PEAK_OF, *command],
                capture_output=True, text=True, check=True, cwd=folder,
            )  # fmt: skip
            code, peak = map(int, done.stdout.splitlines()[0].split())
            last = done.stdout.splitlines()[1] if len(done.stdout.splitlines()) > 1 else ""
            rows.append(
                {
                    "case": name,
                    "file_bytes": path.stat().st_size,
                    "exit_code": code,
                    "peak_rss_bytes": peak,
                    "seconds": time.perf_counter() - started,
                    "last_stderr_line": last,
                    "handled": code in (0, 2) and peak < GOAL_RSS_BYTES and "Traceback" not in last,
                }
            )
            print(f"{name}: exit {code}, peak {peak / 2**20:,.0f} MiB  {last[:120]}", flush=True)
    return rows


def print_memory(memory: list[dict[str, Any]]) -> None:
    print("\n| hostile file (under 1 MB) | KB on disk | exit | peak RSS MiB | handled |")
    print("|---|---:|---:|---:|---|")
    for r in memory:
        print(
            f"| {r['case']} | {r['file_bytes'] / 1000:,.0f} | {r['exit_code']} | "
            f"{r['peak_rss_bytes'] / 2**20:,.0f} | {'yes' if r['handled'] else 'NO'} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="generated hostile export files")
    parser.add_argument("--memory-only", action="store_true", help="only the memory cases")
    args = parser.parse_args()
    if args.memory_only:
        memory = measure_memory()
        previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        previous["memory"] = memory
        RESULTS.write_text(json.dumps(previous, indent=2) + "\n")
        print_memory(memory)
        return
    os.environ["LLP_HOSTILE_EXAMPLES"] = str(args.examples)
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    tally = Tally()
    started = time.perf_counter()
    code = pytest.main(["-q", "-p", "no:cacheprovider", *SUITES, *CASES], plugins=[tally])
    seconds = time.perf_counter() - started
    rows = []
    for suite in dict.fromkeys([*SUITES, *(case.split("::")[0] for case in CASES)]):
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
        "memory": measure_memory(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print("\n| suite | tried | handled | skipped |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['suite']} | {r['tried']} | {r['handled']} | {r['skipped']} |")
    print(f"| **all** | {total['tried']} | {total['handled']} | {total['skipped']} |")
    print(f"\n{seconds:.0f} s; the hostile-export suite generated {args.examples} files")
    print_memory(report["memory"])
    print(f"Wrote {RESULTS}")


if __name__ == "__main__":
    main()
