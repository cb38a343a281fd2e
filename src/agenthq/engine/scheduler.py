"""The tick: collect results → decide → dispatch → one commit → start processes.

The store is the truth and this class keeps a cache of it. Each tick gathers every change it
decides into one Batch and commits it before starting any process, so that (1) an attempt is
recorded as started before its process exists, (2) a result is durable in the same
transaction that makes its dependents ready, and (3) thousands of transitions cost one commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from agenthq.agents.registry import step_needs
from agenthq.engine import approvals, triggers
from agenthq.engine.agent_board import AgentBoard, Placement
from agenthq.engine.approvals import ApprovalDesk
from agenthq.engine.dispatch import Dispatcher, Finished, Prepared
from agenthq.engine.gating import GatePipeline
from agenthq.engine.limits import Limits
from agenthq.engine.retry import decide_retry
from agenthq.engine.telemetry import TelemetryLog, kind_of
from agenthq.gates import breaker as breakers
from agenthq.gates.base import GateResult, Phase, verdict
from agenthq.gates.base import Outcome as GateOutcome
from agenthq.gates.cost import CostFacts
from agenthq.graph import PlanGraph, StepNode
from agenthq.spec import templating
from agenthq.spec.models import ApprovalSpec
from agenthq.states import FailureClass, RunState, StepState
from agenthq.store.api import (
    ApprovalDecision,
    ApprovalKind,
    ApprovalState,
    Batch,
    BreakerRecord,
    Quarantine,
    RunChange,
    RunRecord,
    StepChange,
    StepRecord,
    Store,
)

S = StepState


@dataclass
class StepView:
    """The scheduler's cached copy of one step row."""

    state: StepState
    attempts: int
    retries_used: dict[str, int]
    outputs: Mapping[str, Any]
    waiting_on: int = 0  # needs not yet finished
    next_at: float | None = None


@dataclass(frozen=True)
class Progress:
    """What an observer (the terminal view) is told after each commit."""

    run_id: str
    counts: Mapping[str, int]
    running: tuple[str, ...]
    total: int
    state: RunState
    changes: tuple[tuple[str, StepState, str | None], ...] = ()  # (step, new state, reason)


class Observer(Protocol):
    def on_progress(self, progress: Progress) -> None: ...


_NO_AGENT = Placement(None, None, None)
_NO_AGENT_PLACEMENT = _NO_AGENT


@dataclass
class SchedulerOptions:
    poll_interval: float = 0.5  # how often to read cancel requests from the store
    # … when nothing runs and no person is asked, only timers (waits, backoffs) are left: a
    # run waiting for days then wakes four times less often, and still hears a cancel soon.
    idle_poll_interval: float = 2.0
    heartbeat_interval: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    # Return (state awaiting_approval) when nothing but a person's decision is left to wait for.
    no_wait: bool = False
    on_tick: Callable[[float], None] | None = None  # seconds each tick took (server metrics)


@dataclass
class Governance:
    """What the gates need to remember across ticks, loaded from the store at start."""

    gating: GatePipeline
    quarantined: dict[str, str] = field(default_factory=dict)  # agent → why
    breakers: dict[str, breakers.Breaker] = field(default_factory=dict)  # agent:NAME → state
    spent: dict[str, float] = field(default_factory=dict)  # step → dollars, all attempts
    extra_run_usd: float = 0.0  # approved budget extensions
    extra_step_usd: dict[str, float] = field(default_factory=dict)


