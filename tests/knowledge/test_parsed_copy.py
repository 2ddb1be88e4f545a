"""The parsed copy of a knowledge file (:mod:`llp.knowledge._parsed`): a later process
builds the same corpus from it without parsing the file, and a damaged or foreign copy is
never trusted."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llp.knowledge import _corpus, _parsed, read_corpus
from llp.knowledge._corpus import Corpus
from llp.meta._cache import CACHE_ENV


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's own cache folder, and a process-wide memory that forgets."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    _corpus._read_cached.cache_clear()
    yield folder / "corpora"
    _corpus._read_cached.cache_clear()


def _same(a: Corpus, b: Corpus) -> None:
    # repr, not ==: NaN losses are equal in what was stored, not as floats.
    assert repr(a.experiences) == repr(b.experiences)
    assert dict(a.header) == dict(b.header)
    assert a.datasets == b.datasets
    assert a.space.to_dict() == b.space.to_dict()
    assert a.path == b.path


def _new_process() -> None:
    """What a new process starts with: nothing parsed in memory."""
    _corpus._read_cached.cache_clear()


def _no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object) -> Corpus:
        raise AssertionError("the knowledge file was parsed again")

    monkeypatch.setattr(_corpus._Reader, "read", refuse)


def test_a_later_process_builds_the_same_corpus_without_parsing_the_file(
    make_corpus_file: Callable[..., Path], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_corpus_file(datasets=3, configs=4)
    parsed = read_corpus(path, cache=False)
    first = read_corpus(path)
    _same(first, parsed)
    assert len(list(cache.glob("*.npz"))) == 1
    _new_process()
    _no_parsing(monkeypatch)
    again = read_corpus(path)
    assert again is not first
    _same(again, parsed)
    # What the synthetic corpus holds is all there: failures, NaN, landscapes.
    results = [e.result for e in again.experiences]
    assert any(r.failure_reason for r in results)
    assert any(r.landscape for r in results)
    # One read-only view per configuration and per dataset, as the reader shares them.
    assert len({id(r.config) for r in results}) == len(
        {id(r.config) for r in (e.result for e in parsed.experiences)}
    )


def test_a_changed_knowledge_file_is_parsed_again(
    make_corpus_file: Callable[..., Path], cache: Path
) -> None:
    path = make_corpus_file()
    read_corpus(path)
    make_corpus_file(datasets=3)  # the same path, other bytes
    _new_process()
    assert len(read_corpus(path).datasets) == 3
    assert len(list(cache.glob("*.npz"))) == 2


def _set(index: int, value: float) -> Callable[[np.ndarray], np.ndarray]:
    def change(array: np.ndarray) -> np.ndarray:
        array = array.copy()
        array[index] = value
        return array

    return change


def _meta(change: Callable[[dict[str, Any]], None]) -> Callable[[np.ndarray], np.ndarray]:
    def edit(stored: np.ndarray) -> np.ndarray:
        meta = json.loads(str(stored))
        change(meta)
        return np.array(json.dumps(meta))

    return edit


#: Damage to one array of a parsed copy: (array name, how it is changed).
DAMAGE: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "config-index-out-of-range": ("config", _set(0, 10_000)),
    "curve-too-short": ("train_loss", lambda a: a[:-1]),
    "wrong-type": ("seed", lambda a: a.astype(np.float64)),
    "accuracy-of-17": ("score", _set(0, 17.0)),
    "infinite-cost": ("cost", _set(-1, np.inf)),
    "config-not-in-the-space": ("meta", _meta(lambda m: m["configs"][0].update(lr=1e9))),
    "dataset-index-negative": ("meta", _meta(lambda m: m["studies"][0].__setitem__(1, -1))),
    # What the records' constructors check, checked for them (the copy skips them).
    "complete-without-a-score": ("score_none", np.ones_like),
    "failed-without-a-reason": ("meta", _meta(lambda m: m["failures"].clear())),
    "landscape-as-text": (
        "meta",
        _meta(lambda m: next(iter(m["landscapes"].values())).update(landscape_loss="0.1")),
    ),
}


@pytest.mark.parametrize("damage", ["truncated", "not-a-zip", *DAMAGE, "other-key"])
def test_a_damaged_or_foreign_copy_is_ignored_and_replaced(
    make_corpus_file: Callable[..., Path], cache: Path, damage: str
) -> None:
    path = make_corpus_file()
    parsed = read_corpus(path, cache=False)
    read_corpus(path)
    (stored,) = cache.glob("*.npz")
    if damage == "truncated":
        stored.write_bytes(stored.read_bytes()[: stored.stat().st_size // 2])
    elif damage == "not-a-zip":
        stored.write_bytes(b"#!/bin/sh\nrm -rf /\n")
    elif damage in DAMAGE:
        name, change = DAMAGE[damage]
        with np.load(stored, allow_pickle=False) as npz:
            arrays = {n: npz[n] for n in npz.files}
        arrays[name] = change(arrays[name])
        with stored.open("wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
    else:  # another file's copy under this name
        other = make_corpus_file(datasets=3, name="other.jsonl.gz")
        _parsed.save(read_corpus(other, cache=False), "foreign")
        os.replace(cache / "foreign.npz", stored)
    assert _parsed.load(path, stored.stem) is None
    _new_process()
    _same(read_corpus(path), parsed)
    _new_process()
    assert _parsed.load(path, stored.stem) is not None  # replaced by a good copy


def test_no_copy_is_written_with_the_cache_turned_off(
    make_corpus_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, "")
    path = make_corpus_file()
    corpus = read_corpus(path, cache=False)
    assert _parsed.folder() is None
    assert _parsed.save(corpus, "key") is None
    assert _parsed.load(path, "key") is None


def test_an_unwritable_cache_folder_fails_nothing(
    make_corpus_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocked / "cache"))
    _corpus._read_cached.cache_clear()
    path = make_corpus_file()
    assert len(read_corpus(path).datasets) == 2
    _corpus._read_cached.cache_clear()


def test_only_the_most_recent_copies_are_kept(
    make_corpus_file: Callable[..., Path], cache: Path
) -> None:
    for n in range(_parsed.MAX_FILES + 2):
        path = make_corpus_file(datasets=2 + n, name=f"corpus-{n}.jsonl.gz")
        read_corpus(path)
        stored = cache / f"{_parsed.file_key(path)}.npz"
        os.utime(stored, (1_000_000 + n, 1_000_000 + n))  # a distinct use time each
    kept = sorted(p.stat().st_mtime for p in cache.glob("*.npz"))
    assert kept == [1_000_000 + n for n in range(2, _parsed.MAX_FILES + 2)]


def test_the_shipped_knowledge_comes_back_the_same_from_its_copy(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llp.knowledge import SHIPPED_CORPUS_PATH

    parsed = read_corpus(SHIPPED_CORPUS_PATH, cache=False)
    read_corpus(SHIPPED_CORPUS_PATH)
    _new_process()
    _no_parsing(monkeypatch)
    _same(read_corpus(SHIPPED_CORPUS_PATH), parsed)


def test_a_corpus_read_names_its_records_by_the_file_s_bytes(
    make_corpus_file: Callable[..., Path], cache: Path
) -> None:
    from llp.meta import _trainer

    path = make_corpus_file()
    for _ in range(2):  # parsed, then from the parsed copy
        _new_process()
        corpus = read_corpus(path)
        entries = [_trainer._NAMED[id(e)] for e in corpus.experiences]
        assert all(e is x for (e, _, _), x in zip(entries, corpus.experiences, strict=True))
        assert [p for _, _, p in entries] == list(range(len(corpus.experiences)))
        (source,) = {s for _, s, _ in entries}
        assert _trainer._NAMED_SOURCES[source] == f"knowledge-file/{_parsed.file_key(path)}"
