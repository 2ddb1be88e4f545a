"""Migrations of a knowledge base's tables from one schema version to the next.

:meth:`KnowledgeBase.open` runs them when it opens a knowledge base of an older schema,
inside one write transaction (both SQLite and PostgreSQL roll DDL back), so a migration
cut short leaves the old version intact and the next open tries again. The table changes
go through Alembic's operations (``alembic.operations.Operations``), which speak both
backends' DDL; the version itself is the ``schema_version`` row of the ``meta`` table that
every llp knowledge base already has, so there is no second version table to keep in
step with it.

Each step is written against the tables as they were at its version, never against
:mod:`llp.store._schema` (which moves on): a knowledge base of any older version goes
through every step in turn.

Adding a schema version: bump :data:`llp.store._schema.SCHEMA_VERSION`, write
``_to_<n>(op, conn)`` here and add it to :data:`STEPS`, and extend the migration test
with a file of the previous version.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    Text,
    UniqueConstraint,
    column,
    insert,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.engine import Connection

from llp import __version__
from llp.store import _schema as s

#: Rule of a decision recovered from the reason text of an evaluation stored before
#: schema 2 (that version stored decisions only as text).
RECOVERED_RULE = "recovered from the reason text (schema 1)"


def _to_2(op: Any, conn: Connection) -> None:
    """Schema 2: a scheduler's decisions and the study's answer after each evaluation
    are data. The decisions of meta-guided studies are recovered from the reasons their
    evaluations were stored with; their answers were never stored, so none are made up
    (the report and the CLI say so)."""
    op.create_table(
        "decisions",
        Column("id", Integer, primary_key=True),
        Column("study_id", Integer, ForeignKey("studies.id"), nullable=False),
        Column("sequence", Integer, nullable=False),
        Column("action", Text, nullable=False),
        Column("rule", Text, nullable=False),
        Column("reason", Text, nullable=False),
        Column("trial_number", Integer),
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
    op.create_table(
        "answers",
        Column("id", Integer, primary_key=True),
        Column("study_id", Integer, ForeignKey("studies.id"), nullable=False),
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
    op.create_index("ix_answers_study_id", "answers", ["study_id"])
    rows = _recovered_decisions(conn)
    if rows:
        conn.execute(insert(table("decisions", *(column(k) for k in rows[0]))), rows)


# The reason texts of schema-1 meta-guided studies (the versions that wrote them are
# the only ones ever parsed: from schema 2 on, decisions are stored as data).
_PREDICTION = re.compile(r"predicted final rank (?P<mean>-?[0-9.]+) ± (?P<std>[0-9.]+)")
_PRIOR_SCORE = re.compile(r"prior score (?P<score>-?[0-9.]+)")
_SOURCE = re.compile(r"\(source: (?P<source>[a-z]+)\)")
_POSTERIOR = re.compile(r"posterior (?P<posterior>-?[0-9.]+)")
_PRIOR_WEIGHT = re.compile(r"prior weight (?P<weight>[0-9.]+)")
_MEASURED = re.compile(r"measured (?P<score>-?[0-9.eE+-]+) on")


def _number(pattern: re.Pattern[str], text: str, group: str) -> float | None:
    match = pattern.search(text)
    if match is None:
        return None
    try:
        return float(match[group])
    except ValueError:
        return None


def _recovered_decisions(conn: Connection) -> list[dict[str, Any]]:
    """One ``proposed`` / ``promoted`` / ``carried`` / ``runner-up`` decision per
    evaluation of each schema-1 MetaProbing study, from its reason, in recording order."""
    studies = table("studies", column("id"), column("scheduler"))
    trials = table("trials", column("id"), column("study_id"), column("number"))
    evaluations = table(
        "evaluations",
        column("id"),
        column("trial_id"),
        column("fraction"),
        column("epochs"),
        column("bracket"),
        column("rung"),
        column("reason"),
    )
    query = (
        select(
            trials.c.study_id,
            trials.c.number,
            evaluations.c.fraction,
            evaluations.c.epochs,
            evaluations.c.bracket,
            evaluations.c.rung,
            evaluations.c.reason,
        )
        .select_from(
            evaluations.join(trials, evaluations.c.trial_id == trials.c.id).join(
                studies, trials.c.study_id == studies.c.id
            )
        )
        .where(studies.c.scheduler == "MetaProbing")
        .order_by(trials.c.study_id, evaluations.c.id)
    )
    now = datetime.datetime.now(datetime.UTC)
    out: list[dict[str, Any]] = []
    sequence: dict[int, int] = {}
    for study_id, number, fraction, epochs, bracket, rung, reason in conn.execute(query):
        text = reason or ""
        action = next(
            (a for a in ("promoted", "carried", "runner-up") if text.startswith(a)), "proposed"
        )
        prediction = _PREDICTION.search(text)
        prior_score = _number(_PRIOR_SCORE, text, "score")
        source = _SOURCE.search(text)
        seq = sequence[study_id] = sequence.get(study_id, -1) + 1
        out.append(
            {
                "study_id": study_id,
                "sequence": seq,
                "action": action,
                "rule": RECOVERED_RULE,
                "reason": text,
                "trial_number": number,
                "bracket": bracket,
                "rung": rung,
                "fraction": fraction,
                "epochs": epochs,
                "source": None if source is None else source["source"],
                "predicted": float(prediction["mean"]) if prediction else prior_score,
                "uncertainty": float(prediction["std"]) if prediction else None,
                "prior_score": prior_score,
                "measured": _number(_MEASURED, text, "score") if action != "proposed" else None,
                "posterior": _number(_POSTERIOR, text, "posterior"),
                "prior_weight": _number(_PRIOR_WEIGHT, text, "weight"),
                "created_at": now,
            }
        )
    return out


def _to_3(op: Any, conn: Connection) -> None:
    """Schema 3: a float JSON cannot hold (a diverged loss, a failed landscape probe) is
    written in curves and landscapes by its name (``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``), the convention of every llp file, instead of the bare tokens that
    Python's JSON wrote before. Only the rows holding such a token are rewritten; the
    values read back are the same floats."""
    evaluations = table("evaluations", column("id"), column("curve"), column("landscape"))
    tokens = ("NaN", "Infinity")
    held = [
        evaluations.c[name].like(f"%{token}%")
        for name in ("curve", "landscape")
        for token in tokens
    ]
    rows = conn.execute(
        select(evaluations.c.id, evaluations.c.curve, evaluations.c.landscape).where(or_(*held))
    ).all()
    for row in rows:
        curve, landscape = (
            json.dumps(_named_floats(json.loads(text)), sort_keys=True, separators=(",", ":"))
            for text in (row.curve, row.landscape)
        )
        conn.execute(
            update(evaluations)
            .where(evaluations.c.id == row.id)
            .values(curve=curve, landscape=landscape)
        )


def _named_floats(value: Any) -> Any:
    """``value`` with every non-finite float written by its name (frozen here as schema
    3 wrote it)."""
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {k: _named_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_named_floats(v) for v in value]
    return value


#: ``STEPS[v]`` migrates a knowledge base of schema ``v`` to ``v + 1``.
STEPS: dict[int, Callable[[Any, Connection], None]] = {1: _to_2, 2: _to_3}


def migrate(conn: Connection, version: int) -> None:
    """Bring a knowledge base of schema ``version`` to :data:`SCHEMA_VERSION` on
    ``conn`` (inside the caller's write transaction), and record the migration in the
    ``meta`` table (``migrated_to_<n>`` = the llp version that did it)."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    op = Operations(MigrationContext.configure(conn))
    for v in range(version, s.SCHEMA_VERSION):
        STEPS[v](op, conn)
        conn.execute(insert(s.meta).values(key=f"migrated_to_{v + 1}", value=__version__))
    conn.execute(
        update(s.meta).where(s.meta.c.key == "schema_version").values(value=str(s.SCHEMA_VERSION))
    )
