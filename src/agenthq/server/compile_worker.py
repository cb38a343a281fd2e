"""Plans sent to the API are parsed and compiled in a worker process.

A 5,000-step plan takes a few hundred milliseconds of CPU to parse, validate and compile;
inside the server, under the GIL, that would stall every other request and stream for as long.
One long-lived worker process (spawned, so it shares nothing) does it instead and writes the
new run to the store; the server only queues it. Errors come back as (kind, message), since
our exception types are built from structured problems and do not cross processes as such.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agenthq.agents.registry import agents_from_table
from agenthq.errors import AgentHQError, InputError, NotFoundError, StateError, StoreError

_RUNNERS: dict[tuple[str, str], Any] = {}  # in the worker: one runner per (database, home)


def new_pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


@dataclass(frozen=True)
class CompileRequest:
    """One request's worth of plain, picklable values."""

    db_url: str
    home: str
    tables: Mapping[str, Any]
    config_file: str
    plan_text: str | None
    plan_path: str | None
    params: Mapping[str, Any]
    workspace: str
    max_workers: int | None
    start: bool  # False: validate only


def compile_in_worker(request: CompileRequest) -> tuple[str, Any]:
    """("ok", {"run_id"} or {"plan", "steps"}) or (error kind, message)."""
    try:
        return "ok", _compile(request)
    except AgentHQError as exc:
        return _kind(exc), str(exc)


def _compile(request: CompileRequest) -> dict[str, Any]:
    from agenthq.engine.gating import gate_config_from_tables
    from agenthq.engine.ownership import QUEUED
    from agenthq.engine.runner import Runner
    from agenthq.graph import compile_plan
    from agenthq.spec.load import load_plan, load_plan_text
    from agenthq.spec.params import resolve_params
    from agenthq.store import open_store

    if request.plan_text is not None:
        loaded = load_plan_text(request.plan_text, name="<request>")
        plan_dir = None
    else:
        assert request.plan_path is not None
        loaded = load_plan(request.plan_path)
        plan_dir = Path(request.plan_path).parent
    if not request.start:
        values = resolve_params(loaded.spec, request.params, allow_missing=True)
        graph = compile_plan(loaded.spec, params=values, source=loaded.source, plan_dir=plan_dir)
        return {"plan": loaded.spec.name, "steps": len(graph.nodes)}
    key = (request.db_url, request.home)
    runner = _RUNNERS.get(key)
    if runner is None:
        gates = gate_config_from_tables(request.tables, request.config_file)
        agents = agents_from_table(request.tables.get("agents", {}), request.config_file)
        runner = Runner(
            open_store(request.db_url), home=Path(request.home), gates=gates, agents=agents
        )
        _RUNNERS[key] = runner
    record = runner.start(
        loaded,
        params=request.params,
        workspace=request.workspace,
        max_workers=request.max_workers,
    )
    runner.store.claim_run(record.id, QUEUED)
    return {"run_id": record.id}


_KINDS: tuple[tuple[type[AgentHQError], str], ...] = (
    (NotFoundError, "not_found"),
    (StateError, "state"),
    (InputError, "input"),
    (StoreError, "store"),
    (AgentHQError, "error"),
)


def _kind(exc: AgentHQError) -> str:
    return next(kind for cls, kind in _KINDS if isinstance(exc, cls))


def raise_for(kind: str, message: str) -> None:
    """Re-raise a worker's error in the server as the same kind of our exceptions."""
    cls: type[AgentHQError] = {
        "not_found": NotFoundError,
        "state": StateError,
        "input": InputError,
        "store": StoreError,
    }.get(kind, AgentHQError)
    raise cls(message)
