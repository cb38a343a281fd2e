"""Runs through the real binary: the machine-readable forms, logs, events, graph, retry,
cancel and the audit chain."""

from __future__ import annotations

import json
import signal
import sqlite3
import time

from tests.e2e.conftest import Cli, no_traceback

PLAN = """
name: demo
params: {word: {default: hello}}
steps:
  - id: greet
    run: |
      echo '{"said": "{{ params.word }}"}'
  - id: shard
    foreach: [1, 2, 3]
    run: echo shard {{ item }}
  - id: flaky
    needs: [greet]
    run: test -f marker-ok
  - id: after
    needs: [flaky, shard]
    run: echo done {{ steps.greet.outputs.said }}
  - id: always
    needs: [flaky]
    trigger: all_done
    run: echo cleanup
"""


def test_run_status_runs_logs_events(cli: Cli) -> None:
    cli.write("plan.yaml", PLAN)
    (cli.project / "marker-ok").write_text("")
    result = cli("run", "plan.yaml", "-p", "word=hi")
    assert result.code == 0, result.err
    assert "succeeded" in result.out

    runs = cli("runs", "--json", check=True).json()
    assert len(runs) == 1
    run = runs[0]
    assert {"id", "plan", "state", "created_at", "finished_at", "step_counts"} <= set(run)
    assert run["plan"] == "demo"
    assert run["state"] == "succeeded"
    assert run["step_counts"] == {"succeeded": 7}

    status = cli("status", run["id"][:10], "--json", check=True).json()
    steps = {s["id"]: s for s in status["steps"]}
    assert set(steps) == {"greet", "shard[1]", "shard[2]", "shard[3]", "flaky", "after", "always"}
    assert steps["greet"]["outputs"] == {"said": "hi"}
    assert all(
        {"id", "state", "attempts", "failure_class", "outputs"} <= set(s) for s in steps.values()
    )

    assert cli("logs", "last", "after", check=True).out.strip() == "done hi"
    everything = cli("logs", "last", check=True).out
    assert "shard[2] | shard 2" in everything

    events = cli("events", "last", "--json", check=True).json()
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run.created"
    assert events[-1]["to"] == "succeeded"
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    transitions = [(e["step_id"], e["from"], e["to"]) for e in events if e["step_id"] == "greet"]
    assert transitions[0][1:] == ("pending", "ready")
    assert transitions[-1][2] == "succeeded"

    assert "intact" in cli("audit", "verify", check=True).out


def test_failure_blocks_dependents_and_retry_from_failed(cli: Cli) -> None:
    cli.write("plan.yaml", PLAN)
    first = cli("run", "plan.yaml", "--json")
    assert first.code == 1
    body = first.json()
    steps = {s["id"]: s for s in body["steps"]}
    assert steps["flaky"]["state"] == "failed"
    assert steps["flaky"]["failure_class"] == "execution"
    assert steps["after"]["state"] == "blocked"
    assert steps["always"]["state"] == "succeeded"  # trigger: all_done

    (cli.project / "marker-ok").write_text("")
    again = cli("retry", body["id"], "--json")
    assert again.code == 0, again.err
    steps = {s["id"]: s for s in again.json()["steps"]}
    assert steps["flaky"]["state"] == "succeeded"
    assert steps["after"]["state"] == "succeeded"
    assert steps["greet"]["attempts"] == 1  # kept, not run again
    assert steps["flaky"]["attempts"] == 2

    # --from redoes a succeeded step and everything after it.
    redo = cli("retry", body["id"], "--from", "flaky", "--json", check=True).json()
    steps = {s["id"]: s for s in redo["steps"]}
    assert steps["flaky"]["attempts"] == 3
    assert steps["greet"]["attempts"] == 1
    assert steps["shard[1]"]["attempts"] == 1


def test_graph_formats(cli: Cli) -> None:
    cli.write("plan.yaml", PLAN)
    mermaid = cli("graph", "plan.yaml", "--format", "mermaid", check=True).out
    assert mermaid.startswith("flowchart")
    assert "n_greet --> n_flaky" in mermaid
    dot = cli("graph", "plan.yaml", "--format", "dot", check=True).out
    assert '"flaky" -> "after"' in dot
    text = cli("graph", "plan.yaml", check=True).out
    assert "7 steps" in text


def test_audit_verify_names_the_tampered_event(cli: Cli) -> None:
    cli.write("plan.yaml", "name: p\nsteps:\n  - id: a\n    run: echo hi\n")
    cli("run", "plan.yaml", check=True)
    events = cli("events", "last", "--json", check=True).json()
    target = events[2]["seq"]
    with sqlite3.connect(cli.project / ".agenthq" / "agenthq.db") as db:
        db.execute("UPDATE events SET to_state = 'failed' WHERE seq = ?", (target,))
    result = cli("audit", "verify")
    assert result.code == 1
    assert f"event {target}" in result.err
    no_traceback(result)


