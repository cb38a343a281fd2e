"""Telemetry rows for store/sql.py: written with the attempt's end, read back in time order.

Rows are written in the scheduler's batch (the same transaction as the attempt's end) by one
executemany of a statement compiled once, so recording them costs little more than the
driver's own work.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from agenthq.store.api import TelemetryRow
from agenthq.store.tables import telemetry

MAX_ROWS = 1_000_000  # a read never holds more than this in memory


def row_of(item: TelemetryRow) -> dict[str, Any]:
    return {
        "run_id": item.run_id,
        "step_id": item.step_id,
        "attempt": item.attempt,
        "plan": item.plan,
        "step": item.step,
        "agent": item.agent,
        "kind": item.kind,
        "family": item.family,
        "risk_score": item.risk_score,
        "risk_reasons": json.dumps(list(item.risk_reasons), separators=(",", ":")),
        "predicted_failure": item.predicted_failure,
        "fan_in": item.fan_in,
        "parallelism": item.parallelism,
        "started_at": item.started_at,
        "finished_at": item.finished_at,
        "outcome": item.outcome,
        "failure_class": item.failure_class,
        "cost_usd": item.cost_usd,
    }


def read_rows(
    conn: Connection,
    *,
    started_from: float | None,
    started_before: float | None,
    finished_after: float | None,
    agent: str | None,
    limit: int | None,
) -> list[TelemetryRow]:
    query = select(telemetry)
    if started_from is not None:
        query = query.where(telemetry.c.started_at >= started_from)
    if started_before is not None:
        query = query.where(telemetry.c.started_at < started_before)
    if finished_after is not None:
        query = query.where(telemetry.c.finished_at > finished_after)
    if agent is not None:
        query = query.where(telemetry.c.agent == agent)
    query = query.order_by(telemetry.c.started_at, telemetry.c.id)
    query = query.limit(min(limit or MAX_ROWS, MAX_ROWS))
    return [_record(row) for row in conn.execute(query)]


def _record(row: Any) -> TelemetryRow:
    m = row._mapping
    return TelemetryRow(
        run_id=m["run_id"],
        step_id=m["step_id"],
        attempt=int(m["attempt"]),
        plan=m["plan"],
        step=m["step"],
        agent=m["agent"],
        kind=m["kind"],
        family=m["family"],
        risk_score=m["risk_score"],
        risk_reasons=tuple(json.loads(m["risk_reasons"] or "[]")),
        predicted_failure=m["predicted_failure"],
        fan_in=int(m["fan_in"]),
        parallelism=int(m["parallelism"]),
        started_at=float(m["started_at"]),
        finished_at=float(m["finished_at"]),
        outcome=m["outcome"],
        failure_class=m["failure_class"],
        cost_usd=m["cost_usd"],
    )
