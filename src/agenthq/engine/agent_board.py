"""Where the scheduler learns which agent may take a step now.

It joins what the registry declares (capabilities, max_concurrency) with what the store knows
(steps running on each agent in other runs, health checks, failures in the last 24 h) and what
this run holds in memory (its own running steps, quarantines, breakers). Store reads are
refreshed at most once a second, and only when a step that names an agent is placed: plans
without agents never pay for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agenthq.agents.registry import Agent, Candidate, Pick, Registry
from agenthq.store.api import AgentActivity, AgentHealth, Store

REFRESH_SECONDS = 1.0
FAILURE_WINDOW = 24 * 3600.0


@dataclass(frozen=True)
class Placement:
    agent: Agent | None  # None: a step without an agent, or an agent nobody declared
    name: str | None
    hold: str | None  # why the step must wait, or None


class AgentBoard:
    def __init__(self, store: Store, registry: Registry, run_id: str) -> None:
        self.store = store
        self.registry = registry
        self.run_id = run_id
        self._read_at = float("-inf")
        self._others: dict[str, AgentActivity] = {}
        self._health: dict[str, AgentHealth] = {}

    def place(
        self,
        name: str | None,
        capability: str | None,
        *,
        needs: str = "any",
        local_load: Mapping[str, int],
        unavailable: Callable[[str], str | None],
        now: float,
    ) -> Placement:
        """The agent for a step naming `name` or asking for `capability`, or why it waits.

        `unavailable(agent)` answers for this run's quarantines and breakers.
        """
        if name is None and capability is None:
            return Placement(None, None, None)
        self._refresh(now)
        if capability is not None:
            facts = {
                a.name: self._candidate(a.name, local_load, unavailable)
                for a in self.registry.with_capability(capability, needs)
            }
            pick: Pick = self.registry.pick(capability, facts, needs)
            if pick.agent is None:
                return Placement(None, None, pick.why)
            return Placement(self.registry.get(pick.agent), pick.agent, None)
        assert name is not None
        agent = self.registry.get(name)
        fact = self._candidate(name, local_load, unavailable)
        if fact.unavailable is not None:
            return Placement(agent, name, f"agent {name} {fact.unavailable}")
        if agent is not None and fact.load >= agent.spec.max_concurrency:
            limit = agent.spec.max_concurrency
            return Placement(agent, name, f"agent {name} is busy ({fact.load}/{limit} steps)")
        return Placement(agent, name, None)

    def _candidate(
        self,
        name: str,
        local_load: Mapping[str, int],
        unavailable: Callable[[str], str | None],
    ) -> Candidate:
        other = self._others.get(name)
        load = local_load.get(name, 0) + (other.running if other else 0)
        why = unavailable(name)
        health = self._health.get(name)
        if why is None and health is not None and health.health != "healthy":
            detail = f": {health.detail}" if health.detail else ""
            why = f"is {health.health}{detail}"
        rate = other.failure_rate if other else 0.0
        return Candidate(load=load, healthy=why is None, unavailable=why, failure_rate=rate)

    def _refresh(self, now: float) -> None:
        if now - self._read_at < REFRESH_SECONDS:
            return
        self._read_at = now
        self._others = self.store.agent_activity(now - FAILURE_WINDOW, exclude_run=self.run_id)
        self._health = self.store.agent_health()
