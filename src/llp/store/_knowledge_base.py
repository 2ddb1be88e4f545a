"""The knowledge base: every dataset, study, trial and evaluation llp has seen."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from sqlalchemy import func, insert, inspect, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from llp import __version__
from llp._checks import check_fraction, check_int
from llp.store import _schema as s
from llp.store._codec import (
    answer_row,
    bounded_int,
    check_text,
    config_json,
    curve_from_json,
    decision_row,
    differing_columns,
    dumps_json,
    evaluation_row,
    landscape_from_json,
    result_from_row,
)
from llp.store._engines import (
    BUSY_TIMEOUT_MS,
    WRITE,
    Storage,
    check_sqlite_file,
    create_store_engine,
    parse_storage,
    set_wal_mode,
)
from llp.store._errors import (
    DuplicateEvaluationError,
    KnowledgeBaseError,
    StudyBusyError,
    StudyExistsError,
)
from llp.store._file_records import MAX_NAME, ExportDataset, ExportStudy, check_declared
from llp.store._migrations import migrate
from llp.store._records import (
    AnswerRecord,
    DatasetRecord,
    DecisionRecord,
    NewAnswer,
    NewEvaluation,
    StoredEvaluation,
    StudyRecord,
)
from llp.training import EvaluationResult, EvaluationStatus, lost_worker

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Connection, Engine, Select
    from sqlalchemy.engine import RowMapping

# Keeps the number of bound parameters of an IN (...) well under every backend's limit.
_IN_CHUNK = 500

# Serialises the first creation of the tables by concurrent processes on PostgreSQL
# (SQLite serialises it with BEGIN IMMEDIATE). Any constant works: "llp" in ASCII.
_PG_INIT_LOCK = 0x6C6C70


_T = TypeVar("_T")

#: What SQLite ("database or disk is full") and PostgreSQL ("No space left on device",
#: SQLSTATE 53100 disk_full) say when a write cannot grow the database.
_FULL = ("disk is full", "no space left on device", "disk full")

#: The tables of a schema-1 knowledge base (before decisions and answers).
SCHEMA_1_TABLES = frozenset({"meta", "datasets", "studies", "trials", "evaluations"})


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _utc(value: datetime.datetime) -> datetime.datetime:
    # SQLite hands back naive datetimes; they were written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _check_optional_int(name: str, value: Any, owner: str) -> int | None:
    return None if value is None else check_int(name, value, min_value=0, owner=owner)


def _check_name(name: str, value: Any, owner: str) -> str:
    """A non-empty str of at most :data:`MAX_NAME` characters without NUL characters."""
    if isinstance(value, str) and not value.strip():
        raise ValueError(
            f"The '{name}' parameter of {owner} must be a non-empty str. Got {value!r} instead."
        )
    check_text(name, value, owner=owner)
    if len(value) > MAX_NAME:
        raise ValueError(
            f"The '{name}' parameter of {owner} must be at most {MAX_NAME} characters. "
            f"Got {len(value)} characters."
        )
    return str(value)


def _mapping_diff(stored: Mapping[str, Any], asked: Mapping[str, Any], name: str) -> list[str]:
    keys = sorted(set(stored) | set(asked))
    missing = "<absent>"
    return [
        f"{name}[{k!r}] is {stored.get(k, missing)!r} in the knowledge base but "
        f"{asked.get(k, missing)!r} was asked"
        for k in keys
        if json.dumps(stored.get(k, missing), sort_keys=True)
        != json.dumps(asked.get(k, missing), sort_keys=True)
    ]


class KnowledgeBase:
    """The knowledge base: datasets, studies, trials and evaluations, kept across runs.

    Open one with :meth:`open`: a SQLite file by default, in memory for throw-away runs,
    or a PostgreSQL database shared by many machines. The tables are created on first
    open; see :mod:`llp.store` for the schema.

    Contract
    --------
    - **Who writes.** The :class:`~llp.runner.Runner` is the only writer of a study:
      one process records the evaluations of one study. Several processes may write
      *different* studies into one SQLite file or PostgreSQL database at once. SQLite
      writers take turns (WAL journal, busy timeout of 60 s) instead of failing; a writer
      kept waiting longer than that gets a :class:`KnowledgeBaseError` and writes nothing.
    - **Threads and processes.** A ``KnowledgeBase`` object is not thread-safe: use one
      per thread and one per process (never share one through ``fork``). Close it with
      :meth:`close` or a ``with`` block.
    - **Finished evaluations are immutable.** An evaluation is keyed by (study, trial
      number, data fraction, epochs). Recording the identical evaluation again is a
      no-op that returns the stored id, so a resumed study never counts one twice;
      recording a different one under a stored key raises
      :class:`DuplicateEvaluationError` and changes nothing. A trial number keeps the
      configuration it was first recorded with. Nothing is ever deleted.
    - **Transactions.** Each writing call is one transaction: it is stored whole or not
      at all; :meth:`transaction` makes a block of calls one transaction.
    - **What is stored.** Numbers, text and JSON text (configurations, settings,
      curves, landscape and meta-features) -- never pickles: opening somebody else's
      knowledge base never runs code. Scalar results must be finite; curves and
      features may hold NaN and infinities (stored as JSON ``NaN``/``Infinity``).
    - **Versions.** The schema version is checked on open: one written by an older llp
      is migrated in place, in one transaction (:mod:`llp.store._migrations`); one
      written by a newer llp raises :class:`KnowledgeBaseError` instead of being
      misread, and so does a file that is not an llp knowledge base (nothing is
      written to it).

    Parameters
    ----------
    storage : str, path-like or None, default=None
        Same as for :meth:`open`.

    Examples
    --------
    >>> from llp.store import KnowledgeBase
    >>> with KnowledgeBase.open(":memory:") as kb:
    ...     dataset_id = kb.upsert_dataset("sha256:0f3a", name="digits",
    ...                                    meta_features={"n_classes": 10.0})
    ...     study = kb.get_or_create_study(
    ...         "digits-mlp", scheduler="SuccessiveHalving",
    ...         settings={"reduction_factor": 2}, space=None, seed=0,
    ...         objective="val_accuracy", dataset_id=dataset_id)
    ...     kb.counts()
    {'datasets': 1, 'studies': 1, 'trials': 0, 'evaluations': 0}
    """

    def __init__(self, storage: str | os.PathLike[str] | None = None) -> None:
        owner = "KnowledgeBase.open"
        self._storage: Storage = parse_storage(storage, owner=owner)
        if self._storage.path is not None:
            check_sqlite_file(self._storage.path)
            self._storage.path.parent.mkdir(parents=True, exist_ok=True)
        self._engine: Engine | None = create_store_engine(self._storage)
        # The connection of an open transaction() block, which every call shares.
        self._shared: Connection | None = None
        try:
            self._initialise(self._engine)
        except BaseException:
            self._engine.dispose()
            self._engine = None
            raise

    @classmethod
    def open(cls, storage: str | os.PathLike[str] | None = None) -> KnowledgeBase:
        """Open (and on first use create) a knowledge base.

        Parameters
        ----------
        storage : str, path-like or None, default=None
            - a filesystem path or ``"sqlite:///path/to/file.db"``: a SQLite file (its
              folder is created if needed);
            - ``":memory:"`` or ``None``: an in-memory SQLite database that lives as long
              as this object;
            - ``"postgresql://user:password@host:port/dbname"`` (or
              ``"postgresql+psycopg://..."``): a PostgreSQL database, through the
              psycopg 3 driver (``pip install "llp[postgres]"``).

        Returns
        -------
        KnowledgeBase

        Raises
        ------
        ValueError
            If ``storage`` is a URL of another kind (e.g. ``"mysql://..."``).
        KnowledgeBaseError
            If the file or database is not an llp knowledge base, is corrupted, was
            written by a newer llp, or the server cannot be reached.
        ImportError
            If a PostgreSQL URL is given and psycopg is not installed.
        """
        return cls(storage)

    # ------------------------------------------------------------------ lifecycle
    @property
    def storage(self) -> str:
        """Where the knowledge base lives: the file path, ``":memory:"`` or the URL
        (password hidden)."""
        return self._storage.display

    @property
    def backend(self) -> Literal["memory", "sqlite", "postgresql"]:
        """The kind of database: in-memory SQLite, a SQLite file or PostgreSQL."""
        return self._storage.kind

    def close(self) -> None:
        """Release the connections. An in-memory knowledge base is gone afterwards."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "" if self._engine is not None else ", closed"
        return f"KnowledgeBase({self.storage!r}{state})"

    def _live_engine(self) -> Engine:
        if self._engine is None:
            raise KnowledgeBaseError(
                f"The knowledge base at {self.storage!r} is closed; open it again with "
                "KnowledgeBase.open()."
            )
        return self._engine

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Make every write inside the block one transaction: all of it is stored, or
        none of it (an exception inside the block rolls everything back). Reads inside
        the block see its writes. Nested blocks join the outer one.

        Examples
        --------
        >>> from llp.store import KnowledgeBase
        >>> kb = KnowledgeBase.open(":memory:")
        >>> try:
        ...     with kb.transaction():
        ...         _ = kb.upsert_dataset("fp-1")
        ...         raise RuntimeError("something later failed")
        ... except RuntimeError:
        ...     pass
        >>> kb.get_dataset("fp-1") is None
        True
        """
        if self._shared is not None:
            yield
            return
        with self._write() as conn:
            self._shared = conn
            try:
                yield
            finally:
                self._shared = None

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A connection inside one write transaction (``BEGIN IMMEDIATE`` on SQLite), or
        the one of the enclosing :meth:`transaction`."""
        if self._shared is not None:
            yield self._shared
            return
        try:
            with self._connection(write=True) as conn:
                yield conn
        except OperationalError as exc:
            reason = " ".join(str(exc.orig).split()).lower()
            if any(words in reason for words in _FULL):
                raise KnowledgeBaseError(
                    f"The knowledge base at {self.storage!r} cannot grow: the disk (or the "
                    f"database's size limit) is full ({' '.join(str(exc.orig).split())}). "
                    "This write was not stored; everything written before it is intact. "
                    "Free some space and go on."
                ) from exc
            if "readonly" in reason or "read-only" in reason:
                raise KnowledgeBaseError(
                    f"The knowledge base at {self.storage!r} is read-only for this process "
                    f"({' '.join(str(exc.orig).split())}); nothing was written. Make it "
                    "writable, or copy it somewhere writable."
                ) from exc
            if self.backend == "postgresql" or "locked" not in reason:
                raise
            raise KnowledgeBaseError(
                f"The knowledge base at {self.storage!r} stayed locked by another writer for "
                f"more than {BUSY_TIMEOUT_MS // 1000} s; nothing was written. SQLite lets one "
                "process write at a time: let bulk imports finish, or use PostgreSQL for "
                "many concurrent writers."
            ) from exc

    def _write_once_more_on_conflict(self, write: Callable[[Connection], _T]) -> _T:
        """``write(conn)`` in a write transaction, retried once if another process
        inserted the same unique name first (the retry then finds its row).

        Only PostgreSQL can get there: SQLite's BEGIN IMMEDIATE runs such writes one
        after the other.
        """
        if self._shared is not None:  # inside transaction(): a conflict fails the block
            return write(self._shared)
        try:
            with self._write() as conn:
                return write(conn)
        except IntegrityError:
            with self._write() as conn:
                return write(conn)

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        if self._shared is not None:
            yield self._shared
            return
        with self._connection(write=False) as conn:
            yield conn

    @contextlib.contextmanager
    def _connection(self, *, write: bool) -> Iterator[Connection]:
        """A pooled connection inside one transaction, which is forgotten if Ctrl-C (or
        SIGTERM, or ``sys.exit``) ends the block.

        An interruption can land between a statement and the reading of its rows. The
        transaction is rolled back, but the statement stays open on its SQLite connection
        for as long as the interrupted frames live (a caught exception keeps them), and
        SQLite then refuses every later commit on that connection ("SQL statements in
        progress"). A file or server database is given a fresh connection instead. An
        in-memory database lives in its only connection: the interrupted frames are
        cleared so that their statement is finalized.
        """
        with self._live_engine().connect() as conn:
            if write:
                conn.execution_options(**{WRITE: True})
            try:
                with conn.begin():
                    yield conn
            except (KeyboardInterrupt, SystemExit) as stop:
                if self.backend == "memory":
                    traceback.clear_frames(stop.__traceback__)
                else:
                    conn.invalidate()
                raise

    @contextlib.contextmanager
    def _decoding(self, row: Mapping[Any, Any]) -> Iterator[None]:
        """Turn a stored evaluation that cannot be read back (a row changed outside llp)
        into a :class:`KnowledgeBaseError` naming it."""
        try:
            yield
        except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
            raise KnowledgeBaseError(
                f"The knowledge base at {self.storage!r} is corrupted: evaluation "
                f"{row['id']} cannot be read back ({type(exc).__name__}: {exc}). It was "
                "changed outside llp; restore the file from a backup."
            ) from exc

    # ------------------------------------------------------------------ opening
    def _initialise(self, engine: Engine) -> None:
        try:
            with engine.connect() as conn, conn.begin():
                state = self._classify(conn)
            if state == "empty":
                with self._write() as conn:
                    if self.backend == "postgresql":
                        conn.execute(select(func.pg_advisory_xact_lock(_PG_INIT_LOCK)))
                    state = self._classify(conn)  # another process may have won the race
                    if state == "empty":
                        s.metadata.create_all(conn)
                        conn.execute(
                            insert(s.meta),
                            [
                                {"key": "application", "value": s.APPLICATION},
                                {"key": "schema_version", "value": str(s.SCHEMA_VERSION)},
                                {"key": "created_with", "value": __version__},
                            ],
                        )
                        state = "llp"
            if state == "old":
                with self._write() as conn:
                    if self.backend == "postgresql":
                        conn.execute(select(func.pg_advisory_xact_lock(_PG_INIT_LOCK)))
                    # Another process may have migrated it while this one waited.
                    if self._classify(conn) == "old":
                        migrate(conn, self._stored_version(conn))
                    state = self._classify(conn)
        except DBAPIError as exc:
            raise self._open_error(exc) from exc
        if state == "foreign":
            raise KnowledgeBaseError(
                f"Cannot open the knowledge base at {self.storage!r}: it holds tables "
                "but no llp 'meta' table, so it belongs to another application. llp "
                "writes only into an empty database or its own knowledge base; give "
                "another path or database. Nothing was written to it."
            )
        if self.backend == "sqlite":
            try:
                set_wal_mode(engine)
            except DBAPIError as exc:
                raise self._open_error(exc) from exc

    @staticmethod
    def _stored_version(conn: Connection) -> int:
        text = conn.execute(
            select(s.meta.c.value).where(s.meta.c.key == "schema_version")
        ).scalar_one()
        return int(text)

    def _classify(self, conn: Connection) -> Literal["empty", "llp", "old", "foreign"]:
        """What the database holds: nothing, an llp knowledge base, one of an older
        schema (to migrate), or something else.

        Raises :class:`KnowledgeBaseError` for an llp knowledge base this llp cannot
        read (newer schema, missing tables, invalid version).
        """
        inspector = inspect(conn)
        names = set(inspector.get_table_names())
        if not names:
            return "empty"
        if s.meta.name not in names:
            return "foreign"
        if {c["name"] for c in inspector.get_columns(s.meta.name)} != {"key", "value"}:
            return "foreign"  # another application's table called 'meta'
        rows = {key: value for key, value in conn.execute(select(s.meta.c.key, s.meta.c.value))}
        if rows.get("application") != s.APPLICATION or "schema_version" not in rows:
            return "foreign"
        version_text = rows["schema_version"]
        try:
            version = int(version_text)
        except ValueError:
            version = -1
        if version > s.SCHEMA_VERSION:
            raise KnowledgeBaseError(
                f"The knowledge base at {self.storage!r} was created by a newer llp "
                f"(schema {version}); this llp {__version__} reads schema "
                f"{s.SCHEMA_VERSION}. Upgrade llp (pip install -U llp) to open it."
            )
        if version < 1:
            raise KnowledgeBaseError(
                f"The knowledge base at {self.storage!r} is corrupted: its schema_version "
                f"is {version_text!r}, not a positive integer."
            )
        expected = SCHEMA_1_TABLES if version == 1 else set(s.TABLE_NAMES)
        missing = expected - names
        if missing:
            raise KnowledgeBaseError(
                f"The knowledge base at {self.storage!r} is corrupted: tables "
                f"{sorted(missing)} are missing."
            )
        return "llp" if version == s.SCHEMA_VERSION else "old"

    def _open_error(self, exc: DBAPIError) -> KnowledgeBaseError:
        # The drivers' messages span lines; one line reads better inside ours.
        reason = " ".join(str(exc.orig if exc.orig is not None else exc).split())
        if self.backend == "postgresql":
            return KnowledgeBaseError(
                f"Cannot open the PostgreSQL knowledge base {self.storage!r} ({reason}). "
                "Check that the server is running and reachable, and the user, password "
                "and database name."
            )
        code = str(getattr(exc.orig, "sqlite_errorname", ""))
        if code.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")):
            why = (
                "it cannot be written there. llp opens a knowledge base to write, with a "
                "write-ahead log beside the file (its -wal and -shm files), so the file and "
                "its folder must both be writable: fix their permissions, or copy the file "
                "into a writable folder"
            )
        elif code.startswith("SQLITE_CANTOPEN"):
            why = (
                "the file cannot be opened or created there. Check that its folder exists "
                "and that you may read and write both the folder and the file"
            )
        else:
            why = "the file is not a readable SQLite database (corrupted or truncated?)"
        return KnowledgeBaseError(
            f"Cannot open the knowledge base at {self.storage!r}: SQLite says {reason!r}: "
            f"{why}. Nothing was written to it."
        )

    # ------------------------------------------------------------------ datasets
    def upsert_dataset(
        self,
        fingerprint: str,
        *,
        name: str | None = None,
        group: str | None = None,
        n_samples: int | None = None,
        meta_features: Mapping[str, float] | None = None,
    ) -> int:
        """Store a dataset, or update the fields given for a stored fingerprint.

        Parameters
        ----------
        fingerprint : str
            Content hash identifying the dataset.
        name, group : str, optional
        n_samples : int, optional
        meta_features : mapping of str to float, optional
            Replaces the stored meta-features when given.

        Returns
        -------
        int
            The dataset's id. Fields left as ``None`` keep their stored values.
        """
        owner = "KnowledgeBase.upsert_dataset"
        # The declared schema of an exported dataset: what the store writes, an
        # export of it holds and an import reads back.
        given: dict[str, Any] = {
            "fingerprint": fingerprint,
            "name": name,
            "group": group,
            "n_samples": n_samples,
        }
        if meta_features is not None:
            given["meta_features"] = meta_features
        checked = check_declared(ExportDataset, given, owner=owner)
        fingerprint = checked["fingerprint"]
        values: dict[str, Any] = {
            "name": checked["name"],
            "group_name": checked["group"],
            "n_samples": checked["n_samples"],
        }
        if meta_features is not None:
            values["meta_features"] = dumps_json(
                {k: float(v) for k, v in checked["meta_features"].items()},
                name="meta_features",
                owner=owner,
            )
        values = {k: v for k, v in values.items() if v is not None}

        def upsert(conn: Connection) -> int:
            row = (
                conn.execute(select(s.datasets).where(s.datasets.c.fingerprint == fingerprint))
                .mappings()
                .first()
            )
            if row is None:
                new = {"fingerprint": fingerprint, "meta_features": "{}", "created_at": _now()}
                new.update(values)
                return int(
                    conn.execute(insert(s.datasets).returning(s.datasets.c.id), new).scalar_one()
                )
            changed = {k: v for k, v in values.items() if row[k] != v}
            if changed:
                conn.execute(update(s.datasets).where(s.datasets.c.id == row["id"]).values(changed))
            return int(row["id"])

        return self._write_once_more_on_conflict(upsert)

    def get_dataset(self, fingerprint: str) -> DatasetRecord | None:
        """The dataset stored under ``fingerprint``, or ``None``."""
        with self._read() as conn:
            row = (
                conn.execute(select(s.datasets).where(s.datasets.c.fingerprint == fingerprint))
                .mappings()
                .first()
            )
        return None if row is None else _dataset_record(row)

    def list_datasets(self) -> list[DatasetRecord]:
        """Every stored dataset, oldest first."""
        with self._read() as conn:
            rows = conn.execute(select(s.datasets).order_by(s.datasets.c.id)).mappings().all()
        return [_dataset_record(r) for r in rows]

    # ------------------------------------------------------------------ studies
    def get_or_create_study(
        self,
        name: str,
        *,
        scheduler: str,
        settings: Mapping[str, Any],
        space: Mapping[str, Any] | None,
        seed: int,
        objective: Literal["val_accuracy", "val_loss"],
        dataset_id: int | None = None,
        model_family: str | None = None,
        create_only: bool = False,
    ) -> StudyRecord:
        """The study called ``name``: created if new, resumed if stored (or, with
        ``create_only``, an error if stored).

        Parameters
        ----------
        name : str
            Unique name of the study.
        scheduler : str
            Name of the scheduler, e.g. ``"SuccessiveHalving"``.
        settings : mapping
            The scheduler's settings (JSON values).
        space : mapping or None
            A JSON description of the search space.
        seed : int
        objective : {"val_accuracy", "val_loss"}
        dataset_id : int, optional
            Id returned by :meth:`upsert_dataset`.
        model_family : str, optional
        create_only : bool, default=False
            The study must be new: the check and the creation are one transaction, so
            of two processes creating the same name at once exactly one succeeds.

        Returns
        -------
        StudyRecord

        Raises
        ------
        StudyExistsError
            With ``create_only``, if a study of that name is stored.
        ValueError
            If the study exists and any of these arguments differs from what it was
            created with (the message lists the fields), or ``dataset_id`` is unknown.
        """
        owner = "KnowledgeBase.get_or_create_study"
        # The declared schema of an exported study: what the store writes, an export of
        # it holds and an import reads back.
        checked = check_declared(
            ExportStudy,
            {
                "name": name,
                "scheduler": scheduler,
                "seed": seed,
                "objective": objective,
                "model_family": model_family,
            },
            owner=owner,
        )
        name = checked["name"]
        for label, value in (("settings", settings), ("space", space)):
            if not isinstance(value, Mapping) and not (label == "space" and value is None):
                rule = "a mapping or None" if label == "space" else "a mapping"
                raise TypeError(
                    f"The '{label}' parameter of {owner} must be {rule}. "
                    f"Got {type(value).__name__} instead."
                )
        asked: dict[str, Any] = {
            "scheduler": checked["scheduler"],
            "settings": dumps_json(settings, name="settings", owner=owner, bounded=True),
            "space": (
                None
                if space is None
                else dumps_json(space, name="space", owner=owner, bounded=True)
            ),
            "seed": checked["seed"],
            "objective": checked["objective"],
            "dataset_id": _check_optional_int("dataset_id", dataset_id, owner),
            "model_family": checked["model_family"],
        }

        def get_or_create(conn: Connection) -> StudyRecord:
            row = conn.execute(select(s.studies).where(s.studies.c.name == name)).mappings().first()
            if row is not None:
                if create_only:
                    raise StudyExistsError(
                        f"The study {name!r} already exists in {self.storage!r}; it was to "
                        "be created new (create_only=True)."
                    )
                _check_same_study(name, row, asked)
                return _study_record(row)
            if asked["dataset_id"] is not None and (
                conn.execute(
                    select(s.datasets.c.id).where(s.datasets.c.id == asked["dataset_id"])
                ).first()
                is None
            ):
                raise ValueError(
                    f"The 'dataset_id' parameter of {owner} must be the id of a stored "
                    f"dataset (see upsert_dataset). Got {dataset_id!r}, which is not."
                )
            new = {"name": name, "created_at": _now(), "llp_version": __version__}
            new.update(asked)
            study_id = conn.execute(insert(s.studies).returning(s.studies.c.id), new).scalar_one()
            return _study_record({"id": study_id, **new})

        return self._write_once_more_on_conflict(get_or_create)

    @contextlib.contextmanager
    def study_lock(self, name: str) -> Iterator[None]:
        """Hold study ``name`` while the block runs: another process (or another
        :class:`KnowledgeBase` object) asking for the same study meanwhile gets
        :class:`~llp.store.StudyBusyError` at once, before it trains anything.

        A SQLite file: an advisory lock (``flock``) on a small file in the folder
        ``<knowledge base>.locks`` beside it, released by the system when the process
        ends, even killed. PostgreSQL: a session advisory lock. In memory there is
        nothing to share.
        """
        from llp._digest import short_digest

        name = _check_name("name", name, "KnowledgeBase.study_lock")
        key = short_digest(name, 15)
        busy = StudyBusyError(
            f"The study {name!r} is being run by another process on {self.storage!r} right "
            "now; nothing was trained. Wait for it to finish (then --resume, or running it "
            "again, continues it), or give another study name."
        )
        if self.backend == "postgresql":
            with self._live_engine().connect() as conn:
                number = int(key, 16)
                held = conn.execute(select(func.pg_try_advisory_lock(number))).scalar_one()
                conn.commit()
                if not held:
                    raise busy
                try:
                    yield
                finally:
                    conn.execute(select(func.pg_advisory_unlock(number)))
                    conn.commit()
            return
        path = self._storage.path
        if path is None:
            yield
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not a POSIX system: no lock
            yield
            return
        folder = path.with_name(f"{path.name}.locks")
        try:
            folder.mkdir(exist_ok=True)
            fd = os.open(folder / f"study-{key}", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            # A folder llp may not write into: it could not store the study either, and
            # says so when it tries; the lock is not what should fail first.
            yield
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise busy from None
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def get_study(self, name: str) -> StudyRecord | None:
        """The study called ``name``, or ``None``."""
        with self._read() as conn:
            row = conn.execute(select(s.studies).where(s.studies.c.name == name)).mappings().first()
        return None if row is None else _study_record(row)

    def list_studies(self) -> list[StudyRecord]:
        """Every stored study, oldest first."""
        with self._read() as conn:
            rows = conn.execute(select(s.studies).order_by(s.studies.c.id)).mappings().all()
        return [_study_record(r) for r in rows]

    # ------------------------------------------------------------------ evaluations
    def record_evaluation(
        self,
        study_id: int,
        *,
        trial_number: int,
        config: Mapping[str, Any],
        result: EvaluationResult,
        bracket: int = 0,
        rung: int = 0,
        reason: str = "",
        decisions: Iterable[DecisionRecord] = (),
        answer: NewAnswer | None = None,
    ) -> int:
        """Store one finished evaluation (and its trial, on first sight), with the
        decisions it led to and the study's answer after it, in one transaction.

        A finished evaluation is never overwritten, with one exception: a failure
        recorded because the worker running it was lost (``llp.training.WORKER_LOST``)
        says nothing about the configuration, so the evaluation run again replaces it.

        Parameters
        ----------
        study_id : int
            ``StudyRecord.id``.
        trial_number : int
            The scheduler's trial id.
        config : mapping
            The trial's configuration; must equal ``result.config``.
        result : EvaluationResult
        bracket, rung : int, default=0
        reason : str, default=""
            Why the scheduler ran this evaluation.
        decisions : iterable of DecisionRecord, default=()
            Decisions made once this evaluation was known (see
            :meth:`record_decisions`).
        answer : NewAnswer, optional
            The study's answer after this evaluation (see :meth:`record_answer`).

        Returns
        -------
        int
            Id of the evaluation: the new one, or the stored identical one.

        Raises
        ------
        DuplicateEvaluationError
            If a different evaluation (other than a lost worker's failure) is stored for
            this trial at this fidelity.
        ValueError
            If the trial was recorded with another configuration, or the study is unknown.
        """
        method = "KnowledgeBase.record_evaluation"
        config_json(config, owner=method)  # a clear error before NewEvaluation sees it
        item = NewEvaluation(trial_number, config, result, bracket, rung, reason)
        rows = self._decision_rows(decisions, method)
        extra = None
        if answer is not None:
            extra = (self._answer_key(answer, method), answer_row(answer, owner=method))

        def more(conn: Connection, study_id: int, ids: list[int]) -> None:
            self._insert_decisions(conn, study_id, rows)
            if extra is not None:
                self._insert_answer(conn, study_id, ids[0], *extra, method=method)

        return self._record(study_id, [item], method=method, owners=[method], more=more)[0]

    def record_decisions(self, study_id: int, decisions: Iterable[DecisionRecord]) -> int:
        """Store a study's decisions (:class:`DecisionRecord`), in one transaction.

        A decision is keyed by its ``sequence`` within the study: one already stored is
        kept as it is (a resumed study makes its decisions again), so calling this twice
        stores each once.

        Returns
        -------
        int
            How many were new.
        """
        method = "KnowledgeBase.record_decisions"
        study_id = check_int("study_id", study_id, owner=method)
        rows = self._decision_rows(decisions, method)
        if not rows:
            return 0
        with self._write() as conn:
            self._study_name(conn, study_id, method)
            return self._insert_decisions(conn, study_id, rows)

    def record_answer(
        self, study_id: int, *, after: tuple[int, float, int], answer: NewAnswer
    ) -> None:
        """Store the study's answer after one of its stored evaluations.

        Parameters
        ----------
        study_id : int
        after : (trial_number, fraction, epochs)
            The evaluation after which ``answer`` was the answer.
        answer : NewAnswer
            The answer; its evaluation must be stored in the same study.

        An answer already stored after that evaluation is kept (resumed studies).

        Raises
        ------
        ValueError
            If either evaluation is not stored in the study.
        """
        self._record_answers(study_id, [(after, answer)], "KnowledgeBase.record_answer")

    def record_answers(
        self, study_id: int, answers: Iterable[tuple[tuple[int, float, int], NewAnswer]]
    ) -> None:
        """:meth:`record_answer` for many ``(after, answer)`` pairs, in one transaction
        (all are stored or none)."""
        self._record_answers(study_id, list(answers), "KnowledgeBase.record_answers")

    def _record_answers(
        self,
        study_id: Any,
        pairs: list[tuple[tuple[int, float, int], NewAnswer]],
        method: str,
    ) -> None:
        study_id = check_int("study_id", study_id, owner=method)
        checked = []
        for after, answer in pairs:
            if not (isinstance(after, tuple) and len(after) == 3):
                raise TypeError(
                    f"The 'after' parameter of {method} must be a tuple (trial_number, "
                    f"fraction, epochs). Got {after!r} instead."
                )
            after_key = self._evaluation_key(*after, owner=f"{method} (after)")
            checked.append(
                (after_key, self._answer_key(answer, method), answer_row(answer, owner=method))
            )
        if not checked:
            return
        with self._write() as conn:
            self._study_name(conn, study_id, method)
            for after_key, key, row in checked:
                after_id = self._evaluation_id(conn, study_id, after_key)
                if after_id is None:
                    raise ValueError(
                        f"The 'after' parameter of {method} must name an evaluation stored "
                        f"in study {study_id}. Got {after_key!r}, which is not stored."
                    )
                self._insert_answer(conn, study_id, after_id, key, row, method=method)

    @staticmethod
    def _decision_rows(decisions: Iterable[DecisionRecord], method: str) -> list[dict[str, Any]]:
        rows = []
        for i, item in enumerate(decisions):
            owner = f"{method} (decisions[{i}])"
            if not isinstance(item, DecisionRecord):
                raise TypeError(
                    f"The 'decisions' parameter of {method} must hold DecisionRecord "
                    f"records. Got {type(item).__name__} at index {i}."
                )
            rows.append(decision_row(item, owner=owner))
        return rows

    @classmethod
    def _answer_key(cls, answer: Any, method: str) -> tuple[int, float, int]:
        if not isinstance(answer, NewAnswer):
            raise TypeError(
                f"The 'answer' parameter of {method} must be a NewAnswer. "
                f"Got {type(answer).__name__} instead."
            )
        return cls._evaluation_key(
            answer.trial_number, answer.fraction, answer.epochs, owner=f"{method} (answer)"
        )

    @staticmethod
    def _evaluation_key(
        number: Any, fraction: Any, epochs: Any, *, owner: str
    ) -> tuple[int, float, int]:
        return (
            bounded_int("trial_number", number, owner, low=0),
            check_fraction("fraction", fraction, owner=owner),
            bounded_int("epochs", epochs, owner, low=1),
        )

    @staticmethod
    def _study_name(conn: Connection, study_id: int, method: str) -> str:
        study = conn.execute(
            select(s.studies.c.name).where(s.studies.c.id == study_id)
        ).scalar_one_or_none()
        if study is None:
            raise ValueError(
                f"The 'study_id' parameter of {method} must be the id "
                f"of a stored study (see get_or_create_study). Got {study_id!r}, which "
                "is not."
            )
        return str(study)

    @staticmethod
    def _evaluation_id(conn: Connection, study_id: int, key: tuple[int, float, int]) -> int | None:
        number, fraction, epochs = key
        found = conn.execute(
            select(s.evaluations.c.id)
            .select_from(s.evaluations.join(s.trials, s.evaluations.c.trial_id == s.trials.c.id))
            .where(
                s.trials.c.study_id == study_id,
                s.trials.c.number == number,
                s.evaluations.c.fraction == fraction,
                s.evaluations.c.epochs == epochs,
            )
        ).scalar_one_or_none()
        return None if found is None else int(found)

    @staticmethod
    def _insert_decisions(conn: Connection, study_id: int, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        stored: set[int] = set()
        for chunk in _chunks(sorted({r["sequence"] for r in rows})):
            stored.update(
                conn.execute(
                    select(s.decisions.c.sequence).where(
                        s.decisions.c.study_id == study_id, s.decisions.c.sequence.in_(chunk)
                    )
                ).scalars()
            )
        new = []
        for row in rows:
            if row["sequence"] not in stored:
                stored.add(row["sequence"])
                new.append({"study_id": study_id, "created_at": _now(), **row})
        if new:
            conn.execute(insert(s.decisions), new)
        return len(new)

    def _insert_answer(
        self,
        conn: Connection,
        study_id: int,
        after_id: int,
        key: tuple[int, float, int],
        row: dict[str, Any],
        *,
        method: str,
    ) -> None:
        evaluation_id = self._evaluation_id(conn, study_id, key)
        if evaluation_id is None:
            raise ValueError(
                f"The 'answer' parameter of {method} must name an evaluation stored in "
                f"study {study_id}. Got trial {key[0]} at fraction={key[1]!r}, "
                f"epochs={key[2]!r}, which is not stored."
            )
        exists = conn.execute(
            select(s.answers.c.id).where(s.answers.c.after_evaluation_id == after_id)
        ).scalar_one_or_none()
        if exists is not None:
            return
        conn.execute(
            insert(s.answers).values(
                study_id=study_id,
                after_evaluation_id=after_id,
                evaluation_id=evaluation_id,
                created_at=_now(),
                **row,
            )
        )

    def record_evaluations(self, study_id: int, evaluations: Iterable[NewEvaluation]) -> list[int]:
        """Store many evaluations of one study in one transaction (batched inserts).

        Each evaluation follows the rules of :meth:`record_evaluation`; if any breaks
        them, nothing is stored.

        Parameters
        ----------
        study_id : int
        evaluations : iterable of NewEvaluation

        Returns
        -------
        list of int
            The evaluation ids, in the order given.
        """
        items = list(evaluations)
        for i, item in enumerate(items):
            if not isinstance(item, NewEvaluation):
                raise TypeError(
                    "The 'evaluations' parameter of KnowledgeBase.record_evaluations must "
                    f"hold NewEvaluation records. Got {type(item).__name__} at index {i}."
                )
        method = "KnowledgeBase.record_evaluations"
        owners = [f"{method} (evaluations[{i}])" for i in range(len(items))]
        return self._record(study_id, items, method=method, owners=owners)

    def _record(
        self,
        study_id: Any,
        items: list[NewEvaluation],
        *,
        method: str,
        owners: list[str],
        more: Callable[[Connection, int, list[int]], None] | None = None,
    ) -> list[int]:
        study_id = check_int("study_id", study_id, owner=method)
        prepared = []
        for item, owner in zip(items, owners):
            bounded_int("trial_number", item.trial_number, owner, low=0)
            bounded_int("bracket", item.bracket, owner, low=0)
            bounded_int("rung", item.rung, owner, low=0)
            config_text = config_json(item.config, owner=owner)
            row = evaluation_row(item, owner=owner)
            result_config_text = config_json(item.result.config, owner=owner)
            if result_config_text != config_text:
                raise ValueError(
                    f"The 'config' parameter of {owner} must equal result.config. Got "
                    f"{config_text} and result.config {result_config_text}."
                )
            prepared.append((int(item.trial_number), config_text, row))
        if not prepared:
            return []
        with self._write() as conn:
            study = self._study_name(conn, study_id, method)
            trial_ids = self._trial_ids(conn, study_id, study, prepared, owners)
            ids = self._insert_evaluations(conn, study, trial_ids, prepared)
            if more is not None:
                more(conn, study_id, ids)
            return ids

    def _trial_ids(
        self,
        conn: Connection,
        study_id: int,
        study: str,
        prepared: list[tuple[int, str, dict[str, Any]]],
        owners: list[str],
    ) -> dict[int, int]:
        """Trial number -> trial id, inserting the new trials; checks the configs."""
        numbers = sorted({number for number, _, _ in prepared})
        stored: dict[int, tuple[int, str]] = {}
        for chunk in _chunks(numbers):
            for tid, number, text in conn.execute(
                select(s.trials.c.id, s.trials.c.number, s.trials.c.config).where(
                    s.trials.c.study_id == study_id, s.trials.c.number.in_(chunk)
                )
            ):
                stored[number] = (tid, text)
        configs: dict[int, str] = {n: text for n, (_, text) in stored.items()}
        for (number, text, _), owner in zip(prepared, owners):
            known = configs.setdefault(number, text)
            if known != text:
                raise ValueError(
                    f"The 'config' parameter of {owner} must be the configuration trial "
                    f"{number} of study {study!r} was first recorded with, {known}. Got "
                    f"{text} instead; a trial number names one configuration."
                )
        ids = {n: tid for n, (tid, _) in stored.items()}
        new = [
            {"study_id": study_id, "number": n, "config": configs[n]}
            for n in numbers
            if n not in ids
        ]
        if new:
            returned = conn.execute(
                insert(s.trials).returning(
                    s.trials.c.id, s.trials.c.number, sort_by_parameter_order=True
                ),
                new,
            )
            ids.update({number: tid for tid, number in returned})
        return ids

    def _insert_evaluations(
        self,
        conn: Connection,
        study: str,
        trial_ids: dict[int, int],
        prepared: list[tuple[int, str, dict[str, Any]]],
    ) -> list[int]:
        stored: dict[tuple[int, float, int], RowMapping] = {}
        tids = sorted(set(trial_ids.values()))
        for chunk in _chunks(tids):
            for stored_row in conn.execute(
                select(s.evaluations).where(s.evaluations.c.trial_id.in_(chunk))
            ).mappings():
                key = (stored_row["trial_id"], stored_row["fraction"], stored_row["epochs"])
                stored[key] = stored_row
        now = _now()
        pending: dict[tuple[int, float, int], tuple[int, dict[str, Any]]] = {}
        slots: list[int | tuple[int, float, int]] = []
        for number, _, row in prepared:
            key = (trial_ids[number], row["fraction"], row["epochs"])
            if key in stored and lost_worker(stored[key]["status"], stored[key]["failure_reason"]):
                # A lost worker's failure was the infrastructure's: the evaluation run
                # again replaces it (same id), whatever its outcome.
                if differing_columns(stored[key], row):
                    conn.execute(
                        update(s.evaluations)
                        .where(s.evaluations.c.id == stored[key]["id"])
                        .values(llp_version=__version__, created_at=now, **row)
                    )
                slots.append(int(stored[key]["id"]))
            elif key in stored:
                self._check_identical(study, number, stored[key], row)
                slots.append(int(stored[key]["id"]))
            elif key in pending:
                self._check_identical(study, number, pending[key][1], row)
                slots.append(key)
            else:
                pending[key] = (len(pending), row)
                slots.append(key)
        new_ids: list[int] = []
        if pending:
            rows = [
                {"trial_id": key[0], "llp_version": __version__, "created_at": now, **row}
                for key, (_, row) in pending.items()
            ]
            new_ids = [
                int(i)
                for i in conn.execute(
                    insert(s.evaluations).returning(
                        s.evaluations.c.id, sort_by_parameter_order=True
                    ),
                    rows,
                ).scalars()
            ]
        return [slot if isinstance(slot, int) else new_ids[pending[slot][0]] for slot in slots]

    @staticmethod
    def _check_identical(
        study: str, number: int, stored: Mapping[Any, Any], new: Mapping[str, Any]
    ) -> None:
        differ = differing_columns(stored, new)
        if differ:
            where = f" (id {stored['id']})" if "id" in stored else " earlier in the same batch"
            raise DuplicateEvaluationError(
                f"Trial {number} of study {study!r} already has a finished evaluation at "
                f"fraction={new['fraction']!r}, epochs={new['epochs']!r}{where} that differs "
                f"in {', '.join(differ)}. A finished evaluation is never overwritten; record "
                "it under another trial number or fidelity, or in a new study."
            )

    def find_evaluation(
        self,
        study_id: int,
        *,
        trial_number: int,
        config: Mapping[str, Any],
        fraction: float,
        epochs: int,
    ) -> EvaluationResult | None:
        """The stored result of a trial at a fidelity, for resuming a study.

        Returns
        -------
        EvaluationResult or None
            The result exactly as recorded, or ``None`` if there is none or the trial
            was recorded with another configuration (then :meth:`record_evaluation`
            would refuse it too).
        """
        owner = "KnowledgeBase.find_evaluation"
        study_id = check_int("study_id", study_id, owner=owner)
        trial_number = bounded_int("trial_number", trial_number, owner, low=0)
        fraction = check_fraction("fraction", fraction, owner=owner)
        epochs = bounded_int("epochs", epochs, owner, low=1)
        text = config_json(config, owner=owner)
        with self._read() as conn:
            row = (
                conn.execute(
                    select(s.evaluations, s.trials.c.config.label("trial_config"))
                    .join(s.trials, s.trials.c.id == s.evaluations.c.trial_id)
                    .where(
                        s.trials.c.study_id == study_id,
                        s.trials.c.number == trial_number,
                        s.evaluations.c.fraction == fraction,
                        s.evaluations.c.epochs == epochs,
                    )
                )
                .mappings()
                .first()
            )
        if row is None or row["trial_config"] != text:
            return None
        with self._decoding(row):
            return result_from_row(row, json.loads(row["trial_config"]))

    def _evaluation_rows(
        self,
        study: str | None,
        dataset_fingerprint: str | None,
        status: EvaluationStatus | str | None,
        owner: str,
    ) -> Sequence[RowMapping]:
        query: Select[Any] = (
            select(
                s.evaluations,
                s.trials.c.number.label("trial_number"),
                s.trials.c.config.label("trial_config"),
                s.studies.c.name.label("study"),
                s.studies.c.model_family,
                s.datasets.c.fingerprint.label("dataset_fingerprint"),
                s.datasets.c.meta_features,
            )
            .join(s.trials, s.trials.c.id == s.evaluations.c.trial_id)
            .join(s.studies, s.studies.c.id == s.trials.c.study_id)
            .outerjoin(s.datasets, s.datasets.c.id == s.studies.c.dataset_id)
            .order_by(s.evaluations.c.id)
        )
        if study is not None:
            query = query.where(s.studies.c.name == check_text("study", study, owner=owner))
        if dataset_fingerprint is not None:
            fp = check_text("dataset_fingerprint", dataset_fingerprint, owner=owner)
            query = query.where(s.datasets.c.fingerprint == fp)
        if status is not None:
            query = query.where(s.evaluations.c.status == _status_value(status, owner))
        with self._read() as conn:
            return conn.execute(query).mappings().all()

    def evaluations(
        self,
        *,
        study: str | None = None,
        dataset_fingerprint: str | None = None,
        status: EvaluationStatus | Literal["complete", "failed"] | None = None,
    ) -> list[StoredEvaluation]:
        """Stored evaluations with their provenance, in the order they were recorded.

        Parameters
        ----------
        study : str, optional
            Only this study.
        dataset_fingerprint : str, optional
            Only studies of this dataset.
        status : EvaluationStatus or {"complete", "failed"}, optional
            Only evaluations in this state.

        Returns
        -------
        list of StoredEvaluation
        """
        rows = self._evaluation_rows(
            study, dataset_fingerprint, status, "KnowledgeBase.evaluations"
        )
        configs: dict[int, dict[str, Any]] = {}
        meta: dict[str, dict[str, float]] = {}
        out = []
        for row in rows:
            with self._decoding(row):
                config = configs.get(row["trial_id"])
                if config is None:
                    config = configs[row["trial_id"]] = json.loads(row["trial_config"])
                meta_text = row["meta_features"] or "{}"
                if meta_text not in meta:
                    meta[meta_text] = json.loads(meta_text)
                result = result_from_row(row, config)
            out.append(
                StoredEvaluation(
                    id=row["id"],
                    study=row["study"],
                    dataset_fingerprint=row["dataset_fingerprint"],
                    meta_features=meta[meta_text],
                    model_family=row["model_family"],
                    trial_number=row["trial_number"],
                    bracket=row["bracket"],
                    rung=row["rung"],
                    reason=row["reason"],
                    result=result,
                    llp_version=row["llp_version"],
                    created_at=_utc(row["created_at"]),
                )
            )
        return out

    def evaluation_stamps(self) -> list[tuple[int, datetime.datetime]]:
        """``(id, created_at)`` of every stored evaluation, in id order, read without
        decoding any result: a cheap fingerprint of what :meth:`evaluations` returns
        (a stored evaluation changes only when it is added, or replaced by a run of a
        lost worker's evaluation, which gives it a new ``created_at``)."""
        e = s.evaluations
        with self._read() as conn:
            rows = conn.execute(select(e.c.id, e.c.created_at).order_by(e.c.id)).all()
        return [(int(i), _utc(created)) for i, created in rows]

    def decisions(self, study: str) -> list[DecisionRecord]:
        """The decisions stored for ``study``, in the order they were made (empty for a
        study whose scheduler records none)."""
        study_id = self._study_id(study, "KnowledgeBase.decisions")
        with self._read() as conn:
            rows = conn.execute(
                select(s.decisions)
                .where(s.decisions.c.study_id == study_id)
                .order_by(s.decisions.c.sequence)
            ).mappings()
            fields = [c for c in DecisionRecord.__dataclass_fields__ if c != "created_at"]
            return [
                DecisionRecord(**{f: row[f] for f in fields}, created_at=_utc(row["created_at"]))
                for row in rows
            ]

    def answers(self, study: str) -> list[AnswerRecord]:
        """The study's answer after each of its evaluations, in recording order (empty
        for a study stored before answers were: schema 1, or written without them)."""
        return self._answers(study, "KnowledgeBase.answers", latest=False)

    def answer(self, study: str) -> AnswerRecord | None:
        """The study's answer after its last recorded evaluation, or ``None`` when it
        has none stored (see :meth:`answers`)."""
        found = self._answers(study, "KnowledgeBase.answer", latest=True)
        return found[0] if found else None

    def _answers(self, study: str, method: str, *, latest: bool) -> list[AnswerRecord]:
        study_id = self._study_id(study, method)
        a, e, t = s.answers, s.evaluations, s.trials
        query = (
            select(
                a,
                t.c.number.label("trial_number"),
                t.c.config.label("trial_config"),
                e.c.fraction,
                e.c.epochs,
                e.c.score,
            )
            .select_from(a.join(e, a.c.evaluation_id == e.c.id).join(t, e.c.trial_id == t.c.id))
            .where(a.c.study_id == study_id)
            .order_by(a.c.after_evaluation_id.desc() if latest else a.c.after_evaluation_id)
        )
        if latest:
            query = query.limit(1)
        out = []
        with self._read() as conn:
            for row in conn.execute(query).mappings():
                out.append(
                    AnswerRecord(
                        after_evaluation_id=int(row["after_evaluation_id"]),
                        evaluation_id=int(row["evaluation_id"]),
                        trial_number=int(row["trial_number"]),
                        fraction=float(row["fraction"]),
                        epochs=int(row["epochs"]),
                        score=float(row["score"]),
                        config=json.loads(row["trial_config"]),
                        rule=row["rule"],
                        note=row["note"],
                        posterior=row["posterior"],
                        prior_weight=row["prior_weight"],
                        created_at=_utc(row["created_at"]),
                    )
                )
        return out

    def _study_id(self, study: Any, method: str) -> int:
        name = check_text("study", study, owner=method)
        with self._read() as conn:
            found = conn.execute(
                select(s.studies.c.id).where(s.studies.c.name == name)
            ).scalar_one_or_none()
        if found is None:
            raise KeyError(f"There is no study called {name!r} in {self.storage!r}.")
        return int(found)

    def evaluations_frame(
        self,
        *,
        study: str | None = None,
        dataset_fingerprint: str | None = None,
        status: EvaluationStatus | Literal["complete", "failed"] | None = None,
    ) -> pd.DataFrame:
        """The stored evaluations as a pandas DataFrame, one row per evaluation.

        Same filters as :meth:`evaluations`. Columns: ``evaluation_id``, ``study``,
        ``dataset``, ``model_family``, ``trial_number``, ``bracket``, ``rung``,
        ``reason``, ``fraction``, ``epochs``, ``status``, ``score``, ``objective``,
        ``cost``, ``seconds``, ``train_seconds``, ``probe_cost``, ``n_train``, ``seed``,
        ``failure_reason``, ``epochs_run``, ``final_train_loss``, ``final_val_loss``,
        ``final_val_accuracy``, ``curve`` (tuple of EpochRecord), ``llp_version``, then
        ``config.<name>`` per hyperparameter, ``meta.<name>`` per dataset meta-feature
        and ``landscape.<name>`` per landscape feature (missing values are NaN).
        """
        import pandas as pd

        rows = self._evaluation_rows(
            study, dataset_fingerprint, status, "KnowledgeBase.evaluations_frame"
        )
        configs: dict[int, dict[str, Any]] = {}
        metas: dict[str, dict[str, Any]] = {}
        records = []
        for row in rows:
            with self._decoding(row):
                config = configs.get(row["trial_id"])
                if config is None:
                    config = configs[row["trial_id"]] = {
                        f"config.{k}": v for k, v in json.loads(row["trial_config"]).items()
                    }
                meta_text = row["meta_features"] or "{}"
                meta = metas.get(meta_text)
                if meta is None:
                    meta = metas[meta_text] = {
                        f"meta.{k}": v for k, v in json.loads(meta_text).items()
                    }
                curve = curve_from_json(row["curve"])
                landscape = {
                    f"landscape.{k}": v for k, v in landscape_from_json(row["landscape"]).items()
                }
            last = curve[-1] if curve else None
            records.append(
                {
                    "evaluation_id": row["id"],
                    "study": row["study"],
                    "dataset": row["dataset_fingerprint"],
                    "model_family": row["model_family"],
                    "trial_number": row["trial_number"],
                    "bracket": row["bracket"],
                    "rung": row["rung"],
                    "reason": row["reason"],
                    "fraction": row["fraction"],
                    "epochs": row["epochs"],
                    "status": row["status"],
                    "score": row["score"],
                    "objective": row["objective"],
                    "cost": row["cost"],
                    "seconds": row["seconds"],
                    "train_seconds": row["train_seconds"],
                    "probe_cost": row["probe_cost"],
                    "n_train": row["n_train"],
                    "seed": row["seed"],
                    "failure_reason": row["failure_reason"],
                    "epochs_run": len(curve),
                    "final_train_loss": last.train_loss if last else None,
                    "final_val_loss": last.val_loss if last else None,
                    "final_val_accuracy": last.val_accuracy if last else None,
                    "curve": curve,
                    "llp_version": row["llp_version"],
                    **config,
                    **meta,
                    **landscape,
                }
            )
        if not records:
            return pd.DataFrame(columns=list(_FRAME_COLUMNS))
        return pd.DataFrame.from_records(records)

    # ------------------------------------------------------------------ summary
    def counts(self) -> dict[str, int]:
        """Number of rows of each data table: datasets, studies, trials, evaluations."""
        with self._read() as conn:
            return {
                table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for table in (s.datasets, s.studies, s.trials, s.evaluations)
            }


_FRAME_COLUMNS = (
    "evaluation_id",
    "study",
    "dataset",
    "model_family",
    "trial_number",
    "bracket",
    "rung",
    "reason",
    "fraction",
    "epochs",
    "status",
    "score",
    "objective",
    "cost",
    "seconds",
    "train_seconds",
    "probe_cost",
    "n_train",
    "seed",
    "failure_reason",
    "epochs_run",
    "final_train_loss",
    "final_val_loss",
    "final_val_accuracy",
    "curve",
    "llp_version",
)


def _status_value(status: Any, owner: str) -> str:
    if isinstance(status, EvaluationStatus):
        return status.value
    values = [m.value for m in EvaluationStatus]
    if isinstance(status, str) and status in values:
        return status
    raise ValueError(
        f"The 'status' parameter of {owner} must be an EvaluationStatus or one of "
        f"{values}. Got {status!r} instead."
    )


def _check_same_study(name: str, row: Mapping[Any, Any], asked: Mapping[str, Any]) -> None:
    problems: list[str] = []
    fields: list[str] = []
    for field, value in asked.items():
        if row[field] == value:
            continue
        fields.append(field)
        if field in ("settings", "space") and row[field] is not None and value is not None:
            problems += _mapping_diff(json.loads(row[field]), json.loads(value), field)
        else:
            problems.append(
                f"{field} is {row[field]!r} in the knowledge base but {value!r} was asked"
            )
    if fields:
        raise ValueError(
            f"The study {name!r} already exists with other {', '.join(map(repr, fields))}: "
            f"{'; '.join(problems)}. A study resumes only with the settings it was created "
            "with; give the same ones, or a new study name to search with other settings."
        )


def _dataset_record(row: Mapping[Any, Any]) -> DatasetRecord:
    return DatasetRecord(
        id=row["id"],
        fingerprint=row["fingerprint"],
        name=row["name"],
        group=row["group_name"],
        n_samples=row["n_samples"],
        meta_features=json.loads(row["meta_features"]),
        created_at=_utc(row["created_at"]),
    )


def _study_record(row: Mapping[Any, Any]) -> StudyRecord:
    return StudyRecord(
        id=row["id"],
        name=row["name"],
        dataset_id=row["dataset_id"],
        scheduler=row["scheduler"],
        settings=json.loads(row["settings"]),
        space=None if row["space"] is None else json.loads(row["space"]),
        seed=row["seed"],
        objective=row["objective"],
        model_family=row["model_family"],
        created_at=_utc(row["created_at"]),
        llp_version=row["llp_version"],
    )
