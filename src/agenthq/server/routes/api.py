"""`/api/…`: plans, runs, steps, logs, approvals, agents and events, as JSON.

Every body is a pydantic model (unknown fields refused, sizes bounded); every answer uses the
shapes in events/serialize.py, the same as the CLI's `--json`. Plans given by path must lie
inside the server's workspace; log files are read only from inside the agenthq home.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agenthq.errors import InputError, NotFoundError
from agenthq.events import serialize
from agenthq.server.app import ServerContext, context, read_key
from agenthq.states import RunState
from agenthq.store.api import BreakerRecord

router = APIRouter(prefix="/api", tags=["api"])
Ctx = Annotated[ServerContext, Depends(context)]
MAX_PAGE = 200
MAX_LOG_BYTES = 1024 * 1024
MAX_ID = 2**62  # database integers are 64-bit: larger numbers are simply not ids
ApprovalId = Annotated[int, Path(ge=1, le=MAX_ID)]
Seq = Annotated[int, Query(ge=0, le=MAX_ID)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanInput(Strict):
    """A plan as YAML text, or the path of a plan file inside the workspace."""

    plan: str | None = Field(default=None, max_length=512 * 1024)
    path: str | None = Field(default=None, max_length=4096)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> PlanInput:
        if (self.plan is None) == (self.path is None):
            raise ValueError("give exactly one of `plan` (YAML text) or `path` (a plan file)")
        if self.path is not None and ("\x00" in self.path or not self.path.strip()):
            raise ValueError("`path` must be a file path (no NUL characters, not empty)")
        return self


class StartRun(PlanInput):
    max_workers: int | None = Field(default=None, ge=1, le=10_000)


class Decision(Strict):
    note: str | None = Field(default=None, max_length=2000)
    by: str | None = Field(default=None, max_length=200)
    extend_usd: float | None = Field(default=None, gt=0, le=1_000_000)


class Release(Strict):
    note: str | None = Field(default=None, max_length=2000)
    by: str | None = Field(default=None, max_length=200)


# ---- health -------------------------------------------------------------------------------


@router.get("/health", include_in_schema=False)
def api_health(ctx: Ctx) -> dict[str, Any]:
    return {"ok": True, "events": ctx.hub.last_seq}


# ---- plans and runs -----------------------------------------------------------------------


@router.post("/plans/validate")
async def validate_plan(body: PlanInput, ctx: Ctx) -> dict[str, Any]:
    """Check a plan; 422 with every problem (file:line) when it is invalid."""
    result = await _in_worker(ctx, body, start=False)
    return {"valid": True, "plan": result["plan"], "steps": result["steps"]}


@router.post("/runs", status_code=201)
async def start_run(body: StartRun, ctx: Ctx) -> dict[str, Any]:
    """Start a run; the server executes it (it is queued for the run host)."""
    result = await _in_worker(ctx, body, start=True, max_workers=body.max_workers)
    return serialize.run_json(ctx.store.get_run(result["run_id"]))


async def _in_worker(
    ctx: ServerContext, body: PlanInput, *, start: bool, max_workers: int | None = None
) -> dict[str, Any]:
    """Parse and compile (and for `start`, record and queue) in the compile worker."""
    import asyncio

    from agenthq.server.compile_worker import CompileRequest, compile_in_worker, raise_for

    path = _plan_path(body, ctx) if body.path is not None else None
    request = CompileRequest(
        db_url=ctx.store.url,
        home=str(ctx.home),
        tables=dict(ctx.tables),
        config_file=str(ctx.workspace / "agenthq.toml"),
        plan_text=body.plan,
        plan_path=str(path) if path is not None else None,
        params=dict(body.params),
        workspace=str(ctx.workspace),
        max_workers=max_workers,
        start=start,
    )
    loop = asyncio.get_running_loop()
    kind, value = await loop.run_in_executor(ctx.compile_pool(), compile_in_worker, request)
    if kind != "ok":
        raise_for(kind, value)
    return dict(value)


@router.get("/runs")
async def list_runs(
    request: Request,
    ctx: Ctx,
    state: RunState | None = None,
    plan: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Runs, newest first: `{"runs": [...], "limit", "offset", "next_offset"}`."""
    seq, now = ctx.hub.last_seq, time.monotonic()  # before the read: it is at least this new
    runs = ctx.store.list_runs(state=state, plan=plan, limit=limit + 1, offset=offset)
    more = len(runs) > limit
    body = _json(
        {
            "runs": [serialize.run_json(r) for r in runs[:limit]],
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if more else None,
        }
    )
    ctx.reads.put(seq, read_key(request.scope), body, now)  # CachedReads answers the next
    return Response(body, media_type="application/json")


