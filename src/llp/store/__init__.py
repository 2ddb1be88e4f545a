"""The knowledge base: what llp learns, kept across studies and processes.

:class:`KnowledgeBase` stores datasets (fingerprint and meta-features), studies (scheduler,
settings, seed), trials (one configuration each) and evaluations (one trial at one
fidelity: curve, score, cost, landscape features, failure reason and traceback, why it
ran). It is a SQLite file by default and a PostgreSQL database by URL, through
SQLAlchemy Core; values are stored as numbers, text and JSON text, never pickles.

Schema (version :data:`SCHEMA_VERSION`)
----------------------------------------
- ``meta(key, value)``: ``application`` = ``"llp"``, ``schema_version``,
  ``created_with`` (the llp version that created the knowledge base).
- ``datasets(id, fingerprint UNIQUE, name, group_name, n_samples, meta_features JSON,
  created_at)``
- ``studies(id, name UNIQUE, dataset_id -> datasets, scheduler, settings JSON,
  space JSON, seed, objective, model_family, created_at, llp_version)``
- ``trials(id, study_id -> studies, number, config JSON; UNIQUE(study_id, number))``
- ``evaluations(id, trial_id -> trials, fraction, epochs, status, score, objective,
  cost, seconds, train_seconds, n_train, seed, curve JSON, landscape JSON, probe_cost,
  failure_reason, traceback, bracket, rung, reason, llp_version, created_at;
  UNIQUE(trial_id, fraction, epochs))``
- ``decisions(id, study_id -> studies, sequence, action, rule, reason, trial_number,
  bracket, rung, fraction, epochs, source, predicted, uncertainty, prior_score,
  measured, posterior, prior_weight, created_at; UNIQUE(study_id, sequence))``: a
  scheduler's decisions as data (:class:`DecisionRecord`).
- ``answers(id, study_id -> studies, after_evaluation_id -> evaluations UNIQUE,
  evaluation_id -> evaluations, rule, note, posterior, prior_weight, created_at)``: the
  study's answer after each evaluation (:class:`AnswerRecord`).

Older knowledge bases are migrated on open (:mod:`llp.store._migrations`). Studies travel
between knowledge bases as JSON or Parquet files (:func:`export_knowledge`,
:func:`import_knowledge`), checked record by record before anything is written.

A curve is stored column-wise: ``{"epoch": [1, 2], "train_loss": [...], "val_loss":
[...], "val_accuracy": [...], "seconds": [...]}``.
"""

from __future__ import annotations

from llp.store._errors import (
    DuplicateEvaluationError,
    ExchangeError,
    KnowledgeBaseError,
    StudyBusyError,
    StudyExistsError,
)
from llp.store._exchange import (
    ExportSummary,
    ImportSummary,
    export_document,
    export_knowledge,
    import_knowledge,
    read_export,
)
from llp.store._knowledge_base import KnowledgeBase
from llp.store._records import (
    AnswerRecord,
    DatasetRecord,
    DecisionRecord,
    NewAnswer,
    NewEvaluation,
    StoredEvaluation,
    StudyRecord,
)
from llp.store._schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "AnswerRecord",
    "DatasetRecord",
    "DecisionRecord",
    "DuplicateEvaluationError",
    "ExchangeError",
    "ExportSummary",
    "ImportSummary",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "NewAnswer",
    "NewEvaluation",
    "StoredEvaluation",
    "StudyBusyError",
    "StudyExistsError",
    "StudyRecord",
    "export_document",
    "export_knowledge",
    "import_knowledge",
    "read_export",
]
