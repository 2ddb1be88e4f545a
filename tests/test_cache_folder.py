"""The cache folder's files: whole or absent, the least recently used dropped first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llp._cache import evict, write_atomic


def test_a_written_file_is_whole_and_only_the_most_recent_are_kept(tmp_path: Path) -> None:
    for i, name in enumerate(("a", "b", "c")):
        assert write_atomic(tmp_path / f"{name}.json", lambda h: h.write(b"{}"), keep=2)
        os.utime(tmp_path / f"{name}.json", (1000 + i, 1000 + i))
    (tmp_path / "other.npz").write_bytes(b"")  # another kind of file is not counted
    evict(tmp_path, 2, ".json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "c.json", "other.npz"]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_file_another_process_removed_meanwhile_fails_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.json").write_bytes(b"{}")
    real_stat = Path.stat

    def stat(path: Path, *args: object, **kwargs: object) -> os.stat_result:
        if path.name == "a.json":
            raise FileNotFoundError(path)
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "stat", stat)
    evict(tmp_path, 1, ".json")  # no error
    monkeypatch.undo()
    assert len(list(tmp_path.glob("*.json"))) == 2  # "a" was left to whoever removes it


def test_a_folder_that_cannot_be_written_returns_none(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    assert write_atomic(blocker / "x.json", lambda h: h.write(b"{}"), keep=1) is None
