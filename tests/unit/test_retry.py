"""Retry policy arithmetic: budgets per failure class and backoff delays, row by row."""

from __future__ import annotations

import pytest

from agenthq.engine.retry import backoff_delay, decide_retry
from agenthq.spec.models import RetrySpec
from agenthq.states import FailureClass as F

NO_JITTER = {"jitter": 0.0}


@pytest.mark.parametrize(
    ("policy", "retry_number", "expected"),
    [
        # exponential doubles from `initial`
        (RetrySpec(backoff="exponential", initial=1, max=100, **NO_JITTER), 1, 1.0),
        (RetrySpec(backoff="exponential", initial=1, max=100, **NO_JITTER), 4, 8.0),
        # ... and is capped at `max`
        (RetrySpec(backoff="exponential", initial=1, max=5, **NO_JITTER), 10, 5.0),
        # linear grows by `initial` each time
        (RetrySpec(backoff="linear", initial=2, max=100, **NO_JITTER), 3, 6.0),
        # constant never changes
        (RetrySpec(backoff="constant", initial=3, max=100, **NO_JITTER), 7, 3.0),
        # durations in plan syntax work the same
        (RetrySpec(backoff="constant", initial="1500ms", max="1m", **NO_JITTER), 1, 1.5),
    ],
)
def test_backoff_delay(policy: RetrySpec, retry_number: int, expected: float) -> None:
    assert backoff_delay(policy, retry_number, rand=0.5) == pytest.approx(expected)


@pytest.mark.parametrize("rand", [0.0, 0.25, 0.5, 0.75, 0.999])
def test_jitter_stays_within_its_band_and_under_max(rand: float) -> None:
    policy = RetrySpec(backoff="exponential", initial=4, max=10, jitter=0.5)
    delay = backoff_delay(policy, 1, rand)
    assert 2.0 <= delay <= 6.0
    assert backoff_delay(policy, 3, rand) <= 10.0


def test_jitter_spreads_delays() -> None:
    policy = RetrySpec(initial=10, max=100, jitter=0.2)
    assert backoff_delay(policy, 1, 0.0) < backoff_delay(policy, 1, 0.99)


@pytest.mark.parametrize(
    ("policy", "failure", "used", "retry"),
    [
        # a class listed in `on` gets max_attempts - 1 retries
        (RetrySpec(max_attempts=3, on=["execution"]), F.EXECUTION, {}, True),
        (RetrySpec(max_attempts=3, on=["execution"]), F.EXECUTION, {"execution": 2}, False),
        # a class not listed gets none
        (RetrySpec(max_attempts=3, on=["execution"]), F.TIMEOUT, {}, False),
        # budgets are counted per class: timeouts spent do not use execution's budget
        (RetrySpec(max_attempts=2, on=["execution", "timeout"]), F.EXECUTION, {"timeout": 1}, True),
        # explicit per-class budgets
        (RetrySpec(on={"execution": 1, "gate": 0}), F.EXECUTION, {}, True),
        (RetrySpec(on={"execution": 1, "gate": 0}), F.GATE, {}, False),
        # lost attempts have their own default budget even with max_attempts=1
        (RetrySpec(max_attempts=1), F.LOST, {}, True),
        (RetrySpec(max_attempts=1), F.LOST, {"lost": 2}, False),
        # ... unless the plan sets it
        (RetrySpec(on={"lost": 0}), F.LOST, {}, False),
        # the default policy does not retry execution failures
        (RetrySpec(), F.EXECUTION, {}, False),
    ],
)
def test_decide_retry(policy: RetrySpec, failure: F, used: dict[str, int], retry: bool) -> None:
    decision = decide_retry(policy, failure, used, rand=0.5)
    assert decision.retry is retry
    assert decision.reason
    if not retry:
        assert decision.delay == 0.0
