"""Who is executing a run, and whether that process is still alive.

A run is owned by one process at a time (`host:pid:start`). After a crash the row still names
the dead owner; `resume` may take the run over only when that owner is provably gone: on this
host, its pid is gone or now belongs to a different process (start time differs); on another
host, its heartbeat is older than the lease.
"""

from __future__ import annotations

import os
import socket

from agenthq.executors.procs import is_same_process, process_start_ticks

LEASE_SECONDS = 30.0


def current_owner() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start_ticks(pid) or 0}"


def owner_alive(owner: str | None, heartbeat_at: float | None, now: float) -> bool:
    if not owner:
        return False
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return False
    host, pid_text, start_text = parts
    if host == socket.gethostname():
        try:
            return is_same_process(int(pid_text), int(start_text))
        except ValueError:
            return False
    return heartbeat_at is not None and now - heartbeat_at < LEASE_SECONDS


# The owner of a run handed to `agenthq serve` (run --detach, the API): the server's run host
# claims runs with this owner. It never looks alive, so any process may take such a run over.
QUEUED = "queued"
