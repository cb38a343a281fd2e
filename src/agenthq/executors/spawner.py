"""Starting steps' processes from a helper process, so spawning runs beside the engine.

A shell step costs the engine process a fork and a reap — on two cores that was as much CPU as
all its other work for the step, and `/bin/true` steps ran at half the speed of a bare loop.
Inside `spawning()` (the runner wraps every run in it, starting the helper at once when the
plan has shell or coding-agent steps; otherwise the first such step starts it) a helper
(`spawn_helper.py`, standard library only) does both on the other core; the engine sends it
one line per step and learns the pid and, later, the exit status. The engine creates the
step's two log files just before it sends the line (`shell._create_logs`): the helper starts
steps one after another, and time it spent creating files held up every step queued behind.
Stopping a step is unchanged: the engine signals its process group itself.

The helper is an optimisation, never a requirement. A step spawns in the engine itself, with
the same results, when:
- its output must be masked (the run has secrets): that copying must happen in the engine;
- the helper is still starting (the first few steps of a run), could not start, or stopped;
- the platform has no pidfds (Linux before 5.3, other systems).
If the helper stops while steps run, each of them is watched through a pidfd of its own until
it ends and is recorded as `lost` (its exit status went with the helper), so the retry
policy decides, as for any lost attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agenthq.executors.procs import pidfds_work
from agenthq.records import record

HELPER = Path(__file__).with_name("spawn_helper.py")
_CLOSE_SECONDS = 5.0
_MOST_ENV_CHANGES = 16  # more differences than this: send the whole environment again
_log = logging.getLogger(__name__)


class SpawnError(Exception):
    """The helper could not start the step: its log files (`stage` "logs") or the process."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


class SpawnerGoneError(Exception):
    """The helper is not running (any more): spawn in this process instead."""


@record
class Spawned:
    pid: int  # also its process group: it leads a new session
    start_ticks: int | None  # when it started, read by its parent (see executors/procs.py)
    stdout_start: int  # size of the log files before this attempt appended to them
    stderr_start: int


@dataclass
class Request:
    """One step sent to the helper. `exited` is its exit status (negative: the signal that
    killed it) once it ended, or None once it ended after the helper stopped — its status went
    with the helper. Either way it resolves only when the process is gone."""

    started: asyncio.Future[Spawned]
    exited: asyncio.Future[int | None]


class Spawner:
    """The engine's end of one helper process, bound to the event loop that started it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(HELPER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C is the engine's to handle, not the helper's
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._to_helper = self.process.stdin.fileno()
        self._from_helper = self.process.stdout.fileno()
        os.set_blocking(self._to_helper, False)
        os.set_blocking(self._from_helper, False)
        self.gone = False
        # True once it takes requests, False if it stopped before it could.
        self._up: asyncio.Future[bool] = loop.create_future()
        self.started = 0  # processes it started
        self._closing = False
        self._ids = itertools.count(1)
        self._requests: dict[int, Request] = {}
        self._outbox = bytearray()
        self._unread = b""
        self._kept_env: dict[str, str] | None = None  # what the helper holds (see spawn_helper)
        self._ended: asyncio.Future[None] = loop.create_future()
        loop.add_reader(self._from_helper, self._on_readable)

    @property
    def ready(self) -> bool:
        """It takes requests now."""
        if not self._up.done() and not self.gone:
            # Its "ready" may be waiting in the pipe: a run's setup keeps the event loop busy
            # while the helper boots, and the first steps would otherwise start in-process.
            self._on_readable()
        return self._up.done() and self._up.result() and not self.gone

    async def came_up(self) -> bool:
        """Wait until it takes requests (True) or stopped before it could (False)."""
        return await asyncio.shield(self._up)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        shell: Sequence[str] | None,
        cwd: Path,
        env: Mapping[str, str],
        stdout: Path,
        stderr: Path,
    ) -> Request:
        """Send one step; `shell` is tried when the direct `argv` cannot be executed."""
        if not self.ready:
            raise SpawnerGoneError
        ident = next(self._ids)
        message = {
            "id": ident,
            "argv": list(argv),
            "shell": list(shell) if shell is not None else None,
            "cwd": str(cwd),
            **self._environment(env),
            "out": str(stdout),
            "err": str(stderr),
        }
        request = Request(self.loop.create_future(), self.loop.create_future())
        self._requests[ident] = request
        self._send(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        return request

    def _environment(self, env: Mapping[str, str]) -> dict[str, Any]:
        """The request's environment: its differences from the one the helper keeps, or the
        whole of it, kept from now on."""
        kept = self._kept_env
        if kept is not None:
            changed = {key: value for key, value in env.items() if kept.get(key) != value}
            removed = [key for key in kept if key not in env]
            if len(changed) + len(removed) <= _MOST_ENV_CHANGES:
                return {"set": changed, "unset": removed}
        self._kept_env = dict(env)
        return {"env": self._kept_env}

    async def aclose(self) -> None:
        """End the helper; steps it started and that still run are left running."""
        self._closing = True
        if not self.gone:
            self._close_pipe_to_helper()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_SECONDS):
                    await asyncio.shield(self._ended)
            self._stopped()
        try:
            await asyncio.to_thread(self.process.wait, _CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)
        assert self.process.stdout is not None
        self.process.stdout.close()

    # ---- the pipes ------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if self._outbox:
            self._outbox += data
            return
        try:
            written = os.write(self._to_helper, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self._stopped()
            raise SpawnerGoneError from exc
        if written < len(data):
            self._outbox += data[written:]
            self.loop.add_writer(self._to_helper, self._flush)

    def _flush(self) -> None:
        try:
            written = os.write(self._to_helper, self._outbox)
        except BlockingIOError:
            return
        except OSError:
            self._stopped()
            return
        del self._outbox[:written]
        if not self._outbox:
            self.loop.remove_writer(self._to_helper)

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._from_helper, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._stopped()
            return
        *lines, self._unread = (self._unread + chunk).split(b"\n")
        for line in lines:
            self._on_message(json.loads(line))

    def _on_message(self, message: dict[str, Any]) -> None:
        if "ready" in message:
            _settle(self._up, True)
            return
        if "fatal" in message:
            _log.warning(
                "the process spawner stopped: %s; steps start in-process", message["fatal"]
            )
            return
        request = self._requests.get(message["id"])
        if request is None:
            return
        if "exit" in message:
            del self._requests[message["id"]]
            _settle(request.exited, message["exit"])
        elif "pid" in message:
            self.started += 1
            _settle(
                request.started,
                Spawned(message["pid"], message.get("start"), message["out"], message["err"]),
            )
        else:
            del self._requests[message["id"]]
            _fail(request.started, SpawnError(message["stage"], message["error"]))

    def _close_pipe_to_helper(self) -> None:
        if self._outbox:
            self.loop.remove_writer(self._to_helper)
            self._outbox.clear()
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()

    def _stopped(self) -> None:
        """The helper has gone (or we end it): nothing more will come from it."""
        if self.gone:
            return
        if not self._closing:
            _log.warning("the process spawner stopped unexpectedly; steps start in-process")
        self.gone = True
        _settle(self._up, False)
        self.loop.remove_reader(self._from_helper)
        self._close_pipe_to_helper()
        for request in self._requests.values():
            if request.started.done():  # running: its end is still worth waiting for
                self._settle_when_gone(request.started.result().pid, request.exited)
            else:
                _fail(request.started, SpawnerGoneError())
                _settle(request.exited, None)
        self._requests.clear()
        _settle(self._ended, None)

    def _settle_when_gone(self, pid: int, exited: asyncio.Future[int | None]) -> None:
        """Resolve `exited` with None once the process ends (a pidfd of our own reads as
        ready then; the process is not our child): its status went with the helper."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            _settle(exited, None)
            return

        def ended() -> None:
            self.loop.remove_reader(pidfd)
            os.close(pidfd)
            _settle(exited, None)

        self.loop.add_reader(pidfd, ended)


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[Any], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)


