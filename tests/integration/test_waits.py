"""Steps that only wait — `wait`, `wait_until`, `wait_for: {approval: true}` — on a real
SQLite store, with time injected: a two-day wait ends when the clock says so (no sleeping),
a wait costs no attempt and no process, and a person's go-ahead (or its expiry) decides a
`wait_for` step."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import agenthq
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.errors import PlanError
from agenthq.spec.load import load_plan_text
from agenthq.states import StepState
from agenthq.store.api import ApprovalDecision, ApprovalState, RunRecord, Store

DAY = 86400.0
START = datetime(2026, 3, 28, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    """Wall time from a chosen start, moving at real speed, that a test can jump ahead."""

    def __init__(self, start: float) -> None:
        self.offset = start - time.monotonic()
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.offset += seconds


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as opened:
        yield opened


def runner_for(store: Store, tmp_path: Path, clock: Callable[[], float]) -> Runner:
    return Runner(
        store,
        home=tmp_path / ".agenthq",
        environ={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        gates=GateConfig(),
        clock=clock,
        scheduler_options=SchedulerOptions(poll_interval=0.02),
    )


def in_thread(runner: Runner, run_id: str) -> tuple[threading.Thread, list[RunRecord]]:
    out: list[RunRecord] = []
    thread = threading.Thread(target=lambda: out.append(asyncio.run(runner.execute_async(run_id))))
    thread.start()
    return thread, out


def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


def state_of(store: Store, run_id: str, step: str) -> StepState:
    return next(s.state for s in store.get_steps(run_id) if s.step_id == step)


PLAN = """
name: waits
steps:
  - id: build
    run: echo built
  - id: soak
    needs: [build]
    wait: 2d
  - id: release
    needs: [soak]
    run: echo released
"""


def test_a_two_day_wait_ends_when_the_clock_says(store: Store, tmp_path: Path) -> None:
    clock = Clock(START)
    runner = runner_for(store, tmp_path, clock)
    record = runner.start(load_plan_text(PLAN, name="waits.yaml"), workspace=tmp_path)
    thread, out = in_thread(runner, record.id)
    until(lambda: state_of(store, record.id, "soak") is StepState.WAITING)
    soak = next(s for s in store.get_steps(record.id) if s.step_id == "soak")
    assert soak.next_at == pytest.approx(START + 2 * DAY, abs=30)
    assert soak.attempts == 0
    clock.advance(DAY)
    time.sleep(0.2)  # ten polls at the new time: still a day to go
    assert state_of(store, record.id, "soak") is StepState.WAITING
    clock.advance(DAY + 1)
    thread.join(timeout=20)
    assert out[0].state.value == "succeeded"
    steps = {s.step_id: s for s in store.get_steps(record.id)}
    assert steps["soak"].outputs["waited_until"].startswith("2026-03-30T12:00")
    assert steps["release"].started_at is not None
    assert steps["release"].started_at >= START + 2 * DAY
    # A wait is no attempt: nothing was executed for it.
    assert {a.step_id for a in store.get_attempts(record.id)} == {"build", "release"}


def test_wait_until_a_moment_in_the_past_goes_straight_on(store: Store, tmp_path: Path) -> None:
    text = PLAN.replace("wait: 2d", 'wait_until: "2026-03-01T09:00:00+01:00"')
    runner = runner_for(store, tmp_path, Clock(START))
    record = runner.start(load_plan_text(text, name="waits.yaml"), workspace=tmp_path)
    thread, out = in_thread(runner, record.id)
    thread.join(timeout=20)
    assert out[0].state.value == "succeeded"
    soak = next(s for s in store.get_steps(record.id) if s.step_id == "soak")
    assert soak.next_at is None  # ended
    assert soak.outputs["waited_until"].startswith("2026-03-28T12:00")


def test_a_wait_for_approval_continues_on_a_go_ahead(store: Store, tmp_path: Path) -> None:
    text = PLAN.replace("wait: 2d", 'wait_for: {approval: true, message: "freeze over?"}')
    clock = Clock(START)
    runner = runner_for(store, tmp_path, clock)
    record = runner.start(load_plan_text(text, name="waits.yaml"), workspace=tmp_path)
    thread, out = in_thread(runner, record.id)
    until(lambda: bool(store.list_approvals(run_id=record.id)))
    (approval,) = store.list_approvals(run_id=record.id)
    assert approval.kind.value == "wait"
    assert approval.command is None
    assert list(approval.reasons) == ["freeze over?"]
    until(lambda: store.get_run(record.id).state.value == "awaiting_approval")
    store.decide_approval(
        ApprovalDecision(approval.id, ApprovalState.APPROVED, "ana", clock(), "thawed")
    )
    thread.join(timeout=20)
    assert out[0].state.value == "succeeded"
    soak = next(s for s in store.get_steps(record.id) if s.step_id == "soak")
    assert soak.outputs == {"approved_by": "ana", "note": "thawed"}
    assert soak.attempts == 0


def test_an_unanswered_wait_for_expires_by_its_sla(store: Store, tmp_path: Path) -> None:
    text = PLAN.replace("wait: 2d", "wait_for: {approval: true}\n    approval: {timeout: 1d}")
    clock = Clock(START)
    runner = runner_for(store, tmp_path, clock)
    record = runner.start(load_plan_text(text, name="waits.yaml"), workspace=tmp_path)
    thread, out = in_thread(runner, record.id)
    until(lambda: bool(store.list_approvals(run_id=record.id)))
    clock.advance(DAY + 1)
    thread.join(timeout=20)
    assert out[0].state.value == "failed"
    steps = {s.step_id: s for s in store.get_steps(record.id)}
    assert steps["soak"].state is StepState.FAILED
    assert "expired" in (steps["soak"].reason or "")
    assert steps["release"].state is StepState.BLOCKED


def test_cancelling_a_waiting_run_cancels_the_wait(store: Store, tmp_path: Path) -> None:
    runner = runner_for(store, tmp_path, Clock(START))
    record = runner.start(load_plan_text(PLAN, name="waits.yaml"), workspace=tmp_path)
    thread, out = in_thread(runner, record.id)
    until(lambda: state_of(store, record.id, "soak") is StepState.WAITING)
    store.request_cancel(record.id)
    thread.join(timeout=20)
    assert out[0].state.value == "cancelled"
    assert state_of(store, record.id, "soak") is StepState.CANCELLED


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("wait: 2d\n    run: echo x", "has both `run` and `wait`"),
        ('wait_until: "2026-12-01T09:00:00"', "has no time zone"),
        ("wait_for: {approval: false}", "`wait_for` needs `approval: true`"),
        ("wait: 1h\n    timeout: 5m", "only waits, so `timeout` would do nothing"),
        ("wait: soon", "invalid duration"),
    ],
)
def test_bad_waits_are_refused_with_a_reason(step: str, message: str) -> None:
    text = f"name: bad\nsteps:\n  - id: w\n    {step}\n"
    with pytest.raises(PlanError) as caught:
        load_plan_text(text, name="bad.yaml")
    assert message in str(caught.value)
    assert "bad.yaml:" in str(caught.value)
