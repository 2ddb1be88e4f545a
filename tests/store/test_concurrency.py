"""Several processes writing one SQLite knowledge base at once."""

from __future__ import annotations

import multiprocessing as mp
import queue
from pathlib import Path

from llp.store import KnowledgeBase

from ._writers import write_study

N_PER_PROCESS = 200


def test_two_processes_writing_one_sqlite_file_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")  # does not exist yet: both race to create it
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    errors = ctx.Queue()
    workers = [
        ctx.Process(target=write_study, args=(path, name, N_PER_PROCESS, start, errors))
        for name in ("writer-a", "writer-b")
    ]
    for w in workers:
        w.start()
    try:
        for w in workers:
            w.join(timeout=120)
    finally:
        for w in workers:
            if w.is_alive():
                w.terminate()
                w.join()
    messages = []
    while True:
        try:
            messages.append(errors.get(timeout=0.1))
        except queue.Empty:
            break
    assert messages == [], "\n".join(messages)
    assert [w.exitcode for w in workers] == [0, 0]

    with KnowledgeBase.open(path) as kb:
        assert kb.counts() == {
            "datasets": 1,
            "studies": 2,
            "trials": 2 * N_PER_PROCESS,
            "evaluations": 2 * N_PER_PROCESS,
        }
        for name in ("writer-a", "writer-b"):
            numbers = sorted(e.trial_number for e in kb.evaluations(study=name))
            assert numbers == list(range(N_PER_PROCESS))
