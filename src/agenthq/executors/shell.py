"""Running a step's `run:` command as a process group of its own.

Each attempt is `bash -c COMMAND` (or `/bin/sh -c` where bash is missing) in a new session, so
the step and everything it starts can be stopped together with one `killpg`. Spawning is the
hot path of shell-heavy plans, so three shortcuts keep it close to a bare `fork+exec`:

- a command that is one plain program with plain arguments (`/bin/true`, `make -j4 test`) is
  executed directly, as bash itself would after parsing it; anything with quoting, expansion,
  redirection, operators or a builtin goes through the shell;
- with no secrets to mask, the child writes straight into its log files; only when there is
  something to mask does its output pass through this process, a chunk of lines at a time;
- inside a run, steps with nothing to mask are started by the spawner helper process on the
  other core (`executors/spawner.py`); this process only sends the request, records the pid,
  and stops the group itself when it must.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import shutil
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVarTuple, Unpack

from agenthq.executors.base import Invocation, Masker, Outcome, StartedCallback, no_mask
from agenthq.executors.procs import pidfds_work, process_start_ticks, stop_group
from agenthq.executors.spawner import Spawner, SpawnerGoneError, SpawnError, current_spawner
from agenthq.states import FailureClass

OUTPUTS_MAX_BYTES = 1024 * 1024  # a bigger stdout is a log, not a result
LINE_CAP = 64 * 1024  # longest unbroken line held in memory while masking
_OVERLAP = 4096  # kept back when a long line is cut, so a secret across the cut is caught
_DRAIN_SECONDS = 1.0  # after the shell exits, how long to keep copying from its pipes
_REAP_SECONDS = 5.0
_TAIL_BYTES = 4096
_TAIL_CHARS = 300
_LOGS_FAILED = "could not open the step's log files"
_SPAWN_FAILED = "could not start the step"

_PLAIN = r"[A-Za-z0-9_./:,+@%=-]+"
_PLAIN_COMMAND = re.compile(rf"[A-Za-z0-9_./:,+@-]+(?: +{_PLAIN})*")
_USAGE_LINE = re.compile(rb'^\{\s*"agenthq"\s*:.*\}\s*$', re.MULTILINE)
# Words bash handles itself; run as a program, they would behave differently (or not at all).
_BASH_WORDS = (
    "alias bg bind break builtin caller case cd command compgen complete compopt continue "
    "coproc declare dirs disown do done echo elif else enable esac eval exec exit export false "
    "fc fg fi for function getopts hash help history if in jobs kill let local logout mapfile "
    "popd printf pushd pwd read readarray readonly return select set shift shopt source "
    "suspend test then time times trap true type typeset ulimit umask unalias unset until "
    "wait while . : [ [["
)
_SHELL_WORDS = frozenset(_BASH_WORDS.split())
_Ts = TypeVarTuple("_Ts")


class _PidfdChildWatcher(asyncio.AbstractChildWatcher):
    """Python 3.12's PidfdChildWatcher, for 3.11.

    3.11's own one is bound to the loop it was attached to: installed from inside a running
    loop it is never attached, and with loops in several threads it would register a child
    on the wrong one. This one, like 3.12's, uses whichever loop spawns the child.
    """

    def add_child_handler(
        self, pid: int, callback: Callable[[int, int, Unpack[_Ts]], object], *args: *_Ts
    ) -> None:
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(pid)
        loop.add_reader(pidfd, self._reap, loop, pid, pidfd, callback, args)

    @staticmethod
    def _reap(
        loop: asyncio.AbstractEventLoop,
        pid: int,
        pidfd: int,
        callback: Callable[..., object],
        args: tuple[object, ...],
    ) -> None:
        loop.remove_reader(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # reaped by someone else: the status is lost
            returncode = 255
        else:
            returncode = os.waitstatus_to_exitcode(status)
        os.close(pidfd)
        callback(pid, returncode, *args)

    def remove_child_handler(self, pid: int) -> bool:
        return True  # asyncio never calls it; the reader goes when the child exits

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        pass

    def close(self) -> None:
        pass

    def is_active(self) -> bool:
        return True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pass


def install_fast_child_watcher() -> None:
    """Learn of exiting children through pidfds (Python 3.11 on Linux ≥ 5.3).

    3.11's default watcher starts a thread per child; a pidfd in the event loop spawns about
    40% faster. 3.12 does this by itself. Safe to call any number of times, in or out of a
    running loop.
    """
    if sys.version_info >= (3, 12) or not pidfds_work():
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if not isinstance(asyncio.get_child_watcher(), _PidfdChildWatcher):
            asyncio.set_child_watcher(_PidfdChildWatcher())


class ShellExecutor:
    """Runs `invocation.command`; see `executors.base` for the contract it keeps."""

    def __init__(self, shell: str | None = None) -> None:
        self.shell = shell or shutil.which("bash") or "/bin/sh"

    async def run(self, invocation: Invocation, on_started: StartedCallback) -> Outcome:
        command = invocation.command
        if command is None:
            return Outcome(FailureClass.INFRASTRUCTURE, error="shell step without a command")
        spawner = current_spawner() if invocation.mask is no_mask else None
        if spawner is not None:
            outcome = await self._run_spawned(spawner, invocation, command, on_started)
            if outcome is not None:
                return outcome  # None: the helper stopped before it started this step
        try:
            logs = _Logs.open(invocation)
        except OSError as exc:
            return _infrastructure(invocation, f"{_LOGS_FAILED}: {exc}")
        try:
            return await self._run(invocation, command, on_started, logs)
        finally:
            logs.close()

    async def _run(
        self, inv: Invocation, command: str, on_started: StartedCallback, logs: _Logs
    ) -> Outcome:
        try:
            process = await self._spawn(inv, command, logs)
        except OSError as exc:
            return _infrastructure(inv, f"{_SPAWN_FAILED}: {exc}")
        finally:
            logs.close_child_ends()
        try:
            # A new session's leader leads its own group.
            on_started(process.pid, process.pid, process_start_ticks(process.pid))
            await logs.start_copying(inv.mask)
            returncode = await _wait(process, inv.timeout)
            if returncode is None:
                await _stop(process, inv.kill_grace)
                await logs.drain()
                return _timed_out(inv)
            await logs.drain()
        except BaseException:  # cancelled (or a failing callback): never leave the group behind
            await _stop(process, inv.kill_grace)
            raise
        return _ended(returncode, inv, logs.written)

    async def _spawn(
        self, inv: Invocation, command: str, logs: _Logs
    ) -> asyncio.subprocess.Process:
        env = _step_env(inv)
        argv = _direct_argv(command, env)
        if argv is not None:
            try:
                return await _exec(argv, inv.cwd, {**env, "PWD": str(inv.cwd)}, logs)
            except OSError:
                if not inv.cwd.is_dir():
                    raise
                # Not found, not executable, a script without `#!`: let the shell decide and
                # report it the way users know (exit 127 "command not found", …).
        return await _exec([self.shell, "-c", command], inv.cwd, env, logs)

    async def _run_spawned(
        self, spawner: Spawner, inv: Invocation, command: str, on_started: StartedCallback
    ) -> Outcome | None:
        """`_run` with the helper process doing the spawning (see executors/spawner.py);
        None when the helper stopped before it started the step, which then starts here."""
        env = _step_env(inv)
        shell = [self.shell, "-c", command]
        argv = _direct_argv(command, env)
        if argv is not None:  # the helper falls back to `shell` as `_spawn` does
            env["PWD"] = str(inv.cwd)
        _create_logs(inv)
        try:
            request = spawner.spawn(
                argv or shell,
                shell=shell if argv else None,
                cwd=inv.cwd,
                env=env,
                stdout=inv.stdout_path,
                stderr=inv.stderr_path,
            )
            spawned = await asyncio.shield(request.started)
        except SpawnerGoneError:
            return None
        except SpawnError as exc:
            failed = _LOGS_FAILED if exc.stage == "logs" else _SPAWN_FAILED
            return _infrastructure(inv, f"{failed}: {exc.message}")
        except asyncio.CancelledError:  # it may start all the same: then stop it
            with contextlib.suppress(SpawnError, SpawnerGoneError):
                spawned = await request.started
                await stop_group(spawned.pid, inv.kill_grace)
            raise
        written = _Written(
            inv.stdout_path, inv.stderr_path, spawned.stdout_start, spawned.stderr_start
        )
        try:
            on_started(spawned.pid, spawned.pid, spawned.start_ticks)
            async with asyncio.timeout(inv.timeout):
                returncode = await asyncio.shield(request.exited)
        except TimeoutError:
            await stop_group(spawned.pid, inv.kill_grace)
            return _timed_out(inv)
        except BaseException:
            await stop_group(spawned.pid, inv.kill_grace)
            raise
        if returncode is None:
            return Outcome(
                FailureClass.LOST,
                error="its exit status was lost: agenthq's process spawner stopped unexpectedly",
            )
        return _ended(returncode, inv, written)


def _step_env(inv: Invocation) -> dict[str, str]:
    env = dict(inv.env)
    env["AGENTHQ_RUN_ID"] = inv.run_id
    env["AGENTHQ_STEP_ID"] = inv.step_id
    env["AGENTHQ_ATTEMPT"] = str(inv.attempt)
    return env


async def _exec(
    argv: list[str], cwd: Path, env: dict[str, str], logs: _Logs
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=_devnull(),
        stdout=logs.child_stdout,
        stderr=logs.child_stderr,
        start_new_session=True,
    )


_DEVNULL: int | None = None


def _devnull() -> int:
    """One /dev/null for every step's stdin: opening it per spawn was a measurable share of
    W4's per-step cost. Opened close-on-exec; the child gets its own copy as fd 0."""
    global _DEVNULL
    if _DEVNULL is None:
        _DEVNULL = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _DEVNULL


