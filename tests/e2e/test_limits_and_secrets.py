"""Limits hold under real processes (recorded start/end times), secrets never reach logs or
events, timeouts kill whole process trees, several processes share one SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import Cli, no_traceback

RECORD = 'echo "$(date +%s%N) start {id}" >> times.txt; sleep 0.15; echo "$(date +%s%N) end {id}" >> times.txt'
# These plans test limits, not gates: the recording commands would (rightly) be asked about.
NO_GATES = "defaults: {gates: []}\n"


def max_overlap(path: Path, only: set[str] | None = None) -> int:
    """The largest number of steps that were between start and end at one instant."""
    events = []
    for line in path.read_text().splitlines():
        stamp, kind, step = line.split()
        if only is None or step in only:
            events.append((int(stamp), 0 if kind == "end" else 1))
    running = peak = 0
    for _, delta in sorted(events):
        running += 1 if delta else -1
        peak = max(peak, running)
    return peak


def test_max_workers_and_agent_limits(cli: Cli) -> None:
    steps = [f"  - id: w{i}\n    run: '{RECORD.format(id=f'w{i}')}'\n" for i in range(10)]
    steps += [
        f"  - id: a{i}\n    agent: coder\n    run: '{RECORD.format(id=f'a{i}')}'\n"
        for i in range(6)
    ]
    cli.write(
        "plan.yaml",
        "name: p\n" + NO_GATES + "concurrency: {agents: {coder: 2}}\nsteps:\n" + "".join(steps),
    )
    result = cli("run", "plan.yaml", "--max-workers", "3", "--quiet")
    assert result.code == 0, result.err
    times = cli.project / "times.txt"
    assert max_overlap(times) == 3
    assert max_overlap(times, {f"a{i}" for i in range(6)}) <= 2


def test_write_sets_are_serialised(cli: Cli) -> None:
    steps = [
        f"  - id: d{i}\n    writes: ['docs/**']\n    run: '{RECORD.format(id=f'd{i}')}'\n"
        for i in range(4)
    ]
    steps += [
        f"  - id: s{i}\n    writes: ['src/m{i}.py']\n    run: '{RECORD.format(id=f's{i}')}'\n"
        for i in range(4)
    ]
    cli.write("plan.yaml", "name: p\n" + NO_GATES + "steps:\n" + "".join(steps))
    assert cli("run", "plan.yaml", "--max-workers", "8", "--quiet").code == 0
    times = cli.project / "times.txt"
    assert max_overlap(times, {f"d{i}" for i in range(4)}) == 1  # all write docs/**
    assert max_overlap(times, {f"s{i}" for i in range(4)}) >= 2  # disjoint files run together


def test_secrets_are_masked_in_logs_events_and_outputs(cli: Cli) -> None:
    secret = "s3cr3t-value-4242"
    cli.write(
        "plan.yaml",
        """
        name: p
        secrets: [DEPLOY_TOKEN]
        defaults: {gates: []}  # echoing a secret would (rightly) ask a person; masking is the subject
        steps:
          - id: leak
            env: {API_PASSWORD: "hunter2-hunter2"}
            run: |
              echo "token is $DEPLOY_TOKEN and $API_PASSWORD"
              echo "again $DEPLOY_TOKEN" >&2
              echo "{\\"t\\": \\"$DEPLOY_TOKEN\\"}" > out.json
            outputs: {t: {file: out.json, json: true}}
          - id: fails
            run: echo "bad $DEPLOY_TOKEN" >&2; exit 3
        """,
    )
    env_before = dict(os.environ)
    try:
        os.environ["DEPLOY_TOKEN"] = secret
        done = subprocess.run(
            cli.command("run", "plan.yaml", "--json"),
            cwd=cli.project,
            env={**cli.env, "DEPLOY_TOKEN": secret},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    assert done.returncode == 1
    assert secret not in done.stdout + done.stderr
    assert "hunter2-hunter2" not in done.stdout + done.stderr
    logs = cli("logs", "last", check=True).out
    assert "token is *** and ***" in logs
    assert secret not in logs
    events = cli("events", "last", "--json", check=True).out
    assert secret not in events
    assert "***" in events  # the failure message carried the masked stderr tail
    store_bytes = b"".join(
        p.read_bytes() for p in (cli.project / ".agenthq").rglob("*") if p.is_file()
    )
    assert secret.encode() not in store_bytes
    steps = {s["id"]: s for s in json.loads(done.stdout)["steps"]}
    assert steps["leak"]["outputs"]["t"] == {"t": "***"}


def test_missing_secret_is_an_input_error(cli: Cli) -> None:
    cli.write(
        "plan.yaml", "name: p\nsecrets: [NOT_SET_ANYWHERE_X]\nsteps:\n  - id: a\n    run: 'true'\n"
    )
    result = cli("run", "plan.yaml")
    assert result.code == 2
    assert "NOT_SET_ANYWHERE_X" in result.err
    no_traceback(result)


def test_timeout_kills_the_whole_tree(cli: Cli) -> None:
    cli.write(
        "plan.yaml",
        """
        name: p
        defaults: {kill_grace: 1s, gates: []}  # the trap would be asked about; timeouts are the subject
        steps:
          - id: stubborn
            timeout: 1s
            run: |
              bash -c 'trap "" TERM; echo $$ > child.pid; sleep 60' &
              wait
        """,
    )
    started = time.monotonic()
    result = cli("run", "plan.yaml", "--json")
    assert result.code == 1
    assert time.monotonic() - started < 15
    step = result.json()["steps"][0]
    assert step["failure_class"] == "timeout"
    child = int((cli.project / "child.pid").read_text())
    assert (
        not Path(f"/proc/{child}").exists()
        or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    )


def test_agenthq_settings_do_not_leak_into_steps(cli: Cli) -> None:
    cli.write("plan.yaml", "name: p\n" + NO_GATES + "steps:\n  - id: env\n    run: env > env.txt\n")
    env = {**cli.env, "AGENTHQ_MAX_WORKERS": "3", "AGENTHQ_SERVER_TOKEN": "tok-should-not-leak"}
    done = subprocess.run(cli.command("run", "plan.yaml"), cwd=cli.project, env=env, check=False)
    assert done.returncode == 0
    seen = dict(
        line.split("=", 1)
        for line in (cli.project / "env.txt").read_text().splitlines()
        if "=" in line
    )
    assert "AGENTHQ_MAX_WORKERS" not in seen
    assert "tok-should-not-leak" not in seen.values()
    # What the engine gives every step instead: who it is and where the store is.
    assert seen["AGENTHQ_STEP_ID"] == "env"
    assert seen["AGENTHQ_ATTEMPT"] == "1"
    assert seen["AGENTHQ_HOME"] == str(cli.project / ".agenthq")
    assert seen["AGENTHQ_DB_URL"].startswith("sqlite:///")
    assert len(seen["AGENTHQ_RUN_ID"]) > 10


def test_cwd_cannot_escape_the_workspace(cli: Cli) -> None:
    cli.write("plan.yaml", "name: p\nsteps:\n  - id: a\n    cwd: ../..\n    run: pwd\n")
    result = cli("run", "plan.yaml", "--json")
    assert result.code == 1
    step = result.json()["steps"][0]
    assert step["failure_class"] == "infrastructure"
    assert "outside the workspace" in step["reason"]


def test_many_processes_share_one_store(cli: Cli) -> None:
    """Two runs and two readers at once: no 'database is locked', no lost transition."""
    steps = "".join(f"  - id: s{i}\n    run: 'true'\n" for i in range(40))
    cli.write("plan.yaml", "name: p\nsteps:\n" + steps)
    runs = [cli.spawn("run", "plan.yaml", "--max-workers", "4", "--quiet") for _ in range(2)]
    reader = (
        "import subprocess, sys, time\n"
        "end = time.time() + 6\n"
        "bad = 0\n"
        "while time.time() < end:\n"
        "    for args in (['runs', '--json'], ['events', 'last', '--json']):\n"
        "        r = subprocess.run([sys.executable, '-m', 'agenthq', *args], capture_output=True, text=True)\n"
        "        if 'locked' in r.stderr or 'Traceback' in r.stderr: bad += 1; print(r.stderr)\n"
        "print('bad', bad)\n"
    )
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", reader],
            cwd=cli.project,
            env=cli.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in runs:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "locked" not in err
    for process in readers:
        out, _ = process.communicate(timeout=60)
        assert out.strip().endswith("bad 0"), out
    listed = cli("runs", "--json", check=True).json()
    assert [r["state"] for r in listed] == ["succeeded", "succeeded"]
    for run in listed:
        events = cli("events", run["id"], "--json", check=True).json()
        succeeded = {e["step_id"] for e in events if e["to"] == "succeeded" and e["step_id"]}
        assert len(succeeded) == 40
    assert "intact" in cli("audit", "verify", check=True).out


def test_a_bad_spawner_setting_is_an_input_error(cli: Cli) -> None:
    cli.write("plan.yaml", "name: p\n" + NO_GATES + "steps:\n  - id: a\n    run: /bin/true\n")
    env = {**cli.env, "AGENTHQ_SPAWNER": "sometimes"}
    done = subprocess.run(
        cli.command("run", "plan.yaml"),
        cwd=cli.project,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "AGENTHQ_SPAWNER must be on or off, got 'sometimes'" in done.stderr
    assert "Traceback" not in done.stderr
    env["AGENTHQ_SPAWNER"] = "off"  # and switched off, the plan runs as before
    done = subprocess.run(cli.command("run", "plan.yaml"), cwd=cli.project, env=env, check=False)
    assert done.returncode == 0
