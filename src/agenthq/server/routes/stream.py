"""Live events: Server-Sent Events at /api/events/stream and a WebSocket at /ws.

Both deliver the backlog a client asks for (`after`, or SSE's Last-Event-ID on reconnect),
then live events, with no gap and no duplicate at the seam (see server/feed.py). Filter one
run with `?run=ID`. SSE sends a comment line every 15 s so proxies keep the connection open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from agenthq.server import auth
from agenthq.server.app import ServerContext, context
from agenthq.server.feed import LaggingError
from agenthq.store.api import EventLine

router = APIRouter(tags=["events"])


@router.get("/api/events/stream")
async def event_stream(
    request: Request,
    ctx: Annotated[ServerContext, Depends(context)],
    run: Annotated[str | None, Query(max_length=100)] = None,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> StreamingResponse:
    """`text/event-stream`: `id:` is the event's seq, `event:` its kind, `data:` the JSON."""
    rid = ctx.store.resolve_run_id(run) if run else None
    start = after
    if last_event_id and last_event_id.isdigit() and int(last_event_id) <= 2**62:
        start = int(last_event_id)

    async def lines() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        try:
            async for batch in ctx.hub.stream(rid, start):
                if await request.is_disconnected():
                    return
                yield "".join(map(_sse, batch)) if batch else ": keep-alive\n\n"
        except LaggingError:
            yield "event: lagging\ndata: {}\n\n"  # the client reconnects with Last-Event-ID

    return StreamingResponse(
        lines(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(event: EventLine) -> str:
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {event.json}\n\n"


@router.websocket("/ws")
async def event_socket(
    websocket: WebSocket,
    run: str | None = None,
    after: int = 0,
    token: str | None = None,
) -> None:
    """Each message is one event's JSON. Authenticate with the Authorization header, the
    dashboard's cookie, or `?token=` (browsers cannot set headers on WebSockets)."""
    ctx: ServerContext = websocket.app.state.ctx
    header = websocket.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else None
    given = given or websocket.cookies.get(auth.COOKIE) or token
    await websocket.accept()  # then close with a code a browser script can read
    if not auth.same_secret(given, ctx.token):
        await websocket.close(code=4401, reason="unauthorized")
        return
    try:
        rid = ctx.store.resolve_run_id(run) if run else None
        async for batch in ctx.hub.stream(rid, min(max(0, after), 2**62)):
            for event in batch:
                await websocket.send_text(event.json)
    except (WebSocketDisconnect, LaggingError):
        return
    except Exception as exc:  # an unknown run id and the like: tell the client, then close
        await websocket.close(code=4400, reason=str(exc)[:120])
