"""`agenthq worker`: runs queued steps for any run, on this machine, through the database.

A worker claims items it has the capabilities for (store.claim_work: SKIP LOCKED on
PostgreSQL), runs each with the same executors as a local run, renews the leases of what it
runs every third of the lease, and reports each result fenced on its claim. A lease it can no
longer renew (it was too slow, the run was cancelled) means someone else owns the attempt
now: the worker kills that process and forgets it. Logs are stored in the database in
chunks, masked with the run's secrets, so they show wherever the worker ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agenthq.engine.remote import report_of
from agenthq.executors.base import Executor, Invocation, Outcome
from agenthq.executors.masking import build_masker
from agenthq.executors.python import PythonExecutor
from agenthq.executors.shell import ShellExecutor, install_fast_child_watcher
from agenthq.executors.spawner import spawning
from agenthq.spec.callables import CallableError, resolve_callable
from agenthq.states import FailureClass
from agenthq.store.api import Claim, Store

Key = tuple[str, str, int]
CHUNK = 64 * 1024


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(
        self,
        store: Store,
        *,
        home: Path,
        capabilities: Sequence[str] = (),
        concurrency: int = 4,
        lease_s: float = 30.0,
        poll_interval: float = 1.0,  # at most; queued work wakes it at once (PostgreSQL)
        name: str | None = None,
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] | None = None,
        spawner: bool = True,
    ) -> None:
        self.store = store
        self.home = home
        self.spawner = spawner  # shell steps may start from the spawner helper process
        self.capabilities = list(capabilities)
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.poll_interval = poll_interval
        self.name = name or worker_name()
        self.clock = clock
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.active: dict[Key, asyncio.Task[None]] = {}
        self.done = 0
        self.rejected = 0
        self._wake = asyncio.Event()

    async def run(self, *, stop: asyncio.Event | None = None, max_items: int | None = None) -> None:
        """Claim and run until `stop` is set (or `max_items` were reported)."""
        install_fast_child_watcher()
        async with spawning(enabled=self.spawner):
            await self._serve(stop or asyncio.Event(), max_items)

    async def _serve(self, stop: asyncio.Event, max_items: int | None) -> None:
        renew_every = max(self.lease_s / 3, 0.05)
        next_renewal = self.clock() + renew_every
        try:
            while not stop.is_set():
                if max_items is not None and self.done + self.rejected >= max_items:
                    break
                free = self.concurrency - len(self.active)
                if free > 0:
                    claims = await asyncio.to_thread(
                        self.store.claim_work,
                        self.name,
                        self.capabilities,
                        free,
                        self.lease_s,
                        self.clock(),
                    )
                    for claim in claims:
                        key = (claim.run_id, claim.step_id, claim.number)
                        self.active[key] = asyncio.create_task(self._do(claim))
                if self.clock() >= next_renewal:
                    next_renewal = self.clock() + renew_every
                    await self._renew()
                if self._wake.is_set():
                    self._wake.clear()  # a slot freed while we worked: claim again now
                elif len(self.active) < self.concurrency:
                    await self._idle()  # the queue had less than we could take
                else:
                    with contextlib.suppress(TimeoutError):  # full: until a slot frees
                        await asyncio.wait_for(self._wake.wait(), renew_every)
        finally:
            for task in self.active.values():
                task.cancel()
            for task in list(self.active.values()):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _idle(self) -> None:
        """Until work is queued (a NOTIFY), a slot frees up, or the poll interval passed."""
        signal = asyncio.ensure_future(
            asyncio.to_thread(
                self.store.wait_for_signal, "work", min(self.poll_interval, self.lease_s / 3)
            )
        )
        freed = asyncio.ensure_future(self._wake.wait())
        await asyncio.wait({signal, freed}, return_when=asyncio.FIRST_COMPLETED)
        freed.cancel()
        if not signal.done():
            # The thread ends on its own time-out; do not leave its result unobserved.
            signal.add_done_callback(lambda task: task.exception())

    async def _renew(self) -> None:
        keys = list(self.active)
        held = await asyncio.to_thread(
            self.store.renew_work, self.name, keys, self.clock() + self.lease_s
        )
        for key in keys:
            if key not in held and key in self.active:
                self.log(f"worker {self.name}: lost {key[0]} {key[1]}#{key[2]}; stopping it")
                self.active.pop(key).cancel()

    async def _do(self, claim: Claim) -> None:
        key = (claim.run_id, claim.step_id, claim.number)
        try:
            try:
                invocation, executor = self._invocation(claim)
            except CallableError as exc:
                outcome = Outcome(
                    FailureClass.INFRASTRUCTURE, error=f"this worker cannot import it: {exc}"
                )
            else:
                try:
                    outcome = await executor.run(invocation, lambda pid, pgid, start: None)
                except Exception as exc:  # an executor bug still gets the attempt an end
                    outcome = Outcome(
                        FailureClass.INFRASTRUCTURE,
                        error=f"worker error: {type(exc).__name__}: {exc}",
                    )
                await asyncio.to_thread(self._store_logs, key, invocation, claim.payload)
            accepted = await asyncio.to_thread(
                self.store.finish_work, self.name, key, report_of(outcome), self.clock()
            )
            if accepted:
                self.done += 1
            else:
                self.rejected += 1
                self.log(
                    f"worker {self.name}: result of {key[1]}#{key[2]} refused: "
                    "its lease expired and the attempt is someone else's now"
                )
        finally:
            self.active.pop(key, None)
            self._wake.set()

    def _invocation(self, claim: Claim) -> tuple[Invocation, Executor]:
        """What to run, built from the payload; CallableError for a `uses` not importable
        here (the plan's directory must exist on this machine too)."""
        p: Mapping[str, Any] = claim.payload
        logs = self.home / "worker-logs" / claim.run_id
        logs.mkdir(parents=True, exist_ok=True)
        stem = f"{claim.step_id.replace('/', '_')}.{claim.number}"
        secrets = [str(v) for v in p.get("secrets", [])]
        common: dict[str, Any] = {
            "run_id": claim.run_id,
            "step_id": claim.step_id,
            "attempt": claim.number,
            "workspace": Path(p["workspace"]),
            "cwd": Path(p["cwd"]),
            "stdout_path": logs / f"{stem}.out",
            "stderr_path": logs / f"{stem}.err",
            "env": {str(k): str(v) for k, v in p.get("env", {}).items()},
            "timeout": p.get("timeout"),
            "kill_grace": float(p.get("kill_grace") or 5.0),
            "mask": build_masker(secrets),
        }
        if p.get("kind") == "shell":
            return Invocation(command=str(p["command"]), **common), ShellExecutor()
        target = resolve_callable(str(p.get("uses")), p.get("plan_dir"))
        arguments = dict(p.get("arguments") or {})
        return Invocation(target=target, arguments=arguments, **common), PythonExecutor()

    def _store_logs(self, key: Key, invocation: Invocation, payload: Mapping[str, Any]) -> None:
        mask = build_masker([str(v) for v in payload.get("secrets", [])])
        for stream, path in (
            ("stdout", invocation.stdout_path),
            ("stderr", invocation.stderr_path),
        ):
            if not path.exists():
                continue
            text = mask(path.read_text(encoding="utf-8", errors="replace"))
            for seq, start in enumerate(range(0, len(text), CHUNK)):
                self.store.append_log(key, stream, seq, text[start : start + CHUNK])
