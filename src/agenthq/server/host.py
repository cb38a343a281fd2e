"""The run host inside `agenthq serve`: executes runs that were queued for it.

`agenthq serve` runs the host in a child process (server/host_process.py): a scheduler's
ticks are CPU work, and in the API's process they would delay every request and every event.

`agenthq run --detach`, the API's "start a run" and "resume" mark a run's owner as QUEUED;
the host claims such runs (the store's compare-and-set decides, so two servers never run the
same one) and drives each in its own task on the server's event loop. A run waiting for a
person simply waits here — an approval from the dashboard, the CLI or a signed link continues
it within the scheduler's poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from agenthq.engine.ownership import QUEUED
from agenthq.engine.runner import Runner, RunOptions
from agenthq.errors import AgentHQError, ConfigError
from agenthq.states import RunState
from agenthq.store.api import RunRecord

log = logging.getLogger("agenthq.server")


def workers_enabled(tables: Mapping[str, Any], config_file: object) -> bool:
    """`[workers] enabled = true` in agenthq.toml: runs the server executes send their steps
    to `agenthq worker` processes. ConfigError for anything but a table with a boolean."""
    table = tables.get("workers", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{config_file}: [workers] must be a table")
    unknown = sorted(set(table) - {"enabled"})
    if unknown:
        raise ConfigError(f"{config_file}: [workers] has unknown key {unknown[0]!r}; use enabled")
    enabled = table.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{config_file}: [workers] enabled must be true or false")
    return enabled


class RunHost:
    def __init__(
        self, runner: Runner, *, poll_interval: float = 0.25, on_workers: bool = False
    ) -> None:
        self.runner = runner
        self.poll_interval = poll_interval
        self.on_workers = on_workers  # `[workers] enabled`: steps go to `agenthq worker`s
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def queue(self, run_id: str) -> None:
        """Hand a run to the host: it starts it on its next poll."""
        run = self.runner.store.get_run(run_id)
        self.runner.store.claim_run(run_id, QUEUED, steal_from=run.owner)

    def adopt_orphans(self) -> list[str]:
        """At start: queue runs whose executing process died (a crash, a reboot, the last
        server stopping) and runs a `--no-wait` command left waiting for a person."""
        from agenthq.engine.ownership import owner_alive

        store = self.runner.store
        now = self.runner.clock()
        adopted = []
        for state in (RunState.RUNNING, RunState.AWAITING_APPROVAL, RunState.PAUSED):
            for record in store.list_runs(state=state, limit=200):
                dead = record.owner not in (None, QUEUED) and not owner_alive(
                    record.owner, record.heartbeat_at, now
                )
                waiting = record.owner is None and state is RunState.AWAITING_APPROVAL
                if dead or waiting:
                    with contextlib.suppress(AgentHQError):
                        store.claim_run(record.id, QUEUED, steal_from=record.owner)
                        adopted.append(record.id)
        return adopted

    async def run(self) -> None:
        while True:
            self._reap()
            for record in self._queued():
                if record.id not in self.tasks:
                    self.tasks[record.id] = asyncio.create_task(
                        self._execute(record.id), name=f"run:{record.id}"
                    )
            await asyncio.sleep(self.poll_interval)

    async def stop(self) -> None:
        """Stop driving runs. They stay unfinished in the store, and the next `serve` adopts
        and resumes them (interrupted attempts become `lost` and retry under their policy)."""
        for task in self.tasks.values():
            task.cancel()
        for task in list(self.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _queued(self) -> list[RunRecord]:
        store = self.runner.store
        found = []
        for state in (RunState.PENDING, RunState.RUNNING, RunState.AWAITING_APPROVAL):
            found += [r for r in store.list_runs(state=state, limit=200) if r.owner == QUEUED]
        return found

    async def _execute(self, run_id: str) -> None:
        try:
            self.runner.store.claim_run(run_id, self.runner.owner, steal_from=QUEUED)
            await self.runner.execute_async(run_id, options=RunOptions(on_workers=self.on_workers))
        except asyncio.CancelledError:
            # The server is stopping: hand the run back to the queue, so the next `serve`
            # continues it (its interrupted attempts become `lost` and retry by policy).
            with contextlib.suppress(AgentHQError):
                if not self.runner.store.get_run(run_id).state.finished:
                    self.runner.store.claim_run(run_id, QUEUED)
            raise
        except AgentHQError as exc:
            log.warning("run %s: %s", run_id, exc)

    def _reap(self) -> None:
        for run_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[run_id]
