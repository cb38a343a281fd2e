"""Agents' health-check results and the activity the scheduler balances load with.

Activity is read from the steps and attempts that name an agent (no counters of its own to
drift); health is the one thing only a health check knows, so it has its own table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, case, func, insert, select, update

from agenthq.store.api import AgentActivity, AgentHealth
from agenthq.store.tables import agent_health, attempts, gate_results, steps, telemetry

EventDraft = tuple[str | None, str | None, int | None, str, dict[str, object]]


def activity(
    conn: Connection, since: float, exclude_run: str | None, risk_window: int
) -> dict[str, AgentActivity]:
    running_q = (
        select(steps.c.agent, func.count())
        .where(steps.c.state == "running", steps.c.agent.is_not(None))
        .group_by(steps.c.agent)
    )
    if exclude_run is not None:
        running_q = running_q.where(steps.c.run_id != exclude_run)
    running = {str(a): int(n) for a, n in conn.execute(running_q)}
    joined = attempts.join(
        steps, and_(attempts.c.run_id == steps.c.run_id, attempts.c.step_id == steps.c.step_id)
    )
    failed = case((attempts.c.state == "failed", 1), else_=0)
    record_rows = conn.execute(
        select(steps.c.agent, func.count(), func.sum(failed))
        .select_from(joined)
        .where(
            steps.c.agent.is_not(None),
            attempts.c.finished_at.is_not(None),
            attempts.c.finished_at >= since,
            attempts.c.state.in_(("succeeded", "failed")),
        )
        .group_by(steps.c.agent)
    ).all()
    records = {str(a): (int(n), int(f or 0)) for a, n, f in record_rows}
    risks = _mean_risks(conn, risk_window)
    predicted = _mean_predictions(conn, risk_window)
    names = set(running) | set(records) | set(risks) | set(predicted)
    return {
        name: AgentActivity(
            name=name,
            running=running.get(name, 0),
            attempts=records.get(name, (0, 0))[0],
            failures=records.get(name, (0, 0))[1],
            mean_risk=risks.get(name),
            mean_predicted_failure=predicted.get(name),
        )
        for name in sorted(names)
    }


def _mean_risks(conn: Connection, window: int) -> dict[str, float]:
    joined = gate_results.join(
        steps,
        and_(gate_results.c.run_id == steps.c.run_id, gate_results.c.step_id == steps.c.step_id),
    )
    rows = conn.execute(
        select(steps.c.agent, gate_results.c.score)
        .select_from(joined)
        .where(
            gate_results.c.gate == "risk",
            gate_results.c.score.is_not(None),
            steps.c.agent.is_not(None),
        )
        .order_by(gate_results.c.id.desc())
        .limit(window * 50)
    ).all()
    return _newest_means(rows, window)


def _mean_predictions(conn: Connection, window: int) -> dict[str, float]:
    rows = conn.execute(
        select(telemetry.c.agent, telemetry.c.predicted_failure)
        .where(telemetry.c.predicted_failure.is_not(None), telemetry.c.agent.is_not(None))
        .order_by(telemetry.c.started_at.desc())
        .limit(window * 50)
    ).all()
    return _newest_means(rows, window)


def _newest_means(rows: Sequence[Any], window: int) -> dict[str, float]:
    """Per agent, the mean of its first `window` values of (agent, value) rows, newest first."""
    found: dict[str, list[float]] = {}
    for agent, value in rows:
        bucket = found.setdefault(str(agent), [])
        if len(bucket) < window:
            bucket.append(float(value))
    return {agent: sum(v) / len(v) for agent, v in found.items() if v}


def health_records(conn: Connection) -> dict[str, AgentHealth]:
    rows = conn.execute(select(agent_health)).mappings().all()
    return {
        r["name"]: AgentHealth(
            name=r["name"],
            health=r["health"],
            detail=r["detail"],
            failures=r["failures"],
            checked_at=r["checked_at"],
            next_at=r["next_at"],
        )
        for r in rows
    }


def record_health(conn: Connection, health: AgentHealth) -> EventDraft | None:
    """Upsert the check's result; an event when the agent's health changed."""
    before = conn.execute(
        select(agent_health.c.health).where(agent_health.c.name == health.name)
    ).scalar()
    values = {
        "health": health.health,
        "detail": health.detail,
        "failures": health.failures,
        "checked_at": health.checked_at,
        "next_at": health.next_at,
    }
    if before is None:
        conn.execute(insert(agent_health).values(name=health.name, **values))
    else:
        conn.execute(update(agent_health).where(agent_health.c.name == health.name).values(values))
    if before == health.health or (before is None and health.health == "healthy"):
        return None
    return (
        None,
        None,
        None,
        "agent.health",
        {"agent": health.name, "from": before, "to": health.health, "detail": health.detail},
    )