class Scheduler:
    def __init__(
        self,
        *,
        store: Store,
        graph: PlanGraph,
        run: RunRecord,
        steps: list[StepRecord],
        dispatcher: Dispatcher,
        limits: Limits,
        clock: Callable[[], float],
        owner: str,
        options: SchedulerOptions | None = None,
        observer: Observer | None = None,
        governance: Governance | None = None,
        board: AgentBoard | None = None,
    ) -> None:
        self.store = store
        self.board = board
        self.graph = graph
        self.run = run
        self.dispatcher = dispatcher
        self.limits = limits
        self.clock = clock
        self.owner = owner
        self.options = options or SchedulerOptions()
        self.observer = observer
        self.views = {
            r.step_id: StepView(
                r.state, r.attempts, dict(r.retries_used), r.outputs, next_at=r.next_at
            )
            for r in steps
        }
        self.ready: deque[str] = deque()
        self.timers: list[tuple[float, str]] = []
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.finished_results: list[Finished] = []
        self.wake = asyncio.Event()
        self.cancel_requested = False
        self.unfinished = sum(1 for v in self.views.values() if not v.state.finished)
        self.batch = Batch(at=clock())
        self.governance = governance
        self.desk = ApprovalDesk(store, run.id)
        self.approved: set[str] = set()  # awaiting_approval steps a person has let through
        self.held: dict[str, str] = {}  # ready steps that wait for an agent or a budget: why
        self.noted: dict[str, str | None] = {}  # the `held` reasons written to the rows
        self.assigned: dict[str, Placement] = {}  # the agent each started step runs on
        self.run_budget_asked = False
        self.run_state = run.state
        self.paused = False  # a person asked for nothing new to start (`agenthq pause`)
        self.telemetry = TelemetryLog(run.id, graph.spec.name)
        self.parallelism = 1  # see _dispatch

    # ---- public ---------------------------------------------------------------------------

    def request_cancel(self) -> None:
        """Stop: kill what runs, cancel what waits. Safe to call from a signal handler."""
        self.cancel_requested = True
        self.wake.set()

    async def execute(self) -> RunState:
        now = self.clock()
        state = self.run.state
        if state is not RunState.RUNNING:
            self.batch.runs.append(
                RunChange(
                    self.run.id, state, RunState.RUNNING, {"started_at": self.run.started_at or now}
                )
            )
            self.run_state = RunState.RUNNING
        self._prime()
        next_poll = next_heartbeat = now
        while True:
            now = self.clock()
            tick_started = time.perf_counter()
            self.batch.at = now
            self._collect()
            if now >= next_poll:
                next_poll = now + self._poll_every()
                self._poll_control()
                if not self.cancel_requested:
                    self._poll_people(now)
            if self.cancel_requested:
                self._cancel_waiting()
            else:
                self._promote_due(now)
                if not self.paused:
                    self._dispatch(now)
            final = self._final_state()
            if final is not None:
                if self.run_state is RunState.PAUSED and final is not RunState.CANCELLED:
                    self._set_paused(False)  # paused, and everything ended anyway
                self.batch.runs.append(
                    RunChange(
                        self.run.id, self.run_state, final, {"finished_at": now, "owner": None}
                    )
                )
            elif self._only_people_left():
                if self.run_state is RunState.RUNNING:
                    self.batch.runs.append(
                        RunChange(self.run.id, RunState.RUNNING, RunState.AWAITING_APPROVAL)
                    )
                    self.run_state = RunState.AWAITING_APPROVAL
                if self.options.no_wait:
                    final = RunState.AWAITING_APPROVAL
            self._commit()
            if self.options.on_tick is not None:
                self.options.on_tick(time.perf_counter() - tick_started)
            if final is not None:
                return final
            self.dispatcher.start_pending(self.tasks, self._on_finished)
            if now >= next_heartbeat:
                next_heartbeat = now + self.options.heartbeat_interval
                self.store.heartbeat(self.run.id, self.owner, now)
            await self._sleep(
                min(next_poll, next_heartbeat, *(t for t, _ in self.timers[:1])) - now
            )

    # ---- the parts of a tick -------------------------------------------------------------

    def _poll_every(self) -> float:
        busy = self.tasks or self.ready or self.dispatcher.has_pending or self.desk.waiting
        if busy or self.paused:
            return self.options.poll_interval
        return max(self.options.poll_interval, self.options.idle_poll_interval)

    def _prime(self) -> None:
        """Rebuild the in-memory picture from the rows: counts of unfinished needs, the ready
        queue, retry timers — and decide pending steps whose needs already finished."""
        for node in self.graph.nodes.values():
            view = self.views[node.id]
            view.waiting_on = sum(1 for n in node.needs if not self.views[n].state.finished)
            if view.state is S.READY:
                self.ready.append(node.id)
            elif view.state is S.AWAITING_APPROVAL:
                self.desk.wait_for(node.id)
            elif view.state in (S.RETRYING, S.WAITING):
                heapq.heappush(self.timers, (view.next_at or 0.0, node.id))
        for node in self.graph.nodes.values():
            view = self.views[node.id]
            if view.state is S.PENDING and view.waiting_on == 0:
                self._decide_readiness(node)

    def _collect(self) -> None:
        self.batch.attempt_updates.extend(self.dispatcher.take_updates())
        self.batch.events.extend(self.dispatcher.take_events())
        results, self.finished_results = self.finished_results, []
        for result in results:
            self.tasks.pop(result.step_id, None)
            node = self.graph.nodes[result.step_id]
            placement = self.assigned.pop(result.step_id, None)
            self.limits.release(node, placement.name if placement else None)
            self._record_result(node, result, placement.name if placement else node.agent)

    def _record_result(self, node: StepNode, result: Finished, agent: str | None) -> None:
        view = self.views[node.id]
        now = self.batch.at
        self.batch.attempt_updates.append(self.dispatcher.finished_update(result, now))
        row = self.telemetry.finished(result, agent, now)
        if row is not None:
            self.batch.telemetry.append(row)
        if self.governance is not None:
            self._account(node, result, now, agent)
        outcome = result.outcome
        if result.cancelled:
            self._move(
                node.id, S.CANCELLED, {"finished_at": now, "reason": "cancelled"}, result.attempt
            )
            return
        if outcome.failure_class is None:
            self._move(
                node.id,
                S.SUCCEEDED,
                {
                    "outputs": result.outputs,
                    "finished_at": now,
                    "failure_class": None,
                    "reason": None,
                },
                result.attempt,
            )
            view.outputs = result.outputs
            self._propagate(node)
            return
        failure = outcome.failure_class
        decision = decide_retry(node.retry, failure, view.retries_used, self.options.rng.random())
        details = {
            "failure_class": failure.value,
            "error": outcome.error,
            "exit_code": outcome.exit_code,
        }
        if decision.retry and not self.cancel_requested:
            view.retries_used[failure.value] = view.retries_used.get(failure.value, 0) + 1
            view.next_at = now + decision.delay
            self._move(
                node.id,
                S.RETRYING,
                {
                    "failure_class": failure,
                    "retries_used": dict(view.retries_used),
                    "next_at": view.next_at,
                    "reason": f"{decision.reason}, in {decision.delay:.1f}s",
                },
                result.attempt,
                details,
            )
            heapq.heappush(self.timers, (view.next_at, node.id))
            return
        self._move(
            node.id,
            S.FAILED,
            {"failure_class": failure, "finished_at": now, "reason": outcome.error},
            result.attempt,
            {**details, "retry": decision.reason},
        )
        self._propagate(node)

    def _propagate(self, node: StepNode) -> None:
        """A step finished: decide every dependent whose needs are now all finished."""
        for child_id in self.graph.children[node.id]:
            child = self.views[child_id]
            child.waiting_on -= 1
            if child.waiting_on == 0 and child.state is S.PENDING:
                self._decide_readiness(self.graph.nodes[child_id])

    def _decide_readiness(self, node: StepNode) -> None:
        needs = {n: self.views[n].state for n in node.needs}
        decision = triggers.decide_trigger(node.spec.trigger, needs)
        if decision.verdict is triggers.Verdict.RUN and node.spec.when is not None:
            try:
                context = self.dispatcher.context_for(node, self._lookup)
                holds = templating.is_truthy(templating.evaluate(node.spec.when, context))
            except templating.TemplateError as exc:
                self._move(
                    node.id, S.FAILED, {"finished_at": self.batch.at, "reason": f"`when`: {exc}"}
                )
                self._propagate(node)
                return
            if not holds:
                decision = triggers.TriggerDecision(triggers.Verdict.SKIP, "`when` is false")
        if decision.verdict is triggers.Verdict.RUN:
            self._move(node.id, S.READY, {"reason": None})
            if node.spec.is_wait:
                self._begin_wait(node)
            else:
                self.ready.append(node.id)
            return
        target = S.SKIPPED if decision.verdict is triggers.Verdict.SKIP else S.BLOCKED
        self._move(node.id, target, {"finished_at": self.batch.at, "reason": decision.reason})
        self._propagate(node)

    def _begin_wait(self, node: StepNode) -> None:
        """A step that only waits: a timer row (no process, survives restarts), or an
        approval for a person's go-ahead."""
        spec, now = node.spec, self.batch.at
        if spec.wait_for is not None:
            approval = (
                self.governance.gating.approval_spec(node)
                if self.governance is not None
                else spec.approval or self.graph.spec.defaults.approval or ApprovalSpec()
            )
            message = f"{node.id} waits for a go-ahead"
            if spec.wait_for.message:
                try:
                    context = self.dispatcher.context_for(node, self._lookup)
                    message = templating.render(spec.wait_for.message, context)
                except templating.TemplateError as exc:
                    message = f"{spec.wait_for.message} (could not be filled in: {exc})"
            self._move(node.id, S.AWAITING_APPROVAL, {"reason": message, "started_at": now})
            self.batch.approval_requests.append(
                approvals.wait_request(
                    run_id=self.run.id, step_id=node.id, at=now, spec=approval, message=message
                )
            )
            self.desk.wait_for(node.id)
            return
        until = spec.wait_until.timestamp() if spec.wait_until is not None else now
        until += spec.wait or 0.0
        view = self.views[node.id]
        view.next_at = until
        self._move(node.id, S.WAITING, {"next_at": until, "reason": f"waiting until {_iso(until)}"})
        heapq.heappush(self.timers, (until, node.id))

    def _end_wait(
        self, step_id: str, outputs: Mapping[str, Any], details: Mapping[str, Any]
    ) -> None:
        view = self.views[step_id]
        view.outputs = outputs
        view.next_at = None
        fields = {"outputs": outputs, "finished_at": self.batch.at, "next_at": None, "reason": None}
        self._move(step_id, S.SUCCEEDED, fields, None, details)
        self._propagate(self.graph.nodes[step_id])

    def _promote_due(self, now: float) -> None:
        while self.timers and self.timers[0][0] <= now:
            _, step_id = heapq.heappop(self.timers)
            state = self.views[step_id].state
            if state is S.RETRYING:
                self._move(step_id, S.READY, {"next_at": None, "reason": None})
                self.ready.append(step_id)
            elif state is S.WAITING:
                self._end_wait(step_id, {"waited_until": _iso(now)}, {})

    def _dispatch(self, now: float) -> None:
        waiting: list[str] = []
        self.held.clear()
        # How many will run at once once this tick's dispatch is done: what a step started now
        # runs alongside (telemetry and the failure model both read it).
        self.parallelism = min(self.limits.max_workers, len(self.limits.running) + len(self.ready))
        while self.ready and not self.limits.full:
            step_id = self.ready.popleft()
            node = self.graph.nodes[step_id]
            placement = self._place(node, now)
            if placement.hold is not None:
                self.held[step_id] = placement.hold
                waiting.append(step_id)
                continue
            if self.limits.blocker(node, placement.name) is not None:
                waiting.append(step_id)
                continue
            view = self.views[step_id]
            agent = placement.agent
            if view.state is S.AWAITING_APPROVAL:  # a person said yes: no second round of gates
                prepared = self.dispatcher.render(node, view.attempts + 1, self._lookup, agent)
                self._start(prepared, now, placement=placement)
                continue
            prepared = self.dispatcher.render(node, view.attempts + 1, self._lookup, agent)
            if self.governance is None or prepared.failure is not None:
                self._start(prepared, now, placement=placement, results=[])
                continue
            results = self.governance.gating.before(
                node,
                attempt=prepared.attempt,
                command=prepared.command,
                cost=self._cost_facts(node, now),
                agent=agent,
                kind=kind_of(prepared),
                parallelism=max(self.parallelism, len(self.limits.running) + 1),
            )
            if not self._gated(prepared, results, now, placement):
                waiting.append(step_id)
        self.ready.extendleft(reversed(waiting))
        self._note_held()

    def _place(self, node: StepNode, now: float) -> Placement:
        """The agent this step runs on, or why it waits (quarantine, breaker, load, health)."""
        if node.agent is None and node.capability is None:
            return _NO_AGENT
        if self.board is None:
            hold = self._agent_unavailable(node.agent, now) if node.agent else None
            return Placement(None, node.agent, f"agent {node.agent} {hold}" if hold else None)
        spec = node.spec
        return self.board.place(
            node.agent,
            node.capability,
            needs=step_needs(spec.run, spec.uses, spec.prompt),
            local_load=self.limits.by_agent,
            unavailable=lambda name: self._agent_unavailable(name, now),
            now=now,
        )

    def _note_held(self) -> None:
        """Write why held steps wait into their rows, once per change, for `agenthq status`."""
        for step_id, why in self.held.items():
            if self.noted.get(step_id) != why and self.views[step_id].state is S.READY:
                self.noted[step_id] = why
                self.batch.step_notes.append((self.run.id, step_id, why))

    def _start(
        self,
        prepared: Prepared,
        now: float,
        details: Mapping[str, Any] | None = None,
        placement: Placement = _NO_AGENT_PLACEMENT,
        results: list[GateResult] | None = None,
    ) -> None:
        node = prepared.node
        view = self.views[node.id]
        view.attempts = prepared.attempt
        self.limits.acquire(node, placement.name)
        parallelism = max(self.parallelism, len(self.limits.running))
        self.telemetry.started(prepared, now, parallelism, results)
        self.approved.discard(node.id)
        self.noted.pop(node.id, None)
        fields: dict[str, Any] = {"attempts": view.attempts, "started_at": now, "reason": None}
        if placement.name is not None:
            self.assigned[node.id] = placement
            if node.capability is not None:  # picked here: the row and event say which
                fields["agent"] = placement.name
                details = {**(details or {}), "agent": placement.name}
        self._move(node.id, S.RUNNING, fields, view.attempts, details)
        self.dispatcher.enqueue(prepared, self.batch)

    def _gated(
        self, prepared: Prepared, results: list[GateResult], now: float, placement: Placement
    ) -> bool:
        """Apply the before-gates' answers; False when the step must stay ready (held)."""
        if not results:
            self._start(prepared, now, placement=placement, results=results)
            return True
        assert self.governance is not None
        node, attempt = prepared.node, prepared.attempt
        decision = verdict(results)
        summary = {"gates": [_gate_summary(r) for r in results]}
        if decision is GateOutcome.RETRY:
            self.held[node.id] = "; ".join(r.reason for r in results if r.outcome is decision)
            return False
        run_budget = _budget_scope(results) == "run"
        if decision is GateOutcome.ASK and run_budget and self.run_budget_asked:
            self.held[node.id] = "the run is over budget; waiting for its extension"
            return False
        gating = self.governance.gating
        self.batch.gate_results.extend(
            gating.records(self.run.id, node, attempt, Phase.BEFORE, results, at=now)
        )
        if decision is GateOutcome.PASS:
            # ready → running directly: the answers are in this event's details, and a
            # `gating` hop per step would be one more event for every step that simply runs.
            self._start(prepared, now, summary, placement, results)
            return True
        self._move(node.id, S.GATING, {}, attempt)
        reason = "; ".join(f"{r.gate}: {r.reason}" for r in results if r.outcome is decision)
        if decision is GateOutcome.REFUSE:
            self._move(
                node.id,
                S.FAILED,
                {"failure_class": FailureClass.GATE, "finished_at": now, "reason": reason},
                attempt,
                {**summary, "failure_class": FailureClass.GATE.value},
            )
            self._propagate(node)
            return True
        results = self._suggest_cheaper(results, placement)
        self.telemetry.gated(node.id, results)
        self._move(node.id, S.AWAITING_APPROVAL, {"reason": reason}, attempt, summary)
        self.batch.approval_requests.append(
            approvals.request(
                run_id=self.run.id,
                step_id=node.id,
                attempt=attempt,
                at=now,
                spec=gating.approval_spec(node),
                command=prepared.command,
                results=results,
            )
        )
        self.run_budget_asked = self.run_budget_asked or run_budget
        self.desk.wait_for(node.id)
        return True

    def _suggest_cheaper(self, results: list[GateResult], placement: Placement) -> list[GateResult]:
        """A step held for budget names a cheaper agent with the same capability, if any."""
        if self.board is None or placement.name is None:
            return results
        cheaper = self.board.registry.cheaper_than(placement.name)
        if cheaper is None:
            return results
        hint = f"{cheaper.name} is a cheaper agent with the same capability"
        return [
            replace(
                r,
                reason=f"{r.reason}; {hint}",
                details={**r.details, "cheaper_agent": cheaper.name},
            )
            if r.gate == "cost" and r.outcome is GateOutcome.ASK
            else r
            for r in results
        ]

    def _poll_people(self, now: float) -> None:
        """Answers to approvals, SLA milestones, and released agents."""
        if self.governance is not None and any("quarantined" in w for w in self.held.values()):
            self.governance.quarantined = {
                a.name: a.reason or "quarantined"
                for a in self.store.list_agents()
                if a.state.value == "quarantined"
            }
        for answer in self.desk.poll(now, self.batch):
            step_id = answer.step_id
            view = self.views[step_id]
            if view.state is not S.AWAITING_APPROVAL:
                continue
            record = answer.approval
            if self.run_state is RunState.AWAITING_APPROVAL:
                self.batch.runs.append(
                    RunChange(self.run.id, RunState.AWAITING_APPROVAL, RunState.RUNNING)
                )
                self.run_state = RunState.RUNNING
            if record.kind is ApprovalKind.BUDGET and self.governance is not None:
                self._extend_budget(step_id, record.request, record.extend_usd or 0.0)
            if answer.approved and record.kind is ApprovalKind.WAIT:
                who = record.decided_by or "someone"
                self._end_wait(
                    step_id,
                    {"approved_by": who, "note": record.note or ""},
                    {"approval": record.id, "by": who},
                )
                continue
            if answer.approved:
                self.approved.add(step_id)
                self.ready.appendleft(step_id)
                continue
            who = record.decided_by or "someone"
            note = f": {record.note}" if record.note else ""
            expired = "expired" if who == approvals.TIMEOUT_DECIDER else f"rejected by {who}"
            self._move(
                step_id,
                S.FAILED,
                {
                    "failure_class": FailureClass.GATE,
                    "finished_at": now,
                    "reason": f"approval {expired}{note}",
                },
                record.attempt,
                {"approval": record.id, "decision": record.state.value, "by": who},
            )
            self._propagate(self.graph.nodes[step_id])

    def _extend_budget(self, step_id: str, request: Mapping[str, Any], usd: float) -> None:
        assert self.governance is not None
        if request.get("scope") == "step":
            extra = self.governance.extra_step_usd
            extra[step_id] = extra.get(step_id, 0.0) + usd
        else:
            self.governance.extra_run_usd += usd
            self.run_budget_asked = False

    def _only_people_left(self) -> bool:
        """Nothing runs or can run until a person answers (or releases an agent)."""
        if self.paused:
            return False
        if self.tasks or self.dispatcher.has_pending or self.timers or self.unfinished == 0:
            return False
        if any(sid not in self.held for sid in self.ready):
            return False
        people = bool(self.desk.waiting) or any("quarantined" in w for w in self.held.values())
        return people and all("quarantined" in w for w in self.held.values())

    def _agent_unavailable(self, agent: str, now: float) -> str | None:
        """This run's view of an agent: quarantined, or its breaker open; None: it may work."""
        if self.governance is None:
            return None
        why = self.governance.quarantined.get(agent)
        if why is not None:
            return (
                f"is quarantined ({why}); `agenthq agents release {agent}` lets it take steps again"
            )
        key = f"agent:{agent}"
        state = self.governance.breakers.get(key, breakers.Breaker(key))
        admission = breakers.admit(state, self.governance.gating.config.breaker, now)
        if admission.breaker != state:
            self._set_breaker(admission.breaker, now)
        return None if admission.allowed else admission.reason

    def _set_breaker(self, breaker: breakers.Breaker, now: float) -> None:
        assert self.governance is not None
        self.governance.breakers[breaker.key] = breaker
        self.batch.breakers.append(_breaker_record(breaker, now))

    def _cost_facts(self, node: StepNode, now: float) -> CostFacts | None:
        assert self.governance is not None
        gating = self.governance.gating
        if not gating.uses_cost(node):
            return None
        budgets = gating.budgets()
        spent = self.governance.spent
        step_limit = node.spec.budget_usd or budgets.step_usd
        extra_step = self.governance.extra_step_usd.get(node.id, 0.0)
        hour = self.store.spent_since(now - 3600.0) if budgets.hourly_usd is not None else 0.0
        return CostFacts(
            step_spent=spent.get(node.id, 0.0),
            run_spent=sum(spent.values()),
            hour_spent=hour,
            step_limit=step_limit + extra_step if step_limit is not None else None,
            run_limit=(
                budgets.run_usd + self.governance.extra_run_usd
                if budgets.run_usd is not None
                else None
            ),
            hourly_limit=budgets.hourly_usd,
        )

    def _account(self, node: StepNode, result: Finished, now: float, agent: str | None) -> None:
        """Cost, after-gate records, quarantine and the agent's breaker for one result."""
        assert self.governance is not None
        gating = self.governance.gating
        cost = result.outcome.usage.get("cost_usd") if result.outcome.usage else None
        if cost:
            spent = self.governance.spent
            spent[node.id] = spent.get(node.id, 0.0) + float(cost)
        if result.gates:
            self.batch.gate_results.extend(
                gating.records(self.run.id, node, result.attempt, Phase.AFTER, result.gates, at=now)
            )
        for changed in gating.take_breaker_changes():
            self.batch.breakers.append(_breaker_record(changed, now))
        if agent is None or result.cancelled:
            return
        bad = [g for g in result.gates if g.details.get("quarantine")]
        if bad and agent not in self.governance.quarantined:
            reason = f"{bad[0].gate}: {bad[0].reason}"
            self.governance.quarantined[agent] = reason
            self.batch.quarantines.append(Quarantine(agent, reason, self.run.id, node.id))
        key = f"agent:{agent}"
        state = self.governance.breakers.get(key, breakers.Breaker(key))
        settings = gating.config.breaker
        if result.outcome.failure_class is None:
            updated = breakers.record_success(state, settings)
        else:
            updated = breakers.record_failure(state, settings, now)
        if updated != state:
            self._set_breaker(updated, now)

    def _cancel_waiting(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        if self.desk.waiting:
            for record in self.store.list_approvals(run_id=self.run.id):
                self.batch.approval_decisions.append(
                    ApprovalDecision(
                        record.id, ApprovalState.REJECTED, "agenthq", self.batch.at, "run cancelled"
                    )
                )
            self.desk.waiting.clear()
        for step_id, view in self.views.items():
            if view.state in (
                S.PENDING,
                S.READY,
                S.RETRYING,
                S.WAITING,
                S.LOST,
                S.AWAITING_APPROVAL,
            ):
                self._move(
                    step_id, S.CANCELLED, {"finished_at": self.batch.at, "reason": "run cancelled"}
                )
        self.ready.clear()
        self.timers.clear()
        self.dispatcher.drop_pending()

    def _poll_control(self) -> None:
        control = self.store.get_run_control(self.run.id)
        if not self.cancel_requested and control.cancel_requested:
            self.request_cancel()
        if control.pause_requested != self.paused and not self.cancel_requested:
            self._set_paused(control.pause_requested)

    def _set_paused(self, paused: bool) -> None:
        """Pausing starts nothing new (running steps finish); the run's state says so."""
        self.paused = paused
        if paused and self.run_state in (RunState.RUNNING, RunState.AWAITING_APPROVAL):
            self.batch.runs.append(RunChange(self.run.id, self.run_state, RunState.PAUSED))
            self.run_state = RunState.PAUSED
        elif not paused and self.run_state is RunState.PAUSED:
            self.batch.runs.append(RunChange(self.run.id, RunState.PAUSED, RunState.RUNNING))
            self.run_state = RunState.RUNNING

    def _final_state(self) -> RunState | None:
        if self.unfinished > 0 or self.tasks or self.dispatcher.has_pending:
            return None
        if self.cancel_requested:
            return RunState.CANCELLED
        if any(v.state in (S.FAILED, S.BLOCKED, S.CANCELLED) for v in self.views.values()):
            return RunState.FAILED
        return RunState.SUCCEEDED

    # ---- helpers --------------------------------------------------------------------------

    def _move(
        self,
        step_id: str,
        target: StepState,
        fields: dict[str, Any],
        attempt: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        view = self.views[step_id]
        if target.finished and not view.state.finished:
            self.unfinished -= 1
        self.batch.steps.append(
            StepChange(self.run.id, step_id, view.state, target, fields, attempt, details or {})
        )
        view.state = target

    def _lookup(self, step_id: str) -> tuple[StepState, Mapping[str, Any]]:
        view = self.views[step_id]
        return view.state, view.outputs

    def _commit(self) -> None:
        if self.batch:
            self.store.apply(self.batch)
            if self.observer is not None:
                changes = tuple(
                    (c.step_id, c.to_state, c.fields.get("reason")) for c in self.batch.steps
                )
                self.observer.on_progress(self.progress(changes=changes))
        self.batch = Batch(at=self.clock())

    def progress(
        self,
        state: RunState = RunState.RUNNING,
        changes: tuple[tuple[str, StepState, str | None], ...] = (),
    ) -> Progress:
        counts: dict[str, int] = {}
        for view in self.views.values():
            counts[view.state.value] = counts.get(view.state.value, 0) + 1
        return Progress(self.run.id, counts, tuple(self.tasks), len(self.views), state, changes)

    def _on_finished(self, result: Finished) -> None:
        self.finished_results.append(result)
        self.wake.set()

    async def _sleep(self, seconds: float) -> None:
        if self.finished_results or (self.cancel_requested and not self.tasks):
            return
        self.wake.clear()
        if self.finished_results:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=max(0.0, seconds))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _gate_summary(result: GateResult) -> dict[str, Any]:
    return {
        "gate": result.gate,
        "outcome": result.outcome.value,
        "reason": result.reason,
        "score": result.score,
    }


def _budget_scope(results: list[GateResult]) -> str | None:
    for result in results:
        budget = result.details.get("budget")
        if result.gate == "cost" and isinstance(budget, Mapping):
            return str(budget.get("scope"))
    return None


def _breaker_record(breaker: breakers.Breaker, now: float) -> BreakerRecord:
    return BreakerRecord(
        key=breaker.key,
        state=breaker.phase.value,
        failures=breaker.failures,
        opened_at=breaker.opened_at,
        cooldown_s=breaker.cooldown_s,
        trips=breaker.trips,
        updated_at=now,
    )
