"""A wait survives the death of the process that was waiting: SIGKILL `agenthq run` in the
middle of a `wait`, then `agenthq resume` keeps the original deadline (it neither restarts
the wait nor ends it early)."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

from tests.e2e.conftest import Cli

PLAN = """
name: soak
steps:
  - id: build
    run: echo built
  - id: soak
    needs: [build]
    wait: 4s
  - id: release
    needs: [soak]
    run: echo released
"""


def _next_at(database: Path) -> float | None:
    if not database.exists():
        return None
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT next_at FROM steps WHERE step_id = 'soak' AND state = 'waiting'"
            ).fetchone()
    except sqlite3.Error:
        return None
    return float(row[0]) if row else None


def test_sigkill_during_a_wait_then_resume_keeps_the_deadline(cli: Cli) -> None:
    cli.write("plan.yaml", PLAN)
    process = cli.spawn("run", "plan.yaml", "--quiet")
    database = cli.project / ".agenthq" / "agenthq.db"
    deadline = time.monotonic() + 60
    due = None
    while time.monotonic() < deadline and due is None:
        due = _next_at(database)
        time.sleep(0.02)
    assert due is not None, "the step never started waiting"
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)
    status = cli("status", "last", "--json", check=True).json()
    assert {s["id"]: s["state"] for s in status["steps"]}["soak"] == "waiting"

    cli("resume", "last", "--quiet", check=True)
    after = cli("status", "last", "--json", check=True).json()
    assert after["state"] == "succeeded"
    steps = {s["id"]: s for s in after["steps"]}
    # Ended at the deadline set before the kill: not earlier, and not 4 s after the resume.
    assert due <= steps["release"]["started_at"] < due + 3
    assert steps["soak"]["attempts"] == 0


RELEASE = """
name: release
policy: {allow: ["echo *"]}
steps:
  - id: tag
    run: echo tagged
    compensate: echo untag >> undo.log
  - id: publish
    needs: [tag]
    run: echo published
    compensate: echo unpublish >> undo.log
"""


def test_rollback_command_undoes_a_succeeded_run(cli: Cli) -> None:
    cli.write("plan.yaml", RELEASE)
    cli("run", "plan.yaml", "--quiet", check=True)
    done = cli("rollback", "last")
    assert done.code == 0, done.err
    assert "rolling back run" in done.err
    assert (cli.project / "undo.log").read_text().splitlines() == ["unpublish", "untag"]
    runs = cli("runs", "--json", check=True).json()
    assert [r["plan"] for r in runs] == ["release-rollback", "release"]
    assert runs[0]["origin"] == {"kind": "rollback", "run": runs[1]["id"]}
    status = cli("status", runs[1]["id"]).out
    assert f"rolled back by run {runs[0]['id']}" in status
    # Everything is undone now: a second rollback has nothing left and says so.
    again = cli("rollback", runs[1]["id"])
    assert again.code == 2
    assert "no succeeded step with a `compensate` left to undo" in again.err
    assert "Traceback" not in again.err
