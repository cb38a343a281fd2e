"""`notifier`: tell people what a run did — a webhook (Slack-compatible `{"text": …}` or a
generic JSON body), a file in the workspace, or the step's log.

A webhook URL usually carries a token, so it may come from an environment variable
(`webhook_env`) instead of the plan, and the log names only its host. 429, 5xx and dropped
connections are retried with exponential backoff.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

from agenthq.agents.builtin._workspace import (
    Context,
    env_value,
    inside,
    log,
    relative,
    workspace_of,
)
from agenthq.errors import AgentTaskError, InputError


def notify(
    message: str,
    *,
    webhook: str | None = None,
    webhook_env: str | None = None,
    format: str = "slack",
    file: str | None = None,
    console: bool = False,
    timeout: float = 10.0,
    retries: int = 3,
    ctx: Context | None = None,
) -> dict[str, Any]:
    """Send `message`; outputs where it went (`sent_to`)."""
    if not message.strip():
        raise InputError("the notifier needs a non-empty `message`")
    if format not in ("slack", "generic"):
        raise InputError(f"format {format!r}: use slack or generic")
    url = webhook
    if webhook_env:
        url = env_value(ctx, webhook_env)
        if not url:
            raise InputError(f"${webhook_env} (webhook_env) is not set")
    sent: list[str] = []
    if url:
        sent.append(_post(url, _body(message, format, ctx), timeout, retries, ctx))
    if file:
        target = inside(ctx, file, what="file")
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as handle:
            handle.write(message.rstrip("\n") + "\n")
        sent.append(f"file {relative(target, workspace_of(ctx))}")
    if console or not sent:
        log(ctx, message)
        sent.append("console")
    return {"sent_to": sent, "message": message}


def _body(message: str, fmt: str, ctx: Context | None) -> dict[str, Any]:
    if fmt == "slack":
        return {"text": message}
    return {
        "message": message,
        "run_id": ctx.run_id if ctx is not None else None,
        "step_id": ctx.step_id if ctx is not None else None,
    }


def _post(url: str, body: dict[str, Any], timeout: float, retries: int, ctx: Context | None) -> str:
    import httpx

    if not url.startswith(("http://", "https://")):
        raise InputError("the webhook must be an http:// or https:// URL")
    host = urlsplit(url).hostname or "webhook"
    wait = 0.5
    problem = ""
    for attempt in range(1, max(1, retries) + 2):
        try:
            answer = httpx.post(
                url,
                content=json.dumps(body),
                timeout=timeout,
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            problem = type(exc).__name__
        else:
            if answer.status_code < 300:
                log(ctx, f"notifier: posted to {host}")
                return f"webhook {host}"
            problem = f"HTTP {answer.status_code}"
            if answer.status_code < 500 and answer.status_code != 429:
                break
        if attempt <= retries:
            log(ctx, f"notifier: {host} answered {problem}; retrying in {wait:g}s")
            time.sleep(wait)
            wait *= 2
    raise AgentTaskError(f"the webhook at {host} did not take the message ({problem})")
