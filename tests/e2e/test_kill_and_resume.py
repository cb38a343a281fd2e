"""SIGKILL a running `agenthq run` at a random moment, then `agenthq resume`: completed steps
never run again, interrupted ones are recorded `lost` and retried, and the run finishes."""

from __future__ import annotations

import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli


def _succeeded(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM steps WHERE state = 'succeeded'").fetchone()
    except sqlite3.Error:  # not created yet
        return 0
    return int(row[0])


def layered_plan(layers: int = 10, width: int = 6) -> str:
    # The ledger append would be asked about (a write); the plan's own policy allows it.
    lines = ["name: crashy", "policy: {allow: ['echo start *', 'sleep *']}", "steps:"]
    for layer in range(layers):
        for k in range(width):
            step = f"s{layer}_{k}"
            lines.append(f"  - id: {step}")
            if layer:
                lines.append(f"    needs: [s{layer - 1}_{k}, s{layer - 1}_{(k + 1) % width}]")
            # Each step leaves a line when it starts; a step that ran twice leaves two.
            lines.append(f"    run: echo start {step} >> ledger.txt; sleep 0.$((RANDOM % 3 + 2))")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_then_resume(cli: Cli, seed: int) -> None:
    cli.write("plan.yaml", layered_plan())
    process = cli.spawn("run", "plan.yaml", "--max-workers", "4", "--quiet")
    # Kill at a random moment after the first step finished (not after a fixed time: how long
    # start-up takes depends on the machine, and a kill before any step ended proves nothing).
    # The database is read directly: a CLI call per poll takes longer than a step here.
    database = cli.project / ".agenthq" / "agenthq.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _succeeded(database) < 1:
        time.sleep(0.02)
    time.sleep(random.Random(seed).uniform(0.0, 0.4))
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)

    before = cli("status", "last", "--json", check=True).json()
    assert before["state"] == "running"  # the dead process never got to finish it
    done_before = {s["id"] for s in before["steps"] if s["state"] == "succeeded"}
    interrupted = {s["id"] for s in before["steps"] if s["state"] == "running"}
    assert done_before, "kill came before anything finished; the test proves nothing"

    resumed = cli("resume", "last", "--json", timeout=120)
    assert resumed.code == 0, resumed.err
    after = {s["id"]: s for s in resumed.json()["steps"]}
    assert all(s["state"] == "succeeded" for s in after.values())

    starts = Counter(
        line.split()[1] for line in (cli.project / "ledger.txt").read_text().splitlines()
    )
    for step in done_before:
        assert starts[step] == 1, f"{step} had finished before the kill but ran again"
    assert set(starts) == set(after)
    for step in interrupted:
        assert after[step]["attempts"] >= 2  # the lost attempt, then a new one

    events = cli("events", "last", "--json", check=True).json()
    lost = {e["step_id"] for e in events if e["to"] == "lost"}
    assert lost == interrupted
    assert "intact" in cli("audit", "verify", check=True).out


def test_resume_refuses_while_the_owner_lives(cli: Cli) -> None:
    cli.write("plan.yaml", "name: p\nsteps:\n  - id: slow\n    run: sleep 20\n")
    process = cli.spawn("run", "plan.yaml", "--quiet")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            result = cli("status", "last", "--json")
            if result.code == 0 and result.json()["steps"][0]["state"] == "running":
                break
            time.sleep(0.1)
        refused = cli("resume", "last")
        assert refused.code == 2
        assert "being executed by process" in refused.err
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
