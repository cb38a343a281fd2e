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

    def blocker(self, node: StepNode) -> str | None:
        """Why `node` cannot start now, or None when it can."""
        if self.full:
            return f"all {self.max_workers} workers busy"
        if node.agent is not None and node.agent in self.agent_limits:
            limit = self.agent_limits[node.agent]
            if self.by_agent.get(node.agent, 0) >= limit:
                return f"agent {node.agent!r} is at its limit of {limit}"
        clash = self.conflicts.get(node.id)
        if clash and not clash.isdisjoint(self.running):
            other = sorted(clash & self.running)[0]
            return f"writes overlap with running step {other!r}"
        return None

    def acquire(self, node: StepNode) -> None:
        self.running.add(node.id)
        if node.agent is not None:
            self.by_agent[node.agent] = self.by_agent.get(node.agent, 0) + 1

    def release(self, node: StepNode) -> None:
        self.running.discard(node.id)
        if node.agent is not None and self.by_agent.get(node.agent, 0) > 0:
            self.by_agent[node.agent] -= 1
