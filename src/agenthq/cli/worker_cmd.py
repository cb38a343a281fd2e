"""`agenthq worker`: run queued steps of any run, on this machine, through the database."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from agenthq.cli import common


def register(app: typer.Typer) -> None:
    app.command()(worker)


def worker(
    capability: Annotated[
        list[str] | None,
        typer.Option(
            "--capability", "-c", help="What this machine offers (gpu, review …). Repeatable."
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=1000, help="Steps at a time.")] = 4,
    lease: Annotated[
        str, typer.Option(help="How long a claim holds without a heartbeat (renewed every third).")
    ] = "30s",
    name: Annotated[str | None, typer.Option(help="Worker name (default: host:pid).")] = None,
) -> None:
    """Claim queued steps (of runs started with --on-workers) this worker has the
    capabilities for, run them, report the results. Ctrl-C stops it; what it was running is
    retried elsewhere once its lease expires."""
    from agenthq.engine.worker import Worker
    from agenthq.errors import InputError
    from agenthq.spec.durations import parse_duration

    try:
        lease_s = parse_duration(lease)
    except ValueError as exc:
        raise InputError(f"--lease {lease!r}: {exc}") from None
    if lease_s < 1:
        raise InputError("--lease must be at least 1s")
    config = common.settings()
    store = common.store(config)
    runner = Worker(
        store,
        home=config.home,
        capabilities=capability or [],
        concurrency=concurrency,
        lease_s=lease_s,
        name=name,
        spawner=config.spawner,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        caps = ", ".join(runner.capabilities) or "none"
        print(
            f"worker {runner.name}: capabilities {caps}, {concurrency} at a time, "
            f"database {common.shown_url(config.db_url)}",
            flush=True,
        )
        await runner.run(stop=stop)
        print(f"worker {runner.name}: stopped after {runner.done} step(s)", flush=True)

    asyncio.run(main())
