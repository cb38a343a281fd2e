"""Runs that other things started, and the things that start them: a run's origin (a
rollback of, a schedule tick, an upstream run, a matching event), schedules and triggers
(`automations`), and every time one fired or chose not to (`automation_fires`, one row per
tick or event: the unique key is what makes a restart neither lose nor repeat one).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("origin", sa.Text()))
        batch.add_column(sa.Column("origin_run", sa.String(64)))
    op.create_index("ix_runs_origin_run", "runs", ["origin_run"])
    op.create_table(
        "automations",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("plan", sa.String(), nullable=False),
        sa.Column("plan_path", sa.Text(), nullable=False),
        sa.Column("workspace", sa.Text(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("next_at", sa.Float()),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "automation_fires",
        sa.Column("automation", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("automation", "key"),
    )
    op.create_index("ix_automation_fires_at", "automation_fires", ["automation", "at"])


def downgrade() -> None:
    op.drop_index("ix_automation_fires_at", "automation_fires")
    op.drop_table("automation_fires")
    op.drop_table("automations")
    op.drop_index("ix_runs_origin_run", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("origin_run")
        batch.drop_column("origin")
