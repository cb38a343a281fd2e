"""W4 by the smallest durable loop: what Python and SQLite alone cost, without agenthq.

python benchmarks/durable_floor.py [--repeat 5]

Runs 300 `/bin/true` processes, 8 at a time, as agenthq must: each with a new log file and in a
session of its own, started only after a transaction recorded its attempt, and each tick's
transitions (attempt rows, step states, sha256-chained events) committed in one SQLite
transaction (WAL, `synchronous=NORMAL`). Printed beside the bare loop of baseline.py: when
this loop is close to the bare one and agenthq is not, the gap is agenthq's own per-step work
(gates, telemetry, the executor contract), not the database or the interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from baseline import spawn

COUNT, PARALLEL = 300, 8
SCHEMA = (
    "CREATE TABLE steps (id TEXT PRIMARY KEY, state TEXT, attempts INT, finished REAL)",
    "CREATE TABLE attempts (step TEXT, n INT, started REAL, finished REAL, exit INT)",
    "CREATE TABLE events (seq INTEGER PRIMARY KEY, step TEXT, frm TEXT, too TEXT, at REAL,"
    " hash TEXT)",
)


class Loop:
    def __init__(self, home: Path) -> None:
        self.db = sqlite3.connect(home / "floor.db", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA:
            self.db.execute(statement)
        self.logs = home / "logs"
        self.logs.mkdir()
        self.pending = [f"t{i}" for i in range(COUNT)]
        self.db.executemany(
            "INSERT INTO steps VALUES (?, 'ready', 0, NULL)", ((s,) for s in self.pending)
        )
        self.running: set[str] = set()
        self.ended: list[tuple[str, int]] = []
        self.head = ""

    async def one(self, step: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        log = os.open(self.logs / f"{step}.log", flags, 0o644)
        try:
            process = await asyncio.create_subprocess_exec(
                "/bin/true", stdout=log, stderr=log, start_new_session=True
            )
        finally:
            os.close(log)
        code = await process.wait()  # before looking up self.ended: a tick replaces it
        self.ended.append((step, code))
        self.wake.set()

    def tick(self) -> list[str]:
        now = time.time()
        events: list[tuple[str, str, str]] = []
        self.db.execute("BEGIN IMMEDIATE")
        ended, self.ended = self.ended, []
        for step, code in ended:
            self.running.discard(step)
            self.db.execute(
                "UPDATE attempts SET finished=?, exit=? WHERE step=?", (now, code, step)
            )
            self.db.execute(
                "UPDATE steps SET state='succeeded', finished=? WHERE id=?", (now, step)
            )
            events.append((step, "running", "succeeded"))
        starts: list[str] = []
        while self.pending and len(self.running) < PARALLEL:
            step = self.pending.pop(0)
            self.running.add(step)
            starts.append(step)
            events.append((step, "ready", "running"))
        self.db.executemany(
            "INSERT INTO attempts VALUES (?, 1, ?, NULL, NULL)", ((s, now) for s in starts)
        )
        self.db.executemany(
            "UPDATE steps SET state='running', attempts=1 WHERE id=?", ((s,) for s in starts)
        )
        rows = []
        for step, before, after in events:
            self.head = hashlib.sha256(
                f"{self.head}|{step}|{before}|{after}|{now}".encode()
            ).hexdigest()
            rows.append((step, before, after, now, self.head))
        self.db.executemany(
            "INSERT INTO events (step, frm, too, at, hash) VALUES (?,?,?,?,?)", rows
        )
        self.db.execute("COMMIT")
        return starts

    async def run(self) -> None:
        self.wake = asyncio.Event()  # made in the running loop, which it belongs to
        tasks: set[asyncio.Task[None]] = set()
        while self.pending or self.running:
            for step in self.tick():  # a process starts only after its attempt is committed
                task = asyncio.create_task(self.one(step))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if not self.pending and not self.running:
                break
            self.wake.clear()
            if not self.ended:
                await self.wake.wait()


def durable_once() -> float:
    with tempfile.TemporaryDirectory(prefix="agenthq-floor-") as home:
        loop = Loop(Path(home))
        started = time.perf_counter()
        asyncio.run(loop.run())
        return time.perf_counter() - started


def bare_once() -> float:
    started = time.perf_counter()
    asyncio.run(spawn(COUNT, PARALLEL))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    durable: list[float] = []
    bare: list[float] = []
    for _ in range(args.repeat):  # interleaved: the VM's speed drifts within minutes
        durable.append(durable_once())
        bare.append(bare_once())
    d, b = statistics.median(durable), statistics.median(bare)
    print(f"\nW4 ({COUNT} /bin/true, {PARALLEL} at a time), medians of {args.repeat} rounds")
    print(f"  bare asyncio loop        {b:.3f} s")
    print(f"  minimal durable loop     {d:.3f} s  ({d / b:.2f}x the bare loop)")


if __name__ == "__main__":
    main()
