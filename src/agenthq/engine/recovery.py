"""After a crash: attempts that were running when their runner died become `lost`.

Steps run at least once: an interrupted attempt may have done part of its work, so it is
retried under the step's policy (lost attempts have a budget of their own), never assumed
done. Its process, if it outlived the runner, is killed first so two copies never run.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import time

from agenthq.engine.retry import decide_retry
from agenthq.executors.procs import is_same_process
from agenthq.graph import PlanGraph
from agenthq.states import FailureClass, StepState
from agenthq.store.api import AttemptRecord, AttemptUpdate, Batch, StepChange, StepRecord

S = StepState
LOST_MESSAGE = (
    "the process running this attempt ended without reporting (its runner crashed or was killed)"
)


def kill_orphans(attempts: list[AttemptRecord], grace: float) -> list[AttemptRecord]:
    """Stop the process groups of open attempts that still run on this host; return them."""
    host = socket.gethostname()
    alive = [
        a
        for a in attempts
        if a.finished_at is None
        and a.pgid is not None
        and a.pid is not None
        and a.proc_start is not None
        and (a.owner or "").rsplit(":", 2)[0] == host
        and is_same_process(a.pid, a.proc_start)
    ]
    for attempt in alive:
        _signal_group(attempt.pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        if not any(_group_exists(a.pgid) for a in alive):
            break
        time.sleep(0.05)
    for attempt in alive:
        _signal_group(attempt.pgid, signal.SIGKILL)
    return alive


def _signal_group(pgid: int | None, sig: signal.Signals) -> None:
    if pgid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_exists(pgid: int | None) -> bool:
    if pgid is None:
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def mark_lost(
    run_id: str, steps: list[StepRecord], attempts: list[AttemptRecord], now: float
) -> Batch:
    """Batch 1: every in-flight step and open attempt becomes `lost`."""
    batch = Batch(at=now)
    open_attempts = {(a.step_id, a.number) for a in attempts if a.finished_at is None}
    for step_id, number in sorted(open_attempts):
        batch.attempt_updates.append(
            AttemptUpdate(
                run_id,
                step_id,
                number,
                {
                    "state": "lost",
                    "finished_at": now,
                    "failure_class": FailureClass.LOST,
                    "error": LOST_MESSAGE,
                },
            )
        )
    for step in steps:
        if step.state in (S.RUNNING, S.QUEUED):
            batch.steps.append(
                StepChange(
                    run_id,
                    step.step_id,
                    step.state,
                    S.LOST,
                    {"failure_class": FailureClass.LOST, "reason": LOST_MESSAGE},
                    step.attempts or None,
                    {"error": LOST_MESSAGE},
                )
            )
    return batch


def decide_lost(
    run_id: str, graph: PlanGraph, steps: list[StepRecord], now: float, rng: random.Random
) -> Batch:
    """Batch 2: each lost step is retried under its policy or fails."""
    batch = Batch(at=now)
    for step in steps:
        if step.state is not S.LOST:
            continue
        node = graph.nodes[step.step_id]
        decision = decide_retry(node.retry, FailureClass.LOST, step.retries_used, rng.random())
        if decision.retry:
            used = dict(step.retries_used)
            used[FailureClass.LOST.value] = used.get(FailureClass.LOST.value, 0) + 1
            fields = {
                "retries_used": used,
                "next_at": now + decision.delay,
                "reason": decision.reason,
            }
            batch.steps.append(
                StepChange(run_id, step.step_id, S.LOST, S.RETRYING, fields, step.attempts or None)
            )
        else:
            fields = {"finished_at": now, "reason": f"lost; {decision.reason}"}
            batch.steps.append(
                StepChange(run_id, step.step_id, S.LOST, S.FAILED, fields, step.attempts or None)
            )
    return batch
