"""Telemetry: one row per finished attempt, the failure model's training data.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telemetry",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("plan", sa.String(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("agent", sa.String()),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("family", sa.String()),
        sa.Column("risk_score", sa.Float()),
        sa.Column("risk_reasons", sa.Text(), nullable=False),
        sa.Column("predicted_failure", sa.Float()),
        sa.Column("fan_in", sa.Integer(), nullable=False),
        sa.Column("parallelism", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("failure_class", sa.String(32)),
        sa.Column("cost_usd", sa.Float()),
    )
    op.create_index("ix_telemetry_started", "telemetry", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_telemetry_started", "telemetry")
    op.drop_table("telemetry")