@router.get("/runs/{run_id}")
async def get_run(run_id: str, request: Request, ctx: Ctx) -> Response:
    """One run with its steps."""
    seq, now = ctx.hub.last_seq, time.monotonic()
    rid = ctx.store.resolve_run_id(run_id)
    run = serialize.run_json(ctx.store.get_run(rid))
    run["steps"] = [serialize.step_json(s) for s in ctx.store.get_steps(rid)]
    run["started_runs"] = [
        serialize.started_run_json(r) for r in ctx.store.list_runs(origin_run=rid, limit=50)
    ]
    body = _json(run)
    ctx.reads.put(seq, read_key(request.scope), body, now)
    return Response(body, media_type="application/json")


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value, separators=(",", ":"), default=str).encode()


@router.get("/runs/{run_id}/steps/{step_id}")
def get_step(run_id: str, step_id: str, ctx: Ctx) -> dict[str, Any]:
    rid = ctx.store.resolve_run_id(run_id)
    step = next((s for s in ctx.store.get_steps(rid) if s.step_id == step_id), None)
    if step is None:
        raise NotFoundError(f"run {rid} has no step {step_id!r}")
    body = serialize.step_json(step)
    body["attempts"] = [serialize.attempt_json(a) for a in ctx.store.get_attempts(rid, step_id)]
    body["gates"] = [serialize.gate_json(g) for g in ctx.store.get_gate_results(rid, step_id)]
    trees = [w for w in ctx.store.list_worktrees(run_id=rid) if w.step_id == step_id]
    latest = max(trees, key=lambda w: w.attempt, default=None)
    body["worktree"] = (
        None
        if latest is None
        else {
            "attempt": latest.attempt,
            "state": latest.state,
            "branch": latest.branch,
            "merge": latest.merge,
        }
    )
    return body


@router.get("/runs/{run_id}/steps/{step_id}/diff")
async def get_diff(run_id: str, step_id: str, ctx: Ctx) -> dict[str, Any]:
    """What a coding agent changed in its worktree (kept for review, after a conflict or a
    failure). Lines where the secrets scanner sees a credential are withheld."""
    from agenthq.agents import worktree
    from agenthq.gates.secrets_scan import scan_text

    rid = ctx.store.resolve_run_id(run_id)
    trees = [w for w in ctx.store.list_worktrees(run_id=rid) if w.step_id == step_id]
    latest = max(trees, key=lambda w: w.attempt, default=None)
    if latest is None:
        raise NotFoundError(f"step {step_id!r} of run {rid} has no worktree")
    if latest.state in ("merged", "removed"):
        return {"state": latest.state, "branch": latest.branch, "diff": ""}
    tree = worktree.Worktree(
        FilePath(latest.path), latest.branch, latest.base, FilePath(latest.repo)
    )
    try:
        text = await asyncio.to_thread(worktree.diff, tree)
    except worktree.WorktreeError as exc:
        raise NotFoundError(f"the branch {latest.branch} cannot be read any more: {exc}") from None
    hidden = {f.line: f.kind for f in scan_text(text)}
    lines = [
        f"{line[:1]}[line withheld: possible {hidden[n]}]" if n in hidden else line
        for n, line in enumerate(text.splitlines(), 1)
    ]
    return {"state": latest.state, "branch": latest.branch, "diff": "\n".join(lines)}


