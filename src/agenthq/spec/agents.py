"""How an agent is declared: in `agenthq.toml` (`[agents.NAME]`) or a plan's `agents:` block.

One model for both places, so an agent moves from a plan into the project's settings without
a change. What each kind needs is checked here, where the message can still name the key; what
the engine does with an agent lives in agenthq.agents.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from agenthq.spec.durations import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]

AGENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
CAPABILITY = re.compile(r"^[A-Za-z0-9_.:-]+$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class AgentKind(StrEnum):
    SHELL = "shell"  # the step's `run:` command (the default)
    PYTHON = "python"  # the step's `uses:` callable, or the agent's own `uses:`
    CLI = "cli"  # a coding-agent command line given the step's prompt
    LLM = "llm"  # one chat-completions call


class CliTool(StrEnum):
    """Command lines agenthq knows how to launch and whose output it can read."""

    CLAUDE = "claude"  # claude -p PROMPT --output-format json
    CODEX = "codex"  # codex exec --json PROMPT
    AIDER = "aider"  # aider --message PROMPT --yes
    GEMINI = "gemini"  # gemini -p PROMPT --output-format json
    GENERIC = "generic"  # the agent's `command:`, with {prompt} (and {model}) filled in


class AgentRisk(StrEnum):
    AUTO = "auto"
    APPROVAL_REQUIRED = "approval_required"


class WorkspaceMode(StrEnum):
    SHARED = "shared"  # the run's workspace, as every other step
    WORKTREE = "worktree"  # a git worktree on a branch of its own for each attempt


class MergeMode(StrEnum):
    AUTO = "auto"  # fast-forward or clean merge on success; a conflict fails the step
    REVIEW = "review"  # keep the branch for a person (`agenthq diff RUN STEP`)


class HealthCheckSpec(_Frozen):
    """A command whose success means the agent can take work; run on a schedule."""

    command: str = Field(min_length=1)
    every: Duration = Field(default=60.0, gt=0)
    timeout: Duration = Field(default=10.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)  # more tries, with backoff, before "unhealthy"
    backoff: Duration = Field(default=1.0, ge=0)  # first wait; doubles each retry


class PriceSpec(_Frozen):
    """US dollars per million tokens: prices `llm` calls and ranks agents by cost."""

    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)

    @property
    def rank(self) -> float:
        return self.input_per_mtok + self.output_per_mtok


class AgentSpec(_Frozen):
    kind: AgentKind = AgentKind.SHELL
    description: str = ""
    capabilities: list[str] = Field(default_factory=list)
    max_concurrency: int = Field(default=1, ge=1, le=10_000)
    risk: AgentRisk = AgentRisk.AUTO
    env: dict[str, str] = Field(default_factory=dict)
    health: HealthCheckSpec | None = None
    workspace: WorkspaceMode = WorkspaceMode.SHARED
    merge: MergeMode = MergeMode.AUTO
    price: PriceSpec | None = None
    # cli
    tool: CliTool | None = None
    command: str | None = None  # generic: e.g. "mytool --prompt {prompt}"
    args: list[str] = Field(default_factory=list)  # extra arguments for a known tool
    # cli and llm
    model: str | None = None
    # llm
    base_url: str | None = None
    api_key_secret: str | None = None  # the environment variable holding the key
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    # python: the callable that does the work when the step has no `uses:` of its own
    uses: str | None = None

    @field_validator("capabilities")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not CAPABILITY.match(tag):
                raise ValueError(f"invalid capability {tag!r}: use letters, digits, '_.:-'")
        return value

    @field_validator("env")
    @classmethod
    def _env_strings(cls, value: dict[str, Any]) -> dict[str, str]:
        return {str(k): str(v) for k, v in value.items()}

    @model_validator(mode="after")
    def _kind_needs(self) -> AgentSpec:
        if self.kind is AgentKind.CLI:
            if self.tool is None:
                tools = ", ".join(t.value for t in CliTool)
                raise ValueError(f"a cli agent needs `tool` (one of {tools})")
            if self.tool is CliTool.GENERIC and (
                self.command is None or "{prompt}" not in self.command
            ):
                raise ValueError(
                    "a generic cli agent needs `command` with a {prompt} placeholder, "
                    'e.g. command = "mytool --message {prompt}"'
                )
        elif self.tool is not None or self.command is not None:
            raise ValueError('`tool` and `command` are for kind = "cli" agents')
        if self.kind is AgentKind.LLM:
            if not self.base_url or not self.model:
                raise ValueError(
                    "an llm agent needs `base_url` (an OpenAI-compatible endpoint, "
                    "e.g. https://api.openai.com/v1) and `model`"
                )
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError(
                    f"`base_url` {self.base_url!r} must start with http:// or https://"
                )
        elif self.base_url is not None or self.api_key_secret is not None:
            raise ValueError('`base_url` and `api_key_secret` are for kind = "llm" agents')
        if self.uses is not None and self.kind is not AgentKind.PYTHON:
            raise ValueError('`uses` is for kind = "python" agents')
        return self


class AgentRef(_Frozen):
    """`agent: {capability: review}`: any registered agent with that tag."""

    capability: str

    @field_validator("capability")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not CAPABILITY.match(value):
            raise ValueError(f"invalid capability {value!r}: use letters, digits, '_.:-'")
        return value


def check_agent_name(name: str) -> str:
    if not AGENT_NAME.match(name):
        raise ValueError(f"invalid agent name {name!r}: use letters, digits, '_', '.' and '-'")
    return name
