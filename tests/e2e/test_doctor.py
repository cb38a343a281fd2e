"""`agenthq doctor` on real stores: healthy, a run whose process was SIGKILLed (needs-repair,
then `--fix` makes it resumable), an approval past its SLA (degraded), a corrupted file."""

from __future__ import annotations

import os
import signal
import time

from tests.e2e.conftest import Cli, no_traceback


def test_a_fresh_project_is_healthy_and_doctor_creates_nothing(cli: Cli) -> None:
    result = cli("doctor", "--json")
    assert result.code == 0, result.err
    assert result.json()["verdict"] == "healthy"
    assert not (cli.project / ".agenthq" / "agenthq.db").exists()
    (spawner,) = [f for f in result.json()["findings"] if f["check"] == "spawner"]
    assert spawner["level"] == "ok"  # this machine has pidfds: the helper started and answered
    assert spawner["message"].startswith("shell steps start from the spawner helper")


def test_a_killed_run_needs_repair_and_fix_makes_it_resumable(cli: Cli) -> None:
    cli.write(
        "plan.yaml",
        """
        name: slow
        steps:
          - id: wait
            uses: agenthq.builtin:sleep
            with: {seconds: 30}
        """,
    )
    running = cli.spawn("run", "plan.yaml", "--quiet")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = cli("runs", "--json", check=True).json()
        if runs and runs[0]["step_counts"].get("running"):
            break
        time.sleep(0.1)
    os.kill(running.pid, signal.SIGKILL)
    running.communicate(timeout=10)
    sick = cli("doctor", "--json")
    assert sick.code == 1
    report = sick.json()
    assert report["verdict"] == "needs-repair"
    (finding,) = [f for f in report["findings"] if f["check"] == "runs"]
    assert "no live process" in finding["message"]
    fixed = cli("doctor", "--fix")
    assert fixed.code == 0, fixed.out
    assert "interrupted step(s) marked lost" in fixed.out
    steps = cli("status", "last", "--json", check=True).json()["steps"]
    assert steps[0]["state"] in ("retrying", "ready")  # lost, then retried under its policy


def test_an_approval_past_its_sla_is_degraded(cli: Cli) -> None:
    cli.write(
        "plan.yaml",
        """
        name: ask
        steps:
          - id: deploy
            risk: approval_required
            approval: {timeout: 1s, warn_before: 1s}
            run: echo hi
        """,
    )
    assert cli("run", "plan.yaml", "--no-wait", "--quiet").code == 3
    time.sleep(1.1)  # past the approval's one-second SLA, however fast the run was
    result = cli("doctor", "--json")
    assert result.code == 1
    report = result.json()
    assert report["verdict"] == "degraded"
    assert any(f["check"] == "approvals" and f["level"] == "degraded" for f in report["findings"])


def test_a_corrupted_database_needs_repair_without_a_traceback(cli: Cli) -> None:
    home = cli.project / ".agenthq"
    home.mkdir()
    (home / "agenthq.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    result = cli("doctor")
    assert result.code == 1
    assert "needs-repair" in result.out
    no_traceback(result)
