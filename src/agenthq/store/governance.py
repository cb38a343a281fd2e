"""The rows the safety gates write: gate results, approvals, quarantined agents, breakers.

Kept apart from sql.py (runs, steps, attempts, events) because it changes with the gates, not
with the engine. Every function here runs inside a connection or transaction its caller owns;
events for these rows are drafted by `drafts` and chained by the caller in the same
transaction, so an approval and its audit record are never apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Select, Table, func, insert, select, update

from agenthq.errors import NotFoundError, StateError
from agenthq.store.api import (
    AgentRecord,
    AgentState,
    ApprovalDecision,
    ApprovalKind,
    ApprovalRecord,
    ApprovalState,
    Batch,
    BreakerRecord,
    GateRecord,
    StoreStats,
)
from agenthq.store.chain import canonical_json
from agenthq.store.compiled import executemany
from agenthq.store.tables import agents, approvals, attempts, breakers, gate_results

# (run_id, step_id, attempt, kind, details) — turned into chained events by sql.py
EventDraft = tuple[str | None, str | None, int | None, str, dict[str, Any]]


def write(conn: Connection, batch: Batch) -> list[EventDraft]:
    """Write the batch's gate rows; return the events they need, in order."""
    notes: list[EventDraft] = []
    if batch.gate_results:
        rows = [_gate_row(g) for g in batch.gate_results]
        executemany(conn, ("insert", "gate_results"), lambda: insert(gate_results), rows)
    for request in batch.approval_requests:
        inserted = conn.execute(
            insert(approvals).values(
                run_id=request.run_id,
                step_id=request.step_id,
                attempt=request.attempt,
                kind=request.kind.value,
                state=ApprovalState.PENDING.value,
                requested_at=request.requested_at,
                expires_at=request.expires_at,
                warn_at=request.warn_at,
                escalate_at=request.escalate_at,
                escalate_to=request.escalate_to,
                on_timeout=request.on_timeout,
                command=request.command,
                score=request.score,
                reasons=json.dumps(list(request.reasons)),
                request=canonical_json(request.request),
            )
        ).inserted_primary_key
        approval_id = inserted[0] if inserted is not None else None
        notes.append(
            (
                request.run_id,
                request.step_id,
                request.attempt,
                "approval.requested",
                {
                    "approval": approval_id,
                    "kind": request.kind.value,
                    "score": request.score,
                    "reasons": list(request.reasons),
                    "expires_at": request.expires_at,
                },
            )
        )
    for mark in batch.approval_marks:
        row = _get(conn, mark.approval_id)
        if row.state is not ApprovalState.PENDING or getattr(row, mark.milestone):
            continue
        conn.execute(
            update(approvals)
            .where(approvals.c.id == mark.approval_id)
            .values({mark.milestone: True})
        )
        kind = "approval.warning" if mark.milestone == "warned" else "approval.escalated"
        details: dict[str, Any] = {"approval": row.id, "expires_at": row.expires_at}
        if mark.milestone == "escalated":
            details["to"] = row.escalate_to
        notes.append((row.run_id, row.step_id, row.attempt, kind, details))
    for decision in batch.approval_decisions:
        notes.append(decide(conn, decision))
    for quarantine in batch.quarantines:
        values = {
            "state": AgentState.QUARANTINED.value,
            "reason": quarantine.reason,
            "run_id": quarantine.run_id,
            "step_id": quarantine.step_id,
            "since": batch.at,
            "changed_by": "agenthq",
            "note": None,
            "updated_at": batch.at,
        }
        _upsert(conn, agents, quarantine.agent, values)
        notes.append(
            (
                quarantine.run_id,
                quarantine.step_id,
                None,
                "agent.quarantined",
                {"agent": quarantine.agent, "reason": quarantine.reason},
            )
        )
    for breaker in batch.breakers:
        values = {
            "state": breaker.state,
            "failures": breaker.failures,
            "opened_at": breaker.opened_at,
            "cooldown_s": breaker.cooldown_s,
            "trips": breaker.trips,
            "updated_at": breaker.updated_at,
        }
        before = conn.execute(
            select(breakers.c.state).where(breakers.c.key == breaker.key)
        ).scalar()
        _upsert(conn, breakers, breaker.key, values)
        if before != breaker.state and not (before is None and breaker.state == "closed"):
            notes.append(
                (
                    None,
                    None,
                    None,
                    f"breaker.{breaker.state}",
                    {
                        "breaker": breaker.key,
                        "failures": breaker.failures,
                        "cooldown_s": breaker.cooldown_s,
                    },
                )
            )
    return notes


