"""`/api/messages`: the message bus over HTTP, for agents that are not steps (or not local)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from agenthq import messages
from agenthq.server.app import ServerContext, context

router = APIRouter(prefix="/api/messages", tags=["messages"])
Ctx = Annotated[ServerContext, Depends(context)]
Name = Annotated[str, Query(min_length=1, max_length=200)]
MAX_ID = 2**62


class Send(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sender: str = Field(min_length=1, max_length=200)
    recipient: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=messages.MAX_BODY)
    subject: str | None = Field(default=None, max_length=messages.MAX_SUBJECT)
    dedupe_key: str | None = Field(default=None, min_length=1, max_length=200)


class Read(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        default=None, max_length=10_000
    )
    agent: str | None = Field(default=None, min_length=1, max_length=200)


@router.post("", status_code=201)
def send(body: Send, ctx: Ctx) -> dict[str, Any]:
    """Send a message; the same `dedupe_key` twice stores it once (`new` is false)."""
    message_id, new = messages.send(
        ctx.store,
        body.sender,
        body.recipient,
        body.body,
        subject=body.subject,
        dedupe_key=body.dedupe_key,
    )
    return {"id": message_id, "new": new}


@router.get("")
def inbox(
    ctx: Ctx,
    agent: Name,
    unread: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """An agent's messages, oldest first (unread only unless `unread=false`)."""
    found = messages.inbox(ctx.store, agent, unread=unread, limit=limit)
    return {"messages": [messages.as_json(m) for m in found]}


@router.post("/read")
def read(body: Read, ctx: Ctx) -> dict[str, Any]:
    """Mark messages read: by id, or every message of `agent`."""
    return {"marked": messages.mark_read(ctx.store, body.ids, agent=body.agent)}


@router.get("/conversation")
def conversation(
    ctx: Ctx, a: Name, b: Name, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> dict[str, Any]:
    """Every message between two agents, both ways, oldest first."""
    found = messages.conversation(ctx.store, a, b, limit=limit)
    return {"messages": [messages.as_json(m) for m in found]}
