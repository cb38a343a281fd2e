"""The initial schema: runs, steps, attempts, the hash-chained events and the chain head.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Written out in full rather than from tables.py, so that later changes to tables.py need a new
revision; tests/unit/test_store.py checks the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("plan", sa.String(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float()),
        sa.Column("finished_at", sa.Float()),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("plan_path", sa.Text()),
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("max_workers", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String()),
        sa.Column("heartbeat_at", sa.Float()),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_table(
        "steps",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failure_class", sa.String(32)),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.Column("retries_used", sa.Text(), nullable=False),
        sa.Column("next_at", sa.Float()),
        sa.Column("reason", sa.Text()),
        sa.Column("started_at", sa.Float()),
        sa.Column("finished_at", sa.Float()),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "step_id", name="pk_steps"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_steps_run_id"),
    )
    op.create_index("ix_steps_run_id_position", "steps", ["run_id", "position"])
    op.create_table(
        "attempts",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float()),
        sa.Column("exit_code", sa.Integer()),
        sa.Column("failure_class", sa.String(32)),
        sa.Column("error", sa.Text()),
        sa.Column("stdout_path", sa.Text()),
        sa.Column("stderr_path", sa.Text()),
        sa.Column("pid", sa.Integer()),
        sa.Column("pgid", sa.Integer()),
        sa.Column("proc_start", sa.BigInteger()),
        sa.Column("owner", sa.String()),
        sa.PrimaryKeyConstraint("run_id", "step_id", "number", name="pk_attempts"),
        sa.ForeignKeyConstraint(
            ["run_id", "step_id"], ["steps.run_id", "steps.step_id"], name="fk_attempts_step"
        ),
    )
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("step_id", sa.String()),
        sa.Column("attempt", sa.Integer()),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(32)),
        sa.Column("to_state", sa.String(32)),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_events_run_id_seq", "events", ["run_id", "seq"])
    chain_head = op.create_table(
        "chain_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(chain_head, [{"id": 1, "seq": 0, "hash": GENESIS}])


def downgrade() -> None:
    for table in ("chain_head", "events", "attempts", "steps", "runs"):
        op.drop_table(table)
