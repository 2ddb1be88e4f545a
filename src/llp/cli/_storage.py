"""Where the ``llp`` command keeps its knowledge base.

``--storage`` takes what :meth:`llp.store.KnowledgeBase.open` takes: a SQLite path, a
``sqlite:///`` URL or a ``postgresql://`` URL. Without it the environment variable
``LLP_STORAGE`` is used, and without that the SQLite file ``./llp-runs/knowledge.db``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from llp.cli._defaults import DEFAULT_STORAGE, RUNS_DIR, STORAGE_ENV
from llp.cli._errors import CliError, one_line
from llp.store import KnowledgeBase, KnowledgeBaseError, StudyRecord


def resolve_storage(storage: str | None) -> str:
    """``--storage``, else ``$LLP_STORAGE``, else :data:`DEFAULT_STORAGE`."""
    if storage is not None and storage.strip():
        return storage
    return os.environ.get(STORAGE_ENV, "").strip() or DEFAULT_STORAGE


def _is_sqlite_file(storage: str) -> bool:
    return "://" not in storage or storage.lower().startswith("sqlite:")


def _sqlite_path(storage: str) -> Path:
    return Path(storage.split(":///", 1)[1] if "://" in storage else storage).expanduser()


def missing_sqlite_file(where: str) -> bool:
    """Whether the resolved storage ``where`` names a SQLite file that does not exist
    yet (never for ``:memory:`` or a server URL)."""
    return _is_sqlite_file(where) and where != ":memory:" and not _sqlite_path(where).is_file()


def open_knowledge_base(storage: str | None, *, must_exist: bool = False) -> KnowledgeBase:
    """Open the knowledge base, turning every way it can fail into a :class:`CliError`.

    Parameters
    ----------
    storage : str or None
        ``--storage`` as given (resolved with :func:`resolve_storage`).
    must_exist : bool, default=False
        Refuse a SQLite path that does not exist yet instead of creating it (for the
        commands that only read).
    """
    where = resolve_storage(storage)
    if must_exist and missing_sqlite_file(where):
        raise CliError(
            f"The knowledge base {where!r} does not exist (the '--storage' option, "
            f"${STORAGE_ENV} or the default {DEFAULT_STORAGE}); run 'llp tune' first or "
            "point --storage at an existing one."
        )
    return _opened(where, lambda: KnowledgeBase(where))


def _opened(where: str, open_it: Callable[[], KnowledgeBase]) -> KnowledgeBase:
    try:
        return open_it()
    except KnowledgeBaseError:
        raise
    except ImportError as exc:
        raise CliError(one_line(str(exc))) from exc
    except (TypeError, ValueError) as exc:
        raise CliError(f"The '--storage' option is not usable: {one_line(str(exc))}") from exc
    except OSError as exc:
        raise CliError(
            f"The knowledge base {where!r} cannot be opened: {one_line(str(exc))}"
        ) from exc


def report_folder(study: str) -> Path:
    """The default folder of a study's report, ``llp-runs/reports/NAME``, always inside
    ``llp-runs/reports``: a stored name is untrusted (an imported study may be called
    ``../..`` or ``/etc``), so anything but letters, digits, ``.``, ``_`` and ``-`` becomes
    ``_``, a leading dot is dropped, and a changed name gets a digest of the original so
    two names never share a folder."""
    import re

    from llp._digest import short_digest

    safe = re.sub(r"[^A-Za-z0-9._-]", "_", study).lstrip(".")[:100] or "study"
    if safe != study:
        safe += "-" + short_digest(study)
    return RUNS_DIR / "reports" / safe


def require_study(kb: KnowledgeBase, name: str) -> StudyRecord:
    """The study called ``name``, or a :class:`CliError` listing the stored ones."""
    study = kb.get_study(name)
    if study is None:
        names = [s.name for s in kb.list_studies()]
        shown = ", ".join(names[-10:]) if names else "none yet"
        raise CliError(
            f"There is no study {name!r} in the knowledge base {kb.storage!r} "
            f"(stored studies: {shown}; 'llp kb list' shows them all)."
        )
    return study


__all__ = [
    "DEFAULT_STORAGE",
    "RUNS_DIR",
    "STORAGE_ENV",
    "open_knowledge_base",
    "report_folder",
    "require_study",
    "resolve_storage",
]
