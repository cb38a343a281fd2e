"""Identifying processes across restarts, and stopping whole process groups.

A pid alone does not name a process: after a crash the kernel may hand the same number to
something unrelated. The pair (pid, start time in clock ticks since boot) does, so the engine
records both and only ever signals a process whose pair still matches.

Steps run in their own process group (the leader's pid is the group id), so stopping a step
means stopping the group: the shell, and everything it started that did not leave the group.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

_STAT_START_TIME = 19  # field 22 of /proc/PID/stat, counted after the `(comm)` field
_STAT_PGRP = 2  # field 5
_POLL_FIRST = 0.01
_POLL_MAX = 0.1
_AFTER_KILL = 1.0  # SIGKILL cannot be refused; only a process stuck in the kernel lasts


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after `comm`, which may itself hold spaces and `)`."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return None
    end_of_comm = data.rfind(b")")
    if end_of_comm < 0:
        return None
    return data[end_of_comm + 1 :].split()


_pidfds_work: bool | None = None


def pidfds_work() -> bool:
    """Whether this system hands out pidfds (Linux ≥ 5.3; not every sandbox allows them)."""
    global _pidfds_work
    if _pidfds_work is None:
        try:
            os.close(os.pidfd_open(os.getpid()))
            _pidfds_work = True
        except (AttributeError, OSError):
            _pidfds_work = False
    return _pidfds_work


def process_start_ticks(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot; None when it does not exist (or no /proc)."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) <= _STAT_START_TIME:
        return None
    try:
        return int(fields[_STAT_START_TIME])
    except ValueError:
        return None


def is_same_process(pid: int, start_ticks: int) -> bool:
    """True when `pid` is still the process that started at `start_ticks` and has not exited.

    A zombie has exited: it counts as gone, so a crashed runner that nobody reaped does not
    keep its run locked forever.
    """
    fields = _stat_fields(pid)
    if fields is None or len(fields) <= _STAT_START_TIME:
        return False
    if fields[0] in (b"Z", b"X", b"x"):
        return False
    try:
        return int(fields[_STAT_START_TIME]) == start_ticks
    except ValueError:
        return False


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when it is gone or not ours to signal."""
    if pgid <= 1:  # 0 and 1 would signal our own group or everything: never meant here
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def group_alive(pgid: int) -> bool:
    """True while the group has a member that has not exited.

    Zombies are ignored: a grandchild reparented to an init that never reaps would otherwise
    make every stop wait for the whole grace period.
    """
    if not signal_group(pgid, 0):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for name in entries:
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is None or len(fields) <= _STAT_PGRP:
            continue
        if fields[_STAT_PGRP] == str(pgid).encode() and fields[0] not in (b"Z", b"X", b"x"):
            return True
    return False


async def stop_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, give it `grace` seconds to exit, then SIGKILL what is left, and
    return once it is gone (SIGKILL takes effect a moment after it is sent).

    SIGKILL is sent even when this coroutine is itself cancelled during the grace period, so
    a second cancellation never leaves the group running.
    """
    signal_group(pgid, signal.SIGTERM)
    try:
        await _until_gone(pgid, grace)
    finally:
        if group_alive(pgid):
            signal_group(pgid, signal.SIGKILL)
    await _until_gone(pgid, _AFTER_KILL)


async def _until_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + max(timeout, 0.0)
    pause = _POLL_FIRST
    while group_alive(pgid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 2, _POLL_MAX)


def kill_group(pgid: int, grace: float) -> None:
    """Blocking twin of `stop_group`, for code that runs outside an event loop."""
    signal_group(pgid, signal.SIGTERM)
    _until_gone_blocking(pgid, grace)
    if group_alive(pgid):
        signal_group(pgid, signal.SIGKILL)
        _until_gone_blocking(pgid, _AFTER_KILL)


def _until_gone_blocking(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + max(timeout, 0.0)
    pause = _POLL_FIRST
    while group_alive(pgid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _POLL_MAX)
