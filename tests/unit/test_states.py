"""The transition tables, walked pair by pair: every legal change passes, every other raises."""

from __future__ import annotations

import itertools

import pytest

from agenthq import states
from agenthq.errors import IllegalTransitionError
from agenthq.states import RunState, StepState

STEP_PAIRS = list(itertools.product(StepState, StepState))
RUN_PAIRS = list(itertools.product(RunState, RunState))


@pytest.mark.parametrize(
    ("current", "target"), STEP_PAIRS, ids=[f"{a}->{b}" for a, b in STEP_PAIRS]
)
def test_every_step_pair(current: StepState, target: StepState) -> None:
    if target in states.STEP_TRANSITIONS[current]:
        states.check_step_transition(current, target)
    else:
        with pytest.raises(IllegalTransitionError, match=f"from {current} to {target}"):
            states.check_step_transition(current, target)


@pytest.mark.parametrize(("current", "target"), RUN_PAIRS, ids=[f"{a}->{b}" for a, b in RUN_PAIRS])
def test_every_run_pair(current: RunState, target: RunState) -> None:
    if target in states.RUN_TRANSITIONS[current]:
        states.check_run_transition(current, target)
    else:
        with pytest.raises(IllegalTransitionError):
            states.check_run_transition(current, target)


def test_every_state_has_a_row() -> None:
    assert set(states.STEP_TRANSITIONS) == set(StepState)
    assert set(states.RUN_TRANSITIONS) == set(RunState)


def test_finished_steps_only_go_back_to_pending() -> None:
    # Only `agenthq retry` revives a finished step, and it always starts over at pending.
    for state in StepState:
        if state.finished:
            assert states.STEP_TRANSITIONS[state] == {StepState.PENDING}


def test_every_state_is_reachable_from_pending() -> None:
    seen = {StepState.PENDING}
    frontier = [StepState.PENDING]
    while frontier:
        for nxt in states.STEP_TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(StepState)


def test_a_running_step_cannot_skip_to_pending() -> None:
    with pytest.raises(IllegalTransitionError):
        states.check_step_transition(StepState.RUNNING, StepState.PENDING)
