"""`agenthq serve` over real HTTP: auth, runs through the API, logs, approvals, signed links,
errors and limits, the SSE and WebSocket streams (backlog + live, no gap, no duplicate), and
/metrics parsed as Prometheus text."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from agenthq.engine.links import sign_link
from agenthq.store.api import AttemptStart, Batch, StepChange
from tests.server_fixture import LiveServer, serve

PLAN = """
name: api-plan
steps:
  - id: hello
    run: echo hello from the api
  - id: second
    needs: [hello]
    run: echo second
"""

GATED = """
name: gated
steps:
  - id: deploy
    risk: approval_required
    run: touch deployed
  - id: after
    needs: [deploy]
    run: echo after
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    project = tmp_path_factory.mktemp("project")
    yield from serve(project)


def start(live: LiveServer, plan: str = PLAN, **extra: Any) -> dict[str, Any]:
    with live.client() as http:
        response = http.post("/api/runs", json={"plan": plan, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_token_is_required_everywhere_but_healthz(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as anonymous:
        assert anonymous.get("/healthz").json() == {"ok": True}
        for path in ("/api/runs", "/metrics", "/openapi.json", "/api/approvals"):
            response = anonymous.get(path)
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "unauthorized"
        wrong = anonymous.get("/api/runs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        page = anonymous.get("/", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login")
        assert anonymous.post("/api/runs", json={"plan": PLAN}).status_code == 401
    token_file = live.project / ".agenthq" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == live.token


def test_login_sets_an_httponly_strict_cookie(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as browser:
        bad = browser.post("/login", data={"token": "wrong"})
        assert "not right" in bad.text
        good = browser.post(
            "/login", data={"token": live.token, "next": "/approvals"}, follow_redirects=False
        )
        assert good.status_code == 303
        assert good.headers["location"] == "/approvals"
        cookie = good.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert browser.get("/api/runs").status_code == 200  # the cookie now authorises
        offsite = browser.get(
            f"/login?token={live.token}&next=//evil.example", follow_redirects=False
        )
        assert offsite.headers["location"] == "/"


def test_a_run_started_through_the_api_runs_in_the_server(live: LiveServer) -> None:
    run = start(live)
    assert run["state"] == "pending"
    final = live.wait_run(run["id"], ("succeeded", "failed"))
    assert final["state"] == "succeeded", final
    assert [s["state"] for s in final["steps"]] == ["succeeded", "succeeded"]
    with live.client() as http:
        step = http.get(f"/api/runs/{run['id']}/steps/hello").json()
        assert step["attempts"][0]["exit_code"] == 0
        assert any(g["gate"] == "risk" for g in step["gates"])
        log = http.get(f"/api/runs/{run['id']}/steps/hello/logs").json()
        assert log["text"] == "hello from the api\n"
        assert log["finished"] is True
        part = http.get(
            f"/api/runs/{run['id']}/steps/hello/logs", params={"offset": 6, "limit": 4}
        ).json()
        assert part["text"] == "from"
        assert part["next_offset"] == 10
        tail = http.get(f"/api/runs/{run['id']}/steps/hello/logs", params={"tail": 4}).json()
        assert tail["text"] == "api\n"
        listed = http.get("/api/runs", params={"limit": 1}).json()
        assert len(listed["runs"]) == 1
        assert http.get("/api/runs", params={"limit": 201}).status_code == 422
        csv_export = http.get(f"/api/runs/{run['id']}/events", params={"format": "csv"})
        assert csv_export.headers["content-type"].startswith("text/csv")
        assert csv_export.text.splitlines()[0].startswith("seq,at,kind")
        json_export = http.get(f"/api/runs/{run['id']}/events").json()
        assert json_export[0]["kind"] == "run.created"


def test_cached_run_reads_keep_the_guard_and_show_changes_made_here(live: LiveServer) -> None:
    with live.client() as http:
        first = http.get("/api/runs", params={"limit": 5})
        again = http.get("/api/runs", params={"limit": 5})  # answered from the read cache
        assert again.status_code == 200
        assert again.content == first.content
        assert again.headers["content-type"] == "application/json"
        assert again.headers["x-content-type-options"] == "nosniff"  # the guard still adds
        assert "default-src 'self'" in again.headers["content-security-policy"]
        assert http.get("/api/runs", params={"limit": 1}).json()["limit"] == 1  # its own key
        for _ in range(2):  # errors are never cached
            missing = http.get("/api/runs/no-such-run")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "not_found"
    with httpx.Client(base_url=live.url) as anonymous:  # a cached answer still needs the token
        assert anonymous.get("/api/runs", params={"limit": 5}).status_code == 401
    run = start(live)  # a change through this server shows in its next read at once
    with live.client() as http:
        listed = http.get("/api/runs", params={"limit": 5}).json()["runs"]
        assert run["id"] in [r["id"] for r in listed]
        detail = http.get(f"/api/runs/{run['id']}")
        assert detail.status_code == 200
    final = live.wait_run(run["id"], ("succeeded", "failed"))  # and so do the run host's
    assert final["state"] == "succeeded"
    with live.client() as http:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            listed = http.get("/api/runs", params={"limit": 5}).json()["runs"]
            if next(r for r in listed if r["id"] == run["id"])["state"] == "succeeded":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the cached run list never showed the finished run")


def test_plan_paths_stay_inside_the_workspace(live: LiveServer, tmp_path: Path) -> None:
    (live.project / "plans").mkdir(exist_ok=True)
    (live.project / "plans" / "p.yaml").write_text(PLAN)
    outside = tmp_path / "outside.yaml"
    outside.write_text(PLAN)
    with live.client() as http:
        ok = http.post("/api/plans/validate", json={"path": "plans/p.yaml"})
        assert ok.json() == {"valid": True, "plan": "api-plan", "steps": 2}
        for path in ("../outside.yaml", str(outside), "plans/../../outside.yaml"):
            refused = http.post("/api/plans/validate", json={"path": path})
            assert refused.status_code == 422, path
            assert "outside the server's workspace" in refused.json()["error"]["message"]


def test_a_log_path_outside_the_home_is_never_read(live: LiveServer) -> None:
    run = start(live, "name: odd\nsteps:\n  - id: a\n    run: echo a\n")
    live.wait_run(run["id"], ("succeeded",))
    store = live.ctx.store
    at = time.time()
    batch = Batch(at=at)
    batch.steps.append(StepChange(run["id"], "a", "succeeded", "pending"))  # type: ignore[arg-type]
    store.apply(batch)
    forged = Batch(at=at)
    forged.steps.append(StepChange(run["id"], "a", "pending", "ready"))  # type: ignore[arg-type]
    forged.steps.append(StepChange(run["id"], "a", "ready", "running", {"attempts": 2}, 2))  # type: ignore[arg-type]
    forged.attempt_starts.append(
        AttemptStart(run["id"], "a", 2, at, "/etc/passwd", "../../../etc/shadow", None)
    )
    store.apply(forged)
    with live.client() as http:
        for stream in ("stdout", "stderr"):
            refused = http.get(f"/api/runs/{run['id']}/steps/a/logs", params={"stream": stream})
            assert refused.status_code == 422, refused.text
            assert "outside the agenthq home" in refused.json()["error"]["message"]
            assert "root:" not in refused.text


def test_bad_input_is_json_with_a_code_and_a_message(live: LiveServer) -> None:
    with live.client() as http:
        bad_yaml = http.post(
            "/api/runs", json={"plan": "name: x\nsteps:\n  - id: a\n    rn: echo\n"}
        )
        assert bad_yaml.status_code == 422
        error = bad_yaml.json()["error"]
        assert error["code"] == "invalid_input"
        assert "<request>:4" in error["message"]
        assert "did you mean" in error["message"]
        both = http.post("/api/runs", json={"plan": PLAN, "path": "p.yaml"})
        assert both.status_code == 422
        assert both.json()["error"]["code"] == "invalid_request"
        unknown = http.post("/api/runs", json={"plan": PLAN, "surprise": 1})
        assert unknown.status_code == 422
        missing = http.get("/api/runs/no-such-run")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        huge = http.post(
            "/api/runs",
            content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert huge.status_code == 413
        assert huge.json()["error"]["code"] == "body_too_large"
        bad_state = http.get("/api/runs", params={"state": "sleeping"})
        assert bad_state.status_code == 422


def test_approve_through_the_api_continues_the_run(live: LiveServer) -> None:
    run = start(live, GATED)
    live.wait_run(run["id"], ("awaiting_approval",))
    with live.client() as http:
        (waiting,) = http.get("/api/approvals", params={"run": run["id"]}).json()["approvals"]
        assert waiting["step_id"] == "deploy"
        decided = http.post(
            f"/api/approvals/{waiting['id']}/approve", json={"note": "ok", "by": "alice"}
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["decided_by"] == "alice"
        again = http.post(f"/api/approvals/{waiting['id']}/reject", json={})
        assert again.status_code == 409
        assert "already approved by alice" in again.json()["error"]["message"]
    assert live.wait_run(run["id"], ("succeeded", "failed"))["state"] == "succeeded"
    assert (live.project / "deployed").exists()


def test_a_signed_link_decides_once_and_only_while_valid(live: LiveServer) -> None:
    run = start(live, GATED)
    live.wait_run(run["id"], ("awaiting_approval",))
    with live.client() as http:
        (waiting,) = http.get("/api/approvals", params={"run": run["id"]}).json()["approvals"]
    key = live.ctx.link_key
    token = sign_link(key, waiting["id"], int(time.time()) + 600)
    with httpx.Client(base_url=live.url) as phone:  # no login: the signature is the authority
        shown = phone.get(f"/approval-link/{token}")
        assert shown.status_code == 200
        assert "touch deployed" in shown.text
        assert phone.get(f"/approval-link/{token[:-2]}xx").status_code == 404
        expired = sign_link(key, waiting["id"], int(time.time()) - 1)
        assert phone.get(f"/approval-link/{expired}").status_code == 404
        rejected = phone.post(
            f"/approval-link/{token}", data={"decision": "reject", "note": "from chat"}
        )
        assert rejected.status_code == 200
        assert "Recorded: rejected" in rejected.text
        replay = phone.post(f"/approval-link/{token}", data={"decision": "approve"})
        assert replay.status_code == 409
    final = live.wait_run(run["id"], ("failed",))
    assert final["steps"][0]["reason"] == "approval rejected by signed link: from chat"


def test_mutations_are_rate_limited_per_client(live: LiveServer) -> None:
    limiter = live.ctx.limiter
    saved = (limiter.burst, limiter.per_second)
    limiter.burst, limiter.per_second = 3, 0.5
    limiter.buckets.clear()
    try:
        with live.client() as http:
            codes = [
                http.post("/api/plans/validate", json={"plan": PLAN}).status_code for _ in range(5)
            ]
            assert codes[:3] == [200, 200, 200]
            assert codes[3] == 429
            limited = http.post("/api/plans/validate", json={"plan": PLAN})
            assert int(limited.headers["Retry-After"]) >= 1
            assert http.get("/api/runs").status_code == 200  # reads are not limited
    finally:
        limiter.burst, limiter.per_second = saved
        limiter.buckets.clear()


def sse_events(
    live: LiveServer, params: dict[str, Any], until: int, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Read SSE events until one with seq >= `until` arrives."""
    got: list[dict[str, Any]] = []
    with httpx.Client(
        base_url=live.url, headers={**live.headers, **(headers or {})}, timeout=30
    ) as http:
        with http.stream("GET", "/api/events/stream", params=params) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            event_id = None
            for line in response.iter_lines():
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: ") and event_id is not None:
                    event = json.loads(line[6:])
                    assert event["seq"] == event_id
                    got.append(event)
                    if event["seq"] >= until:
                        return got
    return got


def test_sse_backlog_then_live_without_gap_or_duplicate_across_a_reconnect(
    live: LiveServer,
) -> None:
    slow = "name: slow\nsteps:\n" + "".join(
        f"  - id: s{i}\n    run: sleep 0.1\n" + (f"    needs: [s{i - 1}]\n" if i else "")
        for i in range(6)
    )
    run = start(live, slow)
    live.wait_run(run["id"], ("succeeded",))
    expected = [e.seq for e in live.ctx.store.read_events(run_id=run["id"])]
    middle = expected[len(expected) // 2]
    first = sse_events(live, {"run": run["id"]}, until=middle)
    assert [e["seq"] for e in first] == expected[: expected.index(middle) + 1]
    resumed = sse_events(
        live, {"run": run["id"]}, until=expected[-1], headers={"Last-Event-ID": str(middle)}
    )
    assert [e["seq"] for e in first + resumed] == expected  # no gap, no duplicate

    # A second run after the first: reading from `after` covers it whole, in order.
    after = live.ctx.store.stats().events
    second = start(live, slow)
    live.wait_run(second["id"], ("succeeded",))
    everything = sse_events(live, {"after": after}, until=live.ctx.store.stats().events)
    seqs = [e["seq"] for e in everything]
    assert seqs == sorted(set(seqs))
    assert {e["run_id"] for e in everything if e["run_id"]} >= {second["id"]}


def test_sse_delivers_events_as_they_happen(live: LiveServer) -> None:
    import threading

    after = live.ctx.store.stats().events
    received: list[dict[str, Any]] = []
    done = threading.Event()

    def reader() -> None:
        with httpx.Client(base_url=live.url, headers=live.headers, timeout=30) as http:
            with http.stream("GET", "/api/events/stream", params={"after": after}) as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        received.append(event)
                        if event["kind"] == "run" and event["to"] == "succeeded":
                            done.set()
                            return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(0.3)  # the stream is open before the run exists: these events are live
    run = start(live)
    assert done.wait(30)
    mine = [e for e in received if e["run_id"] == run["id"]]
    assert mine[0]["kind"] == "run.created"
    assert [e["seq"] for e in mine] == [e.seq for e in live.ctx.store.read_events(run_id=run["id"])]


def test_websocket_needs_the_token_and_streams_backlog_then_live(live: LiveServer) -> None:
    run = start(live)
    live.wait_run(run["id"], ("succeeded",))
    expected = [e.seq for e in live.ctx.store.read_events(run_id=run["id"])]
    ws_url = live.url.replace("http://", "ws://")

    async def talk() -> list[int]:
        async with websockets.connect(f"{ws_url}/ws?run={run['id']}") as anonymous:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await anonymous.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4401
        seqs: list[int] = []
        async with websockets.connect(
            f"{ws_url}/ws?run={run['id']}", additional_headers=live.headers
        ) as socket:
            while len(seqs) < len(expected):
                seqs.append(json.loads(await asyncio.wait_for(socket.recv(), 10))["seq"])
        return seqs

    assert asyncio.run(talk()) == expected


def test_metrics_parse_as_prometheus_text(live: LiveServer) -> None:
    start(live)
    with live.client() as http:
        text = http.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "agenthq_steps",
        "agenthq_runs",
        "agenthq_queue_depth",
        "agenthq_approvals_waiting",
        "agenthq_approval_oldest_age_seconds",
        "agenthq_gate_results",
        "agenthq_attempt_duration_seconds",
        "agenthq_scheduler_tick_seconds",
        "agenthq_events",
        "agenthq_events_per_second",
    ):
        assert name in families, name
    steps = families["agenthq_steps"].samples
    assert any(s.labels["state"] == "succeeded" and s.value >= 1 for s in steps)
    ticks = [
        s for s in families["agenthq_scheduler_tick_seconds"].samples if s.name.endswith("_count")
    ]
    assert ticks[0].value > 0


def test_openapi_schema_documents_the_api(live: LiveServer) -> None:
    with live.client() as http:
        schema = http.get("/openapi.json").json()
    paths = set(schema["paths"])
    for path in (
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/approvals/{approval_id}/approve",
        "/api/events",
        "/api/events/stream",
    ):
        assert path in paths, path


def test_serve_refuses_a_public_address_without_allow_remote(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "agenthq", "serve", "--host", "0.0.0.0"],
        cwd=tmp_path,
        env={**os.environ, "AGENTHQ_HOME": str(tmp_path / ".agenthq")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--allow-remote" in done.stderr
    assert "Traceback" not in done.stderr


def test_odd_plan_paths_are_input_errors(live: LiveServer) -> None:
    """Found by schemathesis: a NUL in a path crashed path resolution."""
    with live.client() as http:
        for path in ("plans/\x00x.yaml", "", "   "):
            response = http.post("/api/plans/validate", json={"path": path})
            assert response.status_code == 422, (path, response.text)
            assert response.json()["error"]["code"] == "invalid_request"
