"""How long reading (parsing and checking) a shipped-knowledge file takes.

Every process that uses the shipped knowledge reads its file once (``llp predict``,
``llp tune``, MetaProbing): parsed, checked record by record, turned into meta-model
records. Times ``llp.knowledge.read_corpus(path, cache=False)`` (parsing and checking
the file) on each file given (default: the shipped corpus and corpus v1), ``--repeats``
times after one warm-up read, and building the same corpus from its parsed copy on disk
(:mod:`llp.knowledge._parsed`, what a later process does; the copy goes to a scratch
folder), and prints the medians and the evaluations read per second.

Run: ``python benchmarks/corpus_read.py``; ``--json PATH`` writes the numbers. To compare
two versions of the reader, run it from each checkout (``PYTHONPATH=<checkout>/src``)
on the same files, one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from llp.knowledge import SHIPPED_CORPUS_PATH, _parsed, read_corpus
from llp.meta._cache import CACHE_ENV

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    files = args.files or [
        p for p in (Path(SHIPPED_CORPUS_PATH), RESULTS / "corpus-v1.jsonl.gz") if p.exists()
    ]
    rows = {}
    scratch = tempfile.TemporaryDirectory()
    os.environ[CACHE_ENV] = scratch.name
    for path in files:
        corpus = read_corpus(path, cache=False)  # warm-up: imports, file cache
        n = len(corpus.experiences)
        key = _parsed.file_key(path)
        _parsed.save(corpus, key)
        row: dict[str, object] = {"evaluations": n}
        for how, read in (
            ("parsed and checked", lambda p=path: read_corpus(p, cache=False)),
            ("from the parsed copy", lambda p=path: _parsed.load(p, _parsed.file_key(p))),
        ):
            seconds = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                held = read()
                seconds.append(time.perf_counter() - started)
                assert held is not None
                del held  # freed outside the timing: a process keeps what it read
            median = statistics.median(seconds)
            row[how] = {"median_seconds": median, "all_seconds": seconds}
            print(
                f"{path.name}, {how}: {n} evaluations, median {median:.3f} s "
                f"({n / median:,.0f} per s)"
            )
        rows[str(path)] = row
    scratch.cleanup()
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
