"""`agenthq serve`: the API, the dashboard, the live stream and the run host, on loopback."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from agenthq.cli import common


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8765,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote", help="Allow binding a non-loopback address (the token still applies)."
        ),
    ] = False,
    no_runs: Annotated[
        bool, typer.Option("--no-runs", help="Serve the API and dashboard only; execute no runs.")
    ] = False,
) -> None:
    """Start mission control: HTTP API under /api, dashboard at /, events at
    /api/events/stream and /ws, metrics at /metrics. Runs started with `run --detach` or the
    API execute here."""
    from agenthq.errors import InputError
    from agenthq.server import auth

    if not auth.is_loopback(host) and not allow_remote:
        raise InputError(
            f"refusing to bind {host}: only loopback (127.0.0.1) is served by default; pass "
            "--allow-remote to expose it (every request still needs the token)"
        )
    import uvicorn

    from agenthq.server.build import build_app

    config = common.settings()
    app, ctx = build_app(config, run_host=not no_runs)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=3,  # open event streams must not hold a shutdown
        )
    )

    async def announce_then_serve() -> None:
        import asyncio

        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
            print(f"agenthq serving on http://{shown}:{bound}", file=sys.stderr)
            print(
                f"dashboard: http://{shown}:{bound}/login?token={ctx.token}",
                file=sys.stderr,
                flush=True,
            )
        await task

    import asyncio

    asyncio.run(announce_then_serve())
