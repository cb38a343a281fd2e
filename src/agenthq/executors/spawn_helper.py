"""The spawner: a small program that starts steps' processes for the engine, on another core.

On two cores a shell-heavy plan was bound by the engine process's own CPU: forking and reaping
took as long as all the rest of its work. This program does that part in a process of its
own, so the engine only records the attempt, creates the log files and sends one line. It
imports nothing but the standard library and is started as `python -I -S spawn_helper.py`
(see `executors/spawner.py`, which also describes when it is used).

Protocol, one JSON object per line. The engine sends
    {"id": 7, "argv": [...], "shell": [...] | null, "cwd": "...", "env": {...},
     "out": "path", "err": "path"}
where that whole environment becomes the one later requests describe by their differences
from it — {"set": {...}, "unset": [...]} in place of "env" (a step's environment differs from
the last step's in its ids; encoding and decoding all of it for every step cost both
processes more than the rest of the request). This program answers, in the order things
happen:
    {"ready": 1}                                   once, when it can take requests
    {"id": 7, "pid": 1234, "start": 5678, "out": 0, "err": 0}
                                                   started: its start time (clock ticks since
                                                   boot, null when it cannot be told) and the
                                                   sizes of the logs before it
    {"id": 7, "stage": "logs"|"spawn", "error": "..."}   could not start it
    {"id": 7, "exit": 0}                           it ended (negative: killed by that signal)
`shell` is the `bash -c` form of a command sent as a direct `argv`: tried when the direct
exec fails and `cwd` exists, so a missing program reads "command not found" as users expect.

Each process starts in a new session (its group is its pid; the engine stops it with killpg)
with its output appended straight to its log files. At end of input this program exits at
once and leaves running steps alone, exactly as the engine's own death would: the engine's
recovery finds them by pid and start time.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from typing import Any

_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
_STAT_START_TIME = 19  # field 22 of /proc/PID/stat, counted after the `(comm)` field
_TICK_NS, _TICKS_EXACT = divmod(10**9, os.sysconf("SC_CLK_TCK"))  # /proc's clock tick


def _boot_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def _started_ticks(pid: int, before_ns: int, after_ns: int) -> int | None:
    """When our child `pid` started, given the boot clock just before and just after it was
    spawned. The kernel stamps a new process with that clock and /proc shows the stamp as
    `ns // (10**9 // CLK_TCK)`; when the two readings fall in the same tick, so did the
    stamp, and reading /proc — on the helper's critical path, 0.15 ms a step on W4 while
    the child execs — is not needed. Otherwise (a spawn takes ~0.3 ms of a 10 ms tick, so a
    few per cent of spawns) /proc says."""
    tick = before_ns // _TICK_NS
    if _TICKS_EXACT == 0 and after_ns // _TICK_NS == tick:
        return tick
    return _start_ticks(pid)


def _start_ticks(pid: int) -> int | None:
    """When our child `pid` started (see `executors/procs.py`). Read here, by its parent, it
    cannot be anyone else's: the pid is not reused before we reap it. Read by the engine
    after our reply, most `/bin/true` steps had already been reaped."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    fields = data[data.rfind(b")") + 1 :].split()
    try:
        return int(fields[_STAT_START_TIME])
    except (IndexError, ValueError):
        return None


def _open_log(path: str) -> int:
    try:
        return os.open(path, _LOG_FLAGS, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, _LOG_FLAGS, 0o644)


class Environment:
    """This process's own environment, made each step's just before the step is spawned.

    Given an `env` mapping, Popen encodes all of it for every process — two `os.fsencode`
    calls a variable, a fifth of this helper's time on W4, whose steps' 40 variables differ in
    three. With `env=None` the child takes this process's environment as it stands, so here it
    is kept equal to the step's by changing only the variables in which consecutive steps
    differ. Safe because this process has one thread and reads nothing from its environment
    (`-I` ignored the PYTHON* variables at its start)."""

    def __init__(self) -> None:
        self.kept: dict[str, str] = dict(os.environ)  # the last whole environment sent
        self.changed: set[str] = set()  # variables set now to other than their `kept` value

    def become(self, request: dict[str, Any]) -> None:
        """Make this process's environment the one `request` describes (see the module)."""
        if "env" in request:
            env: dict[str, str] = request["env"]
            for name in [name for name in os.environ if name not in env]:
                del os.environ[name]
            _update(env)
            self.kept, self.changed = env, set()
            return
        wanted, unset = request["set"], request["unset"]
        for name in self.changed - wanted.keys() - set(unset):
            if name in self.kept:
                os.environ[name] = self.kept[name]
            else:
                os.environ.pop(name, None)
        _update(wanted)
        for name in unset:
            os.environ.pop(name, None)
        self.changed = {*wanted, *unset}


