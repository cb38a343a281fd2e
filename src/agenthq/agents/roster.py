"""Every agent and what it is doing: the one view `agenthq agents`, the API and the dashboard
show. Declared agents (built-in, agenthq.toml) and agents the store has seen steps name are
both listed; an agent's state is the first that holds of quarantined, unhealthy/offline,
busy (with its load), idle."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from typing import Any

from agenthq.agents.registry import Agent, Registry
from agenthq.spec.agents import AgentKind, CliTool
from agenthq.store.api import AgentState, Store

FAILURE_WINDOW = 24 * 3600.0


@dataclass(frozen=True)
class AgentStatus:
    name: str
    kind: str
    source: str  # built-in | agenthq.toml | plan NAME | seen (named by steps, not declared)
    capabilities: tuple[str, ...]
    state: str  # idle | busy | quarantined | unhealthy | offline
    load: int
    max_concurrency: int | None
    failure_rate: float  # of its finished attempts in the last 24 h
    attempts: int
    mean_risk: float | None
    health: str | None  # healthy | unhealthy | offline, when it has a check
    health_detail: str | None
    health_checked_at: float | None
    quarantine_reason: str | None
    quarantined_run: str | None
    quarantined_step: str | None
    released_by: str | None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["capabilities"] = list(self.capabilities)
        return data


def roster(registry: Registry, store: Store, now: float) -> list[AgentStatus]:
    activity = store.agent_activity(now - FAILURE_WINDOW)
    health = store.agent_health()
    held = {a.name: a for a in store.list_agents()}
    names = sorted(set(registry.agents) | set(activity) | set(held) | set(health))
    out: list[AgentStatus] = []
    for name in names:
        agent = registry.get(name)
        act = activity.get(name)
        check = health.get(name)
        quarantine = held.get(name)
        load = act.running if act else 0
        limit = agent.spec.max_concurrency if agent is not None else None
        if quarantine is not None and quarantine.state is AgentState.QUARANTINED:
            state = "quarantined"
        elif check is not None and check.health != "healthy":
            state = check.health
        elif agent is not None and _missing_tool(agent):
            state = "offline"
        else:
            state = "busy" if load else "idle"
        quarantined = quarantine is not None and quarantine.state is AgentState.QUARANTINED
        out.append(
            AgentStatus(
                name=name,
                kind=agent.spec.kind.value if agent is not None else "unknown",
                source=agent.source if agent is not None else "seen",
                capabilities=tuple(agent.spec.capabilities) if agent is not None else (),
                state=state,
                load=load,
                max_concurrency=limit,
                failure_rate=act.failure_rate if act else 0.0,
                attempts=act.attempts if act else 0,
                mean_risk=act.mean_risk if act else None,
                health=check.health if check else None,
                health_detail=(
                    check.detail
                    if check
                    else f"{_program(agent)} is not on PATH"
                    if agent is not None and _missing_tool(agent)
                    else None
                ),
                health_checked_at=check.checked_at if check else None,
                quarantine_reason=quarantine.reason if quarantined and quarantine else None,
                quarantined_run=quarantine.run_id if quarantined and quarantine else None,
                quarantined_step=quarantine.step_id if quarantined and quarantine else None,
                released_by=(
                    quarantine.changed_by if quarantine is not None and not quarantined else None
                ),
            )
        )
    return out


def _program(agent: Agent) -> str:
    spec = agent.spec
    if spec.tool is CliTool.GENERIC and spec.command:
        return spec.command.split()[0]
    return spec.tool.value if spec.tool is not None else ""


def _missing_tool(agent: Agent) -> bool:
    """A cli agent whose program is not installed here cannot take work: offline."""
    return agent.spec.kind is AgentKind.CLI and shutil.which(_program(agent)) is None
