"""The states of runs and steps and the one table of legal changes between them.

Every store write checks its transition against these tables, so a state change that is not
written here cannot happen; `docs/states.md` draws the same tables. Pure: no I/O.
"""

from __future__ import annotations

from enum import StrEnum

from agenthq.errors import IllegalTransitionError


class RunState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    AWAITING_APPROVAL = "awaiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _RUN_FINISHED


class StepState(StrEnum):
    PENDING = "pending"
    READY = "ready"
    GATING = "gating"
    AWAITING_APPROVAL = "awaiting_approval"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    WAITING = "waiting"  # a `wait`/`wait_until` step: a timer, no process
    LOST = "lost"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"

    @property
    def finished(self) -> bool:
        """True for states nothing moves out of without a person (retry) asking."""
        return self in _STEP_FINISHED

    @property
    def active(self) -> bool:
        """True while an attempt exists that may still be doing work."""
        return self in (StepState.QUEUED, StepState.RUNNING)


class FailureClass(StrEnum):
    """Why an attempt failed; each class has its own retry budget."""

    EXECUTION = "execution"  # the step ran and reported failure (non-zero exit, exception)
    TIMEOUT = "timeout"  # the step ran past its timeout and was killed
    GATE = "gate"  # a gate refused the step
    LOST = "lost"  # its process or worker vanished (crash, SIGKILL, lease expiry)
    INFRASTRUCTURE = "infrastructure"  # it could not be started at all
    MERGE = "merge"  # its changes could not be merged back


_RUN_FINISHED = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED})
_STEP_FINISHED = frozenset(
    {
        StepState.SUCCEEDED,
        StepState.FAILED,
        StepState.SKIPPED,
        StepState.CANCELLED,
        StepState.BLOCKED,
    }
)

R, S = RunState, StepState

RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    R.PENDING: frozenset({R.RUNNING, R.CANCELLED, R.FAILED}),
    R.RUNNING: frozenset({R.PAUSED, R.AWAITING_APPROVAL, R.SUCCEEDED, R.FAILED, R.CANCELLED}),
    R.PAUSED: frozenset({R.RUNNING, R.CANCELLED}),
    R.AWAITING_APPROVAL: frozenset({R.RUNNING, R.PAUSED, R.FAILED, R.CANCELLED}),
    # `agenthq retry` gives a finished run new attempts; a succeeded run may be retried --from.
    R.SUCCEEDED: frozenset({R.RUNNING}),
    R.FAILED: frozenset({R.RUNNING}),
    R.CANCELLED: frozenset({R.RUNNING}),
}

STEP_TRANSITIONS: dict[StepState, frozenset[StepState]] = {
    # pending → failed: its `when` could not be evaluated, so no attempt was made.
    S.PENDING: frozenset({S.READY, S.SKIPPED, S.BLOCKED, S.FAILED, S.CANCELLED}),
    # Local dispatch goes ready → running; queued is for steps handed to remote workers.
    # ready → waiting / awaiting_approval: a step that only waits (a timer or a person).
    S.READY: frozenset(
        {S.GATING, S.QUEUED, S.RUNNING, S.WAITING, S.AWAITING_APPROVAL, S.CANCELLED}
    ),
    S.WAITING: frozenset({S.SUCCEEDED, S.CANCELLED}),
    S.GATING: frozenset(
        {S.AWAITING_APPROVAL, S.QUEUED, S.RUNNING, S.FAILED, S.RETRYING, S.CANCELLED}
    ),
    # awaiting_approval → succeeded: a `wait_for: {approval: true}` step a person let through.
    S.AWAITING_APPROVAL: frozenset(
        {S.GATING, S.QUEUED, S.RUNNING, S.SUCCEEDED, S.FAILED, S.CANCELLED}
    ),
    S.QUEUED: frozenset({S.RUNNING, S.READY, S.LOST, S.CANCELLED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.RETRYING, S.LOST, S.CANCELLED}),
    S.RETRYING: frozenset({S.READY, S.CANCELLED}),
    # Recovery decides what a lost attempt becomes: another try, a failure, or a person's call.
    S.LOST: frozenset({S.RETRYING, S.READY, S.FAILED, S.AWAITING_APPROVAL, S.CANCELLED}),
    # Finished states only move back to pending, when a person asks for `agenthq retry`.
    S.SUCCEEDED: frozenset({S.PENDING}),
    S.FAILED: frozenset({S.PENDING}),
    S.SKIPPED: frozenset({S.PENDING}),
    S.CANCELLED: frozenset({S.PENDING}),
    S.BLOCKED: frozenset({S.PENDING}),
}


def check_run_transition(current: RunState, target: RunState) -> None:
    """Raise IllegalTransitionError unless `current → target` is in RUN_TRANSITIONS."""
    if target not in RUN_TRANSITIONS[current]:
        raise IllegalTransitionError(f"run cannot go from {current} to {target}")


def check_step_transition(current: StepState, target: StepState) -> None:
    """Raise IllegalTransitionError unless `current → target` is in STEP_TRANSITIONS."""
    if target not in STEP_TRANSITIONS[current]:
        raise IllegalTransitionError(f"step cannot go from {current} to {target}")