def test_ctrl_c_cancels_cleanly(cli: Cli) -> None:
    cli.write(
        "plan.yaml",
        "name: p\nsteps:\n  - id: slow\n    run: sleep 30\n  - id: later\n    needs: [slow]\n    run: 'true'\n",
    )
    process = cli.spawn("run", "plan.yaml")
    _wait_for_state(cli, "slow", "running")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert process.returncode == 130
    status = cli("status", "last", "--json", check=True).json()
    assert status["state"] == "cancelled"
    assert {s["id"]: s["state"] for s in status["steps"]} == {
        "slow": "cancelled",
        "later": "cancelled",
    }


def test_cancel_from_another_process(cli: Cli) -> None:
    cli.write("plan.yaml", "name: p\nsteps:\n  - id: slow\n    run: sleep 30\n")
    process = cli.spawn("run", "plan.yaml")
    _wait_for_state(cli, "slow", "running")
    started = time.monotonic()
    result = cli("cancel", "last")
    assert result.code == 0, result.err
    assert "cancelled" in result.out
    process.communicate(timeout=30)
    assert process.returncode == 130
    assert time.monotonic() - started < 15
    assert cli("status", "last", "--json", check=True).json()["state"] == "cancelled"


def _wait_for_state(cli: Cli, step: str, state: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = cli("status", "last", "--json")
        if result.code == 0:
            steps = {s["id"]: s["state"] for s in result.json()["steps"]}
            if steps.get(step) == state:
                return
        time.sleep(0.1)
    raise AssertionError(f"step {step} never reached {state}")


def test_pause_and_resume_a_run_another_terminal_executes(cli: Cli) -> None:
    steps = "".join(
        f"  - id: s{i}\n    uses: agenthq.builtin:sleep\n    with: {{seconds: 0.2}}\n"
        for i in range(30)
    )
    cli.write("plan.yaml", "name: slow\nsteps:\n" + steps)
    running = cli.spawn("run", "plan.yaml", "--quiet", "--max-workers", "2")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not cli("runs", "--json", check=True).json():
        time.sleep(0.1)
    paused = cli("pause", "last")
    assert paused.code == 0, paused.err
    assert "paused; running steps finish" in paused.out
    assert cli("status", "last", "--json", check=True).json()["state"] == "paused"
    resumed = cli("resume", "last")
    assert resumed.code == 0
    assert "resumed: process" in resumed.out
    running.communicate(timeout=60)  # also closes the pipes
    assert running.returncode == 0
    assert cli("status", "last", "--json", check=True).json()["state"] == "succeeded"
    finished = cli("pause", "last")
    assert finished.code == 2
    assert "already succeeded" in finished.err


def test_a_command_exits_without_teardown_yet_nothing_it_printed_is_lost(cli: Cli) -> None:
    """`agenthq` leaves by os._exit once its work is done (see cli/main.py `command`): output
    far larger than a pipe's buffer must still arrive whole, with the right exit code."""
    steps = "".join(f"  - id: s{n}\n    uses: agenthq.builtin:noop\n" for n in range(150))
    cli.write("many.yaml", f"name: many\nsteps:\n{steps}")
    ran = cli("run", "many.yaml", "--quiet", check=True)
    no_traceback(ran)
    [run] = json.loads(cli("runs", "--json", check=True).out)
    events = cli("events", run["id"], "--json", check=True).out
    assert len(events) > 100_000  # more than a pipe holds (64 KiB)
    parsed = json.loads(events)
    assert len(parsed) == 1 + 1 + 150 * 3 + 1  # created, running, 3 per step, finished
    assert (parsed[-1]["kind"], parsed[-1]["to"]) == ("run", "succeeded")
    missing = cli("status", "no-such-run")
    assert missing.code == 2
    assert "no run 'no-such-run'" in missing.err


def test_the_command_sets_up_without_the_collector_yet_collects_while_it_runs(cli: Cli) -> None:
    """`agenthq` freezes what it built while setting up and runs with the collector on (see
    cli/startup_gc.py): a step running inside the engine process reports what it sees."""
    cli.write(
        "probe.py",
        """
        import gc

        def collector(ctx):
            return {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
        """,
    )
    cli.write("gc.yaml", "name: gc\nsteps:\n  - id: probe\n    uses: probe:collector\n")
    cli("run", "gc.yaml", "--quiet", check=True)
    [step] = cli("status", "last", "--json", check=True).json()["steps"]
    assert step["outputs"]["enabled"] is True
    assert step["outputs"]["frozen"] > 10_000  # the modules, plan and store it set up


def test_a_quiet_run_never_imports_rich(cli: Cli) -> None:
    """Rich is imported where something is drawn (cli/render.py): scripts and CI that ask for
    plain or JSON output never pay for it."""
    cli.write(
        "probe.py",
        """
        import sys

        def drawn(ctx):
            return {"rich": sorted(m for m in sys.modules if m.split(".")[0] == "rich")}
        """,
    )
    cli.write("rich.yaml", "name: r\nsteps:\n  - id: probe\n    uses: probe:drawn\n")
    for flags in (["--quiet"], ["--json"], []):  # [] prints plain lines: not a terminal
        cli("run", "rich.yaml", *flags, check=True)
        [step] = cli("status", "last", "--json", check=True).json()["steps"]
        assert step["outputs"]["rich"] == [], flags