def decide(conn: Connection, decision: ApprovalDecision) -> EventDraft:
    """Compare-and-set pending → approved/rejected; the event that records who and why."""
    row = _get(conn, decision.approval_id)
    if row.state is not ApprovalState.PENDING:
        who = f" by {row.decided_by}" if row.decided_by else ""
        raise StateError(
            f"approval {row.id} ({row.step_id} of run {row.run_id}) was already {row.state}{who}"
        )
    if decision.state is ApprovalState.PENDING:
        raise StateError("a decision must approve or reject")
    if (
        row.kind is ApprovalKind.BUDGET
        and decision.state is ApprovalState.APPROVED
        and not decision.expired
        and not decision.extend_usd
    ):
        raise StateError(
            f"approval {row.id} asks for more budget ({_budget_text(row)}); approve it with "
            "--extend USD to say by how much"
        )
    changed = conn.execute(
        update(approvals)
        .where(approvals.c.id == row.id, approvals.c.state == ApprovalState.PENDING.value)
        .values(
            state=decision.state.value,
            decided_at=decision.at,
            decided_by=decision.by,
            note=decision.note,
            extend_usd=decision.extend_usd,
        )
    ).rowcount
    if changed != 1:
        raise StateError(f"approval {row.id} was answered by someone else a moment ago")
    kind = "approval.expired" if decision.expired else "approval.decided"
    details: dict[str, Any] = {
        "approval": row.id,
        "decision": decision.state.value,
        "by": decision.by,
        "note": decision.note,
    }
    if decision.extend_usd:
        details["extend_usd"] = decision.extend_usd
    return (row.run_id, row.step_id, row.attempt, kind, details)


def list_approvals(
    conn: Connection,
    *,
    run_id: str | None,
    state: ApprovalState | None,
    ids: Sequence[int] | None,
    limit: int,
    requested_from: float | None = None,
) -> list[ApprovalRecord]:
    query = _APPROVAL_SELECT
    if requested_from is not None:
        query = query.where(approvals.c.requested_at >= requested_from)
    if run_id is not None:
        query = query.where(approvals.c.run_id == run_id)
    if state is not None:
        query = query.where(approvals.c.state == state.value)
    if ids is not None:
        query = query.where(approvals.c.id.in_(list(ids)))
    rows = conn.execute(query.order_by(approvals.c.id).limit(limit)).all()
    return [_approval_record(row) for row in rows]


def gate_records(conn: Connection, run_id: str, step_id: str | None) -> list[GateRecord]:
    query = select(gate_results).where(gate_results.c.run_id == run_id)
    if step_id is not None:
        query = query.where(gate_results.c.step_id == step_id)
    rows = conn.execute(query.order_by(gate_results.c.id)).mappings().all()
    return [
        GateRecord(
            run_id=r["run_id"],
            step_id=r["step_id"],
            attempt=r["attempt"],
            gate=r["gate"],
            phase=r["phase"],
            outcome=r["outcome"],
            reason=r["reason"],
            score=r["score"],
            details=json.loads(r["details"]),
            duration_ms=r["duration_ms"],
            at=r["at"],
        )
        for r in rows
    ]


def agent_records(conn: Connection) -> list[AgentRecord]:
    rows = conn.execute(select(agents).order_by(agents.c.name)).mappings().all()
    return [_agent_record(r) for r in rows]


def release(
    conn: Connection, name: str, *, by: str, note: str | None, at: float
) -> tuple[AgentRecord, EventDraft]:
    row = conn.execute(select(agents).where(agents.c.name == name)).mappings().first()
    if row is None or row["state"] != AgentState.QUARANTINED.value:
        known = [r.name for r in agent_records(conn) if r.state is AgentState.QUARANTINED]
        held = f"; quarantined now: {', '.join(known)}" if known else "; no agent is quarantined"
        raise StateError(f"agent {name!r} is not quarantined{held}")
    conn.execute(
        update(agents)
        .where(agents.c.name == name)
        .values(state=AgentState.OK.value, changed_by=by, note=note, updated_at=at, since=at)
    )
    record = _agent_record(
        {**row, "state": "ok", "changed_by": by, "note": note, "updated_at": at, "since": at}
    )
    event: EventDraft = (
        row["run_id"],
        row["step_id"],
        None,
        "agent.released",
        {"agent": name, "by": by, "note": note, "quarantined_for": row["reason"]},
    )
    return record, event


def breaker_records(conn: Connection) -> dict[str, BreakerRecord]:
    rows = conn.execute(select(breakers)).mappings().all()
    return {
        r["key"]: BreakerRecord(
            key=r["key"],
            state=r["state"],
            failures=r["failures"],
            opened_at=r["opened_at"],
            cooldown_s=r["cooldown_s"],
            trips=r["trips"],
            updated_at=r["updated_at"],
        )
        for r in rows
    }


def stats(conn: Connection) -> StoreStats:
    """Grouped counts for /metrics and the dashboard's overview."""
    from agenthq.store.tables import chain_head, runs, steps

    step_rows = conn.execute(
        select(steps.c.state, steps.c.agent, func.count()).group_by(steps.c.state, steps.c.agent)
    ).all()
    run_rows = conn.execute(select(runs.c.state, func.count()).group_by(runs.c.state)).all()
    waiting = conn.execute(
        select(approvals.c.requested_at).where(approvals.c.state == ApprovalState.PENDING.value)
    ).scalars()
    outcomes = conn.execute(
        select(gate_results.c.gate, gate_results.c.outcome, func.count()).group_by(
            gate_results.c.gate, gate_results.c.outcome
        )
    ).all()
    breaker_rows = conn.execute(select(breakers.c.key, breakers.c.state)).all()
    durations = conn.execute(
        select(attempts.c.finished_at - attempts.c.started_at)
        .where(attempts.c.finished_at.is_not(None))
        .order_by(attempts.c.finished_at.desc())
        .limit(10_000)
    ).scalars()
    head = conn.execute(select(chain_head.c.seq)).scalar()
    return StoreStats(
        steps=[(str(s), a, int(n)) for s, a, n in step_rows],
        runs=[(str(s), int(n)) for s, n in run_rows],
        approvals_waiting=[float(t) for t in waiting],
        gate_outcomes=[(str(g), str(o), int(n)) for g, o, n in outcomes],
        breakers=[(str(k), str(v)) for k, v in breaker_rows],
        attempt_durations=[max(0.0, float(d)) for d in durations if d is not None],
        events=int(head or 0),
    )


