"""From a step and the agent it runs on to what the executor needs: the AgentCall, and
where the agent works (the shared workspace or a worktree of its own)."""

from __future__ import annotations

from collections.abc import Mapping

from agenthq.agents.registry import Agent, Registry, step_needs
from agenthq.errors import ConfigError
from agenthq.executors.base import AgentCall
from agenthq.graph import PlanGraph, StepNode
from agenthq.spec.agents import AgentKind, MergeMode, WorkspaceMode


class AgentUseError(Exception):
    """A step asks an agent for something that agent cannot do (told at run start too)."""


class AgentConfigError(ConfigError):
    """Steps of a plan ask agents for what they cannot do; the run is not started."""


def agent_call(
    node: StepNode,
    agent: Agent | None,
    prompt: str,
    session_id: str | None,
    env: Mapping[str, str],
) -> AgentCall:
    if agent is None or agent.spec.kind not in (AgentKind.CLI, AgentKind.LLM):
        raise AgentUseError(prompt_problem(node.id, node.agent, agent))
    spec = agent.spec
    api_key = None
    if spec.api_key_secret is not None:
        api_key = env.get(spec.api_key_secret)
        if not api_key:
            raise AgentUseError(
                f"agent {agent.name} reads its API key from ${spec.api_key_secret}, "
                "which is not set; export it before the run"
            )
    price = spec.price
    return AgentCall(
        name=agent.name,
        kind=spec.kind.value,
        prompt=prompt,
        tool=spec.tool.value if spec.tool is not None else None,
        command=spec.command,
        args=tuple(spec.args),
        model=spec.model,
        session_id=session_id,
        base_url=spec.base_url,
        api_key=api_key,
        output_schema=node.spec.output_schema,
        max_tokens=spec.max_tokens,
        temperature=spec.temperature,
        input_per_mtok=price.input_per_mtok if price is not None else None,
        output_per_mtok=price.output_per_mtok if price is not None else None,
    )


def prompt_problem(step_id: str, named: str | None, agent: Agent | None) -> str:
    if agent is None:
        return (
            f"step {step_id} has a `prompt` for agent {named!r}, which is not declared; "
            f'declare it in agenthq.toml ([agents.{named}] kind = "cli", tool = "claude") '
            "or in the plan's `agents:` block"
        )
    return (
        f"step {step_id} has a `prompt`, but agent {agent.name} is a {agent.spec.kind.value} "
        'agent; prompts go to kind = "cli" or "llm" agents'
    )


def workspace_mode(node: StepNode, agent: Agent | None) -> WorkspaceMode:
    if node.spec.workspace is not None:
        return node.spec.workspace
    return agent.spec.workspace if agent is not None else WorkspaceMode.SHARED


def merge_mode(node: StepNode, agent: Agent | None) -> MergeMode:
    if node.spec.merge is not None:
        return node.spec.merge
    return agent.spec.merge if agent is not None else MergeMode.AUTO


def check_agents(graph: PlanGraph, registry: Registry, environ: Mapping[str, str]) -> None:
    """Refuse a run, before it is recorded, whose steps ask agents for what they cannot do."""
    problems: list[str] = []
    for node in graph.nodes.values():
        if node.base_id != node.id and node.id != graph.groups[node.base_id][0]:
            continue  # one message per foreach group
        spec = node.spec
        if node.capability is not None:
            needs = step_needs(spec.run, spec.uses, spec.prompt)
            if not registry.with_capability(node.capability, needs):
                what = {"prompt": "a cli or llm ", "callable": "a callable "}.get(needs, "")
                problems.append(
                    f"step {node.base_id} asks for {what}an agent with capability "
                    f"{node.capability!r}, and no agent has it; add it to an agent's "
                    "`capabilities` in agenthq.toml or the plan's `agents:` block"
                )
            continue
        agent = registry.get(node.agent) if node.agent is not None else None
        if spec.prompt is not None and (
            agent is None or agent.spec.kind not in (AgentKind.CLI, AgentKind.LLM)
        ):
            problems.append(prompt_problem(node.base_id, node.agent, agent))
        elif (
            not spec.is_wait
            and spec.run is None
            and spec.uses is None
            and spec.prompt is None
            and (agent is None or agent.spec.uses is None)
        ):
            problems.append(
                f"step {node.base_id} has no `run`, `uses` or `prompt`; agent "
                f"{node.agent!r} has no callable of its own to run (the built-in agents "
                "do: security-scanner, code-reviewer, compliance-checker, patcher, notifier)"
            )
        secret = agent.spec.api_key_secret if agent is not None else None
        if agent is not None and secret and not environ.get(secret):
            problems.append(
                f"agent {agent.name} reads its API key from ${secret}, "
                "which is not set; export it before the run"
            )
    if problems:
        raise AgentConfigError("; ".join(dict.fromkeys(problems)))


def agents_used(graph: PlanGraph, registry: Registry) -> list[Agent]:
    """Every agent a step of this run may run on (named, or able to serve a capability)."""
    names: dict[str, Agent] = {}
    for node in graph.nodes.values():
        if node.capability is not None:
            spec = node.spec
            needs = step_needs(spec.run, spec.uses, spec.prompt)
            names.update((a.name, a) for a in registry.with_capability(node.capability, needs))
        elif node.agent is not None and (agent := registry.get(node.agent)) is not None:
            names[agent.name] = agent
    return list(names.values())
