"""The scheduler's side of human approval: ask, notice answers, keep the service level.

A step that a gate asks about is parked in `awaiting_approval` and an approval row is written
in the same transaction. Any process may answer it (`agenthq approve` writes the decision to
the store); the executing scheduler polls the rows of its own waiting steps every poll
interval, so an answer is acted on within a second, and a run resumed days later finds its
answers there too. The SLA clock is checked on the same poll: a warning event before expiry,
an escalation event at `escalate_after`, then the declared `on_timeout` decision — recorded as
decided by "timeout", never a silent expiry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agenthq.gates.base import GateResult
from agenthq.spec.models import ApprovalSpec, OnTimeout
from agenthq.store.api import (
    ApprovalDecision,
    ApprovalKind,
    ApprovalMark,
    ApprovalRecord,
    ApprovalRequest,
    ApprovalState,
    Batch,
    Store,
)

TIMEOUT_DECIDER = "timeout"


@dataclass(frozen=True)
class Answer:
    """A decided approval for a step that is waiting for it."""

    step_id: str
    approval: ApprovalRecord

    @property
    def approved(self) -> bool:
        return self.approval.state is ApprovalState.APPROVED


def request(
    *,
    run_id: str,
    step_id: str,
    attempt: int,
    at: float,
    spec: ApprovalSpec,
    command: str | None,
    results: Sequence[GateResult],
) -> ApprovalRequest:
    """The approval row for a step the gates asked about."""
    asking = [r for r in results if r.outcome.value == "ask"]
    budget = next((r.details.get("budget") for r in asking if r.gate == "cost"), None)
    kind = ApprovalKind.BUDGET if budget is not None else ApprovalKind.GATE
    scores = [r.score for r in results if r.gate == "risk" and r.score is not None]
    reasons: list[str] = []
    for r in asking:
        if r.gate == "risk" and "approval_required" in r.reason:
            reasons.append(r.reason.split("; ", 1)[0])  # who declared it: the step or its agent
        listed = r.details.get("reasons") if r.gate == "risk" else None
        if listed:
            reasons.extend(str(x) for x in listed)
        else:
            reasons.append(f"{r.gate}: {r.reason}")
    payload: dict[str, Any] = {
        "gates": [
            {"gate": r.gate, "outcome": r.outcome.value, "reason": r.reason, "score": r.score}
            for r in results
        ]
    }
    if isinstance(budget, Mapping):
        payload.update(budget)
    predicted = next(
        (r.details["predicted_failure"] for r in results if "predicted_failure" in r.details), None
    )
    if predicted is not None:  # the failure model's view, for the person deciding
        payload["predicted_failure"] = predicted
    expires = at + spec.timeout
    warn_at = expires - spec.warn_before if spec.warn_before < spec.timeout else None
    return ApprovalRequest(
        run_id=run_id,
        step_id=step_id,
        attempt=attempt,
        kind=kind,
        requested_at=at,
        expires_at=expires,
        warn_at=warn_at,
        escalate_at=at + spec.escalate_after if spec.escalate_after is not None else None,
        escalate_to=spec.escalate_to,
        on_timeout=spec.on_timeout.value,
        command=command,
        score=max(scores) if scores else None,
        reasons=tuple(dict.fromkeys(reasons)),
        request=payload,
    )


def wait_request(
    *, run_id: str, step_id: str, at: float, spec: ApprovalSpec, message: str
) -> ApprovalRequest:
    """The approval row of a `wait_for: {approval: true}` step: no command, no gates."""
    expires = at + spec.timeout
    return ApprovalRequest(
        run_id=run_id,
        step_id=step_id,
        attempt=0,
        kind=ApprovalKind.WAIT,
        requested_at=at,
        expires_at=expires,
        warn_at=expires - spec.warn_before if spec.warn_before < spec.timeout else None,
        escalate_at=at + spec.escalate_after if spec.escalate_after is not None else None,
        escalate_to=spec.escalate_to,
        on_timeout=spec.on_timeout.value,
        command=None,
        score=None,
        reasons=(message or f"step {step_id} waits for a person's go-ahead",),
        request={"wait_for": "approval"},
    )


class ApprovalDesk:
    """Tracks the approvals the run's waiting steps depend on."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.waiting: dict[
            str, ApprovalRecord | None
        ] = {}  # step → its approval (None: not yet read)

    def wait_for(self, step_id: str) -> None:
        """The step's approval row is in the batch being committed; read it on the next poll."""
        self.waiting[step_id] = None

    def forget(self, step_id: str) -> None:
        self.waiting.pop(step_id, None)

    def poll(self, now: float, batch: Batch) -> list[Answer]:
        """Answers that arrived, plus SLA marks and expiries written into `batch`."""
        if not self.waiting:
            return []
        latest: dict[str, ApprovalRecord] = {}
        for record in self.store.list_approvals(run_id=self.run_id, state=None, limit=100_000):
            if record.step_id in self.waiting:
                latest[record.step_id] = record  # ids grow: the last one is the current ask
        answers: list[Answer] = []
        for step_id, record in latest.items():
            self.waiting[step_id] = record
            if record.state is not ApprovalState.PENDING:
                answers.append(Answer(step_id, record))
                continue
            if now >= record.expires_at:
                batch.approval_decisions.append(expiry(record, now))
                continue
            if record.warn_at is not None and not record.warned and now >= record.warn_at:
                batch.approval_marks.append(ApprovalMark(record.id, "warned"))
            if (
                record.escalate_at is not None
                and not record.escalated
                and now >= record.escalate_at
            ):
                batch.approval_marks.append(ApprovalMark(record.id, "escalated"))
        for answer in answers:
            self.waiting.pop(answer.step_id, None)
        return answers


def expiry(record: ApprovalRecord, now: float) -> ApprovalDecision:
    """The SLA's own decision. Budget approvals never approve themselves: money needs a
    person to say how much."""
    approve = record.on_timeout == OnTimeout.APPROVE.value and record.kind in (
        ApprovalKind.GATE,
        ApprovalKind.WAIT,
    )
    waited = now - record.requested_at
    return ApprovalDecision(
        approval_id=record.id,
        state=ApprovalState.APPROVED if approve else ApprovalState.REJECTED,
        by=TIMEOUT_DECIDER,
        at=now,
        note=f"no decision within {human_duration(waited)}; on_timeout: {record.on_timeout}",
        expired=True,
    )


def human_duration(seconds: float) -> str:
    """7.0d, 2.5h, 12m, 40s: how long something waited, for people."""
    seconds = max(0.0, seconds)
    if seconds >= 86400:
        return f"{seconds / 86400:.1f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"
