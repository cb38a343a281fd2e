"""`agenthq doctor`: is this installation and its store in order, and what to do if not.

Each check yields findings of one of three levels; the worst decides the verdict (healthy,
degraded, needs-repair). The database file is first read raw and read-only (sqlite3, no
migration, no pragma changes), so a damaged or old store is described as it is, not as
opening it would leave it. `--fix` repairs only what is safe: runs nobody executes are made
consistent (interrupted attempts marked `lost`, retried under their policy), and logs of
finished runs older than the retention are deleted.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agenthq.engine.ownership import owner_alive
from agenthq.errors import LearningError
from agenthq.executors.procs import pidfds_work
from agenthq.executors.spawner import (
    Spawner,
    SpawnerGoneError,
    SpawnError,
    ready_spawner,
    spawning,
)
from agenthq.ml.model import read_meta
from agenthq.ml.predictor import ModelSettings
from agenthq.store.api import ApprovalState, Store

LEVELS = ("ok", "degraded", "repair")
VERDICT = {"ok": "healthy", "degraded": "degraded", "repair": "needs-repair"}
MIN_FREE_BYTES = 1 << 30  # 1 GiB
MAX_LOG_BYTES = 2 << 30  # 2 GiB


@dataclass(frozen=True)
class Finding:
    check: str
    level: str  # ok | degraded | repair
    message: str  # one actionable line


def verdict(findings: list[Finding]) -> str:
    worst = max((LEVELS.index(f.level) for f in findings), default=0)
    return VERDICT[LEVELS[worst]]


def check_database_file(path: Path, head: str) -> list[Finding]:
    """Reachable, migrated, WAL, integrity — read-only, before anything opens the store."""
    if not path.exists():
        return [Finding("database", "ok", f"no database yet at {path}; the first run creates it")]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return [Finding("database", "repair", f"cannot open {path}: {exc}; check its permissions")]
    findings: list[Finding] = []
    try:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        except sqlite3.Error:
            revision = None
        if revision == head:
            findings.append(Finding("schema", "ok", f"schema at revision {head}"))
        elif revision is None:
            findings.append(
                Finding(
                    "schema", "repair", f"{path} is not an agenthq database (no schema revision)"
                )
            )
        else:
            findings.append(
                Finding(
                    "schema",
                    "degraded",
                    f"schema at revision {revision}, this agenthq uses {head}; "
                    "`agenthq doctor --fix` (or any command) upgrades it",
                )
            )
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        findings.append(
            Finding("wal", "ok", "WAL journal on")
            if mode == "wal"
            else Finding(
                "wal",
                "degraded",
                f"journal mode is {mode}, not WAL: readers block the writer; "
                "`agenthq doctor --fix` turns WAL on",
            )
        )
        result = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        findings.append(
            Finding("integrity", "ok", "integrity check passed")
            if result == ["ok"]
            else Finding(
                "integrity",
                "repair",
                f"integrity check failed ({'; '.join(map(str, result[:3]))}); restore the "
                "database from a backup (`sqlite3 agenthq.db .recover` may save what is left)",
            )
        )
    except sqlite3.Error as exc:
        findings.append(Finding("database", "repair", f"cannot read {path}: {exc}"))
    finally:
        conn.close()
    return findings


def check_store(store: Store, now: float) -> tuple[list[Finding], list[str]]:
    """Findings about runs and approvals; and the ids of runs nobody executes (fixable)."""
    findings: list[Finding] = []
    orphans: list[str] = []
    stale: list[tuple[str, str]] = []  # (run, worker) of claims whose lease ran out
    for run in store.list_runs(limit=10_000):
        if run.state.finished or run.state.value == "pending":
            continue
        stale += [
            (run.id, item.worker or "?")
            for item in store.work_status(run.id, due_before=now)
            if item.state == "claimed"
        ]
        running = run.step_counts.get("running", 0) + run.step_counts.get("queued", 0)
        if running and not owner_alive(run.owner, run.heartbeat_at, now):
            orphans.append(run.id)
            findings.append(
                Finding(
                    "runs",
                    "repair",
                    f"run {run.id} has {running} step(s) running but no live process; "
                    f"`agenthq doctor --fix` marks them lost, then `agenthq resume {run.id}`",
                )
            )
    if not orphans:
        findings.append(Finding("runs", "ok", "every running run has a live process"))
    if stale:
        run_id, worker = stale[0]
        findings.append(
            Finding(
                "leases",
                "degraded",
                f"{len(stale)} step(s) held by workers whose lease expired (e.g. {worker} in "
                f"run {run_id}); the run's scheduler retries them — if no process executes "
                f"it, `agenthq resume {run_id}`",
            )
        )
    else:
        findings.append(Finding("leases", "ok", "no worker holds a step past its lease"))
    late = [
        a
        for a in store.list_approvals(state=ApprovalState.PENDING)
        if now >= (a.warn_at if a.warn_at is not None else a.expires_at)
    ]
    if late:
        first = late[0]
        findings.append(
            Finding(
                "approvals",
                "degraded",
                f"{len(late)} approval(s) past their SLA, e.g. {first.step_id} of run "
                f"{first.run_id}; `agenthq approvals` lists them",
            )
        )
    else:
        findings.append(Finding("approvals", "ok", "no approval past its SLA"))
    return findings, orphans


def check_spawner(enabled: bool = True, timeout: float = 10.0) -> list[Finding]:
    """Start the process spawner and have it run `true`, as a run's first shell steps would."""
    if not enabled:
        message = "switched off (the spawner setting): shell steps start in the engine's process"
        return [Finding("spawner", "ok", message)]
    return [asyncio.run(_try_spawner(timeout))]


