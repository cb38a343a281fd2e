"""The agents a run may use, and the choice of one for a step that asks for a capability.

Agents come from three places, later ones winning a name: the built-in agents every
installation has, `[agents.NAME]` tables of agenthq.toml, and a plan's `agents:` block (for
that plan's runs only). Picking is a pure function of what the scheduler knows at that moment
(load, health, quarantine, recent failure rate), so it is tested without running anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agenthq.errors import ConfigError
from agenthq.spec.agents import AgentKind, AgentRisk, AgentSpec, check_agent_name

_BUILTIN_MODULE = "agenthq.agents.builtin"

# name → (callable, capabilities, risk): usable with no LLM at all.
_BUILTINS: dict[str, tuple[str, tuple[str, ...], AgentRisk, str]] = {
    "security-scanner": (
        "security:scan",
        ("security", "scan"),
        AgentRisk.AUTO,
        "secrets (detect-secrets) and Python security issues (bandit) over a path",
    ),
    "code-reviewer": (
        "review:review",
        ("review",),
        AgentRisk.AUTO,
        "complexity, long functions, TODO/FIXME, eval/exec, SQL by concatenation, innerHTML",
    ),
    "compliance-checker": (
        "compliance:check",
        ("compliance", "licenses"),
        AgentRisk.AUTO,
        "LICENSE present and recognised; dependencies' licences against an allow-list",
    ),
    "patcher": (
        "patcher:apply",
        ("patch",),
        AgentRisk.APPROVAL_REQUIRED,
        "applies a unified diff after a dry run, keeps the reverse patch, rolls back on failure",
    ),
    "notifier": (
        "notifier:notify",
        ("notify",),
        AgentRisk.AUTO,
        "posts a message to a webhook (Slack-compatible or generic), a file or the console",
    ),
}


@dataclass(frozen=True)
class Agent:
    name: str
    spec: AgentSpec
    source: str  # built-in | agenthq.toml | plan NAME


@dataclass(frozen=True)
class Candidate:
    """What the scheduler knows about one agent when it places a step."""

    load: int = 0  # steps running on it now, in every run
    healthy: bool = True
    unavailable: str | None = None  # quarantined / unhealthy / offline / open breaker: why
    failure_rate: float = 0.0  # of its attempts in the last 24 h


@dataclass(frozen=True)
class Pick:
    agent: str | None
    why: str  # the choice, or why nobody could take the step


def builtin_agents() -> dict[str, Agent]:
    return {
        name: Agent(
            name,
            AgentSpec(
                kind=AgentKind.PYTHON,
                description=description,
                capabilities=list(tags),
                max_concurrency=4,
                risk=risk,
                uses=f"{_BUILTIN_MODULE}.{target}",
            ),
            "built-in",
        )
        for name, (target, tags, risk, description) in _BUILTINS.items()
    }


def agents_from_table(table: Mapping[str, Any], where: str) -> dict[str, AgentSpec]:
    """`[agents.NAME]` tables (or a plan's block, already validated) → specs.

    ConfigError names the file, the agent and the key, and says what would be accepted.
    """
    out: dict[str, AgentSpec] = {}
    for name, body in table.items():
        try:
            check_agent_name(str(name))
        except ValueError as exc:
            raise ConfigError(f"{where}: [agents.{name}]: {exc}") from None
        if not isinstance(body, Mapping):
            raise ConfigError(
                f'{where}: [agents.{name}] must be a table, e.g. [agents.{name}] kind = "shell"'
            )
        try:
            out[str(name)] = AgentSpec.model_validate(dict(body))
        except ValidationError as exc:
            raise ConfigError(f"{where}: [agents.{name}]: {_first_error(exc)}") from None
    return out


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


def fits(agent: Agent, needs: str) -> bool:
    if needs == "prompt":
        return agent.spec.kind in (AgentKind.CLI, AgentKind.LLM)
    if needs == "callable":
        return agent.spec.uses is not None
    if needs == "command":
        return agent.source != "built-in"
    return True


def step_needs(run: str | None, uses: str | None, prompt: str | None) -> str:
    """What a step asks of its agent, for `fits`."""
    if prompt is not None:
        return "prompt"
    if run is None and uses is None:
        return "callable"
    return "command"


class Registry:
    """Every agent a run may use, by name; built once per run, read without locks."""

    def __init__(self, agents: Iterable[Agent]) -> None:
        self.agents: dict[str, Agent] = {a.name: a for a in agents}

    @classmethod
    def build(
        cls,
        configured: Mapping[str, AgentSpec] | None = None,
        plan: Mapping[str, AgentSpec] | None = None,
        plan_name: str = "",
    ) -> Registry:
        agents = builtin_agents()
        for name, spec in (configured or {}).items():
            agents[name] = Agent(name, spec, "agenthq.toml")
        for name, spec in (plan or {}).items():
            agents[name] = Agent(name, spec, f"plan {plan_name}".strip())
        return cls(agents.values())

    def get(self, name: str) -> Agent | None:
        return self.agents.get(name)

    def with_capability(self, tag: str, needs: str = "any") -> list[Agent]:
        """Agents with `tag` that can do what the step needs: `prompt` (cli and llm agents),
        `callable` (agents with a callable of their own), `command` (a step's own run/uses:
        any declared agent, not the built-in ones, which only run their callable)."""
        return [a for a in self.agents.values() if tag in a.spec.capabilities and fits(a, needs)]

    def pick(self, tag: str, facts: Mapping[str, Candidate], needs: str = "any") -> Pick:
        """The least-loaded available agent with `tag`; ties go to the lower failure rate.

        An agent at its max_concurrency is not available. The answer names the agent, or says
        why none could take the step, in words `agenthq status` shows as they are.
        """
        able = self.with_capability(tag, needs)
        if not able:
            return Pick(None, f"no agent has the capability {tag!r}; declare one with it")
        ranked: list[tuple[float, float, str]] = []
        refused: list[str] = []
        for agent in able:
            fact = facts.get(agent.name, Candidate())
            if fact.unavailable is not None:
                refused.append(f"{agent.name} {fact.unavailable}")
            elif fact.load >= agent.spec.max_concurrency:
                refused.append(f"{agent.name} is busy ({fact.load}/{agent.spec.max_concurrency})")
            else:
                share = fact.load / agent.spec.max_concurrency
                ranked.append((share, fact.failure_rate, agent.name))
        if not ranked:
            return Pick(None, f"no agent with {tag!r} can take it: " + "; ".join(refused))
        share, rate, name = min(ranked)
        return Pick(name, f"{name} (load {share:.0%}, failure rate {rate:.0%})")

    def cheaper_than(self, name: str) -> Agent | None:
        """A priced agent sharing a capability with `name` and costing less per token."""
        agent = self.agents.get(name)
        if agent is None or agent.spec.price is None:
            return None
        tags = set(agent.spec.capabilities)
        cheaper = [
            other
            for other in self.agents.values()
            if other.name != name
            and other.spec.price is not None
            and other.spec.price.rank < agent.spec.price.rank
            and tags & set(other.spec.capabilities)
        ]
        return min(
            cheaper,
            key=lambda a: (a.spec.price.rank if a.spec.price else 0.0, a.name),
            default=None,
        )
