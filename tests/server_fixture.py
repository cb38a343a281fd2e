"""A real `agenthq serve` application on a free loopback port, in a background thread.

The same build_app the command uses, a real uvicorn server, real SQLite, real subprocesses:
tests talk to it over HTTP with httpx, SSE and WebSocket clients, or a browser.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from agenthq.config import load_settings
from agenthq.server.app import ServerContext
from agenthq.server.build import build_app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    token: str
    ctx: ServerContext
    project: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=30, **kwargs)

    def wait_run(self, run_id: str, states: tuple[str, ...], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.client() as http:
            while True:
                run = http.get(f"/api/runs/{run_id}").json()
                if run["state"] in states or time.monotonic() > deadline:
                    return dict(run)
                time.sleep(0.1)


def serve(
    project: Path,
    *,
    environ: dict[str, str] | None = None,
    toml: str = "",
    allow: tuple[str, ...] = ("touch *",),
) -> Iterator[LiveServer]:
    # The run host process reads the project's agenthq.toml: `touch` proves a step ran.
    allowed = ", ".join(f'"{rule}"' for rule in allow)
    (project / "agenthq.toml").write_text(f"[policy]\nallow = [{allowed}]\n" + toml)
    env = {"AGENTHQ_HOME": str(project / ".agenthq"), **(environ or {})}
    settings = load_settings(project, env)
    app, ctx = build_app(settings)
    ctx.host.poll_interval = 0.05
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=3,
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", ctx.token, ctx, project)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        ctx.store.close()
