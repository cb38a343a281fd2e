"""Steps remember their agent (counts by agent need no plan parsing); runs keep their steps'
counts by state (a run list must not count step rows), filled in here for existing runs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("steps") as batch:
        batch.add_column(sa.Column("agent", sa.String()))
    op.create_index("ix_steps_run_id_state", "steps", ["run_id", "state"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("step_counts", sa.Text(), nullable=False, server_default="{}"))
    bind = op.get_bind()
    counts: dict[str, dict[str, int]] = {}
    for run_id, state, count in bind.execute(
        sa.text("SELECT run_id, state, count(*) FROM steps GROUP BY run_id, state")
    ):
        counts.setdefault(run_id, {})[state] = int(count)
    for run_id, by_state in counts.items():
        bind.execute(
            sa.text("UPDATE runs SET step_counts = :counts WHERE id = :id"),
            {"counts": json.dumps(by_state, separators=(",", ":")), "id": run_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("step_counts")
    op.drop_index("ix_steps_run_id_state", table_name="steps")
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("agent")
