"""Messages between steps and over HTTP: a step sends with `agenthq msg send` (it knows the
store from its environment), a later step's template reads its agent's inbox, and the API
sends, lists, marks read and shows conversations behind the token."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import agenthq
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.gates.policy import Policy
from tests.server_fixture import LiveServer, serve

BIN = str(Path(sys.executable).parent)


def test_a_step_sends_and_a_later_step_reads_its_inbox(tmp_path: Path) -> None:
    workspace = tmp_path / "work"
    workspace.mkdir()
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as store:
        runner = Runner(
            store,
            home=tmp_path / ".agenthq",
            environ={"HOME": str(tmp_path), "PATH": f"{BIN}:{os.environ['PATH']}"},
            gates=GateConfig(policy=Policy(allow=("agenthq msg *", "echo *"))),
            scheduler_options=SchedulerOptions(poll_interval=0.05),
        )
        plan = (
            agenthq.Plan("talk")
            .step(
                "review",
                agent="reviewer",
                run="agenthq msg send coder 'rename calc to add' --subject review",
            )
            .step(
                "code",
                agent="coder",
                needs=["review"],
                run='echo \'{"heard": "{{ inbox[0].body }} from {{ inbox[0].sender }}"}\'',
            )
        )
        run = runner.run(plan, workspace=workspace)
        assert run.state.value == "succeeded", [s.reason for s in store.get_steps(run.id)]
        steps = {s.step_id: s for s in store.get_steps(run.id)}
        assert steps["code"].outputs == {"heard": "rename calc to add from reviewer"}
        (message,) = store.inbox("coder")
        assert message.run_id == run.id
        assert message.step_id == "review"
        assert message.subject == "review"
        kinds = [e.kind for e in store.read_events(run_id=run.id)]
        assert "message.sent" in kinds


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from serve(tmp_path_factory.mktemp("project"))


def test_the_api_sends_lists_reads_and_converses(live: LiveServer) -> None:
    with live.client() as http:
        sent = http.post(
            "/api/messages",
            json={"sender": "ci", "recipient": "coder", "body": "tests red", "dedupe_key": "b7"},
        )
        assert sent.status_code == 201
        again = http.post(
            "/api/messages",
            json={"sender": "ci", "recipient": "coder", "body": "tests red", "dedupe_key": "b7"},
        )
        assert again.json() == {"id": sent.json()["id"], "new": False}
        http.post("/api/messages", json={"sender": "coder", "recipient": "ci", "body": "on it"})
        inbox = http.get("/api/messages", params={"agent": "coder"}).json()["messages"]
        assert [m["body"] for m in inbox] == ["tests red"]
        marked = http.post("/api/messages/read", json={"agent": "coder"}).json()
        assert marked == {"marked": 1}
        assert http.get("/api/messages", params={"agent": "coder"}).json()["messages"] == []
        talk = http.get("/api/messages/conversation", params={"a": "ci", "b": "coder"}).json()
        assert [m["body"] for m in talk["messages"]] == ["tests red", "on it"]


@pytest.mark.parametrize(
    "body",
    [
        {"sender": "ci", "recipient": "coder"},
        {"sender": "ci", "recipient": "coder", "body": ""},
        {"sender": "c i", "recipient": "coder", "body": "x"},
        {"sender": "ci", "recipient": "coder", "body": "x", "surprise": 1},
    ],
)
def test_bad_bodies_are_422_with_a_message(live: LiveServer, body: dict[str, object]) -> None:
    with live.client() as http:
        answer = http.post("/api/messages", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"]["message"]


def test_messages_need_the_token(live: LiveServer) -> None:
    assert httpx.get(live.url + "/api/messages", params={"agent": "x"}).status_code == 401
