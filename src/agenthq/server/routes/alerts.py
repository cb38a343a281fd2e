"""`/api/alerts`: list, acknowledge and resolve alerts."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from agenthq.events.alerts import at_least
from agenthq.events.serialize import alert_json
from agenthq.server.app import ServerContext, context

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
Ctx = Annotated[ServerContext, Depends(context)]
AlertId = Annotated[int, Path(ge=1, le=2**62)]
_STATES = {"open": ("open", "acknowledged"), "resolved": ("resolved",), "all": None}


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)
    by: str | None = Field(default=None, max_length=200)


@router.get("")
def list_alerts(
    ctx: Ctx,
    state: Annotated[str, Query(pattern="^(open|resolved|all)$")] = "open",
    min_severity: Annotated[str, Query(pattern="^(low|medium|high|critical)$")] = "low",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Alerts, newest first: `open` (open and acknowledged, the default), `resolved`, `all`;
    of `min_severity` and above."""
    found = ctx.store.list_alerts(
        states=_STATES[state], severities=at_least(min_severity), limit=limit
    )
    return {"alerts": [alert_json(a) for a in found]}


@router.post("/{alert_id}/ack")
def ack(alert_id: AlertId, body: Change, request: Request, ctx: Ctx) -> dict[str, Any]:
    record = ctx.store.change_alert(
        alert_id, "acknowledged", by=body.by or _who(request), note=body.note, at=time.time()
    )
    return alert_json(record)


@router.post("/{alert_id}/resolve")
def resolve(alert_id: AlertId, body: Change, request: Request, ctx: Ctx) -> dict[str, Any]:
    record = ctx.store.change_alert(
        alert_id, "resolved", by=body.by or _who(request), note=body.note, at=time.time()
    )
    return alert_json(record)


def _who(request: Request) -> str:
    return f"dashboard@{request.client.host if request.client else 'unknown'}"
