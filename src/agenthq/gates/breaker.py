"""Circuit breakers: stop feeding steps to an agent (or a gate) that keeps failing.

Closed → (N consecutive failures) → open → (cool-down) → half-open → one trial step →
closed on success, open again with twice the cool-down on failure. Pure functions over a
frozen state: the engine stores each new state (table `breakers`), so a breaker survives
restarts and every change is an event. Small enough that a library would add more than it
saves: the maintained Python breaker libraries keep state in process memory or Redis, not in
the store that is already our one source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class BreakerPhase(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerSettings:
    failures: int = 3  # consecutive failures that open the breaker
    cooldown_s: float = 60.0  # first cool-down; doubles on every failed trial
    max_cooldown_s: float = 3600.0


@dataclass(frozen=True)
class Breaker:
    key: str
    phase: BreakerPhase = BreakerPhase.CLOSED
    failures: int = 0
    opened_at: float | None = None
    cooldown_s: float = 0.0
    trips: int = 0
    trial_running: bool = False  # half-open and its one trial step has been let through


@dataclass(frozen=True)
class Admission:
    allowed: bool
    breaker: Breaker  # possibly moved to half-open
    reason: str | None = None
    retry_at: float | None = None  # when it is worth asking again


def admit(breaker: Breaker, settings: BreakerSettings, now: float) -> Admission:
    """May one more step start? Letting the half-open trial through marks it as running."""
    if breaker.phase is BreakerPhase.CLOSED:
        return Admission(True, breaker)
    if breaker.phase is BreakerPhase.OPEN:
        reopen_at = (breaker.opened_at or now) + breaker.cooldown_s
        if now < reopen_at:
            return Admission(
                False,
                breaker,
                f"breaker {breaker.key} is open after {breaker.failures} failures in a row; "
                f"it lets one step try again in {reopen_at - now:.0f}s",
                reopen_at,
            )
        breaker = replace(breaker, phase=BreakerPhase.HALF_OPEN, trial_running=False)
    if breaker.trial_running:
        return Admission(
            False,
            breaker,
            f"breaker {breaker.key} is half-open: waiting for its trial step",
            None,
        )
    return Admission(True, replace(breaker, trial_running=True))


def record_success(breaker: Breaker, settings: BreakerSettings) -> Breaker:
    del settings
    return Breaker(breaker.key, BreakerPhase.CLOSED, 0, None, 0.0, breaker.trips)


def record_failure(breaker: Breaker, settings: BreakerSettings, now: float) -> Breaker:
    failures = breaker.failures + 1
    if breaker.phase is BreakerPhase.HALF_OPEN:
        cooldown = min(max(breaker.cooldown_s, settings.cooldown_s) * 2, settings.max_cooldown_s)
        return Breaker(breaker.key, BreakerPhase.OPEN, failures, now, cooldown, breaker.trips + 1)
    if breaker.phase is BreakerPhase.CLOSED and failures >= settings.failures:
        return Breaker(
            breaker.key, BreakerPhase.OPEN, failures, now, settings.cooldown_s, breaker.trips + 1
        )
    return replace(breaker, failures=failures)
