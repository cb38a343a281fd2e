"""Fault injection: `AGENTHQ_CHAOS="latency=0.2,fail=0.05,kill=0.01,seed=7"`.

Wraps every executor so that, for each attempt, it may
- wait up to `latency` seconds before starting (a slow machine, a cold cache),
- fail without running, with probability `fail` (failure class `execution`),
- SIGKILL the attempt's whole process group while it runs, with probability `kill` — what
  the OOM killer or a dying worker does (failure class `lost`).

Every injection is written as a `chaos.*` event of the attempt, so a run under chaos
explains itself. The reliability tests and `make bench` run plans under it to show that
retries, recovery and the store still get every plan to the right end. One generator
seeded with `seed` decides everything, so a failing combination can be replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections.abc import Mapping
from dataclasses import dataclass

from agenthq.errors import ConfigError
from agenthq.executors.base import Executor, Invocation, Outcome, StartedCallback
from agenthq.states import FailureClass
from agenthq.store.api import NewEvent

ENV = "AGENTHQ_CHAOS"
_KEYS = ("latency", "fail", "kill", "seed")


@dataclass(frozen=True)
class ChaosSettings:
    latency: float = 0.0  # seconds, the most an attempt is delayed
    fail: float = 0.0  # probability an attempt fails without running
    kill: float = 0.0  # probability its process group is killed while it runs
    seed: int | None = None


def parse_chaos(text: str) -> ChaosSettings:
    """`latency=0.2,fail=0.05,kill=0.01,seed=7` → settings; ConfigError naming the part."""
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or key not in _KEYS:
            raise ConfigError(
                f"{ENV}: {part!r} is not one of {', '.join(k + '=N' for k in _KEYS)}; "
                'e.g. AGENTHQ_CHAOS="latency=0.2,fail=0.05,kill=0.01,seed=7"'
            )
        try:
            values[key] = float(raw)
        except ValueError:
            raise ConfigError(f"{ENV}: {key}={raw!r} is not a number") from None
    for key in ("fail", "kill"):
        if not 0.0 <= values.get(key, 0.0) <= 1.0:
            raise ConfigError(f"{ENV}: {key} is a probability, between 0 and 1")
    if values.get("latency", 0.0) < 0:
        raise ConfigError(f"{ENV}: latency must not be negative")
    seed = values.get("seed")
    return ChaosSettings(
        latency=values.get("latency", 0.0),
        fail=values.get("fail", 0.0),
        kill=values.get("kill", 0.0),
        seed=int(seed) if seed is not None else None,
    )


def chaos_from(environ: Mapping[str, str]) -> ChaosSettings | None:
    text = environ.get(ENV, "").strip()
    return parse_chaos(text) if text else None


class Monkey:
    """The shared dice and the log of what they did, drained into each tick's batch."""

    def __init__(self, settings: ChaosSettings) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.events: list[NewEvent] = []

    def note(self, invocation: Invocation, fault: str, **details: object) -> None:
        self.events.append(
            NewEvent(
                f"chaos.{fault}",
                run_id=invocation.run_id,
                step_id=invocation.step_id,
                attempt=invocation.attempt,
                details={"fault": fault, **details},
            )
        )

    def take_events(self) -> list[NewEvent]:
        events, self.events = self.events, []
        return events


class ChaosExecutor:
    def __init__(self, inner: Executor, monkey: Monkey) -> None:
        self.inner = inner
        self.monkey = monkey

    async def run(self, invocation: Invocation, on_started: StartedCallback) -> Outcome:
        s, rng = self.monkey.settings, self.monkey.rng
        if s.latency > 0:
            delay = round(rng.uniform(0.0, s.latency), 3)
            self.monkey.note(invocation, "latency", seconds=delay)
            await asyncio.sleep(delay)
        if rng.random() < s.fail:
            self.monkey.note(invocation, "fail")
            return Outcome(FailureClass.EXECUTION, error="chaos: injected failure")
        if rng.random() >= s.kill:
            return await self.inner.run(invocation, on_started)
        if invocation.target is not None:  # an in-process callable: its "worker" is us
            self.monkey.note(invocation, "kill", when="before start")
            return Outcome(FailureClass.LOST, error="chaos: the worker died before the step ran")
        return await self._killed(invocation, on_started, rng.uniform(0.0, 0.3))

    async def _killed(
        self, invocation: Invocation, on_started: StartedCallback, after: float
    ) -> Outcome:
        """Run it and SIGKILL its process group `after` seconds in (or once it started)."""
        group: list[int] = []

        def started(pid: int, pgid: int, start_ticks: int | None) -> None:
            group.append(pgid)
            on_started(pid, pgid, start_ticks)

        async def assassin() -> None:
            await asyncio.sleep(after)
            while not group:
                await asyncio.sleep(0.01)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group[0], signal.SIGKILL)

        killer = asyncio.create_task(assassin())
        try:
            outcome = await self.inner.run(invocation, started)
        finally:
            killer.cancel()
        if killer.done() and not killer.cancelled():
            self.monkey.note(invocation, "kill", after_s=round(after, 3), pgid=group[0])
            return Outcome(
                FailureClass.LOST, exit_code=outcome.exit_code, error="chaos: process group killed"
            )
        return outcome  # it finished before the kill came: the dice said kill, time said no


def wrap(executors: Mapping[str, Executor], monkey: Monkey) -> dict[str, Executor]:
    return {kind: ChaosExecutor(inner, monkey) for kind, inner in executors.items()}
