"""Schedules and triggers on a real SQLite store, time injected: ticks fire once (a second
process, or the same one after a restart, cannot fire them again), missed ticks follow the
catch-up policy, max_active_runs holds, a daily schedule in Berlin runs once a day across the
DST change, `after:` starts a plan when another ends (and an upstream failure raises its
alert), `on:` conditions match event outputs with a cool-down and one run per event."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import agenthq
from agenthq.engine.automation import Automations
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.errors import InputError
from agenthq.events.alerts import AlertEvaluator, AlertSettings
from agenthq.store.api import Store

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as opened:
        yield opened


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def runner_for(store: Store, tmp_path: Path, clock: Clock) -> Runner:
    return Runner(
        store,
        home=tmp_path / ".agenthq",
        environ={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        gates=GateConfig(),
        clock=clock,
        scheduler_options=SchedulerOptions(poll_interval=0.02),
    )


NIGHTLY = """
name: nightly
schedule: {cron: "30 2 * * *", tz: Europe/Berlin}
params: {depth: {default: 1, type: int}}
steps:
  - id: sweep
    run: echo sweep {{ params.depth }}
"""


def plan_file(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def started(store: Store, name: str) -> list[str]:
    return [f.run_id for f in store.list_fires(name, 1000) if f.outcome == "started" and f.run_id]


def test_a_tick_fires_once_even_when_a_second_process_looks(store: Store, tmp_path: Path) -> None:
    clock = Clock(berlin("2026-03-27T12:00"))
    autos = Automations(store, runner_for(store, tmp_path, clock), clock=clock)
    record = autos.add_schedule(plan_file(tmp_path, NIGHTLY), params={"depth": 3})
    assert record.next_at == berlin("2026-03-28T02:30")
    assert autos.tick() == []  # not due yet
    clock.now = berlin("2026-03-28T02:30:05")
    (fire,) = autos.tick()
    assert fire.outcome == "started"
    run = store.get_run(fire.run_id or "")
    assert run.owner == "queued"  # for `agenthq serve`'s run host
    assert run.params == {"depth": 3}
    assert run.origin == {
        "kind": "schedule",
        "schedule": "nightly",
        "tick": "2026-03-28T02:30:00+01:00",
    }
    # A restarted server (a new Automations on the same store) at the same moment: nothing.
    again = Automations(store, runner_for(store, tmp_path, clock), clock=clock)
    assert again.tick() == []
    assert len(started(store, "nightly")) == 1
    assert store.get_automation("nightly").next_at == berlin("2026-03-29T03:30")


def test_a_tick_due_while_the_server_restarted_is_not_lost(store: Store, tmp_path: Path) -> None:
    clock = Clock(berlin("2026-03-27T12:00"))
    autos = Automations(store, runner_for(store, tmp_path, clock), clock=clock)
    autos.add_schedule(plan_file(tmp_path, NIGHTLY))
    # The server was down from 02:29:50 to 02:30:40: the tick is 40 s late, within grace.
    clock.now = berlin("2026-03-28T02:30:40")
    (fire,) = Automations(store, runner_for(store, tmp_path, clock), clock=clock).tick()
    assert fire.outcome == "started"


def test_daily_runs_once_a_day_across_spring_forward(store: Store, tmp_path: Path) -> None:
    clock = Clock(berlin("2026-03-27T12:00"))
    runner = runner_for(store, tmp_path, clock)
    autos = Automations(store, runner, clock=clock)
    autos.add_schedule(plan_file(tmp_path, NIGHTLY), overrides={"max_active_runs": 10})
    ticks = []
    step = 600.0  # a pass every ten minutes for four days
    while clock.now < berlin("2026-03-31T12:00"):
        clock.now += step
        ticks += [store.get_run(f.run_id or "").origin for f in autos.tick()]
    assert [o["tick"] for o in ticks if o] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:30:00+02:00",  # 02:30 did not exist
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_missed_ticks_skip_by_default_and_catch_up_once(store: Store, tmp_path: Path) -> None:
    clock = Clock(berlin("2026-03-01T12:00"))
    autos = Automations(store, runner_for(store, tmp_path, clock), clock=clock)
    autos.add_schedule(plan_file(tmp_path, NIGHTLY), name="skipper")
    autos.add_schedule(plan_file(tmp_path, NIGHTLY), name="catcher", overrides={"catch_up": "once"})
    clock.now = berlin("2026-03-04T12:00")  # three nights without a server
    fires = {f.automation: f for f in autos.tick()}
    assert fires["skipper"].outcome == "skipped_missed"
    assert fires["skipper"].details["missed"] == 3
    assert started(store, "skipper") == []
    assert fires["catcher"].outcome == "started"
    assert fires["catcher"].details["caught_up"] == 3
    assert len(started(store, "catcher")) == 1
    for name in ("skipper", "catcher"):
        assert store.get_automation(name).next_at == berlin("2026-03-05T02:30")


def test_max_active_runs_skips_and_records(store: Store, tmp_path: Path) -> None:
    clock = Clock(berlin("2026-03-01T12:00"))
    runner = runner_for(store, tmp_path, clock)
    autos = Automations(store, runner, clock=clock)
    autos.add_schedule(plan_file(tmp_path, NIGHTLY), overrides={"cron": "*/5 * * * *"})
    clock.now = berlin("2026-03-01T12:05:01")
    (first,) = autos.tick()
    clock.now = berlin("2026-03-01T12:10:01")
    (second,) = autos.tick()
    assert first.outcome == "started"
    assert second.outcome == "skipped_max_active"
    assert second.details["active"] == [first.run_id]
    runner.execute(first.run_id or "")  # the first run finishes …
    clock.now = berlin("2026-03-01T12:15:01")
    (third,) = autos.tick()
    assert third.outcome == "started"  # … so the next tick starts one


def test_paused_schedule_starts_nothing(store: Store, tmp_path: Path) -> None:
    clock = Clock(berlin("2026-03-01T12:00"))
    autos = Automations(store, runner_for(store, tmp_path, clock), clock=clock)
    autos.add_schedule(plan_file(tmp_path, NIGHTLY))
    store.set_automation("nightly", paused=True)
    clock.now = berlin("2026-03-02T02:30:01")
    assert autos.tick() == []


def test_bad_schedules_are_refused(store: Store, tmp_path: Path) -> None:
    clock = Clock(berlin("2026-03-01T12:00"))
    autos = Automations(store, runner_for(store, tmp_path, clock), clock=clock)
    plain = plan_file(
        tmp_path, NIGHTLY.replace('schedule: {cron: "30 2 * * *", tz: Europe/Berlin}\n', "")
    )
    with pytest.raises(InputError, match="has no `schedule:`; give one with --cron"):
        autos.add_schedule(plain)
    with pytest.raises(InputError, match="not a cron expression"):
        autos.add_schedule(plain, overrides={"cron": "every night"})
    with pytest.raises(InputError, match="time zone 'Mars/Olympus' is unknown"):
        autos.add_schedule(plain, overrides={"cron": "0 2 * * *", "tz": "Mars/Olympus"})
    assert store.list_automations() == []


BUILD = """
name: build
steps:
  - id: compile
    run: echo compiled
