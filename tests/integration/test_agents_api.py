"""Agents through a live server: declared agents and the built-in ones in `GET /api/agents`
with their state and load, a capability step placed by the server's run host, the dashboard
page, and the token required."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server_fixture import LiveServer, serve

TOML = """
[agents.rev]
capabilities = ["review"]
max_concurrency = 3
[agents.rev.health]
command = "true"

[agents.down]
[agents.down.health]
command = "false"
retries = 0
"""

PLAN = """
name: look
steps:
  - id: look
    agent: {capability: review}
    run: touch looked-by-$AGENTHQ_AGENT
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    project = tmp_path_factory.mktemp("project")
    yield from serve(project, toml=TOML)


def test_agents_are_listed_with_state_load_and_record(live: LiveServer) -> None:
    with live.client() as http:
        started = http.post("/api/runs", json={"plan": PLAN})
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        assert live.wait_run(run_id, ("succeeded", "failed"))["state"] == "succeeded"
        agents = {a["name"]: a for a in http.get("/api/agents").json()["agents"]}
    assert Path(live.project / "looked-by-rev").exists()
    rev = agents["rev"]
    assert rev["source"] == "agenthq.toml"
    assert rev["capabilities"] == ["review"]
    assert rev["max_concurrency"] == 3
    assert rev["state"] == "idle"
    assert rev["health"] == "healthy"  # checked by the run host before placing the step
    assert rev["attempts"] == 1
    assert rev["failure_rate"] == 0.0
    assert {
        "security-scanner",
        "code-reviewer",
        "compliance-checker",
        "patcher",
        "notifier",
    } <= set(agents)
    assert agents["patcher"]["kind"] == "python"


def test_serve_checks_every_declared_agent_on_its_schedule(live: LiveServer) -> None:
    import time

    deadline = time.monotonic() + 20
    state = None
    with live.client() as http:
        while time.monotonic() < deadline and state != "unhealthy":
            agents = {a["name"]: a for a in http.get("/api/agents").json()["agents"]}
            state = agents["down"]["state"]
            time.sleep(0.1)
    assert state == "unhealthy"  # no run uses it: the server's run host checked it
    assert agents["down"]["health_detail"] == "exit 1"


def test_the_agents_page_shows_declared_agents(live: LiveServer) -> None:
    with live.client() as http:
        page = http.get("/agents")
    assert page.status_code == 200
    assert 'data-agent="rev"' in page.text
    assert "review" in page.text


def test_agents_need_the_token(live: LiveServer) -> None:
    assert httpx.get(live.url + "/api/agents").status_code == 401
