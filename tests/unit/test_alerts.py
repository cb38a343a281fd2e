"""Alert rules on a real SQLite store, driven by real runs and by rows written through the
store's own API: each rule fires, repeats fold into one alert, low/medium alerts resolve
themselves when the condition clears, high and critical ones wait for a person, and the
event cursor survives a restart (nothing missed, nothing repeated)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agenthq
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner, RunOptions
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.errors import ConfigError, InputError, StateError
from agenthq.events.alerts import AlertEvaluator, AlertSettings, alert_settings, at_least
from agenthq.gates.breaker import BreakerSettings
from agenthq.gates.policy import Policy
from agenthq.states import RunState, StepState
from agenthq.store.api import (
    ApprovalDecision,
    ApprovalKind,
    ApprovalRequest,
    ApprovalState,
    Batch,
    BreakerRecord,
    NewEvent,
    NewRun,
    Quarantine,
    RunChange,
    StepChange,
    Store,
)

WAIT = RunOptions(no_wait=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as opened:
        yield opened


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def evaluator(store: Store, clock: Clock, **settings: Any) -> AlertEvaluator:
    return AlertEvaluator(store, AlertSettings(**settings), clock=clock)


def runner(store: Store, tmp_path: Path, **gates: Any) -> Runner:
    (tmp_path / "work").mkdir(exist_ok=True)
    return Runner(
        store,
        home=tmp_path / ".agenthq",
        environ={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        gates=GateConfig(**gates),
        scheduler_options=SchedulerOptions(poll_interval=0.05),
    )


def live(store: Store) -> dict[str, Any]:
    return {a.rule: a for a in store.list_alerts(states=("open", "acknowledged"))}


def quarantine(store: Store, agent: str, at: float) -> None:
    store.apply(Batch(at=at, quarantines=[Quarantine(agent, "left TODOs", "r1", "fix")]))


def test_a_quarantine_opens_a_critical_alert_that_waits_for_a_person(store: Store) -> None:
    clock = Clock()
    quarantine(store, "coder", clock.now)
    (opened,) = evaluator(store, clock).evaluate()
    assert (opened.rule, opened.severity, opened.subject) == (
        "agent_quarantined",
        "critical",
        "agent:coder",
    )
    assert "left TODOs" in opened.message
    clock.now += 60
    assert evaluator(store, clock).evaluate() == []  # still open: nobody acted
    acked = store.change_alert(opened.id, "acknowledged", by="alice", note="on it", at=clock.now)
    assert (acked.state, acked.acked_by, acked.note) == ("acknowledged", "alice", "on it")
    with pytest.raises(StateError):
        store.change_alert(opened.id, "acknowledged", by="bob", note=None, at=clock.now)
    assert (
        store.change_alert(opened.id, "resolved", by="alice", note=None, at=clock.now).state
        == "resolved"
    )
    kinds = [e.kind for e in store.read_events() if e.kind.startswith("alert.")]
    assert kinds == ["alert.raised", "alert.acknowledged", "alert.resolved"]


def test_repeats_fold_and_the_cursor_survives_a_restart(store: Store) -> None:
    clock = Clock()
    quarantine(store, "coder", clock.now)
    evaluator(store, clock).evaluate()
    store.release_agent("coder", by="alice", note=None, at=clock.now)
    quarantine(store, "coder", clock.now + 1)
    clock.now += 2
    assert evaluator(store, clock).evaluate() == []  # a new evaluator: same cursor, folded
    (alert,) = store.list_alerts()
    assert alert.count == 2
    assert alert.last_seen == clock.now
    assert evaluator(store, clock).evaluate() == []
    assert store.list_alerts()[0].count == 2  # nothing read twice


def make_run(store: Store, at: float, agents: dict[str, str] | None = None, steps: int = 1) -> str:
    ids = [f"s{i}" for i in range(steps)]
    record = store.create_run(
        NewRun(
            "r-" + str(int(at * 1000)),
            "p",
            {},
            {"name": "p"},
            None,
            "/tmp",
            2,
            at,
            ids,
            agents or {},
        )
    )
    store.apply(Batch(at=at, runs=[RunChange(record.id, RunState.PENDING, RunState.RUNNING)]))
    return record.id


def test_a_stalled_run_opens_a_medium_alert_that_resolves_itself(store: Store) -> None:
    clock = Clock()
    run_id = make_run(store, clock.now)
    clock.now += 300
    assert evaluator(store, clock, stall_after=600).evaluate() == []
    clock.now += 400
    (opened,) = evaluator(store, clock, stall_after=600).evaluate()
    assert (opened.rule, opened.severity, opened.run_id) == ("stalled_run", "medium", run_id)
    assert "no transition for 12 min" in opened.message
    store.apply(Batch(at=clock.now, events=[NewEvent("note", run_id=run_id)]))
    clock.now += 1
    evaluator(store, clock, stall_after=600).evaluate()
    (alert,) = store.list_alerts(states=None)
    assert alert.state == "resolved"
    assert alert.acked_by == "agenthq"


def test_an_agent_at_its_limit_with_a_queue_is_overloaded(store: Store) -> None:
    clock = Clock()
    run_id = make_run(store, clock.now, {f"s{i}": "busy" for i in range(7)}, steps=7)
    changes = [StepChange(run_id, f"s{i}", StepState.PENDING, StepState.READY) for i in range(7)]
    store.apply(Batch(at=clock.now, steps=changes))
    store.apply(
        Batch(
            at=clock.now,
            steps=[StepChange(run_id, "s0", StepState.READY, StepState.RUNNING, {"attempts": 1})],
        )
    )
    judge = AlertEvaluator(
        store, AlertSettings(overload_queue=5), max_concurrency={"busy": 1}, clock=clock
    )
    (opened,) = [a for a in judge.evaluate() if a.rule == "overloaded_agent"]
    assert opened.message == "agent busy runs 1/1 steps with 6 more waiting"


def test_failure_bursts_breakers_and_rising_risk_from_real_runs(
    store: Store, tmp_path: Path
) -> None:
    hq = runner(
        store,
        tmp_path,
        policy=Policy(allow=("exit *", "rm -f *")),
        breaker=BreakerSettings(failures=3, cooldown_s=0.2, max_cooldown_s=0.4),
    )
    plan = agenthq.Plan("p")
    for i in range(5):
        plan.step(f"f{i}", run="exit 1", agent="flaky")
    plan.step("r", run="rm -f nothing-here", agent="risky")
    hq.run(plan, workspace=tmp_path / "work", max_workers=1)
    clock = Clock()
    opened = {
        a.rule: a for a in evaluator(store, clock, burst_count=3, risk_threshold=1).evaluate()
    }
    assert opened["failure_burst"].subject == "agent:flaky"
    assert opened["failure_burst"].severity == "high"
    assert opened["breaker_opened"].subject == "breaker:agent:flaky"
    assert opened["rising_risk"].subject == "agent:risky"
    clock.now += 3600  # the burst is long past: high alerts still wait for a person
    evaluator(store, clock, burst_count=3, risk_threshold=1).evaluate()
    assert live(store)["failure_burst"].state == "open"


def test_budgets_and_approval_slas_from_real_runs(store: Store, tmp_path: Path) -> None:
    hq = runner(store, tmp_path)
    spend = 'echo \'{"agenthq": {"cost_usd": 0.5}}\''
    plan = (
        agenthq.Plan("p", budgets={"run_usd": 0.1})
        .step("a", run=spend)
        .step("b", run=spend, needs=["a"])
        .step(
            "deploy",
            run="echo hi",
            risk="approval_required",
            approval={"timeout": "2h", "warn_before": "1h"},
        )
    )
    run = hq.run(plan, workspace=tmp_path / "work", options=WAIT)
    assert run.state.value == "awaiting_approval"
    clock = Clock()
    opened = {a.rule for a in evaluator(store, clock).evaluate()}
    assert opened == {"budget_exceeded"}
    clock.now += 3601  # past the warning: the SLA is missed
    (sla,) = evaluator(store, clock).evaluate()
    assert sla.rule == "approval_sla"
    assert "deploy of run" in sla.message


def test_disabled_rules_and_severity_overrides(store: Store) -> None:
    clock = Clock()
    quarantine(store, "a", clock.now)
    settings = alert_settings({"severity": {"agent_quarantined": "low"}}, "agenthq.toml")
    (opened,) = AlertEvaluator(store, settings, clock=clock).evaluate()
    assert opened.severity == "low"
    quarantine(store, "b", clock.now)
    off = alert_settings({"disabled": ["agent_quarantined"]}, "agenthq.toml")
    assert AlertEvaluator(store, off, clock=clock).evaluate() == []


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"stall_after": "soon"}, "stall_after"),
        ({"burst_count": 0}, "burst_count must be at least 1"),
        ({"severity": {"nope": "high"}}, "unknown rule 'nope'"),
        ({"severity": {"stalled_run": "urgent"}}, "'urgent'"),
        ({"surprise": 1}, "unknown key(s) surprise"),
    ],
)
def test_bad_alert_settings_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        alert_settings(table, "agenthq.toml")
    assert str(caught.value).startswith("agenthq.toml: [alerts")
    assert message in str(caught.value)


def test_durations_in_settings() -> None:
    assert alert_settings({"stall_after": "15m", "every": 2}, "x").stall_after == 900.0


def test_an_upstream_failure_event_opens_a_high_alert(store: Store) -> None:
    clock = Clock()
    run_id = make_run(store, clock.now)
    details = {"plan": "build", "upstream_run": "r-build-1", "waiting_plan": "deploy"}
    store.apply(
        Batch(
            at=clock.now, events=[NewEvent("run.upstream_failed", run_id=run_id, details=details)]
        )
    )
    (opened,) = evaluator(store, clock).evaluate()
    assert (opened.rule, opened.severity, opened.run_id) == ("upstream_failed", "high", run_id)
    assert opened.message == (
        "plan deploy will not start: upstream plan build run r-build-1 failed"
    )


# ---- event rules that clear, overloads, filters ---------------------------------------------


def breaker(store: Store, state: str, at: float) -> None:
    record = BreakerRecord("agent:flaky", state, 3, at, 30.0, 1, at)
    store.apply(Batch(at=at, breakers=[record]))


def test_event_alerts_at_low_or_medium_resolve_when_the_store_says_it_cleared(
    store: Store,
) -> None:
    clock = Clock()
    settings = AlertSettings(severity={"breaker_opened": "medium", "agent_quarantined": "low"})
    judge = AlertEvaluator(store, settings, clock=clock)
    breaker(store, "open", clock.now)
    quarantine(store, "coder", clock.now)
    assert {a.rule for a in judge.evaluate()} == {"breaker_opened", "agent_quarantined"}
    clock.now += 60
    judge.evaluate()
    assert set(live(store)) == {"breaker_opened", "agent_quarantined"}  # both still hold
    breaker(store, "closed", clock.now)
    judge.evaluate()
    assert set(live(store)) == {"agent_quarantined"}  # the breaker closed
    store.release_agent("coder", by="alice", note=None, at=clock.now)
    judge.evaluate()
    assert live(store) == {}
    resolved = store.list_alerts(states=("resolved",))
    assert {a.note for a in resolved} == {"the condition cleared"}


def test_a_budget_alert_at_medium_resolves_once_the_budget_question_is_answered(
    store: Store,
) -> None:
    clock = Clock()
    run_id = make_run(store, clock.now)
    request = ApprovalRequest(
        run_id,
        "s0",
        1,
        ApprovalKind.BUDGET,
        clock.now,
        clock.now + 3600,
        None,
        None,
        None,
        "reject",
        None,
        None,
        ["the run spent $0.50 of its $0.10 budget"],
        {"scope": "run", "spent_usd": 0.5, "limit_usd": 0.1},
    )
    store.apply(Batch(at=clock.now, approval_requests=[request]))
    judge = AlertEvaluator(store, AlertSettings(severity={"budget_exceeded": "medium"}))
    (opened,) = judge.evaluate(clock.now)
    assert (opened.rule, opened.subject) == ("budget_exceeded", f"run:{run_id}")
    assert "$0.50 of its $0.10" in opened.message
    judge.evaluate(clock.now + 1)
    assert set(live(store)) == {"budget_exceeded"}  # the question still waits
    (pending,) = store.list_approvals()
    decision = ApprovalDecision(pending.id, ApprovalState.REJECTED, "alice", clock.now + 2)
    store.decide_approval(decision)
    judge.evaluate(clock.now + 3)
    assert live(store) == {}


def test_an_overload_event_opens_an_alert_that_clears_when_it_stops_recurring(
    store: Store,
) -> None:
    clock = Clock()
    details = {"agent": "busy", "running": 4, "max_concurrency": 2}
    overloaded = NewEvent("agent.overloaded", details=details)
    store.apply(Batch(at=clock.now, events=[overloaded]))
    judge = AlertEvaluator(store, AlertSettings(burst_window=600))
    assert judge.has_news()
    (opened,) = judge.evaluate_events(clock.now)  # the event rules alone
    assert not judge.has_news()
    assert (opened.rule, opened.severity) == ("overloaded_agent", "medium")
    assert opened.message == "agent busy is overloaded (4/2 running)"
    store.apply(Batch(at=clock.now + 300, events=[overloaded]))
    judge.evaluate(clock.now + 300)
    assert live(store)["overloaded_agent"].count == 2
    judge.evaluate(clock.now + 800)  # 500 s since the last one: still within the window
    assert "overloaded_agent" in live(store)
    judge.evaluate(clock.now + 901)
    assert live(store) == {}


def test_an_agent_above_its_limit_is_overloaded_without_a_queue(store: Store) -> None:
    clock = Clock()
    run_id = make_run(store, clock.now, {"s0": "busy", "s1": "busy"}, steps=2)
    ready = [StepChange(run_id, s, StepState.PENDING, StepState.READY) for s in ("s0", "s1")]
    store.apply(Batch(at=clock.now, steps=ready))
    running = [
        StepChange(run_id, s, StepState.READY, StepState.RUNNING, {"attempts": 1})
        for s in ("s0", "s1")
    ]
    store.apply(Batch(at=clock.now, steps=running))
    judge = AlertEvaluator(store, AlertSettings(), max_concurrency={"busy": 1, "idle": 3})
    (opened,) = [a for a in judge.evaluate(clock.now) if a.rule == "overloaded_agent"]
    assert opened.message == "agent busy runs 2/1 steps with 0 more waiting"
    assert AlertEvaluator(store, AlertSettings(), max_concurrency={"busy": 2}).evaluate() == []


def test_lists_filter_by_severity(store: Store) -> None:
    clock = Clock()
    settings = AlertSettings(severity={"breaker_opened": "medium"})
    breaker(store, "open", clock.now)
    quarantine(store, "coder", clock.now)
    AlertEvaluator(store, settings).evaluate(clock.now)
    assert at_least("low") is None  # no filter
    assert at_least("high") == ("high", "critical")
    only = store.list_alerts(severities=at_least("high"))
    assert [a.rule for a in only] == ["agent_quarantined"]
    assert len(store.list_alerts(severities=("medium",))) == 1
    with pytest.raises(InputError):
        at_least("urgent")
