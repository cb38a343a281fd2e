"""The JSON shapes of records, shared by the CLI's `--json` and the HTTP API.

One definition per record, so `agenthq status --json` and `GET /api/runs/{id}` can never
drift apart: both are stable interfaces (docs/cli.md, /openapi.json).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from agenthq.store.api import (
    AgentRecord,
    AlertRecord,
    ApprovalRecord,
    AttemptRecord,
    AutomationRecord,
    BreakerRecord,
    EventRecord,
    FireRecord,
    GateRecord,
    RunRecord,
    StepRecord,
)


def run_json(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "plan": run.plan,
        "state": run.state.value,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "params": dict(run.params),
        "workspace": run.workspace,
        "step_counts": dict(run.step_counts),
        "origin": dict(run.origin) if run.origin else None,
    }


def step_json(step: StepRecord) -> dict[str, Any]:
    return {
        "id": step.step_id,
        "state": step.state.value,
        "attempts": step.attempts,
        "failure_class": step.failure_class.value if step.failure_class else None,
        "outputs": dict(step.outputs),
        "reason": step.reason,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
    }


def attempt_json(attempt: AttemptRecord) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "state": attempt.state,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "exit_code": attempt.exit_code,
        "failure_class": attempt.failure_class.value if attempt.failure_class else None,
        "error": attempt.error,
        "cost_usd": attempt.cost_usd,
        "usage": dict(attempt.usage),
    }


def gate_json(record: GateRecord) -> dict[str, Any]:
    return {
        "gate": record.gate,
        "attempt": record.attempt,
        "phase": record.phase,
        "outcome": record.outcome,
        "reason": record.reason,
        "score": record.score,
        "details": dict(record.details),
        "duration_ms": record.duration_ms,
        "at": record.at,
    }


def event_json(event: EventRecord) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "run_id": event.run_id,
        "step_id": event.step_id,
        "attempt": event.attempt,
        "kind": event.kind,
        "from": event.from_state,
        "to": event.to_state,
        "at": event.at,
        "details": dict(event.details),
        "hash": event.hash,
    }


def approval_json(approval: ApprovalRecord, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {
        "id": approval.id,
        "run_id": approval.run_id,
        "step_id": approval.step_id,
        "attempt": approval.attempt,
        "kind": approval.kind.value,
        "state": approval.state.value,
        "command": approval.command,
        "score": approval.score,
        "reasons": list(approval.reasons),
        "requested_at": approval.requested_at,
        "waited_s": round(now - approval.requested_at, 3),
        "expires_at": approval.expires_at,
        "on_timeout": approval.on_timeout,
        "escalated_to": approval.escalate_to if approval.escalated else None,
        "decided_by": approval.decided_by,
        "decided_at": approval.decided_at,
        "note": approval.note,
        "extend_usd": approval.extend_usd,
        "request": dict(approval.request),
    }


def agent_json(agent: AgentRecord, breaker: BreakerRecord | None) -> dict[str, Any]:
    return {
        "name": agent.name,
        "state": agent.state.value,
        "reason": agent.reason,
        "run_id": agent.run_id,
        "step_id": agent.step_id,
        "since": agent.since,
        "changed_by": agent.changed_by,
        "note": agent.note,
        "breaker": None if breaker is None else {"state": breaker.state, "trips": breaker.trips},
    }


def alert_json(a: AlertRecord) -> dict[str, Any]:
    return {
        "id": a.id,
        "rule": a.rule,
        "severity": a.severity,
        "subject": a.subject,
        "message": a.message,
        "state": a.state,
        "count": a.count,
        "first_seen": a.first_seen,
        "last_seen": a.last_seen,
        "acked_by": a.acked_by,
        "acked_at": a.acked_at,
        "note": a.note,
        "resolved_at": a.resolved_at,
        "run_id": a.run_id,
        "details": dict(a.details),
    }


def fire_json(fire: FireRecord) -> dict[str, Any]:
    """One tick or match of a schedule or trigger, and what came of it."""
    return {
        "key": fire.key,
        "outcome": fire.outcome,
        "run_id": fire.run_id,
        "at": fire.at,
        "details": dict(fire.details),
    }


def automation_json(record: AutomationRecord, last: FireRecord | None = None) -> dict[str, Any]:
    """A schedule or trigger, with its last outcome."""
    return {
        "id": record.id,
        "kind": record.kind,
        "plan": record.plan,
        "plan_path": record.plan_path,
        "settings": dict(record.settings),
        "params": dict(record.params),
        "paused": record.paused,
        "next_at": record.next_at,
        "last": fire_json(last) if last is not None else None,
    }


def started_run_json(run: RunRecord) -> dict[str, Any]:
    """A run another run started (its rollback, a plan after it, a trigger's run)."""
    return {"id": run.id, "plan": run.plan, "state": run.state.value, "origin": run.origin}


def origin_text(origin: Mapping[str, Any] | None) -> str:
    """Why a run exists, for people, when no person started it ("" when one did). The run it
    follows from, if any, is `origin["run"]`, which callers show as a link or an id."""
    if not origin:
        return ""
    kind = origin.get("kind")
    return {
        "rollback": "rollback of",
        "schedule": f"started by schedule {origin.get('schedule')} (tick {origin.get('tick')})",
        "after": f"started after plan {origin.get('plan')} {origin.get('status')}:",
        "on": f"started by trigger {origin.get('trigger')} on an event of",
    }.get(str(kind), f"started by {kind}")
