"""Alerts and the reads their rules need; each change of an alert with its chained event.

An alert is one row per (rule, subject) while it is open or acknowledged: a repeat folds into
it (count + 1, last_seen). Once resolved, the next occurrence opens a new row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from agenthq.errors import NotFoundError, StateError
from agenthq.store.api import AlertRecord, NewAlert
from agenthq.store.tables import alerts, attempts, cursors, events, runs, steps

EventDraft = tuple[str | None, str | None, int | None, str, dict[str, Any]]
_LIVE = ("open", "acknowledged")


def raise_alert(conn: Connection, alert: NewAlert) -> tuple[AlertRecord, bool, EventDraft | None]:
    """(the alert, whether it is new, its event when new)."""
    row = (
        conn.execute(
            select(alerts).where(
                alerts.c.rule == alert.rule,
                alerts.c.subject == alert.subject,
                alerts.c.state.in_(_LIVE),
            )
        )
        .mappings()
        .first()
    )
    if row is not None:
        values: dict[str, Any] = {"last_seen": alert.at, "message": alert.message}
        if alert.repeat:
            values["count"] = row["count"] + 1
        conn.execute(update(alerts).where(alerts.c.id == row["id"]).values(**values))
        return _record({**row, **values}), False, None
    new_id = conn.execute(
        insert(alerts)
        .values(
            rule=alert.rule,
            severity=alert.severity,
            subject=alert.subject,
            message=alert.message,
            details=json.dumps(dict(alert.details), default=str),
            state="open",
            first_seen=alert.at,
            last_seen=alert.at,
            count=1,
            run_id=alert.run_id,
        )
        .returning(alerts.c.id)
    ).scalar_one()
    (record,) = listing(conn, ids=[int(new_id)])
    event: EventDraft = (
        alert.run_id,
        None,
        None,
        "alert.raised",
        {
            "alert": int(new_id),
            "rule": alert.rule,
            "severity": alert.severity,
            "subject": alert.subject,
            "message": alert.message,
        },
    )
    return record, True, event


def change(
    conn: Connection, alert_id: int, to: str, *, by: str, note: str | None, at: float
) -> tuple[AlertRecord, EventDraft]:
    found = listing(conn, ids=[alert_id])
    if not found:
        raise NotFoundError(f"no alert {alert_id}; `agenthq alerts --state all` lists them")
    current = found[0]
    if current.state == "resolved" or (to == "acknowledged" and current.state == to):
        raise StateError(f"alert {alert_id} is already {current.state}")
    values: dict[str, Any] = {"state": to}
    if to == "acknowledged":
        values |= {"acked_by": by, "acked_at": at, "note": note}
    else:
        values |= {"resolved_at": at, "note": note if note is not None else current.note}
        if current.acked_by is None:
            values["acked_by"] = by
    conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))
    (record,) = listing(conn, ids=[alert_id])
    kind = "alert.acknowledged" if to == "acknowledged" else "alert.resolved"
    event: EventDraft = (
        current.run_id,
        None,
        None,
        kind,
        {
            "alert": alert_id,
            "rule": current.rule,
            "subject": current.subject,
            "by": by,
            "note": note,
        },
    )
    return record, event


def listing(
    conn: Connection,
    *,
    ids: Sequence[int] | None = None,
    states: Sequence[str] | None = None,
    rule: str | None = None,
    severities: Sequence[str] | None = None,
    limit: int = 500,
) -> list[AlertRecord]:
    query = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    if severities is not None:
        query = query.where(alerts.c.severity.in_(list(severities)))
    if ids is not None:
        query = query.where(alerts.c.id.in_(list(ids)))
    if states is not None:
        query = query.where(alerts.c.state.in_(list(states)))
    if rule is not None:
        query = query.where(alerts.c.rule == rule)
    return [_record(r) for r in conn.execute(query).mappings()]


def get_cursor(conn: Connection, name: str) -> int:
    value = conn.execute(select(cursors.c.seq).where(cursors.c.name == name)).scalar()
    return int(value or 0)


def set_cursor(conn: Connection, name: str, seq: int, at: float) -> None:
    done = conn.execute(
        update(cursors).where(cursors.c.name == name).values(seq=seq, updated_at=at)
    )
    if not done.rowcount:
        conn.execute(insert(cursors).values(name=name, seq=seq, updated_at=at))


def running_runs(conn: Connection) -> list[tuple[str, str, float]]:
    """(run id, plan, time of its last event) for every run in state running."""
    last = (
        select(events.c.run_id, func.max(events.c.at).label("last"))
        .where(events.c.run_id.in_(select(runs.c.id).where(runs.c.state == "running")))
        .group_by(events.c.run_id)
        .subquery()
    )
    rows = conn.execute(
        select(runs.c.id, runs.c.plan, func.coalesce(last.c.last, runs.c.created_at))
        .select_from(runs.outerjoin(last, last.c.run_id == runs.c.id))
        .where(runs.c.state == "running")
    ).all()
    return [(str(r), str(p), float(t)) for r, p, t in rows]


def failures_by_agent(conn: Connection, since: float) -> dict[str, int]:
    joined = attempts.join(
        steps, and_(attempts.c.run_id == steps.c.run_id, attempts.c.step_id == steps.c.step_id)
    )
    rows = conn.execute(
        select(steps.c.agent, func.count())
        .select_from(joined)
        .where(
            steps.c.agent.is_not(None),
            attempts.c.state == "failed",
            attempts.c.finished_at >= since,
        )
        .group_by(steps.c.agent)
    ).all()
    return {str(a): int(n) for a, n in rows}


def waiting_by_agent(conn: Connection) -> dict[str, int]:
    """Ready steps per agent: work queued for it."""
    rows = conn.execute(
        select(steps.c.agent, func.count())
        .where(steps.c.state == "ready", steps.c.agent.is_not(None))
        .group_by(steps.c.agent)
    ).all()
    return {str(a): int(n) for a, n in rows}


def _record(row: Any) -> AlertRecord:
    r = dict(row)
    details = r["details"]
    return AlertRecord(
        id=int(r["id"]),
        rule=r["rule"],
        severity=r["severity"],
        subject=r["subject"],
        message=r["message"],
        details=json.loads(details) if isinstance(details, str) else dict(details or {}),
        state=r["state"],
        first_seen=r["first_seen"],
        last_seen=r["last_seen"],
        count=int(r["count"]),
        acked_by=r["acked_by"],
        acked_at=r["acked_at"],
        note=r["note"],
        resolved_at=r["resolved_at"],
        run_id=r["run_id"],
    )
