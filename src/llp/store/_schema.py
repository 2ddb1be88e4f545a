"""Tables of the knowledge base (SQLAlchemy Core), identical on SQLite and PostgreSQL.

Structured values (configurations, settings, curves, landscape features, meta-features)
are stored as JSON text written by :func:`json.dumps` and read by :func:`json.loads`:
opening a knowledge base never runs code found in it, unlike a pickle would.

Bump :data:`SCHEMA_VERSION` whenever a table changes, and add the step from the previous
version to :mod:`llp.store._migrations`: :meth:`KnowledgeBase.open` migrates an older
knowledge base on open and refuses one whose version is newer than this one.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

#: Version of the table layout this llp reads and writes (2: decisions and answers; 3:
#: non-finite floats in curves and landscapes written by name, as in every llp file).
SCHEMA_VERSION = 3

#: Value of the ``application`` row of the ``meta`` table: tells an llp knowledge base
#: apart from another application's table that happens to be called ``meta``.
APPLICATION = "llp"

metadata = MetaData()

# Key/value rows: "application", "schema_version", "created_with" (the llp version).
meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fingerprint", Text, nullable=False, unique=True),
    Column("name", Text),
    Column("group_name", Text),
    Column("n_samples", BigInteger),
    Column("meta_features", Text, nullable=False),  # JSON object name -> float
    Column("created_at", DateTime(timezone=True), nullable=False),
)

studies = Table(
    "studies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), index=True),
    Column("scheduler", Text, nullable=False),
    Column("settings", Text, nullable=False),  # JSON object
    Column("space", Text),  # JSON object or NULL
    Column("seed", BigInteger, nullable=False),
    Column("objective", Text, nullable=False),
    Column("model_family", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("llp_version", Text, nullable=False),
)

trials = Table(
    "trials",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("study_id", Integer, ForeignKey("studies.id"), nullable=False),
    Column("number", Integer, nullable=False),  # the scheduler's trial_id
    Column("config", Text, nullable=False),  # canonical JSON (llp.space.canonical_config_json)
    UniqueConstraint("study_id", "number", name="uq_trials_study_number"),
)

evaluations = Table(
    "evaluations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("trial_id", Integer, ForeignKey("trials.id"), nullable=False),
    Column("fraction", Double, nullable=False),
    Column("epochs", Integer, nullable=False),
    Column("status", Text, nullable=False),  # EvaluationStatus.value
    Column("score", Double),
    Column("objective", Text, nullable=False),
    Column("cost", Double, nullable=False),
    Column("seconds", Double, nullable=False),
    Column("train_seconds", Double, nullable=False),
    Column("n_train", BigInteger, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("curve", Text, nullable=False),  # JSON {"epoch": [...], "train_loss": [...], ...}
    Column("landscape", Text, nullable=False),  # JSON object name -> float
    Column("probe_cost", Double, nullable=False),
    Column("failure_reason", Text),
    Column("traceback", Text),
    Column("bracket", Integer, nullable=False),
    Column("rung", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("llp_version", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("trial_id", "fraction", "epochs", name="uq_evaluations_trial_fidelity"),
)

# A scheduler's decisions as data (proposed, promoted, kept out, dropped, stopped, ...):
# written by the runner as they are made, read by the report and the CLI.
decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("study_id", Integer, ForeignKey("studies.id"), nullable=False),
    Column("sequence", Integer, nullable=False),  # order within the study, from 0
    Column("action", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("reason", Text, nullable=False),  # for people only; never parsed
    Column("trial_number", Integer),  # NULL for "stopped"
    Column("bracket", Integer, nullable=False),
    Column("rung", Integer),
    Column("fraction", Double),
    Column("epochs", Integer),
    Column("source", Text),
    Column("predicted", Double),
    Column("uncertainty", Double),
    Column("prior_score", Double),
    Column("measured", Double),
    Column("posterior", Double),
    Column("prior_weight", Double),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("study_id", "sequence", name="uq_decisions_study_sequence"),
)

# The study's answer after each evaluation (the anytime incumbent), as the scheduler
# judged it: every surface shows this row and never judges again.
answers = Table(
    "answers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("study_id", Integer, ForeignKey("studies.id"), nullable=False, index=True),
    Column(
        "after_evaluation_id",
        Integer,
        ForeignKey("evaluations.id"),
        nullable=False,
        unique=True,
    ),
    Column("evaluation_id", Integer, ForeignKey("evaluations.id"), nullable=False),
    Column("rule", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("posterior", Double),
    Column("prior_weight", Double),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: Names of the tables, in the order they are created.
TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in metadata.sorted_tables)
