"""The store seam: frozen records out, domain verbs in. No SQL or Row objects leave store/.

The store is the one writer of truth. `apply(batch)` writes a scheduler tick — every step,
attempt and run change plus the hash-chained event of each — in one transaction, checking each
state change against states.py and against the row's current state (compare-and-set), so a
stale writer loses the whole batch instead of overwriting newer truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from agenthq.records import record
from agenthq.states import FailureClass, RunState, StepState


@dataclass(frozen=True)
class RunRecord:
    id: str
    plan: str
    state: RunState
    created_at: float
    started_at: float | None
    finished_at: float | None
    params: Mapping[str, Any]
    spec: Mapping[str, Any]  # the validated PlanSpec as JSON data: resume never rereads the file
    plan_path: str | None
    workspace: str
    max_workers: int
    owner: str | None  # "host:pid:start" of the process executing it, if any
    heartbeat_at: float | None
    cancel_requested: bool
    step_counts: Mapping[str, int] = field(default_factory=dict)  # state → number of steps
    # What started it when no person did: {"kind": "rollback" | "schedule" | "after" | "on",
    # "run": the run it follows from, ...}; None for a run someone started.
    origin: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RunNote:
    """An event about a run that changes no state: "this run's rollback started as run X",
    "plan P will not start after this run"."""

    run_id: str
    kind: str
    details: Mapping[str, Any]


@dataclass(frozen=True)
class AutomationRecord:
    """A registered schedule (`kind` "schedule") or trigger ("after", "on") of a plan file."""

    id: str
    kind: str
    plan: str
    plan_path: str
    workspace: str
    settings: Mapping[str, Any]  # the plan's `schedule:` / one `after:` / one `on:` entry
    params: Mapping[str, Any]
    paused: bool
    next_at: float | None  # schedules: the next tick
    created_at: float


@dataclass(frozen=True)
class FireRecord:
    """One tick or matching event of an automation and what came of it."""

    automation: str
    key: str  # the tick's moment, or the event's seq: unique per automation
    outcome: str  # started | skipped_missed | skipped_max_active | skipped_cooldown | error
    run_id: str | None
    at: float
    details: Mapping[str, Any]


@dataclass(frozen=True)
class RunControl:
    """The few fields the executing process polls, cheap to read often."""

    state: RunState
    cancel_requested: bool
    owner: str | None
    pause_requested: bool = False


@record
class StepRecord:
    run_id: str
    step_id: str
    state: StepState
    attempts: int
    failure_class: FailureClass | None
    outputs: Mapping[str, Any]
    retries_used: Mapping[str, int]  # failure class → retries spent
    next_at: float | None  # when a retrying step may run again
    reason: str | None  # why it is skipped, blocked, waiting …
    started_at: float | None
    finished_at: float | None
    updated_at: float


@dataclass(frozen=True)
class AttemptRecord:
    run_id: str
    step_id: str
    number: int
    state: str  # running | succeeded | failed | cancelled | lost
    started_at: float
    finished_at: float | None
    exit_code: int | None
    failure_class: FailureClass | None
    error: str | None
    stdout_path: str | None
    stderr_path: str | None
    pid: int | None
    pgid: int | None
    proc_start: int | None  # process start time (clock ticks since boot) to tell pid reuse apart
    owner: str | None
    cost_usd: float | None = None
    usage: Mapping[str, float] = field(default_factory=dict)
    session_id: str | None = None  # a coding agent's conversation, resumed by a retry


@dataclass(frozen=True)
class EventRecord:
    seq: int
    run_id: str | None
    step_id: str | None
    attempt: int | None
    kind: str
    from_state: str | None
    to_state: str | None
    at: float
    details: Mapping[str, Any]
    prev_hash: str
    hash: str


# ---- what callers write --------------------------------------------------------------------


@dataclass(frozen=True)
class NewRun:
    id: str
    plan: str
    params: Mapping[str, Any]
    spec: Mapping[str, Any]
    plan_path: str | None
    workspace: str
    max_workers: int
    created_at: float
    step_ids: Sequence[str]  # every step instance, created `pending`
    step_agents: Mapping[str, str] = field(default_factory=dict)  # step → agent, where named
    origin: Mapping[str, Any] | None = None  # see RunRecord.origin
    owner: str | None = None  # "queued": created for `agenthq serve` to execute


@record
class StepChange:
    """Move one step from `from_state` to `to_state`, setting `fields` on its row.

    `fields` may hold: attempts, failure_class, outputs, retries_used, next_at, reason,
    started_at, finished_at. The event carries `details` (already masked).
    """

    run_id: str
    step_id: str
    from_state: StepState
    to_state: StepState
    fields: Mapping[str, Any] = field(default_factory=dict)
    attempt: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunChange:
    """Move a run; `fields` may hold started_at, finished_at, owner, heartbeat_at,
    cancel_requested."""

    run_id: str
    from_state: RunState
    to_state: RunState
    fields: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)


@record
class AttemptStart:
    run_id: str
    step_id: str
    number: int
    started_at: float
    stdout_path: str | None
    stderr_path: str | None
    owner: str | None


@record
class TelemetryRow:
    """One finished attempt as the failure model sees it: what was known when it was
    dispatched, and how it ended. History features (failures in the last day, the step's usual
    duration) are derived from earlier rows by ml/features.py, so none can see the future."""

    run_id: str
    step_id: str
    attempt: int
    plan: str
    step: str  # the id in the plan: `shard` for `shard[2]`
    agent: str | None
    kind: str  # shell | python | agent
    family: str | None  # the command's first word(s)
    risk_score: float | None
    risk_reasons: Sequence[str]
    predicted_failure: float | None  # the model's answer at dispatch, when one was in use
    fan_in: int
    # How many of the run's attempts run at once when it starts: those running plus those ready
    # to start in the same tick, capped at max_workers (a burst of 16 starts is 16 for each).
    parallelism: int
    started_at: float
    finished_at: float
    outcome: str  # succeeded | failed | cancelled
    failure_class: str | None
    cost_usd: float | None

    @property
    def duration_s(self) -> float:
        return max(0.0, self.finished_at - self.started_at)


@dataclass(frozen=True)
class WorkItem:
    """An attempt for a worker to run: written with its attempt, in the same batch."""

    run_id: str
    step_id: str
    number: int
    needs: Sequence[str]  # capabilities the worker must have
    payload: Mapping[str, Any]  # what to run (see engine/remote.py)
    created_at: float


@dataclass(frozen=True)
class WorkStatus:
    """Where a work item stands, for the run's scheduler."""

    run_id: str
    step_id: str
    number: int
    state: str  # queued | claimed | done | lost | cancelled
    worker: str | None
    lease_expires_at: float | None
    outcome: Mapping[str, Any] | None


