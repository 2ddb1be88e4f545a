"""Drives a scheduler through an executor, records every evaluation, reports progress."""

from __future__ import annotations

from llp.features import DatasetInfo, describe_dataset
from llp.runner._recording import StudyRecorder, configs_digest, default_study_name
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
from llp.runner._session import JobEvaluator, StudySession
from llp.search import select_best

__all__ = [
    "DatasetInfo",
    "InProcessExecutor",
    "JobEvaluator",
    "ProgressCallback",
    "ProgressEvent",
    "Runner",
    "StudyFailedError",
    "StudyRecorder",
    "StudyResult",
    "StudySession",
    "WorkerLostError",
    "configs_digest",
    "default_study_name",
    "describe_dataset",
    "noise_margin",
    "select_best",
]
