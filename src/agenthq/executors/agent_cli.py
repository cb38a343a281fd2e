"""Coding agents on the command line: Claude Code, Codex, Aider, Gemini CLI, or your own.

The agent's command line is built from a template per tool (never through a shell: the prompt
is one argv element whatever it contains) and run by the shell executor's machinery, so it
gets the same process group, streamed and masked logs, timeout and kill. Afterwards what the
tool printed is read in its documented format: the final text, the tokens and dollars it
spent (for the cost gate), and its session id (so a retry resumes the conversation).

| tool   | launched as                                                  | report read from           |
|--------|--------------------------------------------------------------|----------------------------|
| claude | claude -p PROMPT --output-format json [--model M] [--resume ID] | one JSON result object   |
| codex  | codex exec --json [--model M] PROMPT / codex exec --json resume ID PROMPT | JSONL events    |
| aider  | aider --message PROMPT --yes --no-auto-commits [--model M]   | the `Tokens: … Cost: …` line |
| gemini | gemini -p PROMPT --output-format json [-m M]                 | one JSON object            |
| generic| the agent's `command` with {prompt} and {model} filled in     | stdout JSON, usage lines   |
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from dataclasses import dataclass, field, replace
from typing import Any

from agenthq.executors.base import AgentCall, Invocation, Outcome, StartedCallback
from agenthq.executors.shell import ShellExecutor
from agenthq.states import FailureClass

_REPORT_LIMIT = 8 * 1024 * 1024  # read at most the last 8 MiB of a chatty agent's stdout
_AIDER_TOKENS = re.compile(
    r"Tokens:\s*([\d.,]+)([kKmM]?)\s*sent,\s*([\d.,]+)([kKmM]?)\s*received\.?"
    r"(?:\s*Cost:\s*\$([\d.,]+)\s*message,\s*\$([\d.,]+)\s*session)?"
)


@dataclass(frozen=True)
class AgentReport:
    """What a coding agent said it did."""

    text: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, float] = field(default_factory=dict)  # tokens, and cost_usd when known
    session_id: str | None = None
    is_error: bool = False


def command_for(call: AgentCall) -> list[str]:
    """The argv that launches `call.tool` with the prompt (and model, and session to resume)."""
    tool, prompt, model, session = call.tool, call.prompt, call.model, call.session_id
    extra = list(call.args)
    if tool == "claude":
        argv = ["claude", "-p", prompt, "--output-format", "json"]
        argv += ["--model", model] if model else []
        argv += ["--resume", session] if session else []
        return argv + extra
    if tool == "codex":
        argv = ["codex", "exec", "--json"]
        argv += ["--model", model] if model else []
        argv += extra
        return [*argv, "resume", session, prompt] if session else [*argv, prompt]
    if tool == "aider":
        argv = ["aider", "--message", prompt, "--yes", "--no-auto-commits"]
        argv += ["--model", model] if model else []
        return argv + extra
    if tool == "gemini":
        argv = ["gemini", "-p", prompt, "--output-format", "json"]
        argv += ["-m", model] if model else []
        return argv + extra
    if tool == "generic" and call.command:
        filled = {"prompt": prompt, "model": model or ""}
        return [_fill(token, filled) for token in shlex.split(call.command)] + extra
    raise ValueError(f"agent {call.name} has no command line for tool {tool!r}")


def _fill(token: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        token = token.replace("{" + key + "}", value)
    return token


def parse_report(tool: str | None, text: str) -> AgentReport:
    """Read the tool's documented output; anything unreadable is plain text, never an error."""
    if tool == "claude":
        return _claude(text)
    if tool == "codex":
        return _codex(text)
    if tool == "aider":
        return _aider(text)
    if tool == "gemini":
        return _gemini(text)
    return _generic(text)


def _claude(text: str) -> AgentReport:
    data = _last_json_object(text)
    if data is None:
        return AgentReport(text=text.strip())
    usage = _numbers(
        data.get("usage"),
        ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"),
    )
    cost = data.get("total_cost_usd", data.get("cost_usd"))
    if isinstance(cost, int | float):
        usage["cost_usd"] = float(cost)
    result = data.get("result")
    final = result if isinstance(result, str) else ""
    session = data.get("session_id")
    is_error = bool(data.get("is_error")) or str(data.get("subtype", "success")) != "success"
    return AgentReport(
        final, _outputs(final), usage, session if isinstance(session, str) else None, is_error
    )


def _codex(text: str) -> AgentReport:
    usage: dict[str, float] = {}
    final = ""
    session: str | None = None
    error: str | None = None
    for line in text.splitlines():
        event = _json_object(line)
        if event is None:
            continue
        kind = event.get("type")
        if kind == "thread.started" and isinstance(event.get("thread_id"), str):
            session = event["thread_id"]
        elif kind == "item.completed":
            item = event.get("item") or {}
            if item.get("type") == "agent_message" and isinstance(item.get("text"), str):
                final = item["text"]
        elif kind == "turn.completed":
            for key, value in _numbers(event.get("usage"), None).items():
                usage[key] = usage.get(key, 0.0) + value
        elif kind in ("turn.failed", "error"):
            message = (event.get("error") or {}).get("message") if kind == "turn.failed" else None
            error = str(message or event.get("message") or "codex reported an error")
    if error is not None:
        return AgentReport(error, {}, usage, session, True)
    return AgentReport(final, _outputs(final), usage, session)