@dataclass(frozen=True)
class Claim:
    """A work item a worker took: run it and report, holding the lease."""

    run_id: str
    step_id: str
    number: int
    payload: Mapping[str, Any]
    lease_expires_at: float


@record
class AttemptUpdate:
    """Set fields of an existing attempt: pid/pgid/proc_start once spawned, or its end
    (state, finished_at, exit_code, failure_class, error; owner: the worker that ran it)."""

    run_id: str
    step_id: str
    number: int
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class NewEvent:
    """An event that is not a state change (a note, a log marker, a control request)."""

    kind: str
    run_id: str | None = None
    step_id: str | None = None
    attempt: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


# ---- safety gates: what they decided, who approved, which agents are held ---------------------


@record
class GateRecord:
    """One gate's answer for one attempt of one step."""

    run_id: str
    step_id: str
    attempt: int
    gate: str
    phase: str  # before | after
    outcome: str  # pass | ask | refuse | retry
    reason: str
    score: float | None
    details: Mapping[str, Any]
    duration_ms: float
    at: float


class ApprovalKind(StrEnum):
    GATE = "gate"  # a gate (or `risk: approval_required`) asked a person
    BUDGET = "budget"  # the run or step is over budget: approve by extending it
    WAIT = "wait"  # a `wait_for: {approval: true}` step: a person's go-ahead, nothing runs


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ApprovalRequest:
    """A question for a person, with its service level."""

    run_id: str
    step_id: str
    attempt: int
    kind: ApprovalKind
    requested_at: float
    expires_at: float
    warn_at: float | None
    escalate_at: float | None
    escalate_to: str | None
    on_timeout: str  # reject | approve
    command: str | None
    score: float | None
    reasons: Sequence[str]
    request: Mapping[str, Any]  # gate results, or {"scope", "spent_usd", "limit_usd"} for budgets


