"""What history says: `/api/trends` (each chart's data as JSON, CSV or an SVG/PNG drawing),
`/api/model` (the saved failure model and whether the risk gate uses it) and
`/api/runs/{id}/predictions` (each unfinished step's predicted failure probability).

Charts are drawn with matplotlib in FastAPI's thread pool and kept for `CHART_TTL_S`: a page
of five charts costs one drawing per chart per half minute, whoever looks.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from agenthq.errors import InputError, NotFoundError
from agenthq.ml.trends import CHART_NAMES, Chart, trends
from agenthq.server.app import ServerContext, context

router = APIRouter(prefix="/api", tags=["learning"])
Ctx = Annotated[ServerContext, Depends(context)]
Since = Annotated[
    str, Query(max_length=20, description="The window: a duration such as 24h, 7d, 30d (≤ 90d).")
]
MAX_WINDOW_S = 90 * 86400.0
CHART_TTL_S = 30.0
_MEDIA = {"csv": "text/csv; charset=utf-8", "svg": "image/svg+xml", "png": "image/png"}

_cache: dict[tuple[str, ...], tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def window(since: str) -> float:
    from agenthq.spec.durations import parse_duration

    try:
        seconds = parse_duration(since)
    except ValueError as exc:
        raise InputError(f"since: {exc}") from None
    if not 0 < seconds <= MAX_WINDOW_S:
        raise InputError("since must be longer than 0 and at most 90d")
    return seconds


def charts_for(ctx: ServerContext, since: str) -> list[Chart]:
    seconds = window(since)
    found: list[Chart] = _cached(("trends", since), lambda: trends(ctx.store, seconds))
    return found


def _cached(key: tuple[str, ...], make: Any) -> Any:
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < CHART_TTL_S:
            return hit[1]
    value = make()
    with _cache_lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = (now, value)
    return value


@router.get("/trends")
def list_trends(ctx: Ctx, since: Since = "7d") -> dict[str, Any]:
    """Attempts per hour/day, failure rate by agent, p50/p95 duration, approval waits, cost."""
    return {
        "since": since,
        "charts": [
            {
                "name": c.name,
                "title": c.title,
                "kind": c.kind,
                "columns": list(c.columns),
                "rows": [list(r) for r in c.rows],
            }
            for c in charts_for(ctx, since)
        ],
    }


@router.get("/trends/{name}.{fmt}")
def trend_file(
    ctx: Ctx,
    name: Annotated[str, Path(pattern="^[a-z_]{1,40}$")],
    fmt: Annotated[str, Path(pattern="^(csv|svg|png)$")],
    since: Since = "7d",
    theme: Annotated[str, Query(pattern="^(light|dark)$")] = "light",
) -> Response:
    """One chart: its data as CSV, or drawn as SVG or PNG."""
    if name not in CHART_NAMES:
        raise NotFoundError(f"no chart {name!r}; the charts are {', '.join(CHART_NAMES)}")
    chart = next(c for c in charts_for(ctx, since) if c.name == name)
    if fmt == "csv":
        body: bytes = chart.csv().encode()
        headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
    else:
        from agenthq.ml.charts import draw

        body = _cached(("draw", name, fmt, since, theme), lambda: draw(chart, fmt, theme))
        headers = {"Cache-Control": f"private, max-age={int(CHART_TTL_S)}"}
    return Response(body, media_type=_MEDIA[fmt], headers=headers)


@router.get("/model")
def model_status(ctx: Ctx) -> dict[str, Any]:
    """The saved failure model (null when none), its figures, and whether the risk gate uses it."""
    return model_json(ctx)


def model_json(ctx: ServerContext) -> dict[str, Any]:
    from agenthq.ml.model import read_meta

    meta = read_meta(ctx.home / "models")
    settings = ctx.runner.gate_config.model
    if meta is None:
        return {
            "model": None,
            "used": False,
            "why": "no model has been trained (`agenthq model train`)",
        }
    usable, why = meta.usable(time.time(), settings.max_age_days)
    if not settings.enabled:
        usable, why = False, "[model] enabled = false"
    return {
        "model": {
            "kind": meta.kind,
            "created_at": meta.created_at,
            "train_rows": meta.train_rows,
            "roc_auc": meta.model.roc_auc,
            "baseline_roc_auc": meta.baseline.roc_auc,
            "pr_auc": meta.model.pr_auc,
            "brier": meta.model.brier,
            "threshold": meta.threshold,
        },
        "used": usable,
        "weight": settings.weight,
        "why": why,
    }


@router.get("/runs/{run_id}/predictions")
def predictions(run_id: Annotated[str, Path(max_length=200)], ctx: Ctx) -> dict[str, Any]:
    """Each unfinished step's predicted probability of failing if it starts now (first 200),
    while a model is in use; `predictions` is empty otherwise and `why` says why."""
    rid = ctx.store.resolve_run_id(run_id)
    found = ctx.runner.predict_pending(rid)
    status = model_json(ctx)
    return {"run": rid, "used": found is not None, "why": status["why"], "predictions": found or {}}
