"""Opening a knowledge base: accepted storage forms, and refusing what is not one."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llp.store import KnowledgeBase, KnowledgeBaseError
from llp.training import EvaluationResult

MakeResult = Callable[..., EvaluationResult]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` with its bytes: to show that nothing was written."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def filled_knowledge_base(path: Path, make_result: MakeResult, n: int = 60) -> None:
    """A real knowledge base spanning many pages, checkpointed into the main file."""
    with KnowledgeBase.open(path) as kb:
        study = kb.get_or_create_study(
            "s", scheduler="SH", settings={}, space=None, seed=0, objective="val_accuracy"
        )
        for i in range(n):
            r = make_result({"i": i}, traceback="x" * 500, failed=True)
            kb.record_evaluation(study.id, trial_number=i, config=r.config, result=r)
    assert not Path(f"{path}-wal").exists()  # closing the last connection checkpoints


# ---------------------------------------------------------------- accepted forms
def test_a_path_creates_the_file_and_its_folder_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "knowledge.db"
    with KnowledgeBase.open(path) as kb:
        assert kb.backend == "sqlite"
        assert kb.storage == str(path)
        assert repr(kb) == f"KnowledgeBase({str(path)!r})"
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["application"] == "llp"
    assert meta["schema_version"] == "3"
    assert meta["created_with"]


def test_a_sqlite_url_and_a_path_open_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    with KnowledgeBase.open(f"sqlite:///{path}") as kb:
        kb.upsert_dataset("fp")
    with KnowledgeBase.open(str(path)) as kb:
        assert kb.get_dataset("fp") is not None


def test_an_empty_file_becomes_a_knowledge_base(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with KnowledgeBase.open(path) as kb:
        assert kb.counts()["studies"] == 0


@pytest.mark.parametrize("storage", [None, ":memory:", "sqlite://", "sqlite:///:memory:"])
def test_in_memory_knowledge_bases_are_private_to_their_object(storage: str | None) -> None:
    with KnowledgeBase.open(storage) as first, KnowledgeBase.open(storage) as second:
        assert first.backend == "memory"
        first.upsert_dataset("fp")
        assert second.get_dataset("fp") is None
        assert first.get_dataset("fp") is not None


# ---------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    ("storage", "match"),
    [
        ("mysql://x", r"Got 'mysql://x' instead\.$"),
        ("foo://", r"Got 'foo://' instead\.$"),
        ("", r"Got '' instead"),
        (
            "postgresql+psycopg2://u:secret@h/db",
            r"Got 'postgresql\+psycopg2://u:\*\*\*@h/db' instead\. Only the psycopg \(v3\) "
            r"driver is supported",
        ),
        ("postgresql://u@h", r"must name a database in a PostgreSQL URL"),
        ("sqlite:///kb.db?mode=ro", r"does not accept query options on a SQLite URL"),
    ],
)
def test_a_bad_url_names_the_storage_parameter(storage: str, match: str) -> None:
    with pytest.raises(ValueError, match=r"The 'storage' parameter of KnowledgeBase.open") as info:
        KnowledgeBase.open(storage)
    assert "secret" not in str(info.value)
    assert info.match(match)


def test_the_accepted_forms_are_listed() -> None:
    with pytest.raises(
        ValueError,
        match=r"must be a filesystem path, 'sqlite:///path/to/file.db', ':memory:' or None "
        r"\(in-memory SQLite\), or a 'postgresql://user:password@host:port/dbname' or "
        r"'postgresql\+psycopg://...' URL",
    ):
        KnowledgeBase.open("mysql://x")


def test_a_storage_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(
        TypeError, match=r"The 'storage' parameter of KnowledgeBase.open .* Got int"
    ):
        KnowledgeBase.open(42)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match=r"it is a directory"):
        KnowledgeBase.open(tmp_path)


# ---------------------------------------------------------------- not a knowledge base
def test_random_bytes_are_refused_naming_the_path_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "random.db"
    path.write_bytes(os.urandom(8192))
    before = snapshot(tmp_path)
    with pytest.raises(
        KnowledgeBaseError,
        match=rf"Cannot open the knowledge base at '{path}': the file is not a SQLite database",
    ):
        KnowledgeBase.open(path)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "keep",
    [lambda size: size // 2, lambda size: size - 4096, lambda size: 3000, lambda size: 50],
    ids=["half", "one-page-short", "mid-page", "inside-header"],
)
def test_a_truncated_knowledge_base_is_refused_naming_the_path_and_left_untouched(
    tmp_path: Path, make_result: MakeResult, keep: Callable[[int], int]
) -> None:
    path = tmp_path / "kb.db"
    filled_knowledge_base(path, make_result)
    data = path.read_bytes()
    path.write_bytes(data[: keep(len(data))])
    before = snapshot(tmp_path)
    with pytest.raises(
        KnowledgeBaseError,
        match=rf"Cannot open the knowledge base at '{path}': .*(truncated|not a SQLite)",
    ):
        KnowledgeBase.open(path)
    assert snapshot(tmp_path) == before


def test_a_knowledge_base_with_garbage_pages_is_refused_naming_the_path(
    tmp_path: Path, make_result: MakeResult
) -> None:
    path = tmp_path / "kb.db"
    filled_knowledge_base(path, make_result)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = os.urandom(len(data) - page)  # keep page 1 (header and schema root)
    path.write_bytes(bytes(data))
    with pytest.raises(KnowledgeBaseError, match=rf"Cannot open the knowledge base at '{path}'"):
        KnowledgeBase.open(path)


def test_another_applications_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    before = snapshot(tmp_path)
    with pytest.raises(
        KnowledgeBaseError,
        match=rf"Cannot open the knowledge base at '{path}': it holds tables but no llp "
        "'meta' table",
    ):
        KnowledgeBase.open(path)
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- PostgreSQL without server
def test_an_unreachable_postgresql_server_is_a_clear_error() -> None:
    pytest.importorskip("psycopg")
    # Port 1 on localhost: nothing listens there, so the connection is refused at once.
    with pytest.raises(
        KnowledgeBaseError,
        match=r"Cannot open the PostgreSQL knowledge base "
        r"'postgresql\+psycopg://llp:\*\*\*@127.0.0.1:1/kb' \(.*Connection refused.*\)\. "
        r"Check that the server is "
        r"running and reachable",
    ) as info:
        KnowledgeBase.open("postgresql://llp:secret@127.0.0.1:1/kb")
    assert "secret" not in str(info.value)


def test_postgresql_without_psycopg_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail
    with pytest.raises(ImportError, match=r'pip install "llp\[postgres\]"'):
        KnowledgeBase.open("postgresql://llp:secret@127.0.0.1:1/kb")


def test_a_writer_kept_waiting_too_long_gets_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("llp.store._engines.BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "kb.db"
    with KnowledgeBase.open(path) as kb:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        try:
            with pytest.raises(KnowledgeBaseError, match=r"stayed locked by another writer"):
                kb.upsert_dataset("fp")
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert kb.counts()["datasets"] == 0
        kb.upsert_dataset("fp")  # and works once the lock is released


def test_a_short_file_with_a_write_ahead_log_beside_it_is_left_to_sqlite(
    tmp_path: Path, make_result: MakeResult
) -> None:
    """After a checkpoint cut short (a full disk), the main file can be shorter than its
    header says while the log holds the committed pages: the file check must not call
    that knowledge base corrupted (SQLite replays the log and decides)."""
    from llp.store._engines import check_sqlite_file

    path = tmp_path / "kb.db"
    filled_knowledge_base(path, make_result)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4096])
    with pytest.raises(KnowledgeBaseError, match="truncated"):
        check_sqlite_file(path)  # no log: truncated
    (tmp_path / "kb.db-wal").write_bytes(b"\0" * 32)
    check_sqlite_file(path)  # a log beside it: SQLite's call
    assert path.read_bytes() == data[: len(data) - 4096]  # and nothing was written


@pytest.mark.parametrize(
    ("pragma", "message"),
    [
        (
            "max_page_count = {pages}",
            r"cannot grow: the disk \(or the database's size limit\) is full \(database or "
            r"disk is full\)\. This write was not stored; everything written before it is "
            r"intact",
        ),
        ("query_only = ON", r"is read-only for this process \(attempt to write a readonly"),
    ],
)
def test_a_full_or_read_only_store_says_so_and_keeps_what_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pragma: str, message: str
) -> None:
    from sqlalchemy import event

    import llp.store._knowledge_base as knowledge_base

    path = tmp_path / "kb.db"
    with KnowledgeBase.open(path) as kb:
        kb.upsert_dataset("kept", meta_features={"a": 1.0})
    with sqlite3.connect(path) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    create = knowledge_base.create_store_engine

    def limited(storage: Any) -> Any:
        engine = create(storage)

        @event.listens_for(engine, "connect")
        def limit(dbapi_connection: Any, _: Any) -> None:
            dbapi_connection.execute(f"PRAGMA {pragma.format(pages=pages)}")

        return engine

    monkeypatch.setattr(knowledge_base, "create_store_engine", limited)
    with KnowledgeBase.open(path) as kb:
        with pytest.raises(KnowledgeBaseError, match=message):
            for i in range(200):
                kb.upsert_dataset(f"fp-{i}", meta_features={f"f{j}": float(j) for j in range(50)})
        assert kb.get_dataset("kept") is not None


OPEN_AS_USER = """
import sys
from llp.store import KnowledgeBase
try:
    KnowledgeBase.open(sys.argv[1]).close()
