"""Agents, messages, alerts and worktrees: health checks, the message bus, alerts with their
evaluator's cursor, git worktrees of coding-agent attempts, and attempts' agent session ids.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("session_id", sa.String()))
    op.create_table(
        "agent_health",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("health", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("checked_at", sa.Float(), nullable=False),
        sa.Column("next_at", sa.Float()),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sender", sa.String(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("subject", sa.Text()),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String()),
        sa.Column("run_id", sa.String(64)),
        sa.Column("step_id", sa.String()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("read_at", sa.Float()),
    )
    op.create_index("ux_messages_dedupe_key", "messages", ["dedupe_key"], unique=True)
    op.create_index("ix_messages_recipient_read_at", "messages", ["recipient", "read_at"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("acked_by", sa.String()),
        sa.Column("acked_at", sa.Float()),
        sa.Column("note", sa.Text()),
        sa.Column("resolved_at", sa.Float()),
        sa.Column("run_id", sa.String(64)),
    )
    op.create_index("ix_alerts_rule_subject_state", "alerts", ["rule", "subject", "state"])
    op.create_index("ix_alerts_state", "alerts", ["state"])
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "worktrees",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("branch", sa.String(), nullable=False),
        sa.Column("base", sa.String(), nullable=False),
        sa.Column("repo", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("merge", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "step_id", "attempt", name="pk_worktrees"),
    )


def downgrade() -> None:
    for table in ("worktrees", "cursors", "alerts", "messages", "agent_health"):
        op.drop_table(table)
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("session_id")
