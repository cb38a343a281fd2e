"""The schema, as SQLAlchemy Core metadata. migrations/versions/ creates exactly this.

Portable types only, because the same schema runs on SQLite and PostgreSQL: JSON is kept as
Text (canonical JSON, see chain.py), timestamps as epoch seconds in a Float, enums as their
string values. `chain_head` holds the last event's seq and hash in one row; every transaction
that appends events reads and updates it, so event writers serialise on that row and the
chain stays exact under concurrency.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("plan", String(), nullable=False),
    Column("state", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("params", Text, nullable=False),
    Column("spec", Text, nullable=False),
    Column("plan_path", Text),
    Column("workspace", Text, nullable=False),
    Column("max_workers", Integer, nullable=False),
    Column("owner", String()),
    Column("heartbeat_at", Float),
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    Index("ix_runs_created_at", "created_at"),
)

steps = Table(
    "steps",
    metadata,
    Column("run_id", String(64), nullable=False),
    Column("step_id", String(), nullable=False),
    Column("position", Integer, nullable=False),  # order of NewRun.step_ids (topological)
    Column("state", String(32), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("failure_class", String(32)),
    Column("outputs", Text, nullable=False),
    Column("retries_used", Text, nullable=False),
    Column("next_at", Float),
    Column("reason", Text),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("run_id", "step_id", name="pk_steps"),
    ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_steps_run_id"),
    Index("ix_steps_run_id_position", "run_id", "position"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("run_id", String(64), nullable=False),
    Column("step_id", String(), nullable=False),
    Column("number", Integer, nullable=False),
    Column("state", String(32), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("exit_code", Integer),
    Column("failure_class", String(32)),
    Column("error", Text),
    Column("stdout_path", Text),
    Column("stderr_path", Text),
    Column("pid", Integer),
    Column("pgid", Integer),
    Column("proc_start", BigInteger),
    Column("owner", String()),
    PrimaryKeyConstraint("run_id", "step_id", "number", name="pk_attempts"),
    ForeignKeyConstraint(
        ["run_id", "step_id"],
        ["steps.run_id", "steps.step_id"],
        name="fk_attempts_step",
    ),
)

events = Table(
    "events",
    metadata,
    # Assigned by the writer from chain_head, never by the database: the hash covers it.
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("run_id", String(64)),
    Column("step_id", String()),
    Column("attempt", Integer),
    Column("kind", String(64), nullable=False),
    Column("from_state", String(32)),
    Column("to_state", String(32)),
    Column("at", Float, nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_events_run_id_seq", "run_id", "seq"),
)

chain_head = Table(
    "chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

CHAIN_HEAD_ID = 1
