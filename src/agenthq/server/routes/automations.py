"""`/api/automations`: the schedules and triggers `agenthq serve` acts on, and what each of
their ticks and matches did. Registering one stays a CLI step (`agenthq schedule add`): it
reads a plan file from the workspace and checks it would start."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from agenthq.events import serialize
from agenthq.server.app import ServerContext, context
from agenthq.store.api import AutomationRecord

router = APIRouter(prefix="/api", tags=["automations"])
Ctx = Annotated[ServerContext, Depends(context)]
Id = Annotated[str, Path(max_length=200)]


def _automation(ctx: ServerContext, record: AutomationRecord) -> dict[str, Any]:
    last = ctx.store.list_fires(record.id, 1)
    return serialize.automation_json(record, last[0] if last else None)


@router.get("/automations")
def list_automations(
    ctx: Ctx, kind: Annotated[str | None, Query(pattern="^(schedule|after|on)$")] = None
) -> dict[str, Any]:
    """Schedules (`kind=schedule`) and triggers (`after`, `on`), with their last outcome."""
    found = ctx.store.list_automations(kind)
    return {"automations": [_automation(ctx, a) for a in found]}


@router.get("/automations/{automation_id}/fires")
def list_fires(
    automation_id: Id, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> dict[str, Any]:
    """Every tick or match, newest first: started (with its run) or why it did not start."""
    ctx.store.get_automation(automation_id)
    return {"fires": [serialize.fire_json(f) for f in ctx.store.list_fires(automation_id, limit)]}


@router.post("/automations/{automation_id}/pause")
def pause(automation_id: Id, ctx: Ctx) -> dict[str, Any]:
    """Start no runs from it until resumed."""
    record = ctx.store.set_automation(automation_id, paused=True)
    return _automation(ctx, record)


@router.post("/automations/{automation_id}/resume")
def resume(automation_id: Id, ctx: Ctx) -> dict[str, Any]:
    """Act again; a schedule goes on from its next tick (paused ticks are not caught up)."""
    import time

    from agenthq.engine import automation

    return _automation(ctx, automation.resume(ctx.store, automation_id, time.time()))
