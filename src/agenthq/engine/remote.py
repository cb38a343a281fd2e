"""Running a run's steps on `agenthq worker` processes instead of in its own process.

The scheduler does not change: a step still becomes `running` with an attempt row when it is
dispatched. What differs is the executor. `RemoteExecutor` writes nothing itself — the
dispatcher put a work item (what to run) into the same batch as the attempt — and waits for
the item's outcome, which `RemoteBoard` reads for all of the run's items in one query per
poll. A claimed item whose lease expired (its worker died or lost the database) is settled
`lost` by the board, fenced on the expiry, so the step is retried under its policy with a
new attempt number; the dead worker's late report is then refused by the store.

PostgreSQL is the only coordination: workers need no inbound network, the scheduler never
talks to a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from agenthq.executors.base import Invocation, Outcome, StartedCallback
from agenthq.states import FailureClass
from agenthq.store.api import Store, WorkItem

Key = tuple[str, str, int]


def payload_of(
    invocation: Invocation, uses: str | None, plan_dir: str | None, secrets: list[str]
) -> dict[str, Any]:
    """What a worker needs to run the attempt, as JSON data."""
    common: dict[str, Any] = {
        "cwd": str(invocation.cwd),
        "workspace": str(invocation.workspace),
        "env": dict(invocation.env),
        "timeout": invocation.timeout,
        "kill_grace": invocation.kill_grace,
        "secrets": secrets,  # to mask the logs before they are stored
    }
    if invocation.command is not None:
        return {"kind": "shell", "command": invocation.command, **common}
    return {
        "kind": "python",
        "uses": uses,
        "arguments": dict(invocation.arguments),
        "plan_dir": plan_dir,
        **common,
    }


def work_item(
    invocation: Invocation, needs: list[str], payload: Mapping[str, Any], at: float
) -> WorkItem:
    return WorkItem(
        invocation.run_id, invocation.step_id, invocation.attempt, needs, dict(payload), at
    )


def outcome_of(report: Mapping[str, Any], worker: str | None = None) -> Outcome:
    failure = report.get("failure_class")
    return Outcome(
        FailureClass(failure) if failure else None,
        exit_code=report.get("exit_code"),
        error=report.get("error"),
        outputs=dict(report.get("outputs") or {}),
        usage=dict(report.get("usage") or {}),
        ran_on=f"worker {worker}" if worker else None,
    )


def report_of(outcome: Outcome) -> dict[str, Any]:
    return {
        "failure_class": outcome.failure_class.value if outcome.failure_class else None,
        "exit_code": outcome.exit_code,
        "error": outcome.error,
        "outputs": dict(outcome.outputs),
        "usage": dict(outcome.usage),
    }


LOST = Outcome(FailureClass.LOST, error="the worker's lease expired: it died or lost the database")


class RemoteBoard:
    """The run's outstanding work items, watched with one query per poll."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.25,  # at most; a worker's report wakes it (PostgreSQL)
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.clock = clock
        self.poll_interval = poll_interval
        self.waiting: dict[Key, asyncio.Future[Outcome]] = {}
        self._poller: asyncio.Task[None] | None = None

    def expect(self, key: Key) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name=f"{self.run_id}:workers")
        return future

    async def cancel(self, key: Key) -> None:
        """The run no longer wants it: a queued item is dropped, a claimed one's worker sees
        its lease refused at the next renewal and kills the process."""
        self.waiting.pop(key, None)
        await asyncio.to_thread(self.store.settle_work, key, "cancelled")

    async def _poll(self) -> None:
        while self.waiting:
            now = self.clock()
            due = await asyncio.to_thread(self.store.work_status, self.run_id, due_before=now)
            collected: list[Key] = []
            results: list[tuple[Key, asyncio.Future[Outcome], Outcome]] = []
            for status in due:
                key = (status.run_id, status.step_id, status.number)
                future = self.waiting.get(key)
                if future is None or future.done():
                    continue
                if status.state == "done":
                    collected.append(key)
                    results.append((key, future, outcome_of(status.outcome or {}, status.worker)))
                elif await asyncio.to_thread(
                    self.store.settle_work, key, "lost", expired_before=now
                ):
                    lost = replace(
                        LOST, ran_on=f"worker {status.worker}" if status.worker else None
                    )
                    results.append((key, future, lost))
            await asyncio.to_thread(self.store.collect_work, collected)
            for key, future, outcome in results:
                self.waiting.pop(key, None)
                future.set_result(outcome)
            if self.waiting and not results:
                await asyncio.to_thread(self.store.wait_for_signal, "results", self.poll_interval)


class RemoteExecutor:
    """Waits for a worker to run the attempt the dispatcher queued."""

    def __init__(self, board: RemoteBoard) -> None:
        self.board = board

    async def run(self, invocation: Invocation, on_started: StartedCallback) -> Outcome:
        key = (invocation.run_id, invocation.step_id, invocation.attempt)
        future = self.board.expect(key)
        try:
            return await future
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.board.cancel(key))
            raise