@dataclass(frozen=True)
class ApprovalRecord:
    id: int
    run_id: str
    step_id: str
    attempt: int
    kind: ApprovalKind
    state: ApprovalState
    requested_at: float
    expires_at: float
    warn_at: float | None
    escalate_at: float | None
    escalate_to: str | None
    warned: bool
    escalated: bool
    on_timeout: str
    command: str | None
    score: float | None
    reasons: Sequence[str]
    request: Mapping[str, Any]
    decided_at: float | None
    decided_by: str | None
    note: str | None
    extend_usd: float | None


@dataclass(frozen=True)
class ApprovalDecision:
    """A person's (or the timeout's) answer. `extend_usd` is required for budget approvals."""

    approval_id: int
    state: ApprovalState  # approved | rejected
    by: str
    at: float
    note: str | None = None
    extend_usd: float | None = None
    expired: bool = False  # decided by the SLA's on_timeout, not by a person


@dataclass(frozen=True)
class ApprovalMark:
    """The SLA clock passed a milestone: `warned` or `escalated` becomes true."""

    approval_id: int
    milestone: str  # warned | escalated


class AgentState(StrEnum):
    OK = "ok"
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class AgentRecord:
    name: str
    state: AgentState
    reason: str | None
    run_id: str | None
    step_id: str | None
    since: float | None
    changed_by: str | None
    note: str | None
    updated_at: float


@dataclass(frozen=True)
class Quarantine:
    """Hold an agent: it gets no new steps until a person releases it."""

    agent: str
    reason: str
    run_id: str
    step_id: str


@dataclass(frozen=True)
class AgentHealth:
    """What the last health check of an agent found."""

    name: str
    health: str  # healthy | unhealthy | offline
    detail: str | None
    failures: int  # consecutive failed checks
    checked_at: float
    next_at: float | None = None


@dataclass(frozen=True)
class AgentActivity:
    """An agent's load and record, from the steps and attempts that named it."""

    name: str
    running: int  # steps running on it now
    attempts: int  # finished attempts since the window's start
    failures: int
    mean_risk: float | None  # of the risk gate's scores for its last commands
    # the failure model's mean prediction for its last attempts, when a model was in use
    mean_predicted_failure: float | None = None

    @property
    def failure_rate(self) -> float:
        return self.failures / self.attempts if self.attempts else 0.0


@dataclass(frozen=True)
class NewAlert:
    rule: str
    severity: str  # low | medium | high | critical
    subject: str  # what it is about: run:ID, agent:NAME, approval:ID …
    message: str
    at: float
    details: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    repeat: bool = True  # an occurrence (count + 1); False: the condition still holds


@dataclass(frozen=True)
class AlertRecord:
    id: int
    rule: str
    severity: str
    subject: str
    message: str
    details: Mapping[str, Any]
    state: str  # open | acknowledged | resolved
    first_seen: float
    last_seen: float
    count: int
    acked_by: str | None
    acked_at: float | None
    note: str | None
    resolved_at: float | None
    run_id: str | None


@dataclass(frozen=True)
class AlertFacts:
    running_runs: Sequence[tuple[str, str, float]]  # (run, plan, last event at)
    failures_by_agent: Mapping[str, int]  # failed attempts since the window's start
    waiting_by_agent: Mapping[str, int]  # ready steps per agent


@dataclass(frozen=True)
class NewMessage:
    sender: str
    recipient: str
    body: str
    at: float
    subject: str | None = None
    dedupe_key: str | None = None  # sending twice with one key stores it once
    run_id: str | None = None  # where it was sent from, when from a step
    step_id: str | None = None


@dataclass(frozen=True)
class MessageRecord:
    id: int
    sender: str
    recipient: str
    subject: str | None
    body: str
    dedupe_key: str | None
    run_id: str | None
    step_id: str | None
    created_at: float
    read_at: float | None


@dataclass(frozen=True)
class WorktreeRecord:
    """The git worktree one attempt of a coding agent worked in."""

    run_id: str
    step_id: str
    attempt: int
    path: str
    branch: str
    base: str
    repo: str
    state: str  # active | merged | review | conflict | kept | removed
    merge: str  # auto | review
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class BreakerRecord:
    key: str  # agent:NAME | gate:NAME
    state: str  # closed | open | half_open
    failures: int  # consecutive
    opened_at: float | None
    cooldown_s: float
    trips: int
    updated_at: float