async def _try_spawner(timeout: float) -> Finding:
    slower = "shell steps start in the engine's own process (slower for shell-heavy plans)"
    if not pidfds_work():
        return Finding("spawner", "degraded", f"this system has no pidfds (Linux 5.3+): {slower}")
    started = time.monotonic()
    async with spawning():
        try:
            async with asyncio.timeout(timeout):
                spawner = await ready_spawner()
                if spawner is not None and await _runs_true(spawner):
                    took = (time.monotonic() - started) * 1000
                    message = f"shell steps start from the spawner helper (ready in {took:.0f} ms)"
                    return Finding("spawner", "ok", message)
        except (TimeoutError, SpawnError, SpawnerGoneError):
            pass
    return Finding("spawner", "degraded", f"the spawner helper did not start or answer: {slower}")


async def _runs_true(spawner: Spawner) -> bool:
    request = spawner.spawn(
        ["true"],
        shell=None,
        cwd=Path("/"),
        env={"PATH": os.defpath},
        stdout=Path(os.devnull),
        stderr=Path(os.devnull),
    )
    await request.started
    return await request.exited == 0


def check_disk(home: Path) -> list[Finding]:
    findings: list[Finding] = []
    target = home if home.exists() else home.parent
    free = shutil.disk_usage(target).free
    findings.append(
        Finding("disk", "ok", f"{free / 2**30:.1f} GiB free under {target}")
        if free >= MIN_FREE_BYTES
        else Finding(
            "disk",
            "degraded",
            f"only {free / 2**20:.0f} MiB free under {target}; free space or move AGENTHQ_HOME",
        )
    )
    size = _size(home / "logs")
    findings.append(
        Finding("logs", "ok", f"logs take {size / 2**20:.1f} MiB")
        if size <= MAX_LOG_BYTES
        else Finding(
            "logs",
            "degraded",
            f"logs take {size / 2**30:.1f} GiB; `agenthq doctor --fix` prunes logs of "
            "finished runs older than the retention",
        )
    )
    return findings


def check_model(directory: Path, settings: ModelSettings, now: float) -> list[Finding]:
    """The failure model: used, or why not. A stale one degrades (the risk gate lost a signal
    it had); one that does not beat the baseline is simply not used."""
    try:
        meta = read_meta(directory)
    except LearningError as exc:
        return [Finding("model", "degraded", str(exc))]
    if meta is None or not settings.enabled:
        return []
    usable, why = meta.usable(now, settings.max_age_days)
    if usable:
        return [Finding("model", "ok", f"the failure model is used by the risk gate: {why}")]
    level = "degraded" if "older than" in why else "ok"
    return [Finding("model", level, f"the failure model is not used: {why}")]


def prune_logs(home: Path, older_than: float, now: float, finished: Callable[[str], bool]) -> int:
    """Delete log directories of finished runs that ended more than `older_than` s ago."""
    removed = 0
    logs = home / "logs"
    if not logs.is_dir():
        return 0
    for folder in logs.iterdir():
        if not folder.is_dir() or not finished(folder.name):
            continue
        if now - folder.stat().st_mtime >= older_than:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
