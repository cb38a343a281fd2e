"""Rows of schedules and triggers and of every time one fired, for store/sql.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from agenthq.store.api import AutomationRecord, FireRecord
from agenthq.store.chain import canonical_json
from agenthq.store.tables import automation_fires, automations, runs


def save(conn: Connection, row: AutomationRecord) -> None:
    conn.execute(delete(automations).where(automations.c.id == row.id))
    conn.execute(
        insert(automations).values(
            id=row.id,
            kind=row.kind,
            plan=row.plan,
            plan_path=row.plan_path,
            workspace=row.workspace,
            settings=canonical_json(dict(row.settings)),
            params=canonical_json(dict(row.params)),
            paused=row.paused,
            next_at=row.next_at,
            created_at=row.created_at,
        )
    )


def listing(
    conn: Connection, kind: str | None, automation_id: str | None = None
) -> list[AutomationRecord]:
    query = select(automations).order_by(automations.c.id)
    if kind is not None:
        query = query.where(automations.c.kind == kind)
    if automation_id is not None:
        query = query.where(automations.c.id == automation_id)
    out = []
    for r in conn.execute(query).mappings():
        values = dict(r)
        values["settings"] = json.loads(values["settings"])
        values["params"] = json.loads(values["params"])
        values["paused"] = bool(values["paused"])
        out.append(AutomationRecord(**values))
    return out


def update_fields(conn: Connection, automation_id: str, **fields: Any) -> None:
    values = {k: v for k, v in fields.items() if v is not None}
    if values:
        conn.execute(update(automations).where(automations.c.id == automation_id).values(values))


def remove(conn: Connection, automation_id: str) -> None:
    conn.execute(delete(automations).where(automations.c.id == automation_id))


def claim(conn: Connection, fire: FireRecord) -> bool:
    """Insert the fire row; False when its key was recorded before."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(automation_fires).values(
                    automation=fire.automation,
                    key=fire.key,
                    outcome=fire.outcome,
                    run_id=fire.run_id,
                    at=fire.at,
                    details=canonical_json(dict(fire.details)),
                )
            )
    except IntegrityError:
        return False
    return True


def fires(
    conn: Connection, automation: str | None, limit: int, outcome: str | None = None
) -> list[FireRecord]:
    query = select(automation_fires).order_by(automation_fires.c.at.desc()).limit(limit)
    if automation is not None:
        query = query.where(automation_fires.c.automation == automation)
    if outcome is not None:
        query = query.where(automation_fires.c.outcome == outcome)
    out = []
    for r in conn.execute(query).mappings():
        values = dict(r)
        values["details"] = json.loads(values["details"])
        out.append(FireRecord(**values))
    return out


def active_runs(conn: Connection, automation: str, unfinished: Sequence[str]) -> list[str]:
    query = (
        select(runs.c.id)
        .join(automation_fires, automation_fires.c.run_id == runs.c.id)
        .where(automation_fires.c.automation == automation, runs.c.state.in_(list(unfinished)))
    )
    return [row[0] for row in conn.execute(query)]
