"""One call to an OpenAI-compatible chat-completions endpoint: prompt in, text or JSON out.

Retries 429 and 5xx answers and dropped connections with exponential backoff (honouring
`Retry-After`), within the step's timeout; any other 4xx fails at once with the server's own
message. Usage comes from the response's `usage`, the cost from the agent's price. The key
is sent only as a Bearer header and is in the run's masker, so no log ever shows it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from agenthq.executors.base import AgentCall, Invocation, Outcome, StartedCallback
from agenthq.states import FailureClass

TRIES = 4
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 20.0
DEFAULT_TIMEOUT = 120.0


class _FailedError(Exception):
    def __init__(self, failure: FailureClass, message: str) -> None:
        super().__init__(message)
        self.failure = failure


class LlmExecutor:
    """Runs `invocation.agent` (kind llm); the contract of `executors.base` holds."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport

    async def run(self, invocation: Invocation, on_started: StartedCallback) -> Outcome:
        call = invocation.agent
        if call is None or not call.base_url:
            return Outcome(FailureClass.INFRASTRUCTURE, error="llm step without an endpoint")
        budget = invocation.timeout or DEFAULT_TIMEOUT
        deadline = time.monotonic() + budget
        log = _Log(invocation)
        log.line(f"POST {call.base_url.rstrip('/')}/chat/completions model={call.model}")
        try:
            data = await self._call(call, deadline, log)
            outputs, usage = _answer(data, call)
        except _FailedError as exc:
            log.line(f"failed: {exc}")
            return Outcome(exc.failure, error=invocation.mask(str(exc)))
        log.line(outputs["text"])
        tokens = {k: v for k, v in usage.items() if k != "cost_usd"}
        log.line(f"usage: {json.dumps(tokens)} cost_usd={usage.get('cost_usd', 0.0):g}")
        return Outcome(None, exit_code=0, outputs=outputs, usage=usage)

    async def _call(self, call: AgentCall, deadline: float, log: _Log) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if call.api_key:
            headers["Authorization"] = f"Bearer {call.api_key}"
        url = call.base_url.rstrip("/") + "/chat/completions" if call.base_url else ""
        body = _request(call)
        wait = FIRST_BACKOFF
        async with httpx.AsyncClient(transport=self._transport) as client:
            for attempt in range(1, TRIES + 1):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _FailedError(FailureClass.TIMEOUT, "timed out waiting for the model")
                try:
                    response = await client.post(url, json=body, headers=headers, timeout=left)
                except httpx.TimeoutException:
                    raise _FailedError(
                        FailureClass.TIMEOUT, "timed out waiting for the model"
                    ) from None
                except httpx.TransportError as exc:
                    if attempt == TRIES:
                        raise _FailedError(
                            FailureClass.INFRASTRUCTURE, f"cannot reach {url}: {exc}"
                        ) from None
                    log.line(f"try {attempt}: cannot connect ({exc}); retrying in {wait:g}s")
                    await _pause(wait, deadline)
                    wait = min(wait * 2, MAX_BACKOFF)
                    continue
                if response.status_code == 429 or response.status_code >= 500:
                    if attempt == TRIES:
                        raise _FailedError(
                            FailureClass.EXECUTION,
                            f"the model answered {response.status_code} {TRIES} times: "
                            f"{_error_text(response)}",
                        )
                    pause = _retry_after(response, wait)
                    log.line(f"try {attempt}: {response.status_code}; retrying in {pause:g}s")
                    await _pause(pause, deadline)
                    wait = min(wait * 2, MAX_BACKOFF)
                    continue
                if response.status_code >= 400:
                    raise _FailedError(
                        FailureClass.EXECUTION,
                        f"the model refused the request ({response.status_code}): "
                        f"{_error_text(response)}",
                    )
                try:
                    data = response.json()
                except ValueError:
                    raise _FailedError(
                        FailureClass.EXECUTION, "the model's answer is not JSON"
                    ) from None
                if not isinstance(data, dict):
                    raise _FailedError(
                        FailureClass.EXECUTION, "the model's answer is not an object"
                    )
                return data
        raise _FailedError(FailureClass.EXECUTION, "no answer")  # pragma: no cover - loop returns


def _request(call: AgentCall) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": call.model,
        "messages": [{"role": "user", "content": call.prompt}],
    }
    if call.max_tokens is not None:
        body["max_tokens"] = call.max_tokens
    if call.temperature is not None:
        body["temperature"] = call.temperature
    if call.output_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": dict(call.output_schema), "strict": True},
        }
    return body


def _answer(data: Mapping[str, Any], call: AgentCall) -> tuple[dict[str, Any], dict[str, float]]:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _FailedError(
            FailureClass.EXECUTION, "the model's answer has no choices[0].message"
        ) from None
    text = content if isinstance(content, str) else json.dumps(content)
    outputs: dict[str, Any] = {"text": text}
    if call.output_schema is not None:
        try:
            parsed = json.loads(text)
        except ValueError:
            raise _FailedError(
                FailureClass.EXECUTION, "the model did not answer with JSON"
            ) from None
        if not isinstance(parsed, dict):
            raise _FailedError(FailureClass.EXECUTION, "the model's JSON is not an object")
        required = call.output_schema.get("required") or []
        missing = [k for k in required if k not in parsed]
        if missing:
            raise _FailedError(
                FailureClass.EXECUTION, f"the model's JSON lacks {', '.join(map(str, missing))}"
            )
        outputs.update(parsed)
    usage: dict[str, float] = {}
    raw = data.get("usage") or {}
    for ours, theirs in (
        ("input_tokens", "prompt_tokens"),
        ("output_tokens", "completion_tokens"),
        ("total_tokens", "total_tokens"),
    ):
        value = raw.get(theirs) if isinstance(raw, dict) else None
        if isinstance(value, int | float):
            usage[ours] = float(value)
    if call.input_per_mtok is not None or call.output_per_mtok is not None:
        usage["cost_usd"] = round(
            (
                usage.get("input_tokens", 0.0) * (call.input_per_mtok or 0.0)
                + usage.get("output_tokens", 0.0) * (call.output_per_mtok or 0.0)
            )
            / 1e6,
            6,
        )
    return outputs, usage


def _retry_after(response: httpx.Response, default: float) -> float:
    header = response.headers.get("Retry-After")
    try:
        return min(max(float(header), 0.0), MAX_BACKOFF) if header is not None else default
    except ValueError:
        return default


async def _pause(seconds: float, deadline: float) -> None:
    if time.monotonic() + seconds >= deadline:
        raise _FailedError(FailureClass.TIMEOUT, "timed out while waiting to retry the model")
    await asyncio.sleep(seconds)


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
    return json.dumps(data)[:300]


class _Log:
    """The step's stdout log: what was asked of whom, the answer, the usage; masked."""

    def __init__(self, invocation: Invocation) -> None:
        self.invocation = invocation

    def line(self, text: str) -> None:
        path = self.invocation.stdout_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(self.invocation.mask(text).rstrip("\n") + "\n")
        except OSError:
            pass
