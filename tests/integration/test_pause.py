"""`agenthq pause` on a real SQLite store: under load a paused run never starts another
attempt (running ones finish), resuming goes on, and the pause is durable — a run paused
while nobody executes it stays paused when a process takes it up."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import agenthq
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.store.api import RunRecord, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as opened:
        yield opened


def make_runner(store: Store, tmp_path: Path) -> Runner:
    return Runner(
        store,
        home=tmp_path / ".agenthq",
        environ={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        gates=GateConfig(),
        scheduler_options=SchedulerOptions(poll_interval=0.05),
    )


def plan(steps: int) -> agenthq.Plan:
    built = agenthq.Plan("load")
    for i in range(steps):
        built.step(f"s{i}", uses="agenthq.builtin:sleep", with_={"seconds": 0.15})
    return built


def in_thread(runner: Runner, run_id: str) -> tuple[threading.Thread, list[RunRecord]]:
    out: list[RunRecord] = []
    # execute_async: signal handlers (execute's Ctrl-C handling) live in the main thread only.
    thread = threading.Thread(target=lambda: out.append(asyncio.run(runner.execute_async(run_id))))
    thread.start()
    return thread, out


def wait_for(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_a_paused_run_starts_nothing_new_and_resumes(store: Store, tmp_path: Path) -> None:
    runner = make_runner(store, tmp_path)
    record = runner.start(plan(40), workspace=tmp_path, max_workers=4)
    thread, out = in_thread(runner, record.id)
    wait_for(lambda: len(store.get_attempts(record.id)) >= 6)
    runner.pause(record.id)
    wait_for(lambda: store.get_run(record.id).state.value == "paused")
    paused_at = next(
        e.at
        for e in store.read_events(run_id=record.id)
        if e.kind == "run" and e.to_state == "paused"
    )
    time.sleep(0.8)  # long enough for several more steps, had any started
    attempts = store.get_attempts(record.id)
    assert all(a.started_at <= paused_at for a in attempts)
    assert all(a.finished_at is not None for a in attempts)  # the running ones finished
    assert len(attempts) < 40
    assert store.get_run(record.id).state.value == "paused"
    assert runner.lift_pause(record.id) is None  # this process executes it: it goes on
    thread.join(timeout=60)
    assert out[0].state.value == "succeeded"
    states = [e.to_state for e in store.read_events(run_id=record.id) if e.kind == "run"]
    assert states[-3:] == ["paused", "running", "succeeded"]


def test_a_pause_survives_until_someone_resumes(store: Store, tmp_path: Path) -> None:
    runner = make_runner(store, tmp_path)
    record = runner.start(plan(3), workspace=tmp_path)
    runner.pause(record.id)  # nobody executes it yet
    thread, out = in_thread(make_runner(store, tmp_path), record.id)
    wait_for(lambda: store.get_run(record.id).state.value == "paused")
    time.sleep(0.3)
    assert store.get_attempts(record.id) == []
    store.request_pause(record.id, False)
    thread.join(timeout=60)
    assert out[0].state.value == "succeeded"


def test_cancel_while_paused_cancels(store: Store, tmp_path: Path) -> None:
    runner = make_runner(store, tmp_path)
    record = runner.start(plan(3), workspace=tmp_path)
    runner.pause(record.id)
    thread, out = in_thread(make_runner(store, tmp_path), record.id)
    wait_for(lambda: store.get_run(record.id).state.value == "paused")
    store.request_cancel(record.id)
    thread.join(timeout=60)
    assert out[0].state.value == "cancelled"