def spent_since(conn: Connection, since: float) -> float:
    total = conn.execute(
        select(func.coalesce(func.sum(attempts.c.cost_usd), 0.0)).where(
            attempts.c.started_at >= since
        )
    ).scalar()
    return float(total or 0.0)


def run_spending(conn: Connection, run_id: str) -> dict[str, float]:
    rows = conn.execute(
        select(attempts.c.step_id, func.sum(attempts.c.cost_usd))
        .where(attempts.c.run_id == run_id, attempts.c.cost_usd.is_not(None))
        .group_by(attempts.c.step_id)
    ).all()
    return {str(step): float(total or 0.0) for step, total in rows}


# ---- rows ------------------------------------------------------------------------------------


def _get(conn: Connection, approval_id: int) -> ApprovalRecord:
    row = conn.execute(_APPROVAL_SELECT.where(approvals.c.id == approval_id)).first()
    if row is None:
        raise NotFoundError(f"no approval with id {approval_id}")
    return _approval_record(row)


def _upsert(conn: Connection, table: Table, key: str, values: dict[str, Any]) -> None:
    """Update the row, or insert it: portable across SQLite and PostgreSQL, and safe because
    the caller holds the write transaction. The table's key is its one primary-key column."""
    (key_column,) = table.primary_key.columns
    if conn.execute(update(table).where(key_column == key).values(values)).rowcount == 0:
        conn.execute(insert(table).values({key_column.name: key, **values}))


def _gate_row(record: GateRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "step_id": record.step_id,
        "attempt": record.attempt,
        "gate": str(record.gate),  # plain text: the driver gets these as they are
        "phase": str(record.phase),
        "outcome": str(record.outcome),
        "reason": record.reason,
        "score": record.score,
        "details": canonical_json(record.details),
        "duration_ms": record.duration_ms,
        "at": record.at,
    }


def _budget_text(row: ApprovalRecord) -> str:
    spent = row.request.get("spent_usd")
    limit = row.request.get("limit_usd")
    scope = row.request.get("scope", "run")
    if isinstance(spent, int | float) and isinstance(limit, int | float):
        return f"the {scope} spent ${spent:.2f} of ${limit:.2f}"
    return f"the {scope} budget is used up"


_APPROVAL_COLUMNS = (
    approvals.c.id,
    approvals.c.run_id,
    approvals.c.step_id,
    approvals.c.attempt,
    approvals.c.kind,
    approvals.c.state,
    approvals.c.requested_at,
    approvals.c.expires_at,
    approvals.c.warn_at,
    approvals.c.escalate_at,
    approvals.c.escalate_to,
    approvals.c.warned,
    approvals.c.escalated,
    approvals.c.on_timeout,
    approvals.c.command,
    approvals.c.score,
    approvals.c.reasons,
    approvals.c.request,
    approvals.c.decided_at,
    approvals.c.decided_by,
    approvals.c.note,
    approvals.c.extend_usd,
)
_APPROVAL_SELECT: Select[Any] = select(*_APPROVAL_COLUMNS)


def _approval_record(row: Sequence[Any]) -> ApprovalRecord:
    return ApprovalRecord(
        id=int(row[0]),
        run_id=row[1],
        step_id=row[2],
        attempt=row[3],
        kind=ApprovalKind(row[4]),
        state=ApprovalState(row[5]),
        requested_at=row[6],
        expires_at=row[7],
        warn_at=row[8],
        escalate_at=row[9],
        escalate_to=row[10],
        warned=bool(row[11]),
        escalated=bool(row[12]),
        on_timeout=row[13],
        command=row[14],
        score=row[15],
        reasons=tuple(json.loads(row[16])),
        request=json.loads(row[17]),
        decided_at=row[18],
        decided_by=row[19],
        note=row[20],
        extend_usd=row[21],
    )


def _agent_record(row: Any) -> AgentRecord:
    return AgentRecord(
        name=row["name"],
        state=AgentState(row["state"]),
        reason=row["reason"],
        run_id=row["run_id"],
        step_id=row["step_id"],
        since=row["since"],
        changed_by=row["changed_by"],
        note=row["note"],
        updated_at=row["updated_at"],
    )


def quarantined(records: Iterable[AgentRecord]) -> dict[str, AgentRecord]:
    return {r.name: r for r in records if r.state is AgentState.QUARANTINED}