# ---- one helper per event loop, while someone runs steps in it -----------------------------


@dataclass
class _Lease:
    users: int = 0
    spawner: Spawner | None = None  # started by `prestart` or at the first shell step
    failed: bool = False  # it could not start: do not try again for this loop


_leases: dict[asyncio.AbstractEventLoop, _Lease] = {}


@contextlib.asynccontextmanager
async def spawning(*, enabled: bool = True, prestart: bool = False) -> AsyncIterator[None]:
    """Let shell steps started inside this block use the helper; ended with the last user.
    `enabled=False` (the `spawner` setting off) leaves the loop as it is. `prestart` starts the
    helper now rather than at the first shell step: a run that has shell steps enters this
    block before its setup, so the helper boots on the other core meanwhile and fewer of the
    first steps start from the engine itself (each such step held up W4 by 1.5-3 ms)."""
    if not enabled:
        yield
        return
    loop = asyncio.get_running_loop()
    lease = _leases.get(loop)
    if lease is None:
        if not pidfds_work():
            yield
            return
        lease = _leases[loop] = _Lease()
    lease.users += 1
    if prestart:
        _start_helper(lease, loop)
    try:
        yield
    finally:
        lease.users -= 1
        if lease.users == 0:
            del _leases[loop]
            if lease.spawner is not None:
                await lease.spawner.aclose()


def current_spawner() -> Spawner | None:
    """The running loop's helper when it can take a step now; None means spawn in-process."""
    lease = _leases.get(asyncio.get_running_loop())
    if lease is None or lease.failed:
        return None
    spawner = lease.spawner
    if spawner is None:
        _start_helper(lease, asyncio.get_running_loop())
        return None  # it needs a moment to start; this step goes the usual way
    return spawner if spawner.ready else None


def _start_helper(lease: _Lease, loop: asyncio.AbstractEventLoop) -> None:
    if lease.spawner is not None or lease.failed:
        return
    try:
        lease.spawner = Spawner(loop)
    except OSError as exc:
        lease.failed = True
        _log.warning("could not start the process spawner (%s); steps start in-process", exc)


async def ready_spawner() -> Spawner | None:
    """The running loop's helper once it takes requests (starting it if need be), or None when
    it could not start or has stopped. Inside `spawning()`; bound it with a timeout."""
    current_spawner()  # starts it when none runs yet
    lease = _leases.get(asyncio.get_running_loop())
    spawner = lease.spawner if lease is not None else None
    if spawner is None or not await spawner.came_up():
        return None
    return spawner if spawner.ready else None