"""

DEPLOY = """
name: deploy
after: {plan: build, status: succeeded}
steps:
  - id: ship
    run: echo shipped
"""


def test_after_starts_a_plan_when_another_succeeds(store: Store, tmp_path: Path) -> None:
    clock = Clock(berlin("2026-03-01T12:00"))
    runner = runner_for(store, tmp_path, clock)
    autos = Automations(store, runner, clock=clock)
    (trigger,) = autos.add_triggers(plan_file(tmp_path, DEPLOY, "deploy.yaml"))
    assert trigger.id == "deploy.after.1"
    build = plan_file(tmp_path, BUILD, "build.yaml")
    upstream = runner.run(agenthq.load_plan(build), workspace=tmp_path)
    (fire,) = autos.on_events()
    assert fire.outcome == "started"
    downstream = store.get_run(fire.run_id or "")
    assert downstream.plan == "deploy"
    assert downstream.origin is not None
    assert downstream.origin["run"] == upstream.id
    assert [r.id for r in store.list_runs(origin_run=upstream.id)] == [downstream.id]
    assert autos.on_events() == []  # read once


def test_a_failed_upstream_starts_nothing_and_alerts(store: Store, tmp_path: Path) -> None:
    clock = Clock(berlin("2026-03-01T12:00"))
    runner = runner_for(store, tmp_path, clock)
    autos = Automations(store, runner, clock=clock)
    autos.add_triggers(plan_file(tmp_path, DEPLOY, "deploy.yaml"))
    build = plan_file(tmp_path, BUILD.replace("echo compiled", "exit 1"), "build.yaml")
    upstream = runner.run(agenthq.load_plan(build), workspace=tmp_path)
    (fire,) = autos.on_events()
    assert fire.outcome == "skipped_upstream_failed"
    assert store.list_runs(plan="deploy") == []
    opened = AlertEvaluator(store, AlertSettings(), clock=clock).evaluate()
    (alert,) = [a for a in opened if a.rule == "upstream_failed"]
    assert alert.run_id == upstream.id
    assert "deploy will not start" in alert.message


CODEGEN = """
name: codegen
steps:
  - id: generate
    foreach: [small, big]
    run: >-
      echo '{"lines_changed": {{ 80 if item == 'big' else 5 }}}'