@router.get("/runs/{run_id}/steps/{step_id}/logs")
def get_logs(
    run_id: str,
    step_id: str,
    ctx: Ctx,
    stream: Literal["stdout", "stderr"] = "stdout",
    attempt: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_BYTES)] = 64 * 1024,
    tail: Annotated[int | None, Query(ge=1, le=MAX_LOG_BYTES)] = None,
) -> dict[str, Any]:
    """A byte range of one attempt's log (default: the latest attempt), or its last `tail`
    bytes. `next_offset` continues from where this read ended: poll it to follow."""
    rid = ctx.store.resolve_run_id(run_id)
    attempts = ctx.store.get_attempts(rid, step_id)
    if not attempts:
        raise NotFoundError(f"step {step_id!r} of run {rid} has no attempts yet")
    chosen = (
        attempts[-1]
        if attempt is None
        else next((a for a in attempts if a.number == attempt), None)
    )
    if chosen is None:
        raise NotFoundError(f"step {step_id!r} of run {rid} has no attempt {attempt}")
    raw = chosen.stdout_path if stream == "stdout" else chosen.stderr_path
    path = _inside_home(ctx, raw)
    stored: bytes | None = None
    if not path.is_file() and chosen.finished_at is not None:  # ran on a worker
        text = ctx.store.read_log((rid, step_id, chosen.number), stream)
        stored = text.encode() if text is not None else None
    size = path.stat().st_size if path.is_file() else len(stored or b"")
    start = max(0, size - tail) if tail is not None else min(offset, size)
    data = b""
    if stored is not None:
        data = stored[start : start + (limit if tail is None else tail)]
    elif path.is_file():
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read(limit if tail is None else tail)
    return {
        "attempt": chosen.number,
        "stream": stream,
        "offset": start,
        "next_offset": start + len(data),
        "size": size,
        "finished": chosen.finished_at is not None,
        "text": data.decode("utf-8", "replace"),
    }


@router.post("/runs/{run_id}/cancel")
def cancel_run(run_id: str, ctx: Ctx) -> dict[str, Any]:
    rid = ctx.store.resolve_run_id(run_id)
    return serialize.run_json(ctx.runner.cancel(rid))


@router.post("/runs/{run_id}/pause")
def pause_run(run_id: str, ctx: Ctx) -> dict[str, Any]:
    """Start nothing new in the run (running steps finish); durable until resumed."""
    rid = ctx.store.resolve_run_id(run_id)
    return serialize.run_json(ctx.runner.pause(rid))


@router.post("/runs/{run_id}/rollback", status_code=201)
def rollback_run(run_id: str, ctx: Ctx) -> dict[str, Any]:
    """Undo a finished run: a new run (plan NAME-rollback) of the `compensate` of each of its
    succeeded steps, newest dependency first, executed by this server. 409 when the run is
    not finished, is being rolled back, or has nothing to undo."""
    rid = ctx.store.resolve_run_id(run_id)
    record = ctx.runner.rollback(rid)
    ctx.host.queue(record.id)
    return serialize.run_json(ctx.store.get_run(record.id))


@router.post("/runs/{run_id}/resume")
def resume_run(run_id: str, ctx: Ctx) -> dict[str, Any]:
    """Continue a paused run, or a stopped one here (a crashed process, a `--no-wait` that
    exited)."""
    from agenthq.engine.ownership import owner_alive
    from agenthq.errors import RunBusyError, StateError

    rid = ctx.store.resolve_run_id(run_id)
    was_paused = ctx.store.get_run_control(rid).pause_requested
    if was_paused and ctx.runner.lift_pause(rid) is not None:
        return serialize.run_json(ctx.store.get_run(rid))  # its executor goes on
    run = ctx.store.get_run(rid)
    if run.state.finished:
        raise StateError(f"run {rid} already {run.state}; retry it to give failed steps new tries")
    if run.owner and owner_alive(run.owner, run.heartbeat_at, time.time()):
        raise RunBusyError(f"run {rid} is being executed by process {run.owner}")
    ctx.host.queue(rid)
    return serialize.run_json(ctx.store.get_run(rid))


@router.get("/runs/{run_id}/events")
def run_events(
    run_id: str,
    ctx: Ctx,
    format: Literal["json", "csv"] = "json",
    after: Seq = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100_000,
) -> Response:
    """Export a run's events as JSON or CSV."""
    rid = ctx.store.resolve_run_id(run_id)
    events = [
        serialize.event_json(e)
        for e in ctx.store.read_events(after_seq=after, run_id=rid, limit=limit)
    ]
    disposition = {"Content-Disposition": f'attachment; filename="{rid}-events.{format}"'}
    if format == "json":
        import json

        return Response(
            json.dumps(events, indent=1), media_type="application/json", headers=disposition
        )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["seq", "at", "kind", "step_id", "attempt", "from", "to", "details", "hash"])
    import json

    for e in events:
        writer.writerow(
            [
                e["seq"],
                e["at"],
                e["kind"],
                e["step_id"] or "",
                e["attempt"] or "",
                e["from"] or "",
                e["to"] or "",
                json.dumps(e["details"], sort_keys=True),
                e["hash"],
            ]
        )
    return PlainTextResponse(out.getvalue(), media_type="text/csv", headers=disposition)