def _aider(text: str) -> AgentReport:
    usage: dict[str, float] = {}
    for match in _AIDER_TOKENS.finditer(text):
        sent, sent_unit, received, received_unit, _message, session_cost = match.groups()
        usage["input_tokens"] = usage.get("input_tokens", 0.0) + _count(sent, sent_unit)
        usage["output_tokens"] = usage.get("output_tokens", 0.0) + _count(received, received_unit)
        if session_cost is not None:
            usage["cost_usd"] = float(session_cost.replace(",", ""))  # the session total
    lines = [ln for ln in text.splitlines() if ln.strip() and not _AIDER_TOKENS.search(ln)]
    final = "\n".join(lines[-20:])
    return AgentReport(final, {"text": final}, usage)


def _gemini(text: str) -> AgentReport:
    data = _last_json_object(text)
    if data is None:
        return AgentReport(text=text.strip())
    usage: dict[str, float] = {}
    models = ((data.get("stats") or {}).get("models")) or {}
    for model in models.values() if isinstance(models, dict) else ():
        tokens = (model or {}).get("tokens") or {}
        for ours, theirs in (
            ("input_tokens", "prompt"),
            ("output_tokens", "candidates"),
            ("cached_input_tokens", "cached"),
        ):
            value = tokens.get(theirs)
            if isinstance(value, int | float):
                usage[ours] = usage.get(ours, 0.0) + float(value)
    error = data.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else str(error)
        return AgentReport(str(message), {}, usage, None, True)
    response = data.get("response")
    final = response if isinstance(response, str) else ""
    return AgentReport(final, _outputs(final), usage)


def _generic(text: str) -> AgentReport:
    data = _last_json_object(text)
    if data is not None and text.strip().startswith("{"):
        return AgentReport(json.dumps(data), dict(data))
    final = text.strip()
    return AgentReport(final, {"text": final[-10_000:]})


def _outputs(final: str) -> dict[str, Any]:
    """`text`, and when the agent's final answer is a JSON object, its keys too (so a later
    step can read `steps.fix.outputs.summary`)."""
    outputs: dict[str, Any] = {"text": final}
    data = _json_object(final.strip())
    if data is not None:
        outputs["json"] = data
        outputs.update({k: v for k, v in data.items() if k not in outputs})
    return outputs


def _json_object(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _last_json_object(text: str) -> dict[str, Any] | None:
    whole = _json_object(text)
    if whole is not None:
        return whole
    for line in reversed(text.splitlines()):
        found = _json_object(line)
        if found is not None:
            return found
    return None


def _numbers(value: Any, keys: tuple[str, ...] | None) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    chosen = keys if keys is not None else tuple(value)
    return {k: float(value[k]) for k in chosen if isinstance(value.get(k), int | float)}


def _count(number: str, unit: str) -> float:
    scale = {"k": 1e3, "m": 1e6}.get(unit.lower(), 1.0)
    return float(number.replace(",", "")) * scale


def priced(usage: dict[str, float], call: AgentCall) -> dict[str, float]:
    """Add `cost_usd` from the agent's price when the tool reported tokens but no cost."""
    if "cost_usd" in usage or (call.input_per_mtok is None and call.output_per_mtok is None):
        return usage
    tokens_in = usage.get("input_tokens", 0.0)
    tokens_out = usage.get("output_tokens", 0.0)
    if not tokens_in and not tokens_out:
        return usage
    cost = (
        tokens_in * (call.input_per_mtok or 0.0) + tokens_out * (call.output_per_mtok or 0.0)
    ) / 1e6
    return {**usage, "cost_usd": round(cost, 6)}


class CliAgentExecutor:
    """Runs `invocation.agent` (kind cli); the contract of `executors.base` holds."""

    def __init__(self, shell: str | None = None) -> None:
        self._shell = ShellExecutor(shell)

    async def run(self, invocation: Invocation, on_started: StartedCallback) -> Outcome:
        call = invocation.agent
        if call is None:
            return Outcome(FailureClass.INFRASTRUCTURE, error="agent step without an agent")
        try:
            argv = command_for(call)
        except ValueError as exc:
            return Outcome(FailureClass.INFRASTRUCTURE, error=str(exc))
        if shutil.which(argv[0], path=invocation.env.get("PATH")) is None:
            return Outcome(
                FailureClass.INFRASTRUCTURE,
                error=f"{argv[0]} is not on PATH; install it or change agent {call.name}'s tool",
            )
        ran = await self._shell.run(replace(invocation, command=shlex.join(argv)), on_started)
        if (
            ran.failure_class is FailureClass.TIMEOUT
            or ran.failure_class is FailureClass.INFRASTRUCTURE
        ):
            return ran
        report = parse_report(call.tool, _tail(invocation))
        usage = priced({**ran.usage, **report.usage}, call)
        if ran.failure_class is not None or report.is_error:
            why = (
                report.text.strip().splitlines()[-1]
                if report.is_error and report.text.strip()
                else None
            )
            error = f"{call.tool} failed: {why}" if why else (ran.error or f"{call.tool} failed")
            return Outcome(
                FailureClass.EXECUTION,
                exit_code=ran.exit_code,
                error=invocation.mask(error),
                usage=usage,
                session_id=report.session_id,
            )
        return Outcome(
            None,
            exit_code=ran.exit_code,
            outputs=report.outputs,
            usage=usage,
            session_id=report.session_id,
        )


def _tail(invocation: Invocation) -> str:
    try:
        with invocation.stdout_path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - _REPORT_LIMIT))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
