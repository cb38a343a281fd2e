"""Trends over a window of history: throughput, failure rate by agent, durations, how long
people take to answer, and spending — each a small table that can be drawn (ml/charts.py) or
exported as CSV, from the telemetry table and the approvals.

Buckets are hours for windows up to two days and days beyond, in UTC, so a report reads the
same wherever it is opened.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from agenthq.store.api import Store

__all__ = ["CHART_NAMES", "Chart", "trends"]

HOUR = 3600.0
DAY = 86400.0
CHART_NAMES = ("steps", "failure_rate", "duration", "approval_wait", "cost")


@dataclass(frozen=True)
class Chart:
    name: str  # a stable id: the CSV's file name and the API's path
    title: str
    kind: str  # line (x = time) | bar (x = a label)
    x_label: str
    y_label: str
    columns: Sequence[str]  # the first is x
    rows: Sequence[Sequence[float | str]]

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue()

    @property
    def empty(self) -> bool:
        return not self.rows


def trends(store: Store, since_s: float, *, now: float | None = None) -> list[Chart]:
    """The five charts of `agenthq report` and the Trends page, over the last `since_s`."""
    now = time.time() if now is None else now
    start = now - since_s
    bucket = HOUR if since_s <= 2 * DAY else DAY
    rows = [
        r
        for r in store.list_telemetry(started_from=start - DAY)
        if r.finished_at >= start and r.outcome in ("succeeded", "failed")
    ]
    approvals = store.list_approvals(state=None, requested_from=start, limit=100_000)
    label = "hour" if bucket == HOUR else "day"

    by_time: dict[float, list[int]] = defaultdict(lambda: [0, 0])
    durations: dict[float, list[float]] = defaultdict(list)
    cost: dict[float, float] = defaultdict(float)
    by_agent: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        key = _bucket(r.finished_at, bucket)
        by_time[key][0 if r.outcome == "succeeded" else 1] += 1
        durations[key].append(r.duration_s)
        by_agent[r.agent or "(no agent)"][0] += 1
        by_agent[r.agent or "(no agent)"][1] += r.outcome == "failed"
        if r.cost_usd:
            cost[_bucket(r.finished_at, DAY)] += r.cost_usd
    waits: dict[float, list[float]] = defaultdict(list)
    for a in approvals:
        if a.kind.value == "wait":
            continue  # a scheduled sign-off waits by design; only questions count
        end = a.decided_at if a.decided_at is not None else now
        waits[_bucket(a.requested_at, bucket)].append(max(0.0, end - a.requested_at))

    times = _axis(start, now, bucket)
    return [
        Chart(
            "steps",
            f"Attempts finished per {label}",
            "line",
            f"{label} (UTC)",
            "attempts",
            ("time", "succeeded", "failed"),
            [(_iso(t), by_time[t][0], by_time[t][1]) for t in times] if rows else [],
        ),
        Chart(
            "failure_rate",
            "Failure rate by agent",
            "bar",
            "agent",
            "failed attempts (%)",
            ("agent", "failure_rate_pct", "attempts", "failed"),
            [
                (agent, round(100 * failed / total, 1), total, failed)
                for agent, (total, failed) in sorted(by_agent.items())
            ],
        ),
        Chart(
            "duration",
            f"Attempt duration per {label}: p50 and p95",
            "line",
            f"{label} (UTC)",
            "seconds",
            ("time", "p50_s", "p95_s"),
            [
                (
                    _iso(t),
                    round(_quantile(durations[t], 0.5), 3),
                    round(_quantile(durations[t], 0.95), 3),
                )
                for t in times
                if durations[t]
            ],
        ),
        Chart(
            "approval_wait",
            f"Time waiting for a person per {label}: p50 and p95",
            "line",
            f"{label} (UTC)",
            "minutes",
            ("time", "p50_min", "p95_min", "approvals"),
            [
                (
                    _iso(t),
                    round(_quantile(waits[t], 0.5) / 60, 2),
                    round(_quantile(waits[t], 0.95) / 60, 2),
                    len(waits[t]),
                )
                for t in times
                if waits[t]
            ],
        ),
        Chart(
            "cost",
            "Cost per day",
            "line",
            "day (UTC)",
            "USD",
            ("time", "cost_usd"),
            [(_iso(t), round(cost[t], 4)) for t in _axis(start, now, DAY)] if cost else [],
        ),
    ]


def _bucket(at: float, size: float) -> float:
    return math.floor(at / size) * size


def _axis(start: float, end: float, size: float) -> list[float]:
    first = _bucket(start, size)
    count = int((end - first) // size) + 1
    return [first + i * size for i in range(count)]


def _quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (no interpolation: a p95 is a duration that happened)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(at))
