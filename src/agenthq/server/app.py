"""create_app: the FastAPI application, its guards, and the one error → HTTP table.

Guards, outermost first: a request body limit (413 before anything is parsed), security
headers, the token check (every path but /healthz, /login, /static and signed approval links),
and a per-client rate limit on mutating requests (429 with Retry-After). Errors are JSON
`{"error": {"code": …, "message": …}}` with a stable code; no traceback ever leaves the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agenthq.engine.runner import Runner
from agenthq.errors import (
    AgentHQError,
    InputError,
    LearningError,
    NotFoundError,
    RunBusyError,
    StateError,
    StoreError,
)
from agenthq.events.metrics import Metrics
from agenthq.server import auth
from agenthq.server.feed import EventHub, cancel_quietly
from agenthq.server.host import RunHost
from agenthq.store.api import Store

MAX_BODY_BYTES = 1024 * 1024
OPEN_PATHS = ("/healthz", "/login", "/static/", "/approval-link/", "/favicon.ico")

# Most specific first: the first matching class decides.
ERROR_STATUS: tuple[tuple[type[AgentHQError], int, str], ...] = (
    (NotFoundError, 404, "not_found"),
    (RunBusyError, 409, "run_busy"),
    (StateError, 409, "conflict"),
    (InputError, 422, "invalid_input"),
    (StoreError, 503, "store_unavailable"),
    (LearningError, 409, "model_unavailable"),
    (AgentHQError, 500, "error"),
)


@dataclass
class RateLimiter:
    """A token bucket per client: `burst` requests at once, `per_second` after that."""

    burst: float = 30.0
    per_second: float = 10.0
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def allow(self, client: str, now: float) -> float:
        """0 when allowed, else the seconds to wait."""
        tokens, last = self.buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.per_second)
        if tokens >= 1.0:
            self.buckets[client] = (tokens - 1.0, now)
            return 0.0
        self.buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.per_second


@dataclass
class ReadCache:
    """Answers to the hottest reads (run lists, run details), reused while nothing changed.

    Any change to runs or steps is an event. An answer computed when the event hub stood at
    seq N is reused while the hub still stands at N, and for at most `max_age` seconds after
    it moved on: a busy run changes the answer thousands of times a second, and fifty clients
    polling it then cost one query per `max_age`, not one each. So an answer is never more
    than `max_age` plus the hub's poll interval behind the store — and a change made through
    this server (any POST) clears it, so its client reads its own writes.

    Answers are keyed by the request's path and query text (`read_key`) and served by
    CachedReads before routing; the handlers compute them on the event loop, because a worker
    thread computing one would hold the GIL the loop needs (see docs/performance.md).
    """

    max_age: float = 0.25
    size: int = 256
    entries: dict[tuple[object, ...], tuple[int, float, bytes]] = field(default_factory=dict)

    def get(self, seq: int, key: tuple[object, ...], now: float) -> bytes | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        entry_seq, made_at, body = entry
        if entry_seq == seq or now - made_at < self.max_age:
            return body
        return None

    def clear(self) -> None:
        """Forget every answer: a change through this server must show in its next read,
        even before the event hub has seen the change's events."""
        self.entries.clear()

    def put(self, seq: int, key: tuple[object, ...], body: bytes, now: float) -> None:
        if len(self.entries) >= self.size and key not in self.entries:
            self.entries.clear()
        self.entries[key] = (seq, now, body)


def read_key(scope: Scope) -> tuple[object, ...]:
    """A cached read's key: the request's path and query exactly as sent. The same text
    always validates to the same parameters, so it can be answered before any parsing."""
    return (scope["path"], scope.get("query_string", b""))


_CACHED_PATH = re.compile(r"/api/runs(?:/[^/]+)?")


class CachedReads:
    """Answers a GET of a run list or a run detail straight from the ReadCache.

    Routing and FastAPI's parameter checks cost about ten times what sending cached bytes
    does, and a dashboard (or fifty of them) polls exactly these two. Only answers a handler
    computed are here, so whatever is not cached — a first read, an error, a 404 — goes the
    whole way. Sits inside Guard: the token is checked and the headers added either way.
    """

    def __init__(self, app: ASGIApp, ctx: ServerContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and _CACHED_PATH.fullmatch(scope["path"])
        ):
            reads, hub = self.ctx.reads, self.ctx.hub
            body = reads.get(hub.last_seq, read_key(scope), time.monotonic())
            if body is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


@dataclass
class ServerContext:
    """Everything the routes use; built by `agenthq serve` (and by tests, the same way)."""

    store: Store
    runner: Runner
    home: Path
    workspace: Path
    token: str
    link_key: str
    host: RunHost
    hub: EventHub
    metrics: Metrics
    limiter: RateLimiter = field(default_factory=RateLimiter)
    reads: ReadCache = field(default_factory=ReadCache)
    tables: Mapping[str, Any] = field(default_factory=dict)  # agenthq.toml, for the workers
    _pool: ProcessPoolExecutor | None = None

    def compile_pool(self) -> ProcessPoolExecutor:
        """The plan compile worker (server/compile_worker.py), started on first use."""
        if self._pool is None:
            from agenthq.server.compile_worker import new_pool

            self._pool = new_pool()
        return self._pool

    def close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    max_body_bytes: int = MAX_BODY_BYTES
    run_host: bool = True  # False: API only, runs are executed elsewhere


