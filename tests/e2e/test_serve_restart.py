"""A run handed to `agenthq serve` survives the server stopping: the next start continues it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from tests.e2e.conftest import Cli
from tests.server_fixture import free_port


def start_serve(cli: Cli, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "agenthq", "serve", "--port", str(port)],
        cwd=cli.project,
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C reaches the whole group, as in a terminal
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if re.search(r"login\?token=", process.stderr.readline()):
            return process
    raise AssertionError("serve did not start")


def ctrl_c(process: subprocess.Popen[str]) -> str:
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=30)
    return err


def state(cli: Cli) -> dict[str, object]:
    return dict(cli("status", "last", "--json", check=True).json())


def test_a_detached_run_continues_after_the_server_restarts(cli: Cli) -> None:
    cli.write(
        "slow.yaml",
        "name: slow\nsteps:\n  - id: nap\n    run: sleep 2\n"
        "  - id: after\n    needs: [nap]\n    run: echo done\n",
    )
    port = free_port()
    first = start_serve(cli, port)
    queued = cli("run", "slow.yaml", "--detach", check=True)
    run_id = queued.out.strip()
    deadline = time.monotonic() + 20
    while state(cli)["steps"][0]["state"] != "running":  # type: ignore[index]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    err = ctrl_c(first)
    assert "Traceback" not in err
    stopped = state(cli)
    assert stopped["state"] == "running"  # left unfinished, not failed or cancelled
    second = start_serve(cli, port)
    try:
        deadline = time.monotonic() + 30
        while state(cli)["state"] != "succeeded":
            assert time.monotonic() < deadline, state(cli)
            time.sleep(0.2)
    finally:
        assert "Traceback" not in ctrl_c(second)
    steps = {s["id"]: s for s in state(cli)["steps"]}  # type: ignore[attr-defined]
    assert steps["nap"]["attempts"] == 2  # the interrupted attempt was lost and retried
    assert steps["after"]["state"] == "succeeded"
    assert cli("status", run_id, "--json", check=True).json()["state"] == "succeeded"


def test_the_run_host_stops_when_serve_is_killed(cli: Cli) -> None:
    port = free_port()
    server = start_serve(cli, port)
    children = subprocess.run(
        ["pgrep", "-P", str(server.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert children, "serve started no run host"
    server.kill()  # SIGKILL to serve alone, not its process group
    server.communicate(timeout=10)
    deadline = time.monotonic() + 10
    alive = children
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in children if os.path.exists(f"/proc/{pid}")]
    assert not alive, "the run host outlived its server"
