"""Runs on `agenthq worker` processes against a real PostgreSQL: two workers share a run and
run every step exactly once, capabilities route steps, a SIGKILLed worker's steps finish on
another worker after its lease expires, and its late result could not count."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import agenthq
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner, RunOptions
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.spec.load import load_plan_text
from agenthq.store.api import Store
from tests.conftest import postgres_database


@pytest.fixture
def pg_url(postgres_server: str) -> str:
    return postgres_database(postgres_server)


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    with agenthq.open_store(pg_url) as opened:
        yield opened


def start_worker(pg_url: str, home: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHQ_")}
    env.update(AGENTHQ_DB_URL=pg_url, AGENTHQ_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-m", "agenthq", "worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def stop(*workers: subprocess.Popen[str]) -> list[str]:
    """SIGTERM them; what each printed."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    return [worker.communicate(timeout=20)[0] for worker in workers]


def runner_for(store: Store, tmp_path: Path) -> Runner:
    return Runner(
        store,
        home=tmp_path / ".agenthq",
        environ={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        gates=GateConfig(),
        scheduler_options=SchedulerOptions(poll_interval=0.05),
    )


FANOUT = """
name: fanout
policy: {allow: ["echo *"]}
steps:
  - id: job
    foreach: [%s]
    run: >-
      echo "{{ item }} $AGENTHQ_ATTEMPT" >> %s/ledger.txt; echo '{"n": {{ item }}}'
  - id: gpu
    requires: [gpu]
    run: echo "gpu" >> %s/gpu.txt
"""


def test_two_workers_run_every_step_once_and_route_by_capability(
    store: Store, pg_url: str, tmp_path: Path
) -> None:
    items = ", ".join(str(i) for i in range(40))
    plan = load_plan_text(FANOUT % (items, tmp_path, tmp_path), name="fanout.yaml")
    cpu = start_worker(pg_url, tmp_path / "w1", "--concurrency", "4")
    gpu = start_worker(pg_url, tmp_path / "w2", "--concurrency", "4", "-c", "gpu")
    # Both listening before the run: a worker still starting when the SIGTERM of `stop` came
    # would die before its handler existed (and print nothing), which is not what is tested.
    for worker in (cpu, gpu):
        assert worker.stdout is not None
        assert "capabilities" in worker.stdout.readline()
    outputs = ["", ""]
    try:
        runner = runner_for(store, tmp_path)
        record = runner.start(plan, workspace=tmp_path, max_workers=50)
        final = runner.execute(record.id, options=RunOptions(on_workers=True))
    finally:
        outputs = stop(cpu, gpu)
    assert final.state.value == "succeeded"
    lines = (tmp_path / "ledger.txt").read_text().splitlines()
    assert Counter(line.split()[0] for line in lines) == {str(i): 1 for i in range(40)}
    steps = {s.step_id: s for s in store.get_steps(record.id)}
    assert all(steps[f"job[{i}]"].outputs == {"n": i} for i in range(40))
    assert (tmp_path / "gpu.txt").read_text() == "gpu\n"
    done = [int(out.split("stopped after ")[1].split()[0]) for out in outputs]
    assert sum(done) == 41
    assert done[1] >= 1  # the gpu step can only have run on the gpu worker
    # Logs of steps that ran on workers are in the database.
    (attempt,) = store.get_attempts(record.id, "job[7]")
    assert store.read_log((record.id, "job[7]", attempt.number), "stdout") == '{"n": 7}\n'
    # Each attempt row says which worker ran it; the gpu step, the gpu worker.
    owners = {a.step_id: a.owner or "" for a in store.get_attempts(record.id)}
    assert all(owner.startswith("worker ") for owner in owners.values())
    assert len({owners[f"job[{i}]"] for i in range(40)} | {owners["gpu"]}) == 2
    # Steps that ran on workers leave telemetry like any other (the scheduler writes it).
    rows = [r for r in store.list_telemetry() if r.run_id == record.id]
    assert sorted(r.step_id for r in rows) == sorted(owners)
    assert all(r.outcome == "succeeded" for r in rows)


SLOW = """
name: slow
policy: {allow: ["sleep *"]}
defaults:
  retry: {max_attempts: 1}
steps:
  - id: nap
    foreach: [1, 2]
    run: >-
      sleep 1.5; echo '{"done": {{ item }}}'
"""


def test_a_killed_workers_steps_finish_on_another(
    store: Store, pg_url: str, tmp_path: Path
) -> None:
    doomed = start_worker(pg_url, tmp_path / "w1", "--concurrency", "2", "--lease", "2s")
    runner = runner_for(store, tmp_path)
    record = runner.start(load_plan_text(SLOW, name="slow.yaml"), workspace=tmp_path)
    import threading

    out: list[object] = []
    thread = threading.Thread(
        target=lambda: out.append(
            asyncio.run(runner.execute_async(record.id, options=RunOptions(on_workers=True)))
        )
    )
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        claimed = [s for s in store.work_status(record.id) if s.state == "claimed"]
        if len(claimed) == 2:
            break
        time.sleep(0.05)
    killed_at = time.monotonic()
    os.killpg(doomed.pid, signal.SIGKILL)  # the worker and the steps it was running
    doomed.communicate(timeout=10)
    rescuer = start_worker(pg_url, tmp_path / "w2", "--concurrency", "2")
    try:
        thread.join(timeout=60)
    finally:
        stop(rescuer)
    assert out, "the run did not finish"
    final = store.get_run(record.id)
    assert final.state.value == "succeeded"
    for step in ("nap[1]", "nap[2]"):
        tries = store.get_attempts(record.id, step)
        assert [a.failure_class.value if a.failure_class else None for a in tries] == [
            "lost",
            None,
        ]
    # The lease (2 s) had to run out before anyone else could take them.
    assert time.monotonic() - killed_at >= 2.0


def test_serve_sends_steps_to_workers_when_enabled(pg_url: str, tmp_path: Path) -> None:
    from tests.server_fixture import serve

    project = tmp_path / "project"
    project.mkdir()
    worker = start_worker(pg_url, tmp_path / "w", "--concurrency", "2")
    served = serve(
        project,
        environ={"AGENTHQ_DB_URL": pg_url},
        toml="[workers]\nenabled = true\n",
        allow=("echo *",),
    )
    live = next(served)
    try:
        plan = "name: remote\nsteps:\n  - id: hello\n    run: echo hello from a worker\n"
        with live.client() as http:
            run = http.post("/api/runs", json={"plan": plan}).json()
            assert live.wait_run(run["id"], ("succeeded", "failed"))["state"] == "succeeded"
            logs = http.get(f"/api/runs/{run['id']}/steps/hello/logs").json()
        assert logs["text"] == "hello from a worker\n"  # from the database: the worker ran it
    finally:
        with contextlib.suppress(StopIteration):
            next(served)
        (out,) = stop(worker)
    assert "stopped after 1 step(s)" in out