except Exception as exc:
    print(type(exc).__name__, exc)
else:
    print("opened")
"""


def open_without_privileges(path: Path) -> str:
    """What opening ``path`` says to a user who may not write where it is."""
    return run_without_privileges(["-c", OPEN_AS_USER, str(path)]).stdout.strip()


def run_without_privileges(args: list[str]) -> Any:
    """``python ARGS`` as a user who may not write where the test made it impossible (as
    root, the child runs as 'nobody': root may write anywhere)."""
    import shutil
    import subprocess

    command = [sys.executable, *args]
    dropped = os.geteuid() == 0
    if dropped:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv to drop the privileges")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if dropped:
        probe = [*command[: -len(args)], "-c", "import llp.cli"]
        tried = subprocess.run(probe, capture_output=True, text=True, env=env, timeout=120)
        if tried.returncode != 0:  # e.g. a checkout 'nobody' may not read
            pytest.skip(f"'nobody' cannot import llp here: {tried.stderr.splitlines()[-1:]}")
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_an_unwritable_place_is_not_called_a_corrupted_knowledge_base(
    make_result: MakeResult,
) -> None:
    import shutil
    import tempfile

    # Outside pytest's own folders, which only their owner may enter.
    base = Path(tempfile.mkdtemp(prefix="llp-unwritable-"))
    base.chmod(0o755)
    locked = base / "locked"
    locked.mkdir()
    filled_knowledge_base(locked / "kb.db", make_result, n=3)
    (locked / "kb.db").chmod(0o444)
    locked.chmod(0o555)
    before = snapshot(locked)
    try:
        existing = open_without_privileges(locked / "kb.db")
        new = open_without_privileges(locked / "new.db")
        # The commands say it in one line, exit 2.
        listed = run_without_privileges(
            ["-m", "llp", "kb", "list", "--storage", str(locked / "kb.db")]
        )
    finally:
        locked.chmod(0o755)
        after = snapshot(locked)
        shutil.rmtree(base)
    assert existing.startswith("KnowledgeBaseError Cannot open the knowledge base at")
    assert "cannot be written there" in existing and "its folder must both be writable" in existing
    assert "the file cannot be opened or created there" in new
    for text in (existing, new):
        assert "corrupted" not in text and "\n" not in text
    assert listed.returncode == 2 and "Traceback" not in listed.stderr
    assert listed.stderr.count("\n") == 1 and "cannot be written there" in listed.stderr
    assert after == before
