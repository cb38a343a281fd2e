"""Rows of the git worktrees coding agents worked in, for `agenthq worktrees` and `diff`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert, select, update

from agenthq.store.api import WorktreeRecord
from agenthq.store.tables import worktrees


def record(conn: Connection, row: WorktreeRecord) -> None:
    key = (
        (worktrees.c.run_id == row.run_id)
        & (worktrees.c.step_id == row.step_id)
        & (worktrees.c.attempt == row.attempt)
    )
    conn.execute(worktrees.delete().where(key))  # a retried attempt after a crash
    conn.execute(insert(worktrees).values(**row.__dict__))


def set_state(conn: Connection, key: tuple[str, str, int], state: str, at: float) -> None:
    run_id, step_id, attempt = key
    conn.execute(
        update(worktrees)
        .where(
            worktrees.c.run_id == run_id,
            worktrees.c.step_id == step_id,
            worktrees.c.attempt == attempt,
        )
        .values(state=state, updated_at=at)
    )


def listing(
    conn: Connection, run_id: str | None, states: Sequence[str] | None
) -> list[WorktreeRecord]:
    query = select(worktrees).order_by(worktrees.c.created_at, worktrees.c.step_id)
    if run_id is not None:
        query = query.where(worktrees.c.run_id == run_id)
    if states is not None:
        query = query.where(worktrees.c.state.in_(list(states)))
    return [WorktreeRecord(**dict(r)) for r in conn.execute(query).mappings()]
