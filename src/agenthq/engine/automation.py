"""Schedules and triggers: start plans on a clock, after other plans, on matching events.

`agenthq serve` calls `tick()` about once a second and `on_events()` when events arrived.
Both only decide and record; the runs they create are queued for the server's run host like
any `--detach` run.

Exactly-once, across restarts and even two servers: every tick and every matching event has
a key (the tick's moment, the event's seq) and `Store.fire_automation` records the key and
creates the run in one transaction, or does nothing when the key is already there. A crash
before that commit loses nothing either — the tick is still due, the event still after the
cursor — so the next pass fires it once.

Missed ticks (no server was running at the time) are those older than `grace` seconds when
seen; the schedule's `catch_up` decides: `skip` records them and waits for the next tick,
`once` starts one run for all of them.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from agenthq.engine import cron
from agenthq.engine.ownership import QUEUED
from agenthq.engine.runner import Runner
from agenthq.errors import AgentHQError, InputError
from agenthq.events import tail
from agenthq.spec import templating
from agenthq.spec.automation import AfterSpec, AfterStatus, CatchUp, OnSpec, ScheduleSpec
from agenthq.spec.load import load_plan
from agenthq.store.api import AutomationRecord, EventRecord, FireRecord, NewRun, RunNote, Store

CURSOR = "automations"
GRACE = 60.0  # a tick seen later than this after its moment was missed


class Automations:
    def __init__(
        self,
        store: Store,
        runner: Runner,
        *,
        clock: Callable[[], float] = time.time,
        grace: float = GRACE,
    ) -> None:
        self.store = store
        self.runner = runner
        self.clock = clock
        self.grace = grace
        self._outputs: dict[str, dict[str, Mapping[str, Any]]] = {}  # run → step → outputs

    # ---- registering -----------------------------------------------------------------------

    def add_schedule(
        self,
        plan_path: Path,
        *,
        name: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        workspace: Path | None = None,
    ) -> AutomationRecord:
        """Register the plan's `schedule:`, with `overrides` (cron, tz, …) from the command
        line; InputError when neither gives a cron line or the plan would not start."""
        loaded = load_plan(plan_path)
        base = loaded.spec.schedule.model_dump() if loaded.spec.schedule else {}
        merged = {**base, **{k: v for k, v in (overrides or {}).items() if v is not None}}
        if "cron" not in merged:
            raise InputError(
                f"{plan_path}: the plan has no `schedule:`; give one with --cron '0 2 * * *'"
            )
        try:
            spec = ScheduleSpec.model_validate(merged)
        except ValueError as exc:
            raise InputError(f"schedule of {plan_path}: {_first_error(exc)}") from None
        values = {**spec.params, **(params or {})}
        self.runner.new_run(loaded, params=values, workspace=workspace)  # would it start?
        now = self.clock()
        record = AutomationRecord(
            id=name or loaded.spec.name,
            kind="schedule",
            plan=loaded.spec.name,
            plan_path=str(plan_path.resolve()),
            workspace=str((workspace or Path.cwd()).resolve()),
            settings=spec.model_dump(mode="json", exclude={"params"}),
            params=values,
            paused=False,
            next_at=cron.next_tick(spec.cron, spec.tz, now),
            created_at=now,
        )
        self.store.save_automation(record)
        return record

    def add_triggers(
        self,
        plan_path: Path,
        *,
        params: Mapping[str, Any] | None = None,
        workspace: Path | None = None,
    ) -> list[AutomationRecord]:
        """Register the plan's `after:` and `on:` entries (replacing earlier ones of it)."""
        loaded = load_plan(plan_path)
        spec = loaded.spec
        if not spec.after and not spec.on:
            raise InputError(f"{plan_path}: the plan has no `after:` or `on:` to register")
        self.runner.new_run(loaded, params=params, workspace=workspace)
        for old in self.store.list_automations():
            if old.kind in ("after", "on") and old.plan == spec.name:
                self.store.remove_automation(old.id)
        now = self.clock()
        entries: list[tuple[str, AfterSpec | OnSpec]] = [("after", a) for a in spec.after]
        entries += [("on", o) for o in spec.on]
        records = []
        for n, (kind, entry) in enumerate(entries, 1):
            record = AutomationRecord(
                id=f"{spec.name}.{kind}.{n}",
                kind=kind,
                plan=spec.name,
                plan_path=str(plan_path.resolve()),
                workspace=str((workspace or Path.cwd()).resolve()),
                settings=entry.model_dump(mode="json", exclude={"params"}),
                params={**entry.params, **(params or {})},
                paused=False,
                next_at=None,
                created_at=now,
            )
            self.store.save_automation(record)
            records.append(record)
        return records

    # ---- schedules -------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> list[FireRecord]:
        """Fire every schedule whose next tick has come."""
        at = self.clock() if now is None else now
        fired: list[FireRecord] = []
        for auto in self.store.list_automations("schedule"):
            if auto.paused or auto.next_at is None or auto.next_at > at:
                continue
            fired.extend(self._tick_one(auto, at))
        return fired

    def _tick_one(self, auto: AutomationRecord, now: float) -> list[FireRecord]:
        spec = ScheduleSpec.model_validate({**auto.settings, "params": {}})
        assert auto.next_at is not None
        due = [auto.next_at, *cron.ticks_between(spec.cron, spec.tz, auto.next_at, now)]
        following = cron.next_tick(spec.cron, spec.tz, now)
        latest = due[-1]
        missed = due if now - latest > self.grace else due[:-1]
        out: list[FireRecord] = []
        if missed and (missed is not due or spec.catch_up is CatchUp.SKIP):
            skipped = FireRecord(
                auto.id,
                _tick_key(missed[-1]),
                "skipped_missed",
                None,
                now,
                {
                    "missed": len(missed),
                    "first": cron.iso(missed[0], spec.tz),
                    "last": cron.iso(missed[-1], spec.tz),
                    "catch_up": spec.catch_up.value,
                },
            )
            next_at = following if missed is due else None
            if self.store.fire_automation(skipped, next_at=next_at):
                out.append(skipped)
            if missed is due:
                return out
        # The tick to run: the latest on time, or (catch_up: once) the latest missed one.
        details: dict[str, Any] = {"tick": cron.iso(latest, spec.tz)}
        if missed is due:
            details["caught_up"] = len(missed)
        fire = self._start(
            auto,
            _tick_key(latest),
            now,
            details,
            origin={"kind": "schedule", "schedule": auto.id, "tick": cron.iso(latest, spec.tz)},
            max_active=spec.max_active_runs,
            next_at=following,
        )
        if fire is not None:
            out.append(fire)
        return out

    # ---- after: and on: --------------------------------------------------------------------

    def has_news(self) -> bool:
        return self.store.last_event_seq() > self.store.get_cursor(CURSOR)

    def on_events(self, now: float | None = None) -> list[FireRecord]:
        """Read the events after the cursor and fire the triggers they match."""
        at = self.clock() if now is None else now
        triggers = [a for a in self.store.list_automations() if a.kind in ("after", "on")]
        fired: list[FireRecord] = []
        plans: dict[str, str] = {}  # run → plan
        kinds, states = _wanted_events(triggers)  # none: the cursor just moves on
        for batch in tail.follow(self.store, CURSOR, kinds, lambda: at, states):
            # Step outputs read once per run per batch: every event of the batch was committed
            # with its step row, so a read after the batch was read sees all of them.
            self._outputs = {}
            for event in batch:
                fired.extend(self._match(event, triggers, plans, at))
        return fired

    def _match(
        self,
        event: EventRecord,
        triggers: list[AutomationRecord],
        plans: dict[str, str],
        now: float,
    ) -> list[FireRecord]:
        if event.run_id is None or event.kind not in ("run", "step"):
            return []
        state = event.to_state
        if event.kind == "run" and state not in ("succeeded", "failed", "cancelled"):
            return []
        if event.kind == "step" and state not in ("succeeded", "failed"):
            return []
        if event.run_id not in plans:
            plans[event.run_id] = self.store.get_run(event.run_id).plan
        plan = plans[event.run_id]
        out: list[FireRecord] = []
        for auto in triggers:
            if auto.paused or auto.plan == plan:  # a plan never starts itself: no loops
                continue
            if auto.kind == "after" and event.kind == "run":
                fire = self._after(auto, event, plan, str(state), now)
            elif auto.kind == "on":
                fire = self._on(auto, event, plan, str(state), now)
            else:
                fire = None
            if fire is not None:
                out.append(fire)
        return out

    def _after(
        self, auto: AutomationRecord, event: EventRecord, plan: str, state: str, now: float
    ) -> FireRecord | None:
        spec = AfterSpec.model_validate({**auto.settings, "params": {}})
        if spec.plan != plan or event.run_id is None:
            return None
        wanted = spec.status is AfterStatus.FINISHED or spec.status.value == state
        key = f"run:{event.run_id}"
        upstream = {"run": event.run_id, "plan": plan, "status": state}
        if not wanted:
            if spec.status is AfterStatus.SUCCEEDED and state in ("failed", "cancelled"):
                note = RunNote(
                    event.run_id,
                    "run.upstream_failed",
                    {"upstream_run": event.run_id, "plan": plan, "waiting_plan": auto.plan},
                )
                fire = FireRecord(auto.id, key, "skipped_upstream_failed", None, now, upstream)
                if self.store.fire_automation(fire):
                    self.store.add_notes([note], now)
                    return fire
            return None
        return self._start(
            auto, key, now, upstream, origin={"kind": "after", **upstream, "automation": auto.id}
        )

    def _on(
        self, auto: AutomationRecord, event: EventRecord, plan: str, state: str, now: float
    ) -> FireRecord | None:
        spec = OnSpec.model_validate({**auto.settings, "params": {}})
        if f"{event.kind}.{state}" != spec.event or (spec.plan and spec.plan != plan):
            return None
        step = event.step_id or ""
        if spec.step is not None and not (
            step == spec.step
            or step.split("[", 1)[0] == spec.step
            or fnmatch.fnmatch(step, spec.step)
        ):
            return None
        assert event.run_id is not None
        outputs: Mapping[str, Any] = {}
        if event.kind == "step":
            if event.run_id not in self._outputs:
                self._outputs[event.run_id] = {
                    s.step_id: s.outputs for s in self.store.get_steps(event.run_id)
                }
            outputs = self._outputs[event.run_id].get(step, {})
        context = {
            "outputs": outputs,
            "plan": plan,
            "step": step,
            "run": event.run_id,
            "state": state,
            "details": dict(event.details),
        }
        key = f"event:{event.seq}"
        matched = {"event": event.seq, "run": event.run_id, "plan": plan, "step": step or None}
        if spec.when is not None:
            try:
                if not templating.holds(spec.when, context):
                    return None
            except templating.TemplateError as exc:
                fire = FireRecord(auto.id, key, "error", None, now, {**matched, "error": str(exc)})
                return fire if self.store.fire_automation(fire) else None
        # The last run it started, however many matches it skipped since.
        started = self.store.list_fires(auto.id, 1, outcome="started")
        last = started[0].at if started else None
        if last is not None and now - last < spec.cooldown:
            fire = FireRecord(
                auto.id, key, "skipped_cooldown", None, now, {**matched, "cooldown": spec.cooldown}
            )
            return fire if self.store.fire_automation(fire) else None
        origin = {"kind": "on", "trigger": auto.id, "event": event.seq, "run": event.run_id}
        return self._start(auto, key, now, matched, origin=origin)

    # ---- starting --------------------------------------------------------------------------

    def _start(
        self,
        auto: AutomationRecord,
        key: str,
        now: float,
        details: Mapping[str, Any],
        *,
        origin: Mapping[str, Any],
        max_active: int | None = None,
        next_at: float | None = None,
    ) -> FireRecord | None:
        """One run for this key, queued for the server — or the record of why not."""
        if max_active is not None:
            active = self.store.active_runs(auto.id)
            if len(active) >= max_active:
                fire = FireRecord(
                    auto.id,
                    key,
                    "skipped_max_active",
                    None,
                    now,
                    {**details, "active": active, "max_active_runs": max_active},
                )
                return fire if self.store.fire_automation(fire, next_at=next_at) else None
        try:
            new = self.runner.new_run(
                load_plan(Path(auto.plan_path)),
                params=auto.params,
                workspace=auto.workspace,
                origin=origin,
            )
        except AgentHQError as exc:
            fire = FireRecord(auto.id, key, "error", None, now, {**details, "error": str(exc)})
            return fire if self.store.fire_automation(fire, next_at=next_at) else None
        new = _queued(new)
        fire = FireRecord(auto.id, key, "started", new.id, now, dict(details))
        return fire if self.store.fire_automation(fire, run=new, next_at=next_at) else None