def _direct_argv(command: str, env: dict[str, str]) -> list[str] | None:
    """The argv bash would exec for a command with nothing for a shell to do, else None."""
    argv = _plain_argv(command)
    if argv is None:
        return None
    # Startup files and exported functions could change what bash would run. (Keys hold no
    # NUL, so the joined form finds exactly the keys that start with BASH_FUNC_, at C speed:
    # a loop over a user's environment for every step was a visible share of W4.)
    if "BASH_ENV" in env or "ENV" in env or "\0BASH_FUNC_" in "\0" + "\0".join(env):
        return None
    return list(argv)


@functools.lru_cache(maxsize=1024)
def _plain_argv(command: str) -> tuple[str, ...] | None:
    """The words of a command bash would only exec, else None; a fan-out runs one command
    many times, so each is looked at once."""
    text = command.strip()
    if not _PLAIN_COMMAND.fullmatch(text):
        return None
    argv = tuple(text.split())
    if "/" not in argv[0] and argv[0] in _SHELL_WORDS:
        return None
    return argv


async def _wait(process: asyncio.subprocess.Process, timeout: float | None) -> int | None:
    """The exit status, or None when `timeout` ran out first."""
    if timeout is None:
        return await process.wait()
    try:
        async with asyncio.timeout(timeout):
            return await process.wait()
    except TimeoutError:
        return None