def create_app(ctx: ServerContext) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far lives as long as the server: keep it out of the cyclic
        # collector's full passes, which otherwise pause requests for tens of milliseconds.
        gc.collect()
        gc.freeze()
        tasks = [asyncio.create_task(ctx.hub.run(), name="event-hub")]
        child = None
        if ctx.run_host:
            ctx.host.adopt_orphans()
            child = _start_run_host(ctx)
        try:
            yield
        finally:
            if child is not None:
                child.terminate()
                await asyncio.to_thread(child.wait, 30)
            await asyncio.to_thread(ctx.close_pool)
            for task in tasks:
                await cancel_quietly(task)

    app = FastAPI(
        title="agenthq",
        summary="Mission control for autonomous agents",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    _install_errors(app)
    _install_guards(app, ctx)

    from agenthq.server.routes import alerts as alert_routes
    from agenthq.server.routes import api, dashboard, stream
    from agenthq.server.routes import automations as automation_routes
    from agenthq.server.routes import learning as learning_routes
    from agenthq.server.routes import messages as message_routes

    app.include_router(api.router)
    app.include_router(message_routes.router)
    app.include_router(alert_routes.router)
    app.include_router(automation_routes.router)
    app.include_router(learning_routes.router)
    app.include_router(stream.router)
    app.include_router(dashboard.router)
    app.mount("/static", dashboard.static_files(), name="static")
    app.router.redirect_slashes = False
    return app


def _start_run_host(ctx: ServerContext) -> subprocess.Popen[bytes]:
    """The run host in a process of its own (see server/host_process.py), with the server's
    settings: the same home, database and project directory."""
    env = dict(os.environ)
    env["AGENTHQ_HOME"] = str(ctx.home)
    env["AGENTHQ_DB_URL"] = ctx.store.url
    env["AGENTHQ_HOST_POLL"] = str(ctx.host.poll_interval)
    env["AGENTHQ_SERVER_PID"] = str(os.getpid())  # the host stops when this process is gone
    return subprocess.Popen(
        [sys.executable, "-m", "agenthq.server.host_process"], cwd=ctx.workspace, env=env
    )


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(AgentHQError)
    async def domain_error(request: Request, exc: AgentHQError) -> JSONResponse:
        for cls, status, code in ERROR_STATUS:
            if isinstance(exc, cls):
                return error_response(status, code, str(exc))
        return error_response(
            500, "error", str(exc)
        )  # pragma: no cover - the table ends in the root

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}"
            for e in exc.errors()
        ]
        return error_response(422, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        import logging

        logging.getLogger("agenthq.server").exception("unexpected error on %s", request.url.path)
        return error_response(500, "internal", "internal error; the server log has the details")


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    ),
]


def _install_guards(app: FastAPI, ctx: ServerContext) -> None:
    app.add_middleware(CachedReads, ctx=ctx)  # added first: runs after the guard
    app.add_middleware(Guard, ctx=ctx)
    app.add_middleware(BodyLimit, limit=ctx.max_body_bytes)


class Guard:
    """Token check, rate limit and security headers as plain ASGI: a request-wrapping
    middleware cost more per request than most handlers do."""

    def __init__(self, app: ASGIApp, ctx: ServerContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path: str = scope["path"]
        refusal = self._refusal(request, path)
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        mutating = request.method in ("POST", "PUT", "PATCH", "DELETE")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if mutating:  # its writes are done: the next read of this server sees them
                    self.ctx.reads.clear()
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)

    def _refusal(self, request: Request, path: str) -> Response | None:
        ctx = self.ctx
        if not path.startswith(OPEN_PATHS) and not authorised(request, ctx.token):
            if path.startswith(("/api/", "/metrics", "/ws")) or path == "/openapi.json":
                return error_response(
                    401,
                    "unauthorized",
                    "send the token from AGENTHQ_HOME/token as `Authorization: Bearer …`",
                    {"WWW-Authenticate": "Bearer"},
                )
            return RedirectResponse(f"/login?next={path}", status_code=303)
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            client = request.client.host if request.client else "unknown"
            wait = ctx.limiter.allow(client, time.monotonic())
            if wait > 0:
                return error_response(
                    429,
                    "rate_limited",
                    f"too many changes from {client}; try again in {wait:.1f}s",
                    {"Retry-After": str(max(1, round(wait)))},
                )
        return None


def authorised(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return auth.same_secret(header[7:].strip(), token)
    return auth.same_secret(request.cookies.get(auth.COOKIE), token)


class BodyLimit:
    """Refuse request bodies over `limit` bytes — by Content-Length up front, and by counting
    for chunked uploads — before any handler parses them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or {}).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLargeError
            return message

        try:
            await self.app(scope, counted, send)
        except _BodyTooLargeError:
            await _too_large(self.limit, send)


class _BodyTooLargeError(Exception):
    pass


async def _too_large(limit: int, send: Send) -> None:
    body = (
        b'{"error":{"code":"body_too_large","message":"request bodies are limited to '
        + str(limit).encode()
        + b' bytes"}}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def context(request: Request) -> ServerContext:
    """The server's context. `async` on purpose: FastAPI runs a plain `def` dependency in a
    worker thread, and that hop cost more than most handlers (half the API's throughput)."""
    ctx: ServerContext = request.app.state.ctx
    return ctx
