"""Drives a scheduler through an executor, records every evaluation, reports progress."""

from __future__ import annotations

from llp.runner._runner import (
    InProcessExecutor,
    ProgressCallback,
    ProgressEvent,
    Runner,
    StudyFailedError,
    StudyResult,
    select_best,
)

__all__ = [
    "InProcessExecutor",
    "ProgressCallback",
    "ProgressEvent",
    "Runner",
    "StudyFailedError",
    "StudyResult",
    "select_best",
]
