"""Alerts: rules over the event log and the store's state, raised once, folded when repeated.

Two kinds of rule. Event rules read each new event once, in order, from a cursor kept in the
store (a restart neither misses nor repeats one): a breaker opened, an agent quarantined, a
budget exceeded, an upstream plan failed, an agent overloaded. Timer rules look at the state
now: a stalled run, an approval past its SLA, a burst of failures, an overloaded agent, a
rising risk trend. Low and medium alerts resolve themselves when their condition clears —
for a timer rule, when it no longer finds it; for an event rule, when the store says so (the
breaker closed, the agent released, no budget approval pending) or, with nothing to look at,
when it has not recurred for `burst_window`. High and critical ones wait for a person
(`agenthq alerts ack ID`, then resolve).

Settings come in as plain values (`alert_settings` reads the `[alerts]` table; config itself
is read only at the edges).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agenthq.errors import ConfigError, InputError
from agenthq.events import tail
from agenthq.store.api import (
    AgentState,
    AlertRecord,
    ApprovalKind,
    ApprovalRecord,
    ApprovalState,
    BreakerRecord,
    EventRecord,
    NewAlert,
    Store,
)

SEVERITIES = ("low", "medium", "high", "critical")
SELF_RESOLVING = frozenset({"low", "medium"})
CURSOR = "alerts"

# rule → (default severity, what it means)
RULES: dict[str, tuple[str, str]] = {
    "stalled_run": ("medium", "a running run had no transition for `stall_after`"),
    "approval_sla": ("high", "an approval waits past its SLA (its warning time)"),
    "failure_burst": ("high", "an agent failed `burst_count` attempts within `burst_window`"),
    "overloaded_agent": (
        "medium",
        "an agent at its max_concurrency with `overload_queue` steps waiting",
    ),
    "rising_risk": (
        "medium",
        "the mean risk of an agent's last `risk_window` commands is high, or the failure "
        "model predicts they fail (mean ≥ `predicted_threshold`)",
    ),
    "upstream_failed": ("high", "a plan this one starts after failed"),
    "budget_exceeded": ("high", "a budget is spent; a step waits for an extension"),
    "breaker_opened": ("high", "a circuit breaker opened"),
    "agent_quarantined": ("critical", "an agent was quarantined"),
    "rollback_failed": ("critical", "a compensation failed: the rollback stopped part-way"),
}


def at_least(severity: str) -> tuple[str, ...] | None:
    """The severities from `severity` up, for list filters; None (no filter) from `low`."""
    if severity not in SEVERITIES:
        raise InputError(f"severity {severity!r}: use {', '.join(SEVERITIES)}")
    index = SEVERITIES.index(severity)
    return SEVERITIES[index:] if index else None


@dataclass(frozen=True)
class AlertSettings:
    stall_after: float = 600.0
    burst_count: int = 5
    burst_window: float = 600.0
    overload_queue: int = 5
    risk_window: int = 20
    risk_threshold: float = 60.0
    # …or the failure model's mean predicted probability for its last `risk_window` attempts
    predicted_threshold: float = 0.5
    every: float = 5.0  # how often `agenthq serve` evaluates the timer rules
    severity: Mapping[str, str] = field(default_factory=dict)  # rule → severity override
    disabled: frozenset[str] = frozenset()
    channels: tuple[Mapping[str, Any], ...] = ()  # validated by events.notify

    def severity_of(self, rule: str) -> str:
        return self.severity.get(rule, RULES[rule][0])


_NUMBERS = {
    "stall_after": (float, 1.0),
    "burst_count": (int, 1),
    "burst_window": (float, 1.0),
    "overload_queue": (int, 1),
    "risk_window": (int, 1),
    "risk_threshold": (float, 0.0),
    "predicted_threshold": (float, 0.0),
    "every": (float, 0.5),
}


def alert_settings(table: Mapping[str, Any], where: str) -> AlertSettings:
    """`[alerts]` of agenthq.toml → settings; ConfigError naming the key on bad input."""
    from agenthq.spec.durations import parse_duration

    values: dict[str, Any] = {}
    known = {*_NUMBERS, "severity", "disabled", "channels"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{where}: [alerts] has unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    for key, (kind, minimum) in _NUMBERS.items():
        if key not in table:
            continue
        raw = table[key]
        try:
            value = parse_duration(raw) if kind is float and isinstance(raw, str) else kind(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: [alerts] {key} = {raw!r} is not a number") from None
        if isinstance(raw, bool) or value < minimum:
            raise ConfigError(f"{where}: [alerts] {key} must be at least {minimum}")
        values[key] = value
    overrides = table.get("severity", {})
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{where}: [alerts.severity] must be a table of rule = severity")
    for rule, level in overrides.items():
        if rule not in RULES:
            raise ConfigError(
                f"{where}: [alerts.severity] unknown rule {rule!r}; rules: {', '.join(RULES)}"
            )
        if level not in SEVERITIES:
            raise ConfigError(
                f"{where}: [alerts.severity] {rule} = {level!r}; use {', '.join(SEVERITIES)}"
            )
    disabled = table.get("disabled", [])
    if not isinstance(disabled, list) or any(r not in RULES for r in disabled):
        raise ConfigError(f"{where}: [alerts] disabled must list rules from: {', '.join(RULES)}")
    channels = table.get("channels", [])
    if not isinstance(channels, list) or not all(isinstance(c, Mapping) for c in channels):
        raise ConfigError(f"{where}: [[alerts.channels]] must be tables")
    return AlertSettings(
        **values,
        severity=dict(overrides),
        disabled=frozenset(disabled),
        channels=tuple(channels),
    )


@dataclass(frozen=True)
class Finding:
    """One condition or occurrence a rule found."""

    rule: str
    subject: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    repeat: bool = False


class AlertEvaluator:
    """One `evaluate()` pass: new events since the cursor, then the timer rules, then the
    self-resolution of low and medium alerts whose condition cleared. New alerts go to
    `notify` (the channels: it must not block), in the order they were opened.

    `max_concurrency` maps an agent to its limit, for the overload rule; agents without one
    are never called overloaded by the timer rule (an `agent.overloaded` event still is).
    """

    def __init__(
        self,
        store: Store,
        settings: AlertSettings,
        notify: Callable[[AlertRecord], None] | None = None,
        *,
        max_concurrency: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.max_concurrency = dict(max_concurrency or {})
        self.notify = notify
        self.clock = clock

    def evaluate(self, now: float | None = None) -> list[AlertRecord]:
        """A full pass; the alerts it opened. `now` defaults to the clock."""
        at = self.clock() if now is None else now
        opened = self.evaluate_events(at)
        pending = self.store.list_approvals(state=ApprovalState.PENDING)
        current = list(self._from_state(at, pending))
        for finding in current:
            opened.extend(self._raise(finding, at))
        holding = {(f.rule, f.subject) for f in current}
        self._resolve_cleared(holding, pending, at)
        return opened

    def evaluate_events(self, now: float | None = None) -> list[AlertRecord]:
        """Only the event rules, over the events after the cursor: cheap enough to run
        whenever `has_news()` says there is something to read."""
        at = self.clock() if now is None else now
        opened: list[AlertRecord] = []
        for finding in self._from_events():
            opened.extend(self._raise(finding, at))
        return opened

    def has_news(self) -> bool:
        """Whether an event was written after the cursor."""
        return self.store.last_event_seq() > self.store.get_cursor(CURSOR)

    # ---- event rules ----------------------------------------------------------------------

    def _from_events(self) -> Iterable[Finding]:
        # The cursor moves only after a batch's findings were raised (the caller consumes
        # them between yields): a crash re-reads at most one batch, which then folds.
        for batch in tail.follow(self.store, CURSOR, EVENT_RULE_KINDS, self.clock):
            for event in batch:
                finding = _event_rule(event)
                if finding is not None:
                    yield finding

    # ---- timer rules ----------------------------------------------------------------------

    def _from_state(self, now: float, pending: Sequence[ApprovalRecord]) -> Iterable[Finding]:
        s = self.settings
        facts = self.store.alert_facts(now - s.burst_window)
        waiting_runs = {a.run_id for a in pending}
        for run_id, plan, last in facts.running_runs:
            if now - last >= s.stall_after and run_id not in waiting_runs:
                yield Finding(
                    "stalled_run",
                    f"run:{run_id}",
                    f"run {run_id} ({plan}) has had no transition for {_span(now - last)}",
                    {"idle_s": round(now - last, 1)},
                    run_id,
                )
        for approval in pending:
            due = approval.warn_at if approval.warn_at is not None else approval.expires_at
            if now >= due:
                yield Finding(
                    "approval_sla",
                    f"approval:{approval.id}",
                    f"{approval.step_id} of run {approval.run_id} has waited "
                    f"{_span(now - approval.requested_at)} for a person (approval {approval.id})",
                    {"approval": approval.id, "waited_s": round(now - approval.requested_at, 1)},
                    approval.run_id,
                )
        for agent, failures in facts.failures_by_agent.items():
            if failures >= s.burst_count:
                yield Finding(
                    "failure_burst",
                    f"agent:{agent}",
                    f"agent {agent} failed {failures} attempts in the last {_span(s.burst_window)}",
                    {"failures": failures},
                )
        activity = self.store.agent_activity(now - 86400.0, risk_window=s.risk_window)
        for agent, limit in self.max_concurrency.items():
            running = activity[agent].running if agent in activity else 0
            queued = facts.waiting_by_agent.get(agent, 0)
            # Above the limit (another process ignored it) or at it with a queue behind it.
            if running > limit or (running >= limit and queued >= s.overload_queue):
                yield Finding(
                    "overloaded_agent",
                    f"agent:{agent}",
                    f"agent {agent} runs {running}/{limit} steps with {queued} more waiting",
                    {"running": running, "waiting": queued, "max_concurrency": limit},
                )
        for agent, act in activity.items():
            if act.mean_risk is not None and act.mean_risk >= s.risk_threshold:
                yield Finding(
                    "rising_risk",
                    f"agent:{agent}",
                    f"agent {agent}'s last commands score {act.mean_risk:.0f} on average "
                    f"(threshold {s.risk_threshold:g})",
                    {"mean_risk": round(act.mean_risk, 1)},
                )
            elif (
                act.mean_predicted_failure is not None
                and act.mean_predicted_failure >= s.predicted_threshold
            ):
                yield Finding(
                    "rising_risk",
                    f"agent:{agent}",
                    f"the failure model gives agent {agent}'s last attempts a "
                    f"{act.mean_predicted_failure:.0%} chance of failing on average "
                    f"(threshold {s.predicted_threshold:.0%})",
                    {"mean_predicted_failure": round(act.mean_predicted_failure, 3)},
                )

    # ---- raising and resolving ------------------------------------------------------------

    def _raise(self, finding: Finding, now: float) -> list[AlertRecord]:
        if finding.rule in self.settings.disabled:
            return []
        record, new = self.store.raise_alert(
            NewAlert(
                rule=finding.rule,
                severity=self.settings.severity_of(finding.rule),
                subject=finding.subject,
                message=finding.message,
                at=now,
                details=finding.details,
                run_id=finding.run_id,
                repeat=finding.repeat,
            )
        )
        if not new:
            return []
        if self.notify is not None:
            self.notify(record)
        return [record]

    def _resolve_cleared(
        self, holding: set[tuple[str, str]], pending: Sequence[ApprovalRecord], now: float
    ) -> None:
        live = [
            a
            for a in self.store.list_alerts(states=("open", "acknowledged"))
            if a.severity in SELF_RESOLVING
        ]
        if not live:
            return
        check = _Conditions(self.store, holding, pending, now, self.settings.burst_window)
        for alert in live:
            if not check.holds(alert):
                self.store.change_alert(
                    alert.id, "resolved", by="agenthq", note="the condition cleared", at=now
                )


class _Conditions:
    """Whether the condition behind a live alert still holds; reads the store lazily, only
    for the rules that have a live low or medium alert."""

    def __init__(
        self,
        store: Store,
        holding: set[tuple[str, str]],
        pending: Sequence[ApprovalRecord],
        now: float,
        recent: float,
    ) -> None:
        self.store = store
        self.holding = holding
        self.pending = pending
        self.now = now
        self.recent = recent  # how long an occurrence with no state to check keeps holding
        self._breakers: Mapping[str, BreakerRecord] | None = None
        self._quarantined: set[str] | None = None

    def holds(self, alert: AlertRecord) -> bool:
        if (alert.rule, alert.subject) in self.holding:
            return True
        name = alert.subject.partition(":")[2]
        if alert.rule == "breaker_opened":
            if self._breakers is None:
                self._breakers = self.store.get_breakers()
            breaker = self._breakers.get(name)
            return breaker is not None and breaker.state != "closed"
        if alert.rule == "agent_quarantined":
            if self._quarantined is None:
                self._quarantined = {
                    a.name for a in self.store.list_agents() if a.state is AgentState.QUARANTINED
                }
            return name in self._quarantined
        if alert.rule == "budget_exceeded":
            return any(
                a.kind is ApprovalKind.BUDGET and a.run_id == alert.run_id for a in self.pending
            )
        if alert.rule == "upstream_failed" or (
            alert.rule == "overloaded_agent" and "event" in alert.details
        ):
            # An occurrence with nothing in the store to look at: it holds while it recurs.
            return self.now - alert.last_seen < self.recent
        return False  # a timer rule that found nothing this pass


EVENT_RULE_KINDS = (
    "breaker.open",
    "agent.quarantined",
    "approval.requested",
    "agent.overloaded",
    "run.rollback_failed",
    "run.upstream_failed",
)  # every kind _event_rule answers; a test checks the two agree


def _event_rule(event: EventRecord) -> Finding | None:
    details = event.details
    if event.kind == "breaker.open":
        key = str(details.get("breaker"))
        return Finding(
            "breaker_opened",
            f"breaker:{key}",
            f"breaker {key} opened after {details.get('failures')} failures in a row",
            dict(details),
            event.run_id,
            repeat=True,
        )
    if event.kind == "agent.quarantined":
        agent = str(details.get("agent"))
        return Finding(
            "agent_quarantined",
            f"agent:{agent}",
            f"agent {agent} was quarantined: {details.get('reason')}",
            dict(details),
            event.run_id,
            repeat=True,
        )
    if event.kind == "approval.requested" and details.get("kind") == "budget":
        return Finding(
            "budget_exceeded",
            f"run:{event.run_id}",
            f"{event.step_id} of run {event.run_id} waits: "
            + "; ".join(str(r) for r in details.get("reasons") or ["a budget is spent"]),
            {"approval": details.get("approval")},
            event.run_id,
            repeat=True,
        )
    if event.kind == "agent.overloaded":
        # Written by whoever sees the overload first (a scheduler holding steps back); the
        # timer rule finds the same subject from the store when it knows the agent's limit.
        agent = str(details.get("agent"))
        limit = details.get("max_concurrency", details.get("limit"))
        load = f" ({details.get('running')}/{limit} running)" if limit is not None else ""
        return Finding(
            "overloaded_agent",
            f"agent:{agent}",
            f"agent {agent} is overloaded{load}",
            {**details, "event": event.seq},
            event.run_id,
            repeat=True,
        )
    if event.kind == "run.rollback_failed":
        rollback = details.get("rollback_run")
        failed = ", ".join(str(s) for s in details.get("failed") or []) or "a compensation"
        return Finding(
            "rollback_failed",
            f"run:{event.run_id}",
            f"the rollback of run {event.run_id} stopped: {failed} failed in run {rollback}; "
            "what ran before it is undone, the rest is not",
            dict(details),
            event.run_id,
            repeat=True,
        )
    if event.kind == "run.upstream_failed":
        # Written on the upstream run by the `after:` trigger that will not start its plan.
        upstream = details.get("upstream_run") or event.run_id
        waiting = details.get("waiting_plan") or "a plan"
        return Finding(
            "upstream_failed",
            f"run:{upstream}",
            f"plan {waiting} will not start: upstream plan {details.get('plan')} "
            f"run {upstream} failed",
            dict(details),
            event.run_id,
            repeat=True,
        )
    return None


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
