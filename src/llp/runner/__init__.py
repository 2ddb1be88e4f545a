"""Drives a scheduler through an executor, records every evaluation, reports progress."""

from __future__ import annotations

from llp.runner._recording import (
    DatasetInfo,
    StudyRecorder,
    configs_digest,
    default_study_name,
    describe_dataset,
)
from llp.runner._runner import (
    InProcessExecutor,
    ProgressCallback,
    ProgressEvent,
    Runner,
    StudyFailedError,
    StudyResult,
    WorkerLostError,
    noise_margin,
)
from llp.search import select_best

__all__ = [
    "DatasetInfo",
    "InProcessExecutor",
    "ProgressCallback",
    "ProgressEvent",
    "Runner",
    "StudyFailedError",
    "StudyRecorder",
    "StudyResult",
    "WorkerLostError",
    "configs_digest",
    "default_study_name",
    "describe_dataset",
    "noise_margin",
    "select_best",
]
