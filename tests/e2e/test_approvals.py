"""A person in the loop, through the real command line: a waiting `agenthq run` is unblocked
from a second process, approvals survive a SIGKILL of the runner, `rm -rf ~/` never runs under
a temporary HOME, and agenthq.toml mistakes are input errors."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Cli, no_traceback

GATED = """
name: gated
policy: {allow: ["touch *"]}
steps:
  - id: deploy
    risk: approval_required
    run: touch deployed
  - id: notify
    needs: [deploy]
    run: touch notified
"""


def wait_for_approvals(cli: Cli, count: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = cli("approvals", "--json", check=True).json()
        if len(pending) >= count:
            return list(pending)
        time.sleep(0.2)
    raise AssertionError("no approval appeared")


def test_approval_from_a_second_process_unblocks_a_waiting_run(cli: Cli) -> None:
    cli.write("plan.yaml", GATED)
    runner = cli.spawn("run", "plan.yaml", "--quiet")
    try:
        (waiting,) = wait_for_approvals(cli)
        assert waiting["step_id"] == "deploy"
        assert waiting["command"] == "touch deployed"
        assert "declared risk: approval_required" in " ".join(waiting["reasons"])
        assert not (cli.project / "deployed").exists()
        assert cli("status", "last", "--json", check=True).json()["state"] == "awaiting_approval"
        approved = cli("approve", "last", "deploy", "--note", "go", "--by", "alice")
        assert approved.code == 0, approved.err
        assert "approved deploy" in approved.out
        _out, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, err
    assert (cli.project / "deployed").exists()
    assert (cli.project / "notified").exists()
    events = cli("events", "last", "--json", check=True).json()
    decided = [e for e in events if e["kind"] == "approval.decided"]
    assert decided[0]["details"]["by"] == "alice"
    assert decided[0]["details"]["note"] == "go"
    assert cli("audit", "verify").code == 0


def test_reject_from_a_second_process_fails_the_run(cli: Cli) -> None:
    cli.write("plan.yaml", GATED)
    runner = cli.spawn("run", "plan.yaml", "--quiet")
    try:
        wait_for_approvals(cli)
        assert cli("reject", "last", "deploy", "-m", "not on a friday").code == 0
        runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 1
    steps = {s["id"]: s for s in cli("status", "last", "--json", check=True).json()["steps"]}
    assert steps["deploy"]["state"] == "failed"
    assert steps["deploy"]["failure_class"] == "gate"
    assert "not on a friday" in steps["deploy"]["reason"]
    assert steps["notify"]["state"] == "blocked"
    assert not (cli.project / "deployed").exists()


def test_approvals_survive_sigkill_of_the_runner_and_resume(cli: Cli) -> None:
    cli.write("plan.yaml", GATED)
    runner = cli.spawn("run", "plan.yaml", "--quiet")
    wait_for_approvals(cli)
    os.kill(runner.pid, signal.SIGKILL)
    runner.communicate(timeout=10)
    (still,) = cli("approvals", "--json", check=True).json()
    assert still["step_id"] == "deploy"
    decided = cli("approve", "last", "deploy")
    assert decided.code == 0
    assert "agenthq resume" in decided.out  # nobody executes the run: say how to continue
    resumed = cli("resume", "last", "--json")
    assert resumed.code == 0, resumed.err
    steps = {s["id"]: s for s in resumed.json()["steps"]}
    assert steps["deploy"]["attempts"] == 1
    assert steps["notify"]["state"] == "succeeded"


def test_no_wait_exits_3_and_approve_all_with_max_score(cli: Cli) -> None:
    cli.write(
        "plan.yaml",
        """
        name: batch
        steps:
          - id: fetch
            run: curl -s https://example.invalid/ -o page.html
          - id: push
            run: git push origin main
          - id: local
            run: echo fine
        """,
    )
    result = cli("run", "plan.yaml", "--no-wait")
    assert result.code == 3, result.err
    assert "agenthq approve|reject" in result.out
    pending = {a["step_id"]: a["score"] for a in cli("approvals", "--json", check=True).json()}
    assert set(pending) == {"fetch", "push"}
    listing = cli("approvals", check=True).out
    assert "git push origin main" in listing
    assert "waiting" in listing
    lowest = min(pending.values())
    batch = cli("approve", "last", "--all", "--max-score", str(lowest))
    assert batch.code == 0, batch.err
    assert batch.out.count("approved ") == 1
    assert [a["step_id"] for a in cli("approvals", "--json", check=True).json()] == [
        max(pending, key=lambda k: pending[k])
    ]


def test_approve_usage_errors_are_input_errors(cli: Cli) -> None:
    cli.write("plan.yaml", GATED)
    assert cli("run", "plan.yaml", "--no-wait").code == 3
    both = cli("approve", "last", "deploy", "--all")
    assert both.code == 2
    assert "--all" in both.err
    neither = cli("approve", "last")
    assert neither.code == 2
    wrong = cli("approve", "last", "notify")
    assert wrong.code == 2
    assert "not waiting" in wrong.err
    assert "deploy" in wrong.err
    missing = cli("approve", "no-such-run", "deploy")
    assert missing.code == 2
    for result in (both, neither, wrong, missing):
        no_traceback(result)


def test_rm_rf_home_never_runs_under_a_temporary_home(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "projects").mkdir(parents=True)
    canary = home / "canary.txt"
    canary.write_text("alive")
    cli.write(
        "plan.yaml",
        """
        name: wipe
        steps:
          - id: wipe
            run: rm -rf ~/
          - id: sneaky
            run: bash -c "cd && rm -rf ./*"
        """,
    )
    env = {**cli.env, "HOME": str(home)}
    done = subprocess.run(
        cli.command("run", "plan.yaml", "--no-wait", "--json"),
        cwd=cli.project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (1, 3), done.stderr
    assert canary.read_text() == "alive"
    assert (home / "projects").is_dir()
    steps = {s["id"]: s for s in __import__("json").loads(done.stdout)["steps"]}
    assert steps["wipe"]["attempts"] == 0
    assert steps["sneaky"]["attempts"] == 0


def test_agents_list_and_release(cli: Cli) -> None:
    subprocess.run(["git", "init", "-q", str(cli.project)], check=True)
    cli.write("src/calc.py", "def add(a, b):\n    return a + b\n")
    git = ["git", "-C", str(cli.project), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    cli.write(
        "plan.yaml",
        """
        name: lazy
        policy: {allow: ["printf *"]}
        steps:
          - id: edit
            agent: coder
            writes: ["src/**"]
            run: |
              printf 'def add(a, b):\\n    # ... rest of the code ...\\n    pass\\n' > src/calc.py
        """,
    )
    assert cli("run", "plan.yaml", "--quiet").code == 1
    listed = {a["name"]: a for a in cli("agents", "--json", check=True).json()}
    agent = listed["coder"]
    assert agent["state"] == "quarantined"
    assert agent["source"] == "seen"  # named by a step, declared nowhere
    assert "placeholder" in agent["quarantine_reason"]
    assert agent["quarantined_step"] == "edit"
    assert agent["attempts"] == 1
    assert agent["failure_rate"] == 1.0
    assert listed["patcher"]["source"] == "built-in"
    assert listed["patcher"]["state"] == "idle"
    assert "quarantined" in cli("agents", check=True).out
    released = cli("agents", "release", "coder", "--note", "prompt fixed")
    assert released.code == 0
    assert "released agent coder" in released.out
    after = {a["name"]: a for a in cli("agents", "--json", check=True).json()}["coder"]
    assert after["state"] == "idle"
    assert after["released_by"]
    again = cli("agents", "release", "coder")
    assert again.code == 2
    assert "not quarantined" in again.err
    no_traceback(again)


def test_bad_gate_settings_in_agenthq_toml_are_input_errors(cli: Cli) -> None:
    cli.write("plan.yaml", "name: p\nsteps:\n  - id: a\n    run: echo hi\n")
    cases = {
        "[gates]\ndefault = ['risk', 'secret']\n": "unknown gate 'secret'",
        "[polcy]\nallow = ['ls']\n": "did you mean [policy]",
        "[approvals]\ntimeout = 'soon'\n": "approvals.timeout",
        "[approvals]\non_timeout = 'approve'\n": "allow_approve_on_timeout",
        "[breaker]\nfailures = 0\n": "breaker.failures",
        "[policy]\nauto_max = 90\nrefuse_min = 80\n": "auto_max",
    }
    for text, expected in cases.items():
        cli.write("agenthq.toml", text)
        result = cli("run", "plan.yaml")
        assert result.code == 2, (text, result.err)
        assert expected in result.err, (text, result.err)
        assert "agenthq.toml" in result.err
        no_traceback(result)
    (cli.project / "agenthq.toml").unlink()
    assert cli("runs", "--json", check=True).json() == []  # nothing was started


def test_unknown_gate_in_a_plan_is_exit_2_with_the_line(cli: Cli) -> None:
    cli.write(
        "plan.yaml",
        """
        name: p
        steps:
          - id: a
            run: echo hi
            gates: [risk, qualty]
        """,
    )
    result = cli("validate", "plan.yaml")
    assert result.code == 2
    assert "plan.yaml:5" in result.err
    assert "did you mean 'quality'" in result.err
