"""Prometheus metrics, read from the store at scrape time plus a few live process figures.

Counts come from the store (grouped queries in `Store.stats`) rather than from counters kept in
memory, so they are right after a restart and the same whichever process is scraped. What only
the serving process knows — scheduler tick durations, events per second through the live feed
— is passed in as callables and instruments.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from agenthq.store.api import Store

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, float("inf"))
BREAKER_STATES = ("closed", "open", "half_open")


class StoreCollector(Collector):
    def __init__(self, store: Store, events_per_second: Callable[[], float] | None = None) -> None:
        self.store = store
        self.events_per_second = events_per_second

    def collect(self) -> Iterator[Metric]:
        stats = self.store.stats()
        now = time.time()
        steps = GaugeMetricFamily(
            "agenthq_steps", "Steps by state and agent.", labels=["state", "agent"]
        )
        queue_depth = 0
        for state, agent, count in stats.steps:
            steps.add_metric([state, agent or ""], count)
            if state == "ready":
                queue_depth += count
        yield steps
        alerts = GaugeMetricFamily(
            "agenthq_alerts_open", "Open and acknowledged alerts by severity.", labels=["severity"]
        )
        by_severity = dict.fromkeys(("low", "medium", "high", "critical"), 0)
        for alert in self.store.list_alerts(states=("open", "acknowledged"), limit=10_000):
            by_severity[alert.severity] = by_severity.get(alert.severity, 0) + 1
        for level, count in by_severity.items():
            alerts.add_metric([level], count)
        yield alerts
        runs = GaugeMetricFamily("agenthq_runs", "Runs by state.", labels=["state"])
        for state, count in stats.runs:
            runs.add_metric([state], count)
        yield runs
        yield GaugeMetricFamily(
            "agenthq_queue_depth", "Steps ready to run and waiting for a slot.", value=queue_depth
        )
        yield GaugeMetricFamily(
            "agenthq_approvals_waiting",
            "Approvals waiting for a person.",
            value=len(stats.approvals_waiting),
        )
        oldest = max((now - t for t in stats.approvals_waiting), default=0.0)
        yield GaugeMetricFamily(
            "agenthq_approval_oldest_age_seconds",
            "How long the oldest waiting approval has waited.",
            value=oldest,
        )
        outcomes = CounterMetricFamily(
            "agenthq_gate_results", "Gate answers by gate and outcome.", labels=["gate", "outcome"]
        )
        for gate, outcome, count in stats.gate_outcomes:
            outcomes.add_metric([gate, outcome], count)
        yield outcomes
        breakers = GaugeMetricFamily(
            "agenthq_breaker_state",
            "1 for the state each circuit breaker is in.",
            labels=["breaker", "state"],
        )
        for key, state in stats.breakers:
            for candidate in BREAKER_STATES:
                breakers.add_metric([key, candidate], 1.0 if candidate == state else 0.0)
        yield breakers
        yield _duration_histogram(stats.attempt_durations)
        yield CounterMetricFamily(
            "agenthq_events", "Events in the hash-chained log.", value=stats.events
        )
        if self.events_per_second is not None:
            yield GaugeMetricFamily(
                "agenthq_events_per_second",
                "Events per second read by the live feed since the server started.",
                value=self.events_per_second(),
            )


def _duration_histogram(durations: list[float] | tuple[float, ...] | object) -> Metric:
    values = sorted(durations) if isinstance(durations, list | tuple) else []
    buckets: list[tuple[str, float]] = []
    index = 0
    for bound in DURATION_BUCKETS:
        while index < len(values) and values[index] <= bound:
            index += 1
        buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), float(index)))
    return HistogramMetricFamily(
        "agenthq_attempt_duration_seconds",
        "Duration of recent finished attempts (the last 10,000).",
        buckets=buckets,
        sum_value=float(sum(values)),
    )


class TickFileCollector(Collector):
    """The scheduler tick histogram the run host process writes to a file (host_process.py)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def collect(self) -> Iterator[Metric]:
        try:
            samples = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            samples = {}
        buckets: list[tuple[str, float]] = []
        total = 0.0
        for key, value in samples.items():
            name, _, labels = key.partition("{")
            if name.endswith("_bucket"):
                bound = json.loads("{" + labels)["le"]
                buckets.append((bound, float(value)))
            elif name.endswith("_sum"):
                total = float(value)
        buckets.sort(key=lambda b: float(b[0]))
        if not buckets:
            buckets = [("+Inf", 0.0)]
        yield HistogramMetricFamily(
            "agenthq_scheduler_tick_seconds",
            "Duration of scheduler ticks in the server's run host.",
            buckets=buckets,
            sum_value=total,
        )


class Metrics:
    """The registry `/metrics` renders."""

    def __init__(
        self,
        store: Store,
        events_per_second: Callable[[], float] | None = None,
        tick_file: Path | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(store, events_per_second))
        if tick_file is not None:
            self.registry.register(TickFileCollector(tick_file))

    def render(self) -> bytes:
        return generate_latest(self.registry)
