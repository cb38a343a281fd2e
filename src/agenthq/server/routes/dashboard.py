"""The dashboard: server-rendered pages (Jinja2) with a little vanilla JS for live updates.

No build step, no CDN: the templates and static files ship in the package, so it works
offline. The DAG and the timeline are drawn as SVG here, on the server, from the stored plan
and attempts; the page's script only recolours nodes and refreshes panels from the event
stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from agenthq.errors import NotFoundError
from agenthq.events import serialize
from agenthq.server import auth
from agenthq.server.app import ServerContext, context
from agenthq.states import StepState

router = APIRouter(include_in_schema=False)
Ctx = Annotated[ServerContext, Depends(context)]
HERE = Path(__file__).resolve().parent.parent / "dashboard"
MAX_DRAWN_NODES = 400
MAX_TIMELINE_ROWS = 200
NODE_W, NODE_H, GAP_X, GAP_Y = 150, 30, 60, 14

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")


def page(name: str, ctx: ServerContext | None = None, **values: Any) -> HTMLResponse:
    values.setdefault("now", time.time())
    if ctx is not None:
        # Read before the page's data: the stream then starts at or before what it shows,
        # and re-applying an event to a page that already shows it is harmless.
        values.setdefault("seq", ctx.hub.last_seq)
    return HTMLResponse(_env.get_template(name).render(**values))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h{(seconds % 3600) // 60:02.0f}m"
    return f"{seconds / 86400:.1f}d"


def _clock(epoch: float | None) -> str:
    return "–" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


_env.filters["duration"] = _duration
_env.filters["clock"] = _clock
_env.globals["quote"] = quote


# ---- login --------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: str = "/", token: str | None = None) -> Response:
    ctx: ServerContext = request.app.state.ctx
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    if token is not None:
        if auth.same_secret(token, ctx.token):
            return _logged_in(target, ctx.token)
        return page("login.html", next=target, error="That token is not right.")
    return page("login.html", next=target, error=None)


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    ctx: ServerContext = request.app.state.ctx
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    if not auth.same_secret(token.strip(), ctx.token):
        return page("login.html", next=target, error="That token is not right.")
    return _logged_in(target, ctx.token)


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.COOKIE)
    return response


def _logged_in(target: str, token: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        auth.COOKIE, token, httponly=True, samesite="strict", max_age=30 * 86400, path="/"
    )
    return response


@router.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


@router.get("/metrics")
def metrics(ctx: Ctx) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)


# ---- pages --------------------------------------------------------------------------------


@router.get("/")
def overview(ctx: Ctx) -> HTMLResponse:
    seq = ctx.hub.last_seq  # before the data, so the stream misses nothing it lacks
    runs = ctx.store.list_runs(limit=50)
    stats = ctx.store.stats()
    counts = dict(stats.runs)
    approvals = ctx.store.list_approvals()
    return page(
        "overview.html",
        ctx,
        seq=seq,
        runs=[_run_row(serialize.run_json(r)) for r in runs],
        counts=counts,
        approvals=[serialize.approval_json(a) for a in approvals],
        alerts=_alerts(ctx),
        nav="overview",
    )


@router.get("/runs/{run_id}")
def run_page(run_id: str, ctx: Ctx) -> HTMLResponse:
    seq = ctx.hub.last_seq  # before the data, so the stream misses nothing it lacks
    rid = ctx.store.resolve_run_id(run_id)
    run = serialize.run_json(ctx.store.get_run(rid))
    steps = ctx.store.get_steps(rid)
    attempts = ctx.store.get_attempts(rid)
    dag = _dag(ctx, rid, {s.step_id: s.state.value for s in steps})
    return page(
        "run.html",
        ctx,
        seq=seq,
        run=_run_row(run),
        steps=[serialize.step_json(s) for s in steps],
        dag=dag,
        timeline=_timeline(attempts, run),
        approvals=[serialize.approval_json(a) for a in ctx.store.list_approvals(run_id=rid)],
        origin_text=serialize.origin_text(run.get("origin")),
        can_roll_back=ctx.runner.can_roll_back(rid),
        started_runs=[
            serialize.started_run_json(r) for r in ctx.store.list_runs(origin_run=rid, limit=20)
        ],
        predictions=ctx.runner.predict_pending(rid),
        nav="runs",
    )


@router.get("/runs/{run_id}/timeline")
def timeline_fragment(run_id: str, ctx: Ctx) -> HTMLResponse:
    rid = ctx.store.resolve_run_id(run_id)
    run = serialize.run_json(ctx.store.get_run(rid))
    return page("timeline.html", timeline=_timeline(ctx.store.get_attempts(rid), run))


@router.get("/approvals")
def approvals_page(ctx: Ctx) -> HTMLResponse:
    seq = ctx.hub.last_seq  # before the data, so the stream misses nothing it lacks
    approvals = [serialize.approval_json(a) for a in ctx.store.list_approvals()]
    return page("approvals.html", ctx, seq=seq, approvals=approvals, nav="approvals")


@router.get("/alerts")
def alerts_page(ctx: Ctx) -> HTMLResponse:
    seq = ctx.hub.last_seq
    live = _alerts(ctx)
    resolved = [
        serialize.alert_json(a) for a in ctx.store.list_alerts(states=("resolved",), limit=50)
    ]
    return page("alerts.html", ctx, seq=seq, alerts=live, resolved=resolved, nav="alerts")


@router.get("/schedules")
def schedules_page(ctx: Ctx) -> HTMLResponse:
    from agenthq.engine import cron
    from agenthq.engine.automation import describe

    seq = ctx.hub.last_seq
    automations = []
    for a in ctx.store.list_automations():
        last = ctx.store.list_fires(a.id, 1)
        tz = str(a.settings.get("tz", "UTC"))
        automations.append(
            {
                "id": a.id,
                "kind": a.kind,
                "plan": a.plan,
                "paused": a.paused,
                "when": describe(a),
                "next": cron.iso(a.next_at, tz) if a.next_at and a.kind == "schedule" else None,
                "last": last[0] if last else None,
            }
        )
    fires = [
        {
            "at": f.at,
            "automation": f.automation,
            "outcome": f.outcome,
            "run_id": f.run_id,
            "detail": " ".join(f"{k}={v}" for k, v in f.details.items() if k != "active"),
        }
        for f in ctx.store.list_fires(None, 30)
    ]
    return page(
        "schedules.html", ctx, seq=seq, automations=automations, fires=fires, nav="schedules"
    )


TREND_WINDOWS = ("24h", "7d", "30d")


@router.get("/trends")
def trends_page(ctx: Ctx, since: str = "7d") -> HTMLResponse:
    from agenthq.server.routes.learning import charts_for, model_json

    charts = charts_for(ctx, since)  # InputError (422) on a bad window, before any drawing
    return page(
        "trends.html",
        ctx,
        charts=charts,
        since=since,
        windows=TREND_WINDOWS,
        model=model_json(ctx),
        nav="trends",
    )


@router.get("/agents")
def agents_page(ctx: Ctx) -> HTMLResponse:
    seq = ctx.hub.last_seq  # before the data, so the stream misses nothing it lacks
    from agenthq.agents.registry import Registry
    from agenthq.agents.roster import roster

    breakers = ctx.store.get_breakers()
    agents = [
        s.as_json() for s in roster(Registry.build(ctx.runner.agent_specs), ctx.store, time.time())
    ]
    return page(
        "agents.html", ctx, seq=seq, agents=agents, breakers=list(breakers.values()), nav="agents"
    )


@router.get("/approval-link/{token}")
def approval_link(token: str, request: Request) -> HTMLResponse:
    """A signed link from a chat message: shows the step, then asks for a click (a GET never
    decides — link previews would approve things)."""
    ctx: ServerContext = request.app.state.ctx
    approval = _linked(ctx, token)
    return page("link.html", approval=serialize.approval_json(approval), token=token, done=None)


@router.post("/approval-link/{token}")
def decide_link(
    token: str,
    request: Request,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    from agenthq.store.api import ApprovalDecision, ApprovalState

    ctx: ServerContext = request.app.state.ctx
    approval = _linked(ctx, token)
    decided = ctx.store.decide_approval(
        ApprovalDecision(
            approval.id,
            ApprovalState.APPROVED if decision == "approve" else ApprovalState.REJECTED,
            "signed link",
            time.time(),
            note or None,
        )
    )
    return page("link.html", approval=serialize.approval_json(decided), token=token, done=decision)


def _linked(ctx: ServerContext, token: str) -> Any:
    approval_id = auth.verify_link(ctx.link_key, token, time.time())
    if approval_id is None:
        raise NotFoundError("this approval link is not valid or has expired")
    found = ctx.store.list_approvals(state=None, ids=[approval_id], limit=1)
    if not found:
        raise NotFoundError("this approval link is not valid or has expired")
    return found[0]


# ---- drawing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    id: str
    x: float
    y: float
    state: str


def _dag(ctx: ServerContext, run_id: str, states: dict[str, str]) -> dict[str, Any]:
    """A layered layout: x by longest path from a root, y by order within the layer."""
    graph = ctx.runner.graph_of(run_id)
    layers = graph.layers()
    nodes: dict[str, Node] = {}
    drawn = 0
    truncated = False
    for column, layer in enumerate(layers):
        for row, step_id in enumerate(layer):
            if drawn >= MAX_DRAWN_NODES:
                truncated = True
                break
            nodes[step_id] = Node(
                step_id,
                20 + column * (NODE_W + GAP_X),
                20 + row * (NODE_H + GAP_Y),
                states.get(step_id, "pending"),
            )
            drawn += 1
    edges = [
        (nodes[need], nodes[node_id])
        for node_id, node in graph.nodes.items()
        if node_id in nodes
        for need in node.needs
        if need in nodes
    ]
    width = max((n.x for n in nodes.values()), default=0) + NODE_W + 20
    height = max((n.y for n in nodes.values()), default=0) + NODE_H + 20
    return {
        "nodes": list(nodes.values()),
        "edges": edges,
        "width": width,
        "height": height,
        "node_w": NODE_W,
        "node_h": NODE_H,
        "truncated": truncated,
        "total": len(graph.nodes),
    }


def _timeline(attempts: list[Any], run: dict[str, Any]) -> dict[str, Any]:
    rows = attempts[:MAX_TIMELINE_ROWS]
    if not rows:
        return {"bars": [], "width": 900, "height": 40, "span": 0.0, "ticks": []}
    start = min(a.started_at for a in rows)
    now = time.time()
    end = max((a.finished_at or now) for a in rows)
    span = max(end - start, 0.001)
    width, label_w, row_h = 900, 190, 20
    scale = (width - label_w - 10) / span
    bars = []
    for index, a in enumerate(rows):
        finished = a.finished_at or now
        bars.append(
            {
                "label": f"{a.step_id} #{a.number}",
                "step": a.step_id,
                "x": label_w + (a.started_at - start) * scale,
                "y": 10 + index * row_h,
                "w": max(2.0, (finished - a.started_at) * scale),
                "state": a.state,
                "title": f"{a.step_id} attempt {a.number}: {a.state}, {_duration(finished - a.started_at)}",
            }
        )
    ticks = [
        {"x": label_w + i * (width - label_w - 10) / 4, "label": _duration(span * i / 4)}
        for i in range(5)
    ]
    return {
        "bars": bars,
        "width": width,
        "height": 30 + len(rows) * row_h,
        "span": span,
        "ticks": ticks,
        "truncated": len(attempts) > len(rows),
    }


def _run_row(run: dict[str, Any]) -> dict[str, Any]:
    counts = run["step_counts"]
    total = sum(counts.values()) or 1
    done = sum(v for k, v in counts.items() if StepState(k).finished)
    end = run["finished_at"] or time.time()
    run["progress"] = round(100 * done / total)
    run["done"] = done
    run["total"] = total
    run["duration"] = end - (run["started_at"] or run["created_at"])
    return run


def _alerts(ctx: ServerContext) -> list[dict[str, Any]]:
    """Open and acknowledged alerts, most severe first, for the overview."""
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    found = ctx.store.list_alerts(states=("open", "acknowledged"), limit=50)
    found.sort(key=lambda a: (order.get(a.severity, 9), -a.last_seen))
    return [serialize.alert_json(a) for a in found]