async def _stop(process: asyncio.subprocess.Process, grace: float) -> None:
    """Stop the whole group, then reap the leader so it does not linger as a zombie."""
    await stop_group(process.pid, grace)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_REAP_SECONDS):
            await process.wait()


def _timed_out(inv: Invocation) -> Outcome:
    return Outcome(
        FailureClass.TIMEOUT, error=f"timed out after {inv.timeout:g}s (process group killed)"
    )


def _ended(returncode: int, inv: Invocation, logs: _Written) -> Outcome:
    # Each log's size, once: they tell the result, and whether the after-gates need to read
    # the logs at all (asking them again cost four more system calls a step).
    out_size, err_size = _size(logs.stdout_path), _size(logs.stderr_path)
    wrote = out_size > logs.stdout_start or err_size > logs.stderr_start
    if returncode == 0:
        outputs, usage = _parse_stdout(logs.new_stdout(out_size))
        return Outcome(None, exit_code=0, outputs=outputs, usage=usage, wrote_logs=wrote)
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        error = f"killed by {name} (exit code {returncode})"
    else:
        error = f"exit code {returncode}"
    tail = logs.stderr_tail(err_size)
    if tail:
        error = f"{error}: {tail}"
    _, usage = _parse_stdout(logs.new_stdout(out_size))  # a failed attempt's spending counts
    return Outcome(
        FailureClass.EXECUTION,
        exit_code=returncode,
        error=inv.mask(error),
        usage=usage,
        wrote_logs=wrote,
    )