"""

DOCSTRINGS = """
name: docstrings
on:
  - event: step.succeeded
    plan: codegen
    step: generate
    when: outputs.lines_changed >= 50
    cooldown: 1h
steps:
  - id: write
    run: echo docs
"""


def test_on_starts_a_plan_when_an_event_matches_with_cooldown(store: Store, tmp_path: Path) -> None:
    clock = Clock(berlin("2026-03-01T12:00"))
    runner = runner_for(store, tmp_path, clock)
    autos = Automations(store, runner, clock=clock)
    autos.add_triggers(plan_file(tmp_path, DOCSTRINGS, "docstrings.yaml"))
    codegen = agenthq.load_plan(plan_file(tmp_path, CODEGEN, "codegen.yaml"))
    first = runner.run(codegen, workspace=tmp_path)
    (fire,) = autos.on_events()  # only generate[big] has >= 50 lines
    assert fire.outcome == "started"
    assert fire.details["step"] == "generate[big]"
    run = store.get_run(fire.run_id or "")
    assert run.origin is not None
    assert run.origin["kind"] == "on"
    assert run.origin["run"] == first.id
    # A second match within the hour is recorded, not run.
    clock.now += 600
    runner.run(codegen, workspace=tmp_path)
    (cooled,) = autos.on_events()
    assert cooled.outcome == "skipped_cooldown"
    # After the cool-down it runs again; re-reading old events (a cursor reset) starts nothing.
    clock.now += 3600
    runner.run(codegen, workspace=tmp_path)
    (later,) = autos.on_events()
    assert later.outcome == "started"
    store.set_cursor("automations", 0, clock.now)
    assert autos.on_events() == []
    assert len(started(store, "docstrings.on.1")) == 2


def test_bad_trigger_conditions_are_plan_errors(tmp_path: Path) -> None:
    bad = DOCSTRINGS.replace("outputs.lines_changed >= 50", "outputs.lines_changed >=")
    with pytest.raises(agenthq.PlanError, match="not a valid expression"):
        agenthq.load_plan(plan_file(tmp_path, bad, "bad.yaml"))
    bad = DOCSTRINGS.replace("event: step.succeeded", "event: step.exploded")
    with pytest.raises(agenthq.PlanError, match=r"use one of step\.succeeded"):
        agenthq.load_plan(plan_file(tmp_path, bad, "bad.yaml"))
