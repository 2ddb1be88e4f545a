"""Errors raised by the knowledge base."""

from __future__ import annotations


class KnowledgeBaseError(Exception):
    """The knowledge base cannot be opened or used as asked.

    Raised for a file that is not an llp knowledge base (another application's database,
    random bytes, a truncated or corrupted SQLite file), for a knowledge base written by a
    newer llp, for an unreachable PostgreSQL server and for a closed
    :class:`~llp.store.KnowledgeBase`. The message names the storage it is about; the
    driver's own exception is kept as ``__cause__``.
    """


class DuplicateEvaluationError(KnowledgeBaseError):
    """A finished evaluation is already stored under the same key and differs.

    The key of an evaluation is (study, trial number, data fraction, epochs). A finished
    evaluation is immutable: writing the identical evaluation again is a no-op, writing a
    different one raises this error and leaves the stored one untouched.
    """


class StudyBusyError(KnowledgeBaseError):
    """Another process (or another open knowledge base in this one) is running the study
    right now (:meth:`KnowledgeBase.study_lock`); nothing was trained."""


class StudyExistsError(ValueError):
    """A study was to be created new (``create_only=True``) but one of that name is
    already stored (another process may have created it a moment before)."""


class ExchangeError(ValueError):
    """An export file cannot be written, read or imported as asked (not a file, not
    an llp export, a record that breaks the format, or one that disagrees with what the
    knowledge base holds). The message names the file and the record; nothing was
    written to the knowledge base."""
