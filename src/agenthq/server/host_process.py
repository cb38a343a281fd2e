"""The run host's own process, started and stopped by `agenthq serve`.

Schedulers are CPU work in Python; sharing a process (and its GIL) with the API made every
request and every streamed event wait behind scheduler ticks. In a child process the engine
and the server each get a core: the API keeps its latency and the runs keep their speed. The
two talk only through the store — the one source of truth — as every agenthq process does.

The child writes its scheduler tick histogram to `run-host.metrics.json` in the agenthq home
every few seconds, so the server's /metrics can report it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from prometheus_client import Histogram
from prometheus_client.registry import CollectorRegistry

from agenthq.agents.health import HealthMonitor
from agenthq.agents.registry import Registry, agents_from_table
from agenthq.config import load_settings
from agenthq.engine.alerting import build_evaluator
from agenthq.engine.automation import Automations
from agenthq.engine.gating import gate_config_from_tables
from agenthq.engine.runner import Runner
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.errors import AgentHQError
from agenthq.server.host import RunHost, workers_enabled
from agenthq.store import open_store

METRICS_FILE = "run-host.metrics.json"
TICK_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)


def write_tick_metrics(histogram: Histogram, path: Path) -> None:
    samples = {
        s.name + json.dumps(s.labels, sort_keys=True): s.value
        for m in histogram.collect()
        for s in m.samples
    }
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(samples), encoding="utf-8")
    os.replace(scratch, path)


async def serve_runs(poll_interval: float, automation_every: float = 1.0) -> None:
    settings = load_settings()
    store = open_store(settings.db_url)
    registry = CollectorRegistry()
    ticks = Histogram(
        "agenthq_scheduler_tick_seconds",
        "Duration of scheduler ticks in the server's run host.",
        buckets=TICK_BUCKETS,
        registry=registry,
    )
    runner = Runner(
        store,
        home=settings.home,
        gates=gate_config_from_tables(settings.tables, str(settings.config_file)),
        agents=agents_from_table(settings.tables.get("agents", {}), str(settings.config_file)),
        scheduler_options=replace(SchedulerOptions(), on_tick=ticks.observe),
        spawner=settings.spawner,
    )
    enabled = workers_enabled(settings.tables, settings.config_file)
    host = RunHost(runner, poll_interval=poll_interval, on_workers=enabled)
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main.cancel)  # type: ignore[union-attr]

    async def publish() -> None:
        while True:
            write_tick_metrics(ticks, settings.home / METRICS_FILE)
            await asyncio.sleep(1.0)

    evaluator, _ = build_evaluator(store, settings.tables, settings.config_file, os.environ)

    async def watch() -> None:
        """Every rule each `[alerts] every` seconds; in between, the event rules as soon as
        an event arrives (polled twice a second). A failing pass is retried."""
        every = evaluator.settings.every
        due = 0.0
        while True:
            try:
                if loop.time() >= due:
                    due = loop.time() + every
                    await asyncio.to_thread(evaluator.evaluate)
                elif await asyncio.to_thread(evaluator.has_news):
                    await asyncio.to_thread(evaluator.evaluate_events)
            except Exception as exc:  # a bad pass must not end alerting for the server's life
                print(f"agenthq serve: alert evaluation failed: {exc}", file=sys.stderr)
            await asyncio.sleep(min(0.5, every))

    automations = Automations(store, runner)

    async def automate() -> None:
        """Schedules once a second; `after:` and `on:` triggers as soon as events arrive.
        A failing pass is reported and retried: one bad plan file must not stop the rest."""
        while True:
            try:
                await asyncio.to_thread(automations.tick)
                if await asyncio.to_thread(automations.has_news):
                    await asyncio.to_thread(automations.on_events)
            except Exception as exc:
                print(f"agenthq serve: schedules and triggers failed: {exc}", file=sys.stderr)
            await asyncio.sleep(automation_every)

    # Every declared agent's health check on its schedule, runs or not (runs check theirs too).
    agents = agents_from_table(settings.tables.get("agents", {}), str(settings.config_file))
    monitor = HealthMonitor(store, Registry.build(agents).agents.values(), os.environ)

    async def check_health() -> None:
        while True:
            try:
                due_in = await monitor.check_due()
            except AgentHQError as exc:
                print(f"agenthq serve: health checks failed: {exc}", file=sys.stderr)
                due_in = 30.0
            await asyncio.sleep(min(max(due_in, 0.5), 30.0))

    async def watch_server() -> None:
        """Stop with the server: a `serve` killed with SIGKILL cannot stop its run host, and
        an orphaned host would go on running runs no server shows (and race the next one)."""
        server = int(os.environ.get("AGENTHQ_SERVER_PID", "0") or 0)
        while server:
            await asyncio.sleep(1.0)
            if os.getppid() != server:
                print("agenthq serve: the server is gone; the run host stops", file=sys.stderr)
                main.cancel()  # type: ignore[union-attr]
                return

    orphan_watch = asyncio.create_task(watch_server())
    publisher = asyncio.create_task(publish())
    watcher = asyncio.create_task(watch())
    automator = asyncio.create_task(automate())
    checker = asyncio.create_task(check_health()) if monitor else None
    try:
        await host.run()
    except asyncio.CancelledError:
        pass
    finally:
        publisher.cancel()
        orphan_watch.cancel()
        watcher.cancel()
        automator.cancel()
        if checker is not None:
            checker.cancel()
        await host.stop()
        write_tick_metrics(ticks, settings.home / METRICS_FILE)
        store.close()


def main() -> None:
    asyncio.run(
        serve_runs(
            float(os.environ.get("AGENTHQ_HOST_POLL", "0.1")),
            float(os.environ.get("AGENTHQ_AUTOMATION_EVERY", "1.0")),
        )
    )


if __name__ == "__main__":
    main()
