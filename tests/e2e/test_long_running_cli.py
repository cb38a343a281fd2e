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


NIGHTLY = """
name: nightly
schedule: {cron: "30 2 * * *", tz: Europe/Berlin, catch_up: once}
steps:
  - id: sweep
    run: echo sweep
"""


def test_schedule_commands(cli: Cli) -> None:
    cli.write("nightly.yaml", NIGHTLY)
    added = cli("schedule", "add", "nightly.yaml", check=True)
    assert "schedule nightly: nightly at '30 2 * * *' Europe/Berlin; next 20" in added.out
    listed = cli("schedule", "list", "--json", check=True).json()
    assert listed[0]["settings"]["catch_up"] == "once"
    assert listed[0]["paused"] is False
    cli("schedule", "pause", "nightly", check=True)
    assert cli("schedule", "list", "--json", check=True).json()[0]["paused"] is True
    cli("schedule", "resume", "nightly", check=True)
    second = cli("schedule", "add", "nightly.yaml", "--name", "hourly", "--cron", "0 * * * *")
    assert second.code == 0, second.err
    table = cli("schedule", "list", check=True).out
    assert "hourly" in table
    assert "cron '0 * * * *'" in table
    cli("schedule", "remove", "hourly", check=True)
    assert [s["id"] for s in cli("schedule", "list", "--json", check=True).json()] == ["nightly"]
    for args, message in [
        (("schedule", "add", "nightly.yaml", "--cron", "daily"), "not a cron expression"),
        (("schedule", "add", "nightly.yaml", "--tz", "Nowhere/City"), "is unknown"),
        (("schedule", "add", "missing.yaml"), "missing.yaml"),
        (("schedule", "pause", "nope"), "no schedule or trigger 'nope'"),
    ]:
        bad = cli(*args)
        assert bad.code != 0
        assert message in bad.err, bad.err
        assert "Traceback" not in bad.err


BUILD = "name: build\nsteps:\n  - id: compile\n    run: echo compiled\n"
DEPLOY = """
name: deploy
after: {plan: build, status: succeeded}
steps:
  - id: ship
    run: echo shipped
"""


def test_serve_starts_a_plan_after_another_once_across_a_restart(cli: Cli) -> None:
    from tests.e2e.test_serve_restart import ctrl_c, start_serve
    from tests.server_fixture import free_port

    cli.write("build.yaml", BUILD)
    cli.write("deploy.yaml", DEPLOY)
    assert "deploy.after.1: deploy after a run of build succeeded" in (
        cli("triggers", "add", "deploy.yaml", check=True).out
    )
    port = free_port()
    server = start_serve(cli, port)
    try:
        cli("run", "build.yaml", "--quiet", check=True)
        deadline = time.monotonic() + 30
        runs: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            runs = cli("runs", "--json", check=True).json()
            if runs[0]["plan"] == "deploy" and runs[0]["state"] == "succeeded":
                break
            time.sleep(0.2)
        assert [r["plan"] for r in runs] == ["deploy", "build"]
        assert runs[0]["state"] == "succeeded"
        assert runs[0]["origin"]["run"] == runs[1]["id"]  # type: ignore[index]
    finally:
        assert "Traceback" not in ctrl_c(server)
    # A restarted server reads on from where it stopped: no second deploy.
    server = start_serve(cli, port)
    try:
        time.sleep(2.5)
        history = cli("triggers", "history", "deploy.after.1", "--json", check=True).json()
        assert [h["outcome"] for h in history] == ["started"]
        assert len(cli("runs", "--json", check=True).json()) == 2
    finally:
        ctrl_c(server)


WAITING = """
name: soak-served
steps:
  - id: soak
    wait: 4s
  - id: after
    needs: [soak]
    run: echo done
"""


def test_a_waiting_run_survives_a_server_restart(cli: Cli) -> None:
    from tests.e2e.test_serve_restart import ctrl_c, start_serve
    from tests.server_fixture import free_port

    cli.write("soak.yaml", WAITING)
    port = free_port()
    server = start_serve(cli, port)
    run_id = cli("run", "soak.yaml", "--detach", check=True).out.strip()
    database = cli.project / ".agenthq" / "agenthq.db"
    deadline = time.monotonic() + 20
    due = None
    while due is None and time.monotonic() < deadline:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT next_at FROM steps WHERE step_id = 'soak' AND state = 'waiting'"
            ).fetchone()
        due = float(row[0]) if row else None
        time.sleep(0.05)
    assert due is not None
    assert "Traceback" not in ctrl_c(server)
    server = start_serve(cli, port)
    try:
        deadline = time.monotonic() + 30
        status: dict[str, object] = {}
        while time.monotonic() < deadline:
            status = cli("status", run_id, "--json", check=True).json()
            if status["state"] == "succeeded":
                break
            time.sleep(0.2)
        assert status["state"] == "succeeded"
        steps = {s["id"]: s for s in status["steps"]}  # type: ignore[attr-defined]
        assert due <= steps["after"]["started_at"] < due + 5
    finally:
        ctrl_c(server)