def resume(store: Store, automation_id: str, now: float) -> AutomationRecord:
    """Act on a paused schedule or trigger again; a schedule goes on from its next tick
    (ticks while it was paused are not caught up)."""
    record = store.get_automation(automation_id)
    next_at = None
    if record.kind == "schedule":
        settings = record.settings
        next_at = cron.next_tick(str(settings["cron"]), str(settings.get("tz", "UTC")), now)
    return store.set_automation(automation_id, paused=False, next_at=next_at)


def _queued(new: NewRun) -> NewRun:
    return replace(new, owner=QUEUED)


def _tick_key(moment: float) -> str:
    return f"tick:{moment:.0f}"


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", exc)).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc)


def describe(auto: AutomationRecord) -> str:
    """One line for people: when or on what it starts its plan."""
    s = auto.settings
    if auto.kind == "schedule":
        return f"cron '{s.get('cron')}' {s.get('tz')}, catch-up {s.get('catch_up')}, max {s.get('max_active_runs')} active"
    if auto.kind == "after":
        return f"after a run of {s.get('plan')} {s.get('status')}"
    where = f" of plan {s.get('plan')}" if s.get("plan") else ""
    step = f" step {s.get('step')}" if s.get("step") else ""
    when = f" when {s.get('when')}" if s.get("when") else ""
    cooldown = f", cool-down {s.get('cooldown'):g}s" if s.get("cooldown") else ""
    return f"on {s.get('event')}{where}{step}{when}{cooldown}"


def _wanted_events(triggers: list[AutomationRecord]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The event kinds and end states the triggers can match: an `after:` trigger waits for a
    run's end, an `on:` trigger for its one `kind.state`. With only `on: step.failed`, a busy
    run's thousands of events are skipped by the database, not read here."""
    kinds: set[str] = set()
    states: set[str] = set()
    for auto in triggers:
        if auto.kind == "after":
            kinds.add("run")
            states.update(("succeeded", "failed", "cancelled"))
        else:
            event = auto.settings.get("event") or OnSpec.model_fields["event"].default
            kind, _, state = str(event).partition(".")
            kinds.add(kind)
            states.add(state)
    return tuple(sorted(kinds)), tuple(sorted(states))