class EventLine(NamedTuple):
    """An event as the JSON the API sends (events/serialize.event_json), built from the stored
    columns without decoding and re-encoding its details: for live streams of thousands of
    events a second."""

    seq: int
    run_id: str | None
    kind: str
    json: str


@dataclass(frozen=True)
class StoreStats:
    steps: Sequence[tuple[str, str | None, int]]  # (state, agent, count)
    runs: Sequence[tuple[str, int]]  # (state, count)
    approvals_waiting: Sequence[float]  # requested_at of each pending approval
    gate_outcomes: Sequence[tuple[str, str, int]]  # (gate, outcome, count)
    breakers: Sequence[tuple[str, str]]  # (key, state)
    attempt_durations: Sequence[float]  # seconds, the most recent finished attempts
    events: int  # the last event's seq


@dataclass
class Batch:
    """One transaction's worth of changes, in the order they happened."""

    at: float
    steps: list[StepChange] = field(default_factory=list)
    runs: list[RunChange] = field(default_factory=list)
    attempt_starts: list[AttemptStart] = field(default_factory=list)
    attempt_updates: list[AttemptUpdate] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    gate_results: list[GateRecord] = field(default_factory=list)
    approval_requests: list[ApprovalRequest] = field(default_factory=list)
    approval_marks: list[ApprovalMark] = field(default_factory=list)
    approval_decisions: list[ApprovalDecision] = field(default_factory=list)
    quarantines: list[Quarantine] = field(default_factory=list)
    breakers: list[BreakerRecord] = field(default_factory=list)
    # (run_id, step_id, why): a ready step that waits (for an agent, a budget) says why in its
    # row's reason, for `agenthq status`; no event, the step did not change state.
    step_notes: list[tuple[str, str, str | None]] = field(default_factory=list)
    work_items: list[WorkItem] = field(default_factory=list)
    telemetry: list[TelemetryRow] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.work_items
            or self.telemetry
            or self.steps
            or self.runs
            or self.attempt_starts
            or self.attempt_updates
            or self.events
            or self.gate_results
            or self.approval_requests
            or self.approval_marks
            or self.approval_decisions
            or self.quarantines
            or self.breakers
            or self.step_notes
        )


