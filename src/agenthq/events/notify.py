"""Alert channels: where a new alert is sent — a webhook (Slack-compatible or generic JSON)
or a command (the alert as JSON on its stdin) — each with a minimum severity.

Delivery runs on a background thread, retried with exponential backoff, so a slow or broken
receiver never holds up the evaluation. A delivery carries the alert's own words, passed
through the masker (declared secrets become ***), and never the channel's address: a webhook
URL often holds a token, so logs and errors name the channel by its host only.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from agenthq.errors import ConfigError
from agenthq.store.api import AlertRecord

SEVERITIES = ("low", "medium", "high", "critical")
TRIES = 4
FIRST_BACKOFF = 0.5
TIMEOUT = 10.0


@dataclass(frozen=True)
class Channel:
    kind: str  # webhook | command
    name: str  # what logs show: the webhook's host, or the command's program
    min_severity: str
    url: str | None = None
    format: str = "slack"  # slack | generic
    command: tuple[str, ...] = ()

    def wants(self, alert: AlertRecord) -> bool:
        return SEVERITIES.index(alert.severity) >= SEVERITIES.index(self.min_severity)


def channels_from(
    tables: Sequence[Mapping[str, Any]], environ: Mapping[str, str], where: str
) -> list[Channel]:
    """`[[alerts.channels]]` → channels; ConfigError naming the entry and key."""
    out: list[Channel] = []
    for n, table in enumerate(tables, 1):
        at = f"{where}: [[alerts.channels]] #{n}"
        kind = table.get("type")
        level = table.get("min_severity", "high")
        if level not in SEVERITIES:
            raise ConfigError(f"{at}: min_severity {level!r}; use {', '.join(SEVERITIES)}")
        if kind == "webhook":
            url = table.get("url")
            if "url_env" in table:
                url = environ.get(str(table["url_env"]))
                if not url:
                    raise ConfigError(f"{at}: ${table['url_env']} (url_env) is not set")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ConfigError(f"{at}: a webhook needs `url` (http:// or https://) or `url_env`")
            fmt = table.get("format", "slack")
            if fmt not in ("slack", "generic"):
                raise ConfigError(f"{at}: format {fmt!r}; use slack or generic")
            host = urlsplit(url).hostname or "webhook"
            out.append(Channel("webhook", f"webhook {host}", level, url=url, format=fmt))
        elif kind == "command":
            argv = _argv(table, at)
            out.append(Channel("command", f"command {argv[0]}", level, command=tuple(argv)))
        else:
            raise ConfigError(f'{at}: type {kind!r}; use "webhook" or "command"')
    return out


def _argv(table: Mapping[str, Any], at: str) -> list[str]:
    """`command` (a list, or a string split like a shell would: no shell runs it), `argv`
    (a list) or `shell` (a string for /bin/sh -c: pipes and redirections)."""
    import shlex

    given = [key for key in ("command", "argv", "shell") if key in table]
    if len(given) != 1:
        raise ConfigError(f"{at}: a command channel needs one of `command`, `argv` or `shell`")
    raw = table[given[0]]
    if given[0] == "shell":
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigError(f"{at}: `shell` must be a non-empty string")
        return ["/bin/sh", "-c", raw]
    argv = shlex.split(raw) if isinstance(raw, str) and given[0] == "command" else raw
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ConfigError(f"{at}: `{given[0]}` must be a non-empty list of strings")
    return argv


def payload(alert: AlertRecord, channel: Channel, mask: Callable[[str], str]) -> dict[str, Any]:
    text = mask(f"[{alert.severity}] {alert.rule}: {alert.message}")
    if channel.kind == "webhook" and channel.format == "slack":
        return {"text": text}
    return {
        "id": alert.id,
        "rule": alert.rule,
        "severity": alert.severity,
        "subject": mask(alert.subject),
        "message": mask(alert.message),
        "state": alert.state,
        "count": alert.count,
        "first_seen": alert.first_seen,
        "last_seen": alert.last_seen,
        "run_id": alert.run_id,
    }


class Notifier:
    """Queues alerts for their channels; one daemon thread delivers, with retries."""

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        mask: Callable[[str], str] = lambda text: text,
        on_failure: Callable[[Channel, AlertRecord, str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.channels = list(channels)
        self.mask = mask
        self.on_failure = on_failure
        self.sleep = sleep
        self.delivered: list[tuple[str, int]] = []  # (channel name, alert id), for status
        self._queue: queue.Queue[tuple[Channel, AlertRecord] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def __call__(self, alert: AlertRecord) -> None:
        for channel in self.channels:
            if channel.wants(alert):
                self._start()
                self._queue.put((channel, alert))

    def drain(self, timeout: float = 60.0) -> None:
        """Wait until everything queued was delivered or given up on (`alerts check`)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="agenthq-alerts", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                channel, alert = item
                try:
                    self._deliver(channel, alert)
                except Exception as exc:  # the thread must outlive one bad alert
                    self._give_up(channel, alert, f"{channel.name}: {type(exc).__name__}")
            finally:
                self._queue.task_done()

    def _deliver(self, channel: Channel, alert: AlertRecord) -> None:
        wait = FIRST_BACKOFF
        problem = ""
        for attempt in range(1, TRIES + 1):
            problem = self._once(channel, alert)
            if not problem:
                self.delivered.append((channel.name, alert.id))
                return
            if attempt < TRIES:
                self.sleep(wait)
                wait *= 2
        self._give_up(channel, alert, problem)

    def _give_up(self, channel: Channel, alert: AlertRecord, problem: str) -> None:
        if self.on_failure is None:
            return
        # Recording the failure can fail too (the database is gone); nothing is left to do.
        with contextlib.suppress(Exception):
            self.on_failure(channel, alert, problem)

    def _once(self, channel: Channel, alert: AlertRecord) -> str:
        """'' when delivered, else why not (in words that never include the URL)."""
        body = json.dumps(payload(alert, channel, self.mask))
        if channel.kind == "webhook":
            import httpx

            assert channel.url is not None
            try:
                answer = httpx.post(
                    channel.url,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=TIMEOUT,
                )
            except httpx.HTTPError as exc:
                return f"{channel.name}: {type(exc).__name__}"
            return "" if answer.status_code < 300 else f"{channel.name}: HTTP {answer.status_code}"
        try:
            done = subprocess.run(
                list(channel.command),
                input=body,
                text=True,
                capture_output=True,
                timeout=TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{channel.name}: {type(exc).__name__}"
        return "" if done.returncode == 0 else f"{channel.name}: exit {done.returncode}"
