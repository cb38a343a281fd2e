"""Assemble the server from settings: store, runner, host, hub, metrics, secrets."""

from __future__ import annotations

import os

from fastapi import FastAPI

from agenthq.agents.registry import agents_from_table
from agenthq.config import Settings
from agenthq.engine.alerting import build_evaluator
from agenthq.engine.gating import GateConfig, gate_config_from_tables
from agenthq.engine.runner import Runner
from agenthq.events.metrics import Metrics
from agenthq.server import auth
from agenthq.server.app import ServerContext, create_app
from agenthq.server.feed import EventHub
from agenthq.server.host import RunHost, workers_enabled
from agenthq.server.host_process import METRICS_FILE
from agenthq.store import open_store


def build_app(
    settings: Settings, *, run_host: bool = True, gates: GateConfig | None = None
) -> tuple[FastAPI, ServerContext]:
    store = open_store(settings.db_url)
    token = auth.load_or_create_secret(settings.home, auth.TOKEN_FILE)
    link_key = auth.load_or_create_secret(settings.home, auth.LINK_KEY_FILE)
    hub = EventHub(store)
    metrics = Metrics(store, hub.rate, tick_file=settings.home / METRICS_FILE)
    gate_config = gates or gate_config_from_tables(settings.tables, str(settings.config_file))
    # This runner decides approvals and cancels for the API; runs execute in the run host
    # process (server/host_process.py), which builds its own from the same settings.
    agents = agents_from_table(settings.tables.get("agents", {}), str(settings.config_file))
    # Refuse bad [alerts] settings now: the run host evaluates them in its own process.
    build_evaluator(store, settings.tables, settings.config_file, os.environ)
    workers_enabled(settings.tables, settings.config_file)  # and [workers]
    runner = Runner(store, home=settings.home, gates=gate_config, agents=agents)
    ctx = ServerContext(
        store=store,
        runner=runner,
        home=settings.home,
        workspace=settings.project_dir,
        token=token,
        link_key=link_key,
        host=RunHost(runner),
        hub=hub,
        metrics=metrics,
        run_host=run_host,
        tables=dict(settings.tables),
    )
    return create_app(ctx), ctx