def _infrastructure(inv: Invocation, message: str) -> Outcome:
    return Outcome(FailureClass.INFRASTRUCTURE, error=inv.mask(message))


def _parse_stdout(data: bytes) -> tuple[dict[str, Any], dict[str, float]]:
    """Outputs from a stdout that is one JSON object; usage from `{"agenthq": {…}}` lines."""
    usage: dict[str, float] = {}
    if b'"agenthq"' in data:
        for match in list(_USAGE_LINE.finditer(data)):
            if _add_usage(match.group(), usage):
                data = data.replace(match.group(), b"", 1)
    text = data.strip()
    if not (text.startswith(b"{") and text.endswith(b"}")):
        return {}, usage
    try:
        value = json.loads(text)
    except ValueError:
        return {}, usage
    return (value if isinstance(value, dict) else {}), usage


def _add_usage(line: bytes, usage: dict[str, float]) -> bool:
    try:
        value = json.loads(line)
    except ValueError:
        return False
    if not isinstance(value, dict) or set(value) != {"agenthq"}:
        return False
    report = value["agenthq"]
    if not isinstance(report, dict):
        return False
    for key, number in report.items():
        if isinstance(number, int | float) and not isinstance(number, bool):
            usage[key] = usage.get(key, 0.0) + float(number)
    return True


def _open_log(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, 0o644)


def _create_logs(inv: Invocation) -> None:
    """Create a step's log files here, before the helper is asked to start it: the helper
    starts steps one after another, so the time it spent creating files delayed every step
    queued behind it, while this process usually has time to spare. Creating a file costs
    10 µs to 0.3 ms on this project's test VM (ext4 without a journal passes over recently
    freed inodes one by one); W4's run phase fell by about a tenth. Best effort: what fails
    here fails again in the helper, which reports it as before."""
    for path in (inv.stdout_path, inv.stderr_path):
        with contextlib.suppress(OSError):
            os.close(_open_log(path))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass(frozen=True)
class _Written:
    """What one attempt appended to its log files: from these offsets to their end."""

    stdout_path: Path
    stderr_path: Path
    stdout_start: int
    stderr_start: int

    def new_stdout(self, size_now: int) -> bytes:
        """What this attempt wrote to stdout (`size_now` long now), when it is small enough
        to be a result."""
        size = size_now - self.stdout_start
        if size <= 0 or size > OUTPUTS_MAX_BYTES:
            return b""
        try:
            with open(self.stdout_path, "rb") as stdout:
                stdout.seek(self.stdout_start)
                return stdout.read(OUTPUTS_MAX_BYTES)
        except OSError:  # removed or replaced meanwhile: then it holds no result of ours
            return b""

    def stderr_tail(self, size: int) -> str:
        """The last non-empty line this attempt wrote to stderr (`size` long now), shortened."""
        start = max(self.stderr_start, size - _TAIL_BYTES)
        if size <= start:
            return ""
        try:
            with open(self.stderr_path, "rb") as stderr:
                stderr.seek(start)
                data = stderr.read(size - start)
        except OSError:
            return ""
        lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
        last = next((line for line in reversed(lines) if line), "")
        return last if len(last) <= _TAIL_CHARS else last[: _TAIL_CHARS - 1] + "…"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass
