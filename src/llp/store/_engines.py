"""From the user's ``storage`` argument to a configured SQLAlchemy engine.

SQLite needs three settings to be a safe shared file, set on every connection:

- ``busy_timeout``: a writer waits for another process's write to finish instead of
  failing at once with "database is locked";
- write transactions start with ``BEGIN IMMEDIATE``: a transaction that read first and
  writes later would otherwise fail without waiting when another process wrote in
  between (SQLite cannot upgrade a stale read snapshot), whatever the busy timeout;
- WAL journal mode (persistent in the file, set once after the file is known to be an
  llp knowledge base): readers and one writer do not block each other.

The pysqlite driver's own implicit transactions are turned off so that SQLAlchemy's
``begin`` is where each transaction starts (the recipe of the SQLAlchemy SQLite docs).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import URL, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

#: Execution option asking for a write transaction (``BEGIN IMMEDIATE`` on SQLite).
WRITE = "llp_write"

#: How long a SQLite writer waits for another writer before giving up.
BUSY_TIMEOUT_MS = 60_000

#: How long opening a PostgreSQL knowledge base waits for the server.
CONNECT_TIMEOUT_S = 10

_ACCEPTED = (
    "a filesystem path, 'sqlite:///path/to/file.db', ':memory:' or None (in-memory "
    "SQLite), or a 'postgresql://user:password@host:port/dbname' or "
    "'postgresql+psycopg://...' URL"
)

_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Storage:
    """Where a knowledge base lives, resolved from the ``storage`` argument."""

    kind: Literal["memory", "sqlite", "postgresql"]
    url: URL
    path: Path | None
    display: str  # for messages: the path, or the URL with its password hidden


def _hide_password(text: str) -> str:
    try:
        return make_url(text).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", text)


def parse_storage(storage: Any, *, owner: str) -> Storage:
    """Resolve the ``storage`` argument of :meth:`KnowledgeBase.open`.

    Raises
    ------
    TypeError
        If ``storage`` is not None, a str or a path-like object.
    ValueError
        If it is an empty string or a URL of a kind the knowledge base does not support.
    """
    if storage is None or (isinstance(storage, str) and storage == ":memory:"):
        return Storage("memory", make_url("sqlite://"), None, ":memory:")
    if isinstance(storage, os.PathLike):
        storage = os.fspath(storage)
    if not isinstance(storage, str):
        raise TypeError(
            f"The 'storage' parameter of {owner} must be {_ACCEPTED}. "
            f"Got {type(storage).__name__} {storage!r} instead."
        )
    if not storage.strip():
        raise ValueError(f"The 'storage' parameter of {owner} must be {_ACCEPTED}. Got '' instead.")
    if "://" not in storage:
        path = Path(storage).expanduser()
        return Storage("sqlite", URL.create("sqlite", database=str(path)), path, str(path))
    scheme = storage.split("://", 1)[0].lower()
    shown = _hide_password(storage)
    if scheme not in ("sqlite", "postgresql", "postgresql+psycopg"):
        hint = ""
        if scheme.startswith("postgres"):
            hint = " Only the psycopg (v3) driver is supported; write 'postgresql://...'."
        raise ValueError(
            f"The 'storage' parameter of {owner} must be {_ACCEPTED}. Got {shown!r} instead.{hint}"
        )
    try:
        url = make_url(storage)
    except (ArgumentError, ValueError) as exc:
        raise ValueError(
            f"The 'storage' parameter of {owner} must be {_ACCEPTED}. "
            f"Got {shown!r}, which is not a valid URL: {exc}."
        ) from exc
    if scheme == "sqlite":
        if url.query:
            raise ValueError(
                f"The 'storage' parameter of {owner} does not accept query options on a "
                f"SQLite URL (the knowledge base sets its own). Got {shown!r} instead."
            )
        if url.database in (None, "", ":memory:"):
            return Storage("memory", make_url("sqlite://"), None, ":memory:")
        path = Path(url.database).expanduser()
        return Storage("sqlite", URL.create("sqlite", database=str(path)), path, str(path))
    if not url.database:
        raise ValueError(
            f"The 'storage' parameter of {owner} must name a database in a PostgreSQL URL "
            f"('postgresql://user:password@host:port/dbname'). Got {shown!r} instead."
        )
    url = url.set(drivername="postgresql+psycopg")
    return Storage("postgresql", url, None, url.render_as_string(hide_password=True))


def check_sqlite_file(path: Path) -> None:
    """Refuse, before SQLite touches it, a file that cannot be an intact SQLite database.

    Reads the 100-byte header only: the magic string, the page size and the page count.
    A file shorter than the pages its header promises was truncated, unless a write-ahead
    log (``PATH-wal``) sits beside it: then the committed pages may be in the log (a
    checkpoint cut short, e.g. by a full disk) and SQLite, which replays the log, decides.
    An empty or missing file is fine (a new knowledge base). Raises
    :class:`KnowledgeBaseError` naming the path.
    """
    from llp.store._errors import KnowledgeBaseError

    if not path.exists():
        return
    if path.is_dir():
        raise KnowledgeBaseError(
            f"Cannot open the knowledge base at {str(path)!r}: it is a directory; "
            "give the path of a file (e.g. 'knowledge.db' inside it)."
        )
    size = path.stat().st_size
    if size == 0:
        return
    with path.open("rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise KnowledgeBaseError(
            f"Cannot open the knowledge base at {str(path)!r}: the file is not a SQLite "
            "database (its header is not 'SQLite format 3'). Nothing was written to it."
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    n_pages = int.from_bytes(header[28:32], "big")
    # The page count is valid only when the change counter matches "version-valid-for".
    count_valid = n_pages > 0 and header[24:28] == header[92:96]
    wal = path.with_name(path.name + "-wal")
    logged = wal.exists() and wal.stat().st_size > 0
    if (
        page_size < 512
        or page_size & (page_size - 1)
        or (not logged and size % page_size)
        or (not logged and count_valid and size < n_pages * page_size)
    ):
        raise KnowledgeBaseError(
            f"Cannot open the knowledge base at {str(path)!r}: the SQLite file is truncated "
            f"or corrupted ({size} bytes, header promises {n_pages} pages of {page_size} "
            "bytes). Restore it from a backup. Nothing was written to it."
        )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions start in _on_begin
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            # Safe in WAL mode: a crash of the process never corrupts the file; only a
            # power cut may lose the last commits. Saves an fsync per transaction.
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_store_engine(storage: Storage) -> Engine:
    """A configured engine for ``storage`` (connects lazily)."""
    if storage.kind == "memory":
        # One connection shared by the engine: each new connection would see a new,
        # empty in-memory database.
        engine = create_engine(
            storage.url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    if storage.kind == "sqlite":
        engine = create_engine(storage.url)
        _configure_sqlite(engine)
        return engine
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"Opening the PostgreSQL knowledge base {storage.display!r} needs the psycopg "
            'driver (v3). Install it with: pip install "llp[postgres]"'
        ) from exc
    return create_engine(
        storage.url,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "llp"},
    )


def set_wal_mode(engine: Engine) -> None:
    """Switch a SQLite file to WAL journaling (persistent; a no-op when already set).

    Changing the journal mode needs the file to itself, and SQLite answers "database is
    locked" at once instead of waiting on its busy handler when another process is
    opening the same new file: retry with short pauses for up to the busy timeout.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.01
    while True:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                mode = cursor.execute("PRAGMA journal_mode").fetchone()
                if mode is None or str(mode[0]).lower() != "wal":
                    cursor.execute("PRAGMA journal_mode = WAL")
                return
            finally:
                cursor.close()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        finally:
            raw.close()
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
