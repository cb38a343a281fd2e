"""The executor seam: one method, `run(Invocation) → Outcome`.

Contract every executor keeps:
- `run` never raises for anything the step did: a non-zero exit, an exception in a callable
  or a timeout are Outcomes with a failure class. It raises only `asyncio.CancelledError`,
  after it has stopped what it started (killed the process group, abandoned the thread).
- Output goes to `invocation.stdout_path` / `stderr_path` as it is produced, masked with
  `invocation.mask`, never buffered whole in memory.
- `on_started(pid, pgid, start_ticks)` is called once the process exists (shell only), so the
  engine can record it and kill an orphan after a crash. `start_ticks` is its start time
  (`executors/procs.py`), read by whoever started it as soon as it exists: read by the engine
  after the fact, most short steps had already been reaped (their pid named nobody, or could
  name someone else). None when it is unknown (no /proc, or it ended at once).
- `outputs` is the step's stdout parsed as one JSON object when it is one (shell), or the
  callable's returned mapping (python); declared outputs are captured by the engine afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agenthq.records import record
from agenthq.states import FailureClass

Masker = Callable[[str], str]


def no_mask(text: str) -> str:
    return text


@dataclass(frozen=True)
class AgentCall:
    """A coding-agent (`cli`) or model (`llm`) step: which agent, and what to ask it.

    Built by the engine from the agent's declaration and the step's rendered prompt. `api_key`
    is already read from its secret and is in the run's masker, so it never reaches a log.
    """

    name: str
    kind: str  # cli | llm
    prompt: str
    tool: str | None = None  # cli: claude | codex | aider | gemini | generic
    command: str | None = None  # cli generic: the template with {prompt} (and {model})
    args: tuple[str, ...] = ()  # cli: extra arguments for a known tool
    model: str | None = None
    session_id: str | None = None  # cli: the conversation a retry resumes
    base_url: str | None = None  # llm: an OpenAI-compatible endpoint, e.g. https://host/v1
    api_key: str | None = field(default=None, repr=False)
    output_schema: Mapping[str, Any] | None = None  # llm: ask for JSON of this shape
    max_tokens: int | None = None
    temperature: float | None = None
    input_per_mtok: float | None = None  # price, when the tool does not report its cost
    output_per_mtok: float | None = None


@record
class Invocation:
    """Everything needed to run one attempt of one step, already rendered."""

    run_id: str
    step_id: str
    attempt: int
    workspace: Path
    cwd: Path
    stdout_path: Path
    stderr_path: Path
    env: Mapping[str, str]
    timeout: float | None = None
    kill_grace: float = 5.0
    command: str | None = None  # shell: the rendered command line
    target: Callable[..., Any] | None = None  # python: the resolved callable
    arguments: Mapping[str, Any] = field(default_factory=dict)  # python: rendered `with`
    mask: Masker = no_mask
    agent: AgentCall | None = None  # cli / llm steps


@record
class Outcome:
    """How an attempt ended. `failure_class` is None exactly when it succeeded."""

    failure_class: FailureClass | None
    exit_code: int | None = None
    error: str | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    usage: Mapping[str, float] = field(default_factory=dict)  # tokens; `cost_usd` is money
    session_id: str | None = None  # a coding agent's conversation, for the next attempt
    ran_on: str | None = None  # the `agenthq worker` that ran it, when not this process
    # False: the attempt wrote nothing to its log files, so nobody needs to look at them (a
    # Python callable without `ctx`, a shell step whose logs did not grow); None: it may have.
    wrote_logs: bool | None = None

    @property
    def succeeded(self) -> bool:
        return self.failure_class is None


StartedCallback = Callable[[int, int, int | None], None]  # pid, pgid, start ticks


class Executor(Protocol):
    async def run(self, invocation: Invocation, on_started: StartedCallback) -> Outcome: ...
