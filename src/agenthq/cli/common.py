"""What every command needs: settings, the store, JSON output, exit codes for run states."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from agenthq.config import Settings, load_settings
from agenthq.events import serialize
from agenthq.states import RunState
from agenthq.store.api import Store

if TYPE_CHECKING:
    from agenthq.engine.gating import GateConfig
    from agenthq.spec.agents import AgentSpec

# The JSON shapes are shared with the HTTP API (events/serialize.py).
run_json = serialize.run_json
step_json = serialize.step_json

RUN_EXIT_CODES = {
    RunState.SUCCEEDED: 0,
    RunState.FAILED: 1,
    RunState.CANCELLED: 130,
    RunState.AWAITING_APPROVAL: 3,
    RunState.PAUSED: 3,
}


def shown_url(url: str) -> str:
    """A database URL fit to print: no password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def settings() -> Settings:
    return load_settings()


def gate_config(config: Settings) -> GateConfig:
    """The gates' settings from agenthq.toml (ConfigError, exit 2, on a bad table)."""
    from agenthq.engine.gating import gate_config_from_tables

    return gate_config_from_tables(config.tables, str(config.config_file))


def agent_specs(config: Settings) -> dict[str, AgentSpec]:
    """`[agents.NAME]` of agenthq.toml (ConfigError, exit 2, naming the key, on bad input)."""
    from agenthq.agents.registry import agents_from_table

    table = config.tables.get("agents", {})
    return agents_from_table(table, str(config.config_file))


def store(config: Settings | None = None) -> Store:
    from agenthq.store import open_store

    return open_store((config or settings()).db_url)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