class Store(Protocol):
    """The verbs the engine, CLI and server use. Implementations: store/sql.py."""

    url: str

    def create_run(self, run: NewRun, *, notes: Sequence[RunNote] = ()) -> RunRecord:
        """Insert the run and its pending steps, with a `run.created` event, atomically."""
        ...

    def get_run(self, run_id: str) -> RunRecord: ...

    def get_run_control(self, run_id: str) -> RunControl: ...

    def resolve_run_id(self, text: str) -> str:
        """A full id from an id, a unique prefix or `last`; NotFoundError otherwise."""
        ...

    def list_runs(
        self,
        *,
        state: RunState | None = None,
        plan: str | None = None,
        limit: int = 50,
        offset: int = 0,
        origin_run: str | None = None,
    ) -> list[RunRecord]:
        """Newest first, with step_counts filled in and `spec` left empty (get_run has it);
        `origin_run`: only the runs that run started (its rollback, plans after it)."""
        ...

    def get_steps(self, run_id: str) -> list[StepRecord]: ...

    def get_attempts(self, run_id: str, step_id: str | None = None) -> list[AttemptRecord]: ...

    def apply(self, batch: Batch) -> None:
        """Write the batch and its events in one transaction or not at all.

        Raises IllegalTransitionError for a change states.py forbids and StaleWriteError when a
        row is no longer in `from_state`.
        """
        ...

    def claim_run(self, run_id: str, owner: str, *, steal_from: str | None = None) -> None:
        """Make `owner` the executing process of the run, if it has none or had `steal_from`
        (a process known to be dead). RunBusyError otherwise."""
        ...

    def heartbeat(self, run_id: str, owner: str, at: float) -> None: ...

    def release_run(self, run_id: str, owner: str) -> None: ...

    def request_pause(self, run_id: str, paused: bool) -> None:
        """Ask the executing process to start nothing new (True) or to go on (False)."""
        ...

    # ---- telemetry: one row per finished attempt ---------------------------------------------

    def list_telemetry(
        self,
        *,
        started_from: float | None = None,
        started_before: float | None = None,
        finished_after: float | None = None,
        agent: str | None = None,
        limit: int | None = None,
    ) -> list[TelemetryRow]:
        """Oldest first (by start)."""
        ...

    # ---- automations (schedules and triggers) ------------------------------------------------

    def save_automation(self, automation: AutomationRecord) -> None:
        """Insert or replace (by id)."""
        ...

    def list_automations(self, kind: str | None = None) -> list[AutomationRecord]: ...

    def get_automation(self, automation_id: str) -> AutomationRecord:
        """NotFoundError when there is none."""
        ...

    def set_automation(
        self, automation_id: str, *, paused: bool | None = None, next_at: float | None = None
    ) -> AutomationRecord: ...

    def remove_automation(self, automation_id: str) -> None: ...

    def fire_automation(
        self, fire: FireRecord, *, run: NewRun | None = None, next_at: float | None = None
    ) -> bool:
        """Record a tick or event and, for `started`, create its run queued for a server —
        together, in one transaction, and only if this key was never recorded (False then:
        another process, or this one before a restart, already did). `next_at` moves a
        schedule on in the same transaction."""
        ...

    def list_fires(
        self, automation: str | None = None, limit: int = 50, *, outcome: str | None = None
    ) -> list[FireRecord]:
        """Newest first; `outcome`: only those (the last `started` one, for a cool-down)."""
        ...

    def active_runs(self, automation: str) -> list[str]:
        """Unfinished runs this automation started."""
        ...

    # ---- work for workers (store/work.py) ----------------------------------------------------

    def claim_work(
        self, worker: str, capabilities: Sequence[str], limit: int, lease_s: float, now: float
    ) -> list[Claim]:
        """Take up to `limit` queued items this worker can run, oldest first, each with a
        lease until now + lease_s. Concurrent workers never take the same item (PostgreSQL:
        FOR UPDATE SKIP LOCKED; SQLite: one writer at a time)."""
        ...

    def renew_work(
        self, worker: str, keys: Sequence[tuple[str, str, int]], until: float
    ) -> set[tuple[str, str, int]]:
        """Extend the leases this worker still holds; the keys it no longer holds are left
        out of the answer (expired and taken back, or the run was cancelled)."""
        ...

    def finish_work(
        self, worker: str, key: tuple[str, str, int], outcome: Mapping[str, Any], now: float
    ) -> bool:
        """Report a result; False (nothing written) unless this worker still holds it."""
        ...

    def work_status(self, run_id: str, *, due_before: float | None = None) -> list[WorkStatus]:
        """The run's items that are not yet collected (queued, claimed, or just ended); with
        `due_before`, only those the scheduler must act on: reported ones and claims whose
        lease expired before then."""
        ...

    def collect_work(self, keys: Sequence[tuple[str, str, int]]) -> None:
        """Mark reported items as read by the scheduler, in one transaction."""
        ...

    def settle_work(
        self, key: tuple[str, str, int], state: str, *, expired_before: float | None = None
    ) -> bool:
        """Move an item to `lost`, `cancelled` or `collected` — fenced: `lost` only while
        its lease expired before `expired_before`; False when it had moved on."""
        ...

    def wait_for_signal(self, channel: str, timeout: float) -> bool:
        """Block up to `timeout` s for a signal on `channel` ("work": items were queued;
        "results": a worker reported). PostgreSQL delivers them with LISTEN/NOTIFY, so
        workers and schedulers wake at once instead of polling; elsewhere this just sleeps.
        True when a signal came."""
        ...

    def abandon_work(self, run_id: str) -> int:
        """The run's queued and claimed items become `lost` (its executor died)."""
        ...

    def append_log(self, key: tuple[str, str, int], stream: str, seq: int, data: str) -> None: ...

    def read_log(self, key: tuple[str, str, int], stream: str) -> str | None:
        """A worker's log of an attempt, joined; None when no worker stored one."""
        ...

    def add_notes(self, notes: Sequence[RunNote], at: float) -> None:
        """Append events that change no state (RunNote), in one transaction."""
        ...

    def request_cancel(self, run_id: str) -> None:
        """Record a durable request to cancel; the executing process acts on it."""
        ...

    def read_events(
        self,
        *,
        after_seq: int = 0,
        run_id: str | None = None,
        limit: int = 1000,
        kinds: Sequence[str] | None = None,
        to_states: Sequence[str] | None = None,
    ) -> list[EventRecord]:
        """Events after `after_seq` in seq order; only those of `kinds` and ending in one of
        `to_states` when given (a reader that acts on a few skips decoding thousands)."""
        ...

    def read_event_lines(
        self, *, after_seq: int = 0, run_id: str | None = None, limit: int = 1000
    ) -> list[EventLine]: ...

    def last_event_seq(self) -> int:
        """The newest event's seq (0 before any), read from the chain head: one row, however
        long the table. Seqs are consecutive, so the difference of two answers counts the
        events written in between."""
        ...

    # ---- safety gates ----------------------------------------------------------------------

    def get_gate_results(self, run_id: str, step_id: str | None = None) -> list[GateRecord]: ...

    def list_approvals(
        self,
        *,
        run_id: str | None = None,
        state: ApprovalState | None = ApprovalState.PENDING,
        ids: Sequence[int] | None = None,
        limit: int = 500,
        requested_from: float | None = None,
    ) -> list[ApprovalRecord]:
        """Oldest first; `requested_from`: only those asked for at or after it."""
        ...

    def decide_approval(self, decision: ApprovalDecision) -> ApprovalRecord:
        """Answer a pending approval, with its event, atomically. StateError when it was
        already answered (the message says by whom), NotFoundError when there is no such id."""
        ...

    def list_agents(self) -> list[AgentRecord]: ...

    def release_agent(self, name: str, *, by: str, note: str | None, at: float) -> AgentRecord:
        """End a quarantine (StateError when the agent is not quarantined)."""
        ...

    def get_breakers(self) -> dict[str, BreakerRecord]: ...

    def agent_activity(
        self, since: float, *, exclude_run: str | None = None, risk_window: int = 50
    ) -> dict[str, AgentActivity]:
        """Load (running steps, outside `exclude_run`), attempts and failures since `since`,
        and the mean risk score of each agent's last `risk_window` commands."""
        ...

    def agent_health(self) -> dict[str, AgentHealth]: ...

    def raise_alert(self, alert: NewAlert) -> tuple[AlertRecord, bool]:
        """Open an alert, or fold it into the live one with its rule and subject."""
        ...

    def change_alert(
        self, alert_id: int, to: str, *, by: str, note: str | None, at: float
    ) -> AlertRecord:
        """acknowledged | resolved; StateError when it already is."""
        ...

    def list_alerts(
        self,
        *,
        ids: Sequence[int] | None = None,
        states: Sequence[str] | None = None,
        rule: str | None = None,
        severities: Sequence[str] | None = None,
        limit: int = 500,
    ) -> list[AlertRecord]:
        """Newest first; each filter given narrows the list."""
        ...

    def get_cursor(self, name: str) -> int: ...

    def set_cursor(self, name: str, seq: int, at: float) -> None: ...

    def alert_facts(self, since: float) -> AlertFacts:
        """What the timer rules read in one go."""
        ...

    def send_message(self, message: NewMessage) -> tuple[int, bool]:
        """(its id, whether it is new); a known dedupe_key returns the first message's id."""
        ...

    def inbox(
        self, agent: str, *, unread: bool = True, limit: int = 500
    ) -> list[MessageRecord]: ...

    def mark_read(
        self, *, ids: Sequence[int] | None = None, agent: str | None = None, at: float
    ) -> int: ...

    def conversation(self, a: str, b: str, *, limit: int = 500) -> list[MessageRecord]: ...

    def prune_messages(self, read_before: float) -> int: ...

    def record_worktree(self, worktree: WorktreeRecord) -> None: ...

    def update_worktree(
        self, run_id: str, step_id: str, attempt: int, state: str, at: float
    ) -> None: ...

    def list_worktrees(
        self, *, run_id: str | None = None, states: Sequence[str] | None = None
    ) -> list[WorktreeRecord]: ...

    def record_agent_health(self, health: AgentHealth) -> None:
        """Upsert; a change of health also appends an `agent.health` event."""
        ...

    def spent_since(self, since: float) -> float:
        """Dollars reported by attempts that started at or after `since`, all runs."""
        ...

    def run_spending(self, run_id: str) -> dict[str, float]:
        """Dollars reported per step of the run."""
        ...

    def stats(self) -> StoreStats:
        """Counts for metrics and the dashboard, in a few grouped queries."""
        ...

    def close(self) -> None: ...
