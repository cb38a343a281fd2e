"""Work for `agenthq worker` processes: queued attempts with what to run, who holds them and
until when (the lease), and their logs in chunks, so the dashboard shows them wherever the
worker ran.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_items",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("needs", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("worker", sa.String()),
        sa.Column("lease_expires_at", sa.Float()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("claimed_at", sa.Float()),
        sa.Column("finished_at", sa.Float()),
        sa.Column("outcome", sa.Text()),
        sa.PrimaryKeyConstraint("run_id", "step_id", "number", name="pk_work_items"),
    )
    op.create_index("ix_work_items_state", "work_items", ["state", "created_at"])
    op.create_index("ix_work_items_run", "work_items", ["run_id", "state"])
    op.create_table(
        "log_chunks",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "step_id", "number", "stream", "seq", name="pk_log_chunks"
        ),
    )


def downgrade() -> None:
    op.drop_table("log_chunks")
    op.drop_index("ix_work_items_run", "work_items")
    op.drop_index("ix_work_items_state", "work_items")
    op.drop_table("work_items")
