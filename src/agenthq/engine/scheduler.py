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
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agenthq.engine import triggers
from agenthq.engine.dispatch import Dispatcher, Finished
from agenthq.engine.limits import Limits
from agenthq.engine.retry import decide_retry
from agenthq.graph import PlanGraph, StepNode
from agenthq.spec import templating
from agenthq.states import RunState, StepState
from agenthq.store.api import Batch, RunChange, RunRecord, StepChange, StepRecord, Store

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


@dataclass
class SchedulerOptions:
    poll_interval: float = 0.5  # how often to read cancel requests from the store
    heartbeat_interval: float = 5.0
    rng: random.Random = field(default_factory=random.Random)


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
    ) -> None:
        self.store = store
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
        self._prime()
        next_poll = next_heartbeat = now
        while True:
            now = self.clock()
            self.batch.at = now
            self._collect()
            if now >= next_poll:
                next_poll = now + self.options.poll_interval
                self._poll_control()
            if self.cancel_requested:
                self._cancel_waiting()
            else:
                self._promote_due(now)
                self._dispatch(now)
            final = self._final_state()
            if final is not None:
                self.batch.runs.append(
                    RunChange(
                        self.run.id, RunState.RUNNING, final, {"finished_at": now, "owner": None}
                    )
                )
            self._commit()
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

    def _prime(self) -> None:
        """Rebuild the in-memory picture from the rows: counts of unfinished needs, the ready
        queue, retry timers — and decide pending steps whose needs already finished."""
        for node in self.graph.nodes.values():
            view = self.views[node.id]
            view.waiting_on = sum(1 for n in node.needs if not self.views[n].state.finished)
            if view.state is S.READY:
                self.ready.append(node.id)
            elif view.state is S.RETRYING:
                heapq.heappush(self.timers, (view.next_at or 0.0, node.id))
        for node in self.graph.nodes.values():
            view = self.views[node.id]
            if view.state is S.PENDING and view.waiting_on == 0:
                self._decide_readiness(node)

    def _collect(self) -> None:
        self.batch.attempt_updates.extend(self.dispatcher.take_updates())
        results, self.finished_results = self.finished_results, []
        for result in results:
            self.tasks.pop(result.step_id, None)
            node = self.graph.nodes[result.step_id]
            self.limits.release(node)
            self._record_result(node, result)

    def _record_result(self, node: StepNode, result: Finished) -> None:
        view = self.views[node.id]
        now = self.batch.at
        self.batch.attempt_updates.append(self.dispatcher.finished_update(result, now))
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
            self.ready.append(node.id)
            return
        target = S.SKIPPED if decision.verdict is triggers.Verdict.SKIP else S.BLOCKED
        self._move(node.id, target, {"finished_at": self.batch.at, "reason": decision.reason})
        self._propagate(node)

    def _promote_due(self, now: float) -> None:
        while self.timers and self.timers[0][0] <= now:
            _, step_id = heapq.heappop(self.timers)
            if self.views[step_id].state is S.RETRYING:
                self._move(step_id, S.READY, {"next_at": None, "reason": None})
                self.ready.append(step_id)

    def _dispatch(self, now: float) -> None:
        waiting: list[str] = []
        while self.ready and not self.limits.full:
            step_id = self.ready.popleft()
            node = self.graph.nodes[step_id]
            if self.limits.blocker(node) is not None:
                waiting.append(step_id)
                continue
            view = self.views[step_id]
            view.attempts += 1
            self.limits.acquire(node)
            self._move(
                step_id,
                S.RUNNING,
                {"attempts": view.attempts, "started_at": now, "reason": None},
                view.attempts,
            )
            self.dispatcher.prepare(node, view.attempts, self.batch, self._lookup)
        self.ready.extendleft(reversed(waiting))

    def _cancel_waiting(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        for step_id, view in self.views.items():
            if view.state in (S.PENDING, S.READY, S.RETRYING, S.LOST):
                self._move(
                    step_id, S.CANCELLED, {"finished_at": self.batch.at, "reason": "run cancelled"}
                )
        self.ready.clear()
        self.timers.clear()
        self.dispatcher.drop_pending()

    def _poll_control(self) -> None:
        if not self.cancel_requested and self.store.get_run_control(self.run.id).cancel_requested:
            self.request_cancel()

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