class _Logs:
    """The attempt's two log files and, when masking, the pipes that feed them."""

    stdout_path: Path
    stderr_path: Path
    stdout_fd: int
    stderr_fd: int
    stdout_start: int
    stderr_start: int
    pipes: list[tuple[int, int]] = field(default_factory=list)  # (read end, write end)
    copies: list[_MaskedCopy] = field(default_factory=list)

    @classmethod
    def open(cls, inv: Invocation) -> _Logs:
        out_fd = _open_log(inv.stdout_path)
        logs = cls(inv.stdout_path, inv.stderr_path, out_fd, -1, os.fstat(out_fd).st_size, 0)
        try:
            logs.stderr_fd = _open_log(inv.stderr_path)
            logs.stderr_start = os.fstat(logs.stderr_fd).st_size
            if inv.mask is not no_mask:
                logs.pipes.append(os.pipe())
                logs.pipes.append(os.pipe())
        except OSError:
            logs.close()
            raise
        return logs

    @property
    def written(self) -> _Written:
        return _Written(self.stdout_path, self.stderr_path, self.stdout_start, self.stderr_start)

    @property
    def child_stdout(self) -> int:
        return self.pipes[0][1] if self.pipes else self.stdout_fd

    @property
    def child_stderr(self) -> int:
        return self.pipes[1][1] if self.pipes else self.stderr_fd

    def close_child_ends(self) -> None:
        """Our copies of the pipes' write ends: while they are open no reader sees EOF."""
        for index, (read_end, write_end) in enumerate(self.pipes):
            if write_end >= 0:
                os.close(write_end)
                self.pipes[index] = (read_end, -1)

    async def start_copying(self, mask: Masker) -> None:
        loop = asyncio.get_running_loop()
        for index, target in enumerate((self.stdout_fd, self.stderr_fd)[: len(self.pipes)]):
            read_end = self.pipes[index][0]
            self.pipes[index] = (-1, -1)
            copy = _MaskedCopy(target, mask, loop.create_future())
            self.copies.append(copy)
            await copy.connect(loop, read_end)

    async def drain(self) -> None:
        """Wait for the pipes' EOF, but not for a background process that keeps them open."""
        pending = [copy.closed for copy in self.copies if not copy.closed.done()]
        if pending:
            await asyncio.wait(pending, timeout=_DRAIN_SECONDS)

    def close(self) -> None:
        for copy in self.copies:
            copy.close()
        self.close_child_ends()
        for read_end, _ in self.pipes:
            if read_end >= 0:
                os.close(read_end)
        self.pipes = []
        for fd in (self.stdout_fd, self.stderr_fd):
            if fd >= 0:
                os.close(fd)
        self.stdout_fd = self.stderr_fd = -1


class _MaskedCopy(asyncio.Protocol):
    """Copies one pipe into one log file through the mask, whole lines at a time."""

    def __init__(self, fd: int, mask: Masker, closed: asyncio.Future[None]) -> None:
        self.fd = fd
        self.mask = mask
        self.closed = closed
        self.pending = bytearray()
        self.transport: asyncio.BaseTransport | None = None

    async def connect(self, loop: asyncio.AbstractEventLoop, read_end: int) -> None:
        pipe = os.fdopen(read_end, "rb", buffering=0)
        try:
            await loop.connect_read_pipe(lambda: self, pipe)
        except BaseException:
            pipe.close()
            raise

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.pending += data
        end = self.pending.rfind(b"\n")
        if end >= 0:
            self._emit(bytes(self.pending[: end + 1]))
            del self.pending[: end + 1]
        while len(self.pending) > LINE_CAP:
            self._emit_part_of_long_line()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending:
            self._emit(bytes(self.pending))
            self.pending.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.connection_lost(None)  # flush now: the log file closes right after
        self.fd = -1

    def _emit_part_of_long_line(self) -> None:
        """Write most of an over-long line, cutting where no secret straddles the cut."""
        text = self.pending.decode("utf-8", "surrogateescape")
        whole = self.mask(text)
        cut = len(text) - _OVERLAP
        for _ in range(8):
            if cut <= 0:
                break
            if self.mask(text[:cut]) + self.mask(text[cut:]) == whole:
                break
            cut -= _OVERLAP // 2 + 1
        else:
            cut = 0
        if cut <= 0:  # secrets everywhere: give up the overlap rather than the memory bound
            cut = len(text)
        head = text[:cut].encode("utf-8", "surrogateescape")
        self._emit(head)
        del self.pending[: len(head)]

    def _emit(self, data: bytes) -> None:
        if self.fd < 0:
            return
        text = self.mask(data.decode("utf-8", "surrogateescape"))
        with contextlib.suppress(OSError):  # a full disk must not kill the step via SIGPIPE
            _write_all(self.fd, text.encode("utf-8", "surrogateescape"))
