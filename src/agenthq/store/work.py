"""Rows of work for workers and their log chunks, for store/sql.py.

Claiming is the one place where many processes race for the same rows. On PostgreSQL the
candidates are read `FOR UPDATE SKIP LOCKED`: a row another worker is taking is simply not
seen, so workers never wait on each other and never take the same item. SQLite has one
writer at a time (BEGIN IMMEDIATE), which serialises claims the same way. Every later change
is fenced: a report counts only from the worker that holds the item, in state `claimed`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from agenthq.store.api import Claim, WorkItem, WorkStatus
from agenthq.store.chain import canonical_json
from agenthq.store.tables import log_chunks, work_items

Key = tuple[str, str, int]
CANDIDATES = 200  # rows looked at per claim: items needing capabilities this worker lacks


def needs_text(needs: Sequence[str]) -> str:
    return "," + ",".join(sorted(set(needs))) + "," if needs else ""


def _key(key: Key) -> Any:
    run_id, step_id, number = key
    return and_(
        work_items.c.run_id == run_id,
        work_items.c.step_id == step_id,
        work_items.c.number == number,
    )


def insert_items(conn: Connection, items: Sequence[WorkItem]) -> None:
    conn.execute(
        insert(work_items),
        [
            {
                "run_id": i.run_id,
                "step_id": i.step_id,
                "number": i.number,
                "state": "queued",
                "needs": needs_text(i.needs),
                "payload": canonical_json(dict(i.payload)),
                "created_at": i.created_at,
            }
            for i in items
        ],
    )


def claim(
    conn: Connection,
    worker: str,
    capabilities: Sequence[str],
    limit: int,
    *,
    until: float,
    now: float,
) -> list[Claim]:
    query = (
        select(
            work_items.c.run_id,
            work_items.c.step_id,
            work_items.c.number,
            work_items.c.payload,
        )
        .where(work_items.c.state == "queued")
        .order_by(work_items.c.created_at, work_items.c.run_id, work_items.c.step_id)
    )
    have = set(capabilities)
    if capabilities:
        # Some items may need what this worker lacks: find the ones it can run without locking
        # anything, then lock only those. (Locking every candidate while choosing made another
        # worker's claim find all of them locked, and sleep while this one ran them all.)
        peek = query.with_only_columns(
            work_items.c.run_id, work_items.c.step_id, work_items.c.number, work_items.c.needs
        ).limit(max(limit * 4, CANDIDATES))
        fitting = [
            (run_id, step_id, number)
            for run_id, step_id, number, needs in conn.execute(peek)
            if _needs(needs) <= have
        ][: limit * 2]
        if not fitting:
            return []
        query = query.where(or_(*(_key(key) for key in fitting))).limit(limit)
    else:
        # It can take only items that need nothing: lock no more rows than it will take.
        query = query.where(work_items.c.needs == "").limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    taken: list[Claim] = []  # every row fits: what it needs was checked, and never changes
    for run_id, step_id, number, payload in conn.execute(query):
        conn.execute(
            update(work_items)
            .where(_key((run_id, step_id, number)), work_items.c.state == "queued")
            .values(state="claimed", worker=worker, lease_expires_at=until, claimed_at=now)
        )
        taken.append(Claim(run_id, step_id, number, json.loads(payload), until))
    return taken


def _needs(needs: object) -> set[str]:
    """An item's required capabilities, stored comma-separated ("" for none)."""
    return {n for n in str(needs).split(",") if n}


def renew(conn: Connection, worker: str, keys: Sequence[Key], until: float) -> set[Key]:
    held: set[Key] = set()
    for key in keys:
        result = conn.execute(
            update(work_items)
            .where(_key(key), work_items.c.state == "claimed", work_items.c.worker == worker)
            .values(lease_expires_at=until)
        )
        if result.rowcount == 1:
            held.add(key)
    return held


def finish(conn: Connection, worker: str, key: Key, outcome: Mapping[str, Any], now: float) -> bool:
    result = conn.execute(
        update(work_items)
        .where(_key(key), work_items.c.state == "claimed", work_items.c.worker == worker)
        .values(state="done", finished_at=now, outcome=canonical_json(dict(outcome)))
    )
    return result.rowcount == 1


def status(conn: Connection, run_id: str, expired_before: float | None = None) -> list[WorkStatus]:
    """Everything not collected; with `expired_before`, only what the scheduler must act on:
    reported items and claims whose lease ran out."""
    query = select(
        work_items.c.run_id,
        work_items.c.step_id,
        work_items.c.number,
        work_items.c.state,
        work_items.c.worker,
        work_items.c.lease_expires_at,
        work_items.c.outcome,
    ).where(work_items.c.run_id == run_id)
    if expired_before is None:
        query = query.where(work_items.c.state.in_(("queued", "claimed", "done")))
    else:
        query = query.where(
            (work_items.c.state == "done")
            | ((work_items.c.state == "claimed") & (work_items.c.lease_expires_at < expired_before))
        )
    return [
        WorkStatus(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else None)
        for r in conn.execute(query)
    ]


def collect(conn: Connection, keys: Sequence[Key]) -> None:
    for key in keys:
        conn.execute(
            update(work_items)
            .where(_key(key), work_items.c.state == "done")
            .values(state="collected")
        )


def settle(conn: Connection, key: Key, state: str, expired_before: float | None) -> bool:
    query = update(work_items).where(_key(key))
    if state == "lost":
        query = query.where(work_items.c.state == "claimed")
        if expired_before is not None:
            query = query.where(work_items.c.lease_expires_at < expired_before)
    elif state == "cancelled":
        query = query.where(work_items.c.state.in_(("queued", "claimed")))
    elif state == "collected":
        query = query.where(work_items.c.state == "done")
    return conn.execute(query.values(state=state)).rowcount == 1


def abandon(conn: Connection, run_id: str) -> int:
    """A run's executor died: its queued and claimed items are lost (recovery retries the
    steps under their policy, with new attempt numbers)."""
    result = conn.execute(
        update(work_items)
        .where(work_items.c.run_id == run_id, work_items.c.state.in_(("queued", "claimed")))
        .values(state="lost")
    )
    return int(result.rowcount or 0)


def append_log(conn: Connection, key: Key, stream: str, seq: int, data: str) -> None:
    run_id, step_id, number = key
    conn.execute(
        insert(log_chunks).values(
            run_id=run_id, step_id=step_id, number=number, stream=stream, seq=seq, data=data
        )
    )


def read_log(conn: Connection, key: Key, stream: str) -> str | None:
    run_id, step_id, number = key
    rows = conn.execute(
        select(log_chunks.c.data)
        .where(
            log_chunks.c.run_id == run_id,
            log_chunks.c.step_id == step_id,
            log_chunks.c.number == number,
            log_chunks.c.stream == stream,
        )
        .order_by(log_chunks.c.seq)
    ).all()
    return "".join(r[0] for r in rows) if rows else None
