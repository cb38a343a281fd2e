"""Concurrency limits the scheduler respects: workers, per-agent slots, write-set conflicts."""

from __future__ import annotations

from collections.abc import Mapping

from agenthq.graph import StepNode


class Limits:
    """Counts what is running and says whether one more step may start.

    A step that does not fit now stays `ready`; the scheduler asks again when a slot frees.
    """

    def __init__(
        self,
        max_workers: int,
        agent_limits: Mapping[str, int],
        conflicts: Mapping[str, frozenset[str]],
    ) -> None:
        self.max_workers = max_workers
        self.agent_limits = dict(agent_limits)
        self.conflicts = conflicts
        self.running: set[str] = set()
        self.by_agent: dict[str, int] = {}

    @property
    def full(self) -> bool:
        return len(self.running) >= self.max_workers

    def blocker(self, node: StepNode, agent: str | None = None) -> str | None:
        """Why `node` cannot start now, or None when it can. `agent`: the one picked for it."""
        if self.full:
            return f"all {self.max_workers} workers busy"
        agent = agent or node.agent
        if agent is not None and agent in self.agent_limits:
            limit = self.agent_limits[agent]
            if self.by_agent.get(agent, 0) >= limit:
                return f"agent {agent!r} is at its limit of {limit}"
        clash = self.conflicts.get(node.id)
        if clash and not clash.isdisjoint(self.running):
            other = sorted(clash & self.running)[0]
            return f"writes overlap with running step {other!r}"
        return None

    def acquire(self, node: StepNode, agent: str | None = None) -> None:
        self.running.add(node.id)
        agent = agent or node.agent
        if agent is not None:
            self.by_agent[agent] = self.by_agent.get(agent, 0) + 1

    def release(self, node: StepNode, agent: str | None = None) -> None:
        self.running.discard(node.id)
        agent = agent or node.agent
        if agent is not None and self.by_agent.get(agent, 0) > 0:
            self.by_agent[agent] -= 1