# ---- approvals and agents ------------------------------------------------------------------


@router.get("/approvals")
def list_approvals(
    ctx: Ctx, run: Annotated[str | None, Query(max_length=100)] = None
) -> dict[str, Any]:
    rid = ctx.store.resolve_run_id(run) if run else None
    now = time.time()
    return {
        "approvals": [serialize.approval_json(a, now) for a in ctx.store.list_approvals(run_id=rid)]
    }


@router.post("/approvals/{approval_id}/approve")
def approve(approval_id: ApprovalId, body: Decision, request: Request, ctx: Ctx) -> dict[str, Any]:
    return _decide(ctx, approval_id, body, approve=True, request=request)


@router.post("/approvals/{approval_id}/reject")
def reject(approval_id: ApprovalId, body: Decision, request: Request, ctx: Ctx) -> dict[str, Any]:
    return _decide(ctx, approval_id, body, approve=False, request=request)


@router.get("/agents")
def list_agents(ctx: Ctx) -> dict[str, Any]:
    """Every agent with its state (idle, busy, quarantined, unhealthy, offline), load,
    failure rate and mean risk; and the circuit breakers."""
    from agenthq.agents.registry import Registry
    from agenthq.agents.roster import roster

    breakers = ctx.store.get_breakers()
    statuses = roster(Registry.build(ctx.runner.agent_specs), ctx.store, time.time())
    return {
        "agents": [
            {
                **s.as_json(),
                "breaker": _breaker_summary(breakers.get(f"agent:{s.name}")),
            }
            for s in statuses
        ],
        "breakers": [
            {"key": b.key, "state": b.state, "failures": b.failures, "trips": b.trips}
            for b in breakers.values()
        ],
    }


def _breaker_summary(breaker: BreakerRecord | None) -> dict[str, Any] | None:
    return None if breaker is None else {"state": breaker.state, "trips": breaker.trips}


@router.post("/agents/{name}/release")
def release_agent(name: str, body: Release, request: Request, ctx: Ctx) -> dict[str, Any]:
    record = ctx.store.release_agent(
        name, by=body.by or _who(request), note=body.note, at=time.time()
    )
    return serialize.agent_json(record, None)


@router.get("/events")
def list_events(
    ctx: Ctx,
    after: Seq = 0,
    run: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Events after a sequence number (all runs, or one): poll this, or use the stream."""
    rid = ctx.store.resolve_run_id(run) if run else None
    events = ctx.store.read_events(after_seq=after, run_id=rid, limit=limit)
    return {
        "events": [serialize.event_json(e) for e in events],
        "last_seq": events[-1].seq if events else after,
    }


# ---- helpers -------------------------------------------------------------------------------


def _decide(
    ctx: ServerContext, approval_id: int, body: Decision, *, approve: bool, request: Request
) -> dict[str, Any]:
    from agenthq.store.api import ApprovalDecision, ApprovalKind, ApprovalState

    (record,) = ctx.store.list_approvals(state=None, ids=[approval_id], limit=1) or (None,)
    if record is None:
        raise NotFoundError(f"no approval with id {approval_id}")
    decided = ctx.store.decide_approval(
        ApprovalDecision(
            approval_id,
            ApprovalState.APPROVED if approve else ApprovalState.REJECTED,
            body.by or _who(request),
            time.time(),
            body.note,
            body.extend_usd if record.kind is ApprovalKind.BUDGET else None,
        )
    )
    return serialize.approval_json(decided)


def _who(request: Request) -> str:
    client = request.client.host if request.client else "unknown"
    return f"dashboard@{client}"


def _plan_path(body: PlanInput, ctx: ServerContext) -> FilePath:
    assert body.path is not None
    path = (ctx.workspace / body.path).resolve()
    if not path.is_relative_to(ctx.workspace.resolve()):
        raise InputError(
            f"plan path {body.path!r} is outside the server's workspace {ctx.workspace}"
        )
    if not path.is_file():
        raise NotFoundError(f"no plan file at {body.path!r} in {ctx.workspace}")
    return path


def _inside_home(ctx: ServerContext, raw: str | None) -> FilePath:
    """A log path from the store, only if it lies inside the agenthq home."""
    if not raw:
        raise NotFoundError("this attempt has no log file")
    path = FilePath(raw).resolve()
    if not path.is_relative_to(ctx.home.resolve()):
        raise InputError(
            "the log file of this attempt lies outside the agenthq home; refusing to read it"
        )
    return path
