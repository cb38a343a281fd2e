"""Alert channels for real: a webhook receiver on loopback (Slack-compatible and generic,
a failure then a retry, min_severity filtering), a command channel reading the alert on
stdin, no secret in anything delivered, and `agenthq alerts` / `alerts check` / the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import agenthq
from agenthq.errors import ConfigError
from agenthq.events.alerts import AlertEvaluator, AlertSettings
from agenthq.events.notify import Notifier, channels_from
from agenthq.executors.masking import environment_masker
from agenthq.store.api import Batch, Quarantine, Store
from tests.server_fixture import LiveServer, serve

AGENTHQ = str(Path(sys.executable).parent / "agenthq")
SECRET = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"


class Receiver:
    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.fail_first = 0


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if state.fail_first:
                state.fail_first -= 1
                self.send_response(503)
            else:
                state.posts.append((self.path, body))
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as opened:
        yield opened


def test_webhooks_get_new_alerts_at_their_severity_with_retries_and_no_secret(
    store: Store, tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    state.fail_first = 1
    environ = {"GITHUB_TOKEN": SECRET, "HOOK": f"{url}/generic?token=abc"}
    channels = channels_from(
        [
            {"type": "webhook", "url": f"{url}/slack", "min_severity": "critical"},
            {"type": "webhook", "url_env": "HOOK", "format": "generic", "min_severity": "low"},
        ],
        environ,
        "agenthq.toml",
    )
    notifier = Notifier(channels, mask=environment_masker(environ), sleep=lambda s: None)
    reason = f"wrote {SECRET} into config.py"
    store.apply(Batch(at=time.time(), quarantines=[Quarantine("coder", reason, "r1", "fix")]))
    AlertEvaluator(store, AlertSettings(), notify=notifier).evaluate()
    notifier.drain()
    paths = sorted(p for p, _ in state.posts)
    assert paths == ["/generic?token=abc", "/slack"]  # the first try of one failed: retried
    slack = next(b for p, b in state.posts if p == "/slack")
    assert slack == {
        "text": "[critical] agent_quarantined: agent coder was quarantined: wrote *** into config.py"
    }
    generic = next(b for p, b in state.posts if p.startswith("/generic"))
    assert generic["rule"] == "agent_quarantined"
    assert generic["severity"] == "critical"
    assert SECRET not in json.dumps(state.posts)


def test_min_severity_filters_and_failures_are_recorded_without_the_url(
    store: Store, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    state.fail_first = 10
    channels = channels_from(
        [{"type": "webhook", "url": f"{url}/x?token=hush", "min_severity": "low"}], {}, "t"
    )
    failures: list[str] = []
    notifier = Notifier(
        channels, sleep=lambda s: None, on_failure=lambda c, a, why: failures.append(why)
    )
    store.apply(Batch(at=time.time(), quarantines=[Quarantine("a", "x", "r", "s")]))
    AlertEvaluator(store, AlertSettings(), notify=notifier).evaluate()
    notifier.drain()
    assert failures == ["webhook 127.0.0.1: HTTP 503"]
    assert "hush" not in failures[0]
    high_only = channels_from(
        [{"type": "webhook", "url": url, "min_severity": "critical"}], {}, "t"
    )
    filtered = Notifier(high_only, sleep=lambda s: None)
    store.apply(Batch(at=time.time(), quarantines=[Quarantine("b", "x", "r", "s")]))
    AlertEvaluator(
        store, AlertSettings(severity={"agent_quarantined": "medium"}), notify=filtered
    ).evaluate()
    filtered.drain()
    assert filtered.delivered == []


def test_a_command_channel_gets_the_alert_as_json_on_stdin(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    channels = channels_from(
        [{"type": "command", "command": ["sh", "-c", f"cat >> {out}"], "min_severity": "high"}],
        {},
        "t",
    )
    notifier = Notifier(channels)
    store.apply(Batch(at=time.time(), quarantines=[Quarantine("coder", "x", "r", "s")]))
    AlertEvaluator(store, AlertSettings(), notify=notifier).evaluate()
    notifier.drain()
    delivered = json.loads(out.read_text())
    assert delivered["rule"] == "agent_quarantined"
    assert delivered["subject"] == "agent:coder"


def test_the_cli_checks_lists_acks_and_resolves(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    project = tmp_path / "p"
    project.mkdir()
    (project / "agenthq.toml").write_text(
        f'[[alerts.channels]]\ntype = "webhook"\nurl = "{url}/hook"\nmin_severity = "high"\n'
    )
    env = {**os.environ, "AGENTHQ_HOME": str(project / ".agenthq")}
    db = f"sqlite:///{project / '.agenthq' / 'agenthq.db'}"
    with agenthq.open_store(db) as store:
        store.apply(Batch(at=time.time(), quarantines=[Quarantine("coder", "TODOs", "r", "s")]))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AGENTHQ, *args], cwd=project, env=env, capture_output=True, text=True, check=False
        )

    checked = cli("alerts", "check")
    assert checked.returncode == 1, checked.stderr
    assert "opened alert 1 [critical] agent_quarantined" in checked.stdout
    assert [p for p, _ in state.posts] == ["/hook"]
    assert cli("alerts", "check").returncode == 0  # nothing new
    listed = json.loads(cli("alerts", "--json").stdout)
    assert [(a["id"], a["state"]) for a in listed] == [(1, "open")]
    assert json.loads(cli("alerts", "--json", "--min-severity", "critical").stdout) == listed
    bad_level = cli("alerts", "--min-severity", "urgent")
    assert bad_level.returncode == 2
    assert "severity 'urgent'" in bad_level.stderr
    assert cli("alerts", "ack", "1", "--note", "looking").returncode == 0
    assert cli("alerts", "resolve", "1").returncode == 0
    assert json.loads(cli("alerts", "--json").stdout) == []
    again = cli("alerts", "resolve", "1")
    assert again.returncode == 2
    assert "already resolved" in again.stderr
    assert "Traceback" not in again.stderr
    (project / "agenthq.toml").write_text('[[alerts.channels]]\ntype = "pager"\n')
    bad = cli("alerts", "check")
    assert bad.returncode == 2
    assert "[[alerts.channels]] #1: type 'pager'" in bad.stderr


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from serve(tmp_path_factory.mktemp("project"), toml="[alerts]\nevery = 0.5\n")


def test_serve_evaluates_alerts_and_the_api_acks_them(live: LiveServer) -> None:
    live.ctx.store.apply(
        Batch(at=time.time(), quarantines=[Quarantine("coder", "TODOs", "r", "s")])
    )
    deadline = time.monotonic() + 20
    found: list[dict[str, Any]] = []
    with live.client() as http:
        while time.monotonic() < deadline and not found:
            found = http.get("/api/alerts").json()["alerts"]
            time.sleep(0.1)
        assert found, "the run host did not evaluate the alert rules"
        (alert,) = found
        assert http.get("/api/alerts?min_severity=critical").json()["alerts"] == found
        assert http.get("/api/alerts?min_severity=medium&state=resolved").json() == {"alerts": []}
        assert http.get("/api/alerts?min_severity=urgent").status_code == 422
        acked = http.post(f"/api/alerts/{alert['id']}/ack", json={"note": "mine"}).json()
        assert acked["state"] == "acknowledged"
        assert acked["acked_by"].startswith("dashboard@")
        again = http.post(f"/api/alerts/{alert['id']}/ack", json={})
        assert again.status_code == 409
        assert http.post("/api/alerts/999/ack", json={}).status_code == 404
        assert 'data-alert="' in http.get("/alerts").text
        assert 'agenthq_alerts_open{severity="critical"} 1.0' in http.get("/metrics").text
    assert httpx.get(live.url + "/api/alerts").status_code == 401


def test_command_channels_take_argv_or_a_shell_line(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    channels = channels_from(
        [
            {"type": "command", "shell": f"tr a-z A-Z | grep -c CODER >> {out}"},
            {"type": "command", "argv": ["sh", "-c", f"cat >> {out}"], "min_severity": "low"},
        ],
        {},
        "t",
    )
    assert [c.name for c in channels] == ["command /bin/sh", "command sh"]
    notifier = Notifier(channels)
    store.apply(Batch(at=time.time(), quarantines=[Quarantine("coder", "x", "r", "s")]))
    AlertEvaluator(store, AlertSettings(), notifier).evaluate()
    notifier.drain()
    lines = out.read_text().splitlines()
    assert "1" in lines  # the shell line piped the JSON through tr and grep
    assert any('"subject": "agent:coder"' in line for line in lines)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "command"}, "needs one of `command`, `argv` or `shell`"),
        ({"type": "command", "argv": "ls -l"}, "`argv` must be a non-empty list"),
        ({"type": "command", "shell": ""}, "`shell` must be a non-empty string"),
        ({"type": "command", "argv": ["x"], "shell": "y"}, "needs one of"),
        ({"type": "webhook", "url": "ftp://x"}, "needs `url` (http:// or https://)"),
        ({"type": "webhook", "url_env": "NOPE"}, "$NOPE (url_env) is not set"),
        ({"type": "webhook", "url": "http://x", "format": "teams"}, "format 'teams'"),
        ({"type": "webhook", "url": "http://x", "min_severity": "urgent"}, "min_severity"),
    ],
)
def test_bad_channels_name_the_entry_and_key(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        channels_from([entry], {}, "agenthq.toml")
    assert str(caught.value).startswith("agenthq.toml: [[alerts.channels]] #1: ")
    assert message in str(caught.value)


def test_one_alert_that_cannot_be_sent_does_not_stop_the_next(
    store: Store, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver

    def mask(text: str) -> str:
        if "poison" in text:
            raise ValueError("the masker broke")
        return text

    failures: list[str] = []
    channels = channels_from([{"type": "webhook", "url": url, "min_severity": "low"}], {}, "t")
    notifier = Notifier(
        channels, mask=mask, sleep=lambda s: None, on_failure=lambda c, a, w: failures.append(w)
    )
    store.apply(Batch(at=time.time(), quarantines=[Quarantine("poison", "x", "r", "s")]))
    AlertEvaluator(store, AlertSettings(), notifier).evaluate()
    store.apply(Batch(at=time.time(), quarantines=[Quarantine("fine", "x", "r", "s")]))
    AlertEvaluator(store, AlertSettings(), notifier).evaluate()
    notifier.drain()
    assert failures == ["webhook 127.0.0.1: ValueError"]
    assert [b["text"] for _, b in state.posts] == [
        "[critical] agent_quarantined: agent fine was quarantined: x"
    ]