def _update(env: dict[str, str]) -> None:
    environ = os.environ
    for name, value in env.items():
        if environ.get(name) != value:
            environ[name] = value


class Helper:
    """The helper's whole state: its steps' processes by pidfd (watched by a bare epoll: the
    selectors module's bookkeeping cost more than the system calls), and the answers not
    yet sent."""

    def __init__(self) -> None:
        self.poll = select.epoll()
        self.stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.children: dict[int, tuple[int, subprocess.Popen[bytes]]] = {}  # by pidfd
        self.replies: list[bytes] = []
        self.unread = b""
        self.environment = Environment()

    def serve(self) -> None:
        self.poll.register(0, select.EPOLLIN)
        self.reply({"ready": 1})
        self.flush()
        while True:
            ready = [fd for fd, _ in self.poll.poll()]
            for fd in ready:  # ends first: the engine is waiting for them to start more
                if fd != 0:
                    self.reap(fd)
            self.flush()
            if 0 in ready:
                if not self.read_requests():
                    return
                self.flush()

    def read_requests(self) -> bool:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return False
        *lines, self.unread = (self.unread + chunk).split(b"\n")
        for line in lines:
            if line.strip():
                self.start(json.loads(line))
        return True

    def start(self, request: dict[str, Any]) -> None:
        ident = request["id"]
        self.environment.become(request)
        try:
            out = _open_log(request["out"])
        except OSError as exc:
            self.reply({"id": ident, "stage": "logs", "error": str(exc)})
            return
        try:
            err = _open_log(request["err"])
        except OSError as exc:
            os.close(out)
            self.reply({"id": ident, "stage": "logs", "error": str(exc)})
            return
        try:
            sizes = os.fstat(out).st_size, os.fstat(err).st_size
            before = _boot_ns()
            try:
                process = self.popen(request["argv"], request, out, err)
            except OSError:
                if request["shell"] is None or not os.path.isdir(request["cwd"]):
                    raise
                process = self.popen(request["shell"], request, out, err)
        except OSError as exc:
            self.reply({"id": ident, "stage": "spawn", "error": str(exc)})
            return
        finally:
            os.close(out)
            os.close(err)
        after = _boot_ns()
        try:
            pidfd = os.pidfd_open(process.pid)  # works until it is reaped, which only we do
        except OSError as exc:  # out of file descriptors: a step we cannot watch must not run
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            self.reply({"id": ident, "stage": "spawn", "error": str(exc)})
            return
        self.children[pidfd] = (ident, process)
        self.poll.register(pidfd, select.EPOLLIN)
        start = _started_ticks(process.pid, before, after)
        self.replies.append(_started(ident, process.pid, start, *sizes))

    def popen(
        self, argv: list[str], request: dict[str, Any], out: int, err: int
    ) -> subprocess.Popen[bytes]:
        """subprocess, not os.posix_spawn: glibc's posix_spawn leaves its two internal signals
        ignored in the child, and a step must start exactly as the engine would start it."""
        return subprocess.Popen(
            argv,
            cwd=request["cwd"],
            env=None,  # this process's own, made the step's by Environment.become
            stdin=self.stdin,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )

    def reap(self, pidfd: int) -> None:
        self.poll.unregister(pidfd)  # before the number can be reused for another child
        os.close(pidfd)
        ident, process = self.children.pop(pidfd)
        self.replies.append(_exited(ident, process.wait()))

    def reply(self, message: dict[str, Any]) -> None:
        self.replies.append(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def flush(self) -> None:
        data = b"".join(self.replies)
        self.replies.clear()
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]


# The two answers every step gets hold only integers: formatted here rather than by json,
# since each microsecond on the helper's path delays every step queued behind it.


def _started(ident: int, pid: int, start: int | None, out: int, err: int) -> bytes:
    shown = b"null" if start is None else b"%d" % start
    return b'{"id":%d,"pid":%d,"start":%s,"out":%d,"err":%d}\n' % (ident, pid, shown, out, err)


def _exited(ident: int, code: int) -> bytes:
    return b'{"id":%d,"exit":%d}\n' % (ident, code)


def main() -> None:
    try:
        Helper().serve()
    except BrokenPipeError:  # the engine is gone: nobody to answer
        pass
    except Exception as exc:  # say why before going; the engine then spawns by itself
        message = json.dumps({"fatal": f"{type(exc).__name__}: {exc}"})
        with contextlib.suppress(OSError):
            os.write(1, message.encode() + b"\n")
    os._exit(0)  # now: running children are not ours to wait for


if __name__ == "__main__":
    main()
