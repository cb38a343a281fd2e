"""`llm` agents against a real OpenAI-compatible HTTP server on loopback: a plain answer, a
JSON answer by schema, 429 and 5xx retried with backoff, 4xx failing at once, a slow server
timing out, usage and cost recorded, and the API key sent but never logged."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import agenthq
from agenthq.agents.registry import agents_from_table
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.store.api import Store

KEY = "sk-test-0123456789abcdefSECRET"


class Model:
    """Answers in order from `script` (status, body, headers, delay); records requests."""

    def __init__(self) -> None:
        self.script: list[tuple[int, Any, dict[str, str], float]] = []
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []


@pytest.fixture
def model() -> Iterator[tuple[Model, str]]:
    state = Model()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            state.requests.append((dict(self.headers), body))
            status, answer, headers, delay = (
                state.script.pop(0) if state.script else (500, {"error": "empty"}, {}, 0.0)
            )
            time.sleep(delay)
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def completion(text: str, prompt_tokens: int = 100, completion_tokens: int = 20) -> dict[str, Any]:
    return {
        "id": "c1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as opened:
        yield opened


def run_step(
    store: Store, tmp_path: Path, url: str, step: dict[str, Any]
) -> tuple[agenthq.store.api.RunRecord, Runner]:
    agents = {
        "gpt": {
            "kind": "llm",
            "base_url": url,
            "model": "test-model",
            "api_key_secret": "TEST_LLM_KEY",
            "price": {"input_per_mtok": 2.0, "output_per_mtok": 10.0},
        }
    }
    runner = Runner(
        store,
        home=tmp_path / ".agenthq",
        environ={"HOME": str(tmp_path), "PATH": os.environ["PATH"], "TEST_LLM_KEY": KEY},
        gates=GateConfig(),
        agents=agents_from_table(agents, "agenthq.toml"),
        scheduler_options=SchedulerOptions(poll_interval=0.05),
    )
    workspace = tmp_path / "work"
    workspace.mkdir(exist_ok=True)
    plan = agenthq.Plan("p").step("ask", agent="gpt", **step)
    return runner.run(plan, workspace=workspace), runner


def logs_of(tmp_path: Path) -> str:
    return "".join(
        p.read_text() for p in (tmp_path / ".agenthq" / "logs").rglob("*") if p.is_file()
    )


def test_a_plain_answer_becomes_text_with_usage_and_cost(
    store: Store, tmp_path: Path, model: tuple[Model, str]
) -> None:
    server, url = model
    server.script = [(200, completion("Paris"), {}, 0.0)]
    run, _ = run_step(store, tmp_path, url, {"prompt": "Capital of {{ 'France' }}?"})
    assert run.state.value == "succeeded"
    (step,) = store.get_steps(run.id)
    assert step.outputs == {"text": "Paris"}
    headers, body = server.requests[0]
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert body["model"] == "test-model"
    assert body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    (attempt,) = store.get_attempts(run.id)
    assert attempt.usage["input_tokens"] == 100
    assert attempt.cost_usd == pytest.approx((100 * 2 + 20 * 10) / 1e6)
    assert KEY not in logs_of(tmp_path)
    assert "Paris" in logs_of(tmp_path)


def test_json_by_schema_becomes_outputs(
    store: Store, tmp_path: Path, model: tuple[Model, str]
) -> None:
    server, url = model
    server.script = [(200, completion('{"severity": "high", "files": 3}'), {}, 0.0)]
    schema = {
        "type": "object",
        "properties": {"severity": {"type": "string"}, "files": {"type": "integer"}},
        "required": ["severity", "files"],
    }
    run, _ = run_step(store, tmp_path, url, {"prompt": "triage", "schema": schema})
    assert run.state.value == "succeeded"
    (step,) = store.get_steps(run.id)
    assert step.outputs["severity"] == "high"
    assert step.outputs["files"] == 3
    _, body = server.requests[0]
    assert body["response_format"]["json_schema"]["schema"] == schema


def test_429_and_5xx_are_retried_with_backoff(
    store: Store, tmp_path: Path, model: tuple[Model, str]
) -> None:
    server, url = model
    server.script = [
        (429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}, 0.0),
        (503, {"error": {"message": "overloaded"}}, {"Retry-After": "0"}, 0.0),
        (200, completion("ok"), {}, 0.0),
    ]
    run, _ = run_step(store, tmp_path, url, {"prompt": "hi"})
    assert run.state.value == "succeeded"
    assert len(server.requests) == 3
    assert "try 1: 429" in logs_of(tmp_path)


def test_a_server_that_keeps_failing_fails_the_step_after_its_tries(
    store: Store, tmp_path: Path, model: tuple[Model, str]
) -> None:
    server, url = model
    server.script = [(500, {"error": {"message": "down"}}, {"Retry-After": "0"}, 0.0)] * 4
    run, _ = run_step(store, tmp_path, url, {"prompt": "hi"})
    assert run.state.value == "failed"
    (step,) = store.get_steps(run.id)
    assert "the model answered 500 4 times: down" in (step.reason or "")
    assert len(server.requests) == 4


def test_a_refused_request_fails_at_once_with_the_servers_message(
    store: Store, tmp_path: Path, model: tuple[Model, str]
) -> None:
    server, url = model
    server.script = [(400, {"error": {"message": "model not found"}}, {}, 0.0)]
    run, _ = run_step(store, tmp_path, url, {"prompt": "hi"})
    assert run.state.value == "failed"
    (step,) = store.get_steps(run.id)
    assert step.reason is not None
    assert "refused the request (400): model not found" in step.reason
    assert len(server.requests) == 1


def test_a_slow_model_times_out(store: Store, tmp_path: Path, model: tuple[Model, str]) -> None:
    server, url = model
    server.script = [(200, completion("late"), {}, 5.0)]
    started = time.monotonic()
    run, _ = run_step(store, tmp_path, url, {"prompt": "hi", "timeout": "1s"})
    assert time.monotonic() - started < 4.5
    (step,) = store.get_steps(run.id)
    assert step.failure_class is not None
    assert step.failure_class.value == "timeout"
