"""Whether and when a failed attempt is tried again. Pure: policy in, decision out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agenthq.spec.models import Backoff, RetrySpec
from agenthq.states import FailureClass


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay: float  # seconds to wait before the next attempt (0 when not retrying)
    reason: str


def backoff_delay(policy: RetrySpec, retry_number: int, rand: float) -> float:
    """Delay before retry number `retry_number` (1 = the first retry).

    `rand` in [0, 1) spreads the delay by ±`policy.jitter` so that many steps failing together
    do not all come back at the same instant; the result never exceeds `policy.max`.
    """
    n = max(1, retry_number)
    if policy.backoff is Backoff.CONSTANT:
        base = policy.initial
    elif policy.backoff is Backoff.LINEAR:
        base = policy.initial * n
    else:
        base = policy.initial * (2.0 ** (n - 1))
    base = min(base, policy.max)
    spread = base * policy.jitter * (2.0 * rand - 1.0)
    return max(0.0, min(policy.max, base + spread))


def decide_retry(
    policy: RetrySpec,
    failure: FailureClass,
    retries_used: Mapping[str, int],
    rand: float,
) -> RetryDecision:
    """Retry when the class has budget left; every class counts its own retries."""
    budget = policy.budgets().get(failure, 0)
    used = retries_used.get(failure.value, 0)
    if budget <= 0:
        return RetryDecision(False, 0.0, f"{failure} failures are not retried")
    if used >= budget:
        return RetryDecision(False, 0.0, f"{failure} retry budget spent ({used} of {budget})")
    delay = backoff_delay(policy, used + 1, rand)
    return RetryDecision(True, delay, f"{failure} retry {used + 1} of {budget}")
