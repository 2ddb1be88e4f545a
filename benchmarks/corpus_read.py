"""How long reading (parsing and checking) a shipped-knowledge file takes.

Every process that uses the shipped knowledge reads its file once (``llp predict``,
``llp tune``, MetaProbing): parsed, checked record by record, turned into meta-model
records. Times ``llp.knowledge.read_corpus(path, cache=False)`` on each file given
(default: the shipped corpus, and corpus v2 as far as it is built), ``--repeats`` times
after one warm-up read, and prints the median and the evaluations read per second.

Run: ``python benchmarks/corpus_read.py``; ``--json PATH`` writes the numbers. To compare
two versions of the reader, run it from each checkout (``PYTHONPATH=<checkout>/src``)
on the same files, one after the other.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from llp.knowledge import SHIPPED_CORPUS_PATH, read_corpus

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
    for path in files:
        corpus = read_corpus(path, cache=False)  # warm-up: imports, file cache
        n = len(corpus.experiences)
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            read_corpus(path, cache=False)
            seconds.append(time.perf_counter() - started)
        median = statistics.median(seconds)
        rows[str(path)] = {"evaluations": n, "median_seconds": median, "all_seconds": seconds}
        print(f"{path.name}: {n} evaluations, median {median:.3f} s ({n / median:,.0f} per s)")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
