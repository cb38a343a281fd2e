"""Safety gates: gate results, approvals, agent quarantine, circuit breakers, attempt cost.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("cost_usd", sa.Float()))
        batch.add_column(sa.Column("usage", sa.Text()))
    op.create_table(
        "gate_results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("gate", sa.String(32), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_gate_results_run_id_step_id", "gate_results", ["run_id", "step_id"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("warn_at", sa.Float()),
        sa.Column("escalate_at", sa.Float()),
        sa.Column("escalate_to", sa.String()),
        sa.Column("warned", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("escalated", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("on_timeout", sa.String(16), nullable=False),
        sa.Column("command", sa.Text()),
        sa.Column("score", sa.Float()),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.Float()),
        sa.Column("decided_by", sa.String()),
        sa.Column("note", sa.Text()),
        sa.Column("extend_usd", sa.Float()),
    )
    op.create_index("ix_approvals_state", "approvals", ["state"])
    op.create_index("ix_approvals_run_id_step_id", "approvals", ["run_id", "step_id"])
    op.create_table(
        "agents",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("run_id", sa.String(64)),
        sa.Column("step_id", sa.String()),
        sa.Column("since", sa.Float()),
        sa.Column("changed_by", sa.String()),
        sa.Column("note", sa.Text()),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "breakers",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.Float()),
        sa.Column("cooldown_s", sa.Float(), nullable=False),
        sa.Column("trips", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    for table in ("breakers", "agents", "approvals", "gate_results"):
        op.drop_table(table)
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("usage")
        batch.drop_column("cost_usd")
