"""Health checks: an agent's command, run on its schedule, decides whether it takes work.

A check passes when its command exits 0 within its timeout. A failure is retried after a
backoff that doubles each time, and only when every try failed is the agent marked
`unhealthy`; a command that cannot start at all (not installed: exit 126/127) marks it
`offline`. Results go to the store, so every scheduler and `agenthq agents` see the same
answer, and the next check is due `every` seconds after this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from agenthq.agents.registry import Agent
from agenthq.spec.agents import HealthCheckSpec
from agenthq.store.api import AgentHealth, Store

_NOT_RUNNABLE = (126, 127)  # the shell's "cannot execute" and "command not found"


@dataclass(frozen=True)
class CheckResult:
    health: str  # healthy | unhealthy | offline
    detail: str | None
    tries: int


async def run_check(
    check: HealthCheckSpec,
    env: Mapping[str, str],
    *,
    sleep: Callable[[float], object] = asyncio.sleep,
) -> CheckResult:
    """Try the command up to 1 + retries times; never raises for what the command did."""
    detail: str | None = None
    for tries in range(1, check.retries + 2):
        code, detail = await _once(check.command, env, check.timeout)
        if code == 0:
            return CheckResult("healthy", None, tries)
        if code in _NOT_RUNNABLE:
            return CheckResult("offline", detail, tries)
        if tries <= check.retries:
            pause = check.backoff * (2 ** (tries - 1))
            await sleep(pause)  # type: ignore[misc]
    return CheckResult("unhealthy", detail, check.retries + 1)


async def _once(command: str, env: Mapping[str, str], timeout: float) -> tuple[int, str | None]:
    try:
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )
    except OSError as exc:
        return 127, f"cannot start the check: {exc}"
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return 124, f"the check did not answer within {timeout:g}s"
    code = proc.returncode if proc.returncode is not None else 1
    lines = output.decode("utf-8", "replace").strip().splitlines()
    last = lines[-1][:300] if lines else None
    return code, (f"exit {code}: {last}" if last else f"exit {code}") if code else None


async def check_agent(
    store: Store, agent: Agent, env: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> AgentHealth | None:
    """Run one agent's check now and record it; None for an agent without one."""
    check = agent.spec.health
    if check is None:
        return None
    previous = store.agent_health().get(agent.name)
    result = await run_check(check, {**env, **agent.spec.env})
    at = now()
    failures = 0 if result.health == "healthy" else (previous.failures if previous else 0) + 1
    record = AgentHealth(agent.name, result.health, result.detail, failures, at, at + check.every)
    store.record_agent_health(record)
    return record


class HealthMonitor:
    """Runs due checks of the given agents until cancelled; one check per agent at a time."""

    def __init__(self, store: Store, agents: Iterable[Agent], env: Mapping[str, str]) -> None:
        self.store = store
        self.agents = [a for a in agents if a.spec.health is not None]
        self.env = dict(env)

    def __bool__(self) -> bool:
        return bool(self.agents)

    async def run(self) -> None:
        while True:
            due_in = await self.check_due()
            await asyncio.sleep(min(max(due_in, 0.2), 30.0))

    async def check_due(self) -> float:
        """Check every agent whose next check is due; seconds until the next one is."""
        known = self.store.agent_health()
        now = time.time()
        due = [
            a for a in self.agents if a.name not in known or (known[a.name].next_at or 0.0) <= now
        ]
        if due:
            await asyncio.gather(*(check_agent(self.store, a, self.env) for a in due))
            known = self.store.agent_health()
        waits = [
            (known[a.name].next_at or now) - time.time() for a in self.agents if a.name in known
        ]
        return min(waits, default=30.0)
