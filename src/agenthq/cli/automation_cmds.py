"""`agenthq schedule` and `agenthq triggers`: register, list, pause, resume and remove the
things that start plans without a person. `agenthq serve` acts on them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from agenthq.cli import common
from agenthq.events.serialize import automation_json, fire_json

schedule_app = typer.Typer(help="Run plans on a cron schedule (inside `agenthq serve`).")
triggers_app = typer.Typer(
    help="Start plans after other plans (`after:`) or on matching events (`on:`)."
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
PlanArg = Annotated[Path, typer.Argument(help="The plan file (YAML).", show_default=False)]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", "-p", help="A plan parameter, key=value. Repeatable.")
]
NameArg = Annotated[str, typer.Argument(help="The schedule's or trigger's id (see `list`).")]


def register(app: typer.Typer) -> None:
    app.add_typer(schedule_app, name="schedule")
    app.add_typer(triggers_app, name="triggers")


def _automations() -> Any:
    from agenthq.cli.run_cmds import runner_for
    from agenthq.engine.automation import Automations

    config = common.settings()
    runner = runner_for(config)
    return Automations(runner.store, runner)


@schedule_app.command("add")
def schedule_add(
    plan: PlanArg,
    cron: Annotated[
        str | None, typer.Option("--cron", help="Five cron fields, e.g. '0 2 * * *'.")
    ] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="IANA time zone (default UTC).")] = None,
    catch_up: Annotated[
        str | None, typer.Option("--catch-up", help="Missed ticks: skip (default) or once.")
    ] = None,
    max_active_runs: Annotated[
        int | None, typer.Option("--max-active-runs", min=1, help="Runs at a time (default 1).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Id (default: the plan's name).")
    ] = None,
    param: ParamOpt = None,
    workspace: Annotated[
        Path | None, typer.Option(help="Directory the runs work in (default: here).")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Register a schedule: the options, or the plan's `schedule:`, say when."""
    from agenthq.engine import cron as cron_times
    from agenthq.spec.params import parse_param_args

    overrides = {"cron": cron, "tz": tz, "catch_up": catch_up, "max_active_runs": max_active_runs}
    record = _automations().add_schedule(
        plan,
        name=name,
        overrides=overrides,
        params=parse_param_args(param or []),
        workspace=workspace,
    )
    if json_output:
        common.print_json(automation_json(record))
        return
    tz_name = str(record.settings.get("tz", "UTC"))
    nxt = cron_times.iso(record.next_at, tz_name) if record.next_at else "never"
    print(
        f"schedule {record.id}: {record.plan} at '{record.settings['cron']}' {tz_name}; next {nxt}"
    )
    print("`agenthq serve` starts the runs; `agenthq schedule list` shows them")


@triggers_app.command("add")
def triggers_add(
    plan: PlanArg,
    param: ParamOpt = None,
    workspace: Annotated[
        Path | None, typer.Option(help="Directory the runs work in (default: here).")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Register the plan's `after:` and `on:` triggers (replacing its earlier ones)."""
    from agenthq.engine.automation import describe
    from agenthq.spec.params import parse_param_args

    records = _automations().add_triggers(
        plan, params=parse_param_args(param or []), workspace=workspace
    )
    if json_output:
        common.print_json([automation_json(r) for r in records])
        return
    for record in records:
        print(f"trigger {record.id}: {record.plan} {describe(record)}")


def _listing(kinds: tuple[str, ...], json_output: bool, title: str) -> None:
    from agenthq.engine import cron as cron_times
    from agenthq.engine.automation import describe

    store = common.store()
    found = [a for a in store.list_automations() if a.kind in kinds]
    last = {a.id: store.list_fires(a.id, 1) for a in found}
    if json_output:
        common.print_json(
            [automation_json(a, last[a.id][0] if last[a.id] else None) for a in found]
        )
        return
    if not found:
        print(
            f"no {title}; `agenthq {'schedule' if 'schedule' in kinds else 'triggers'} add PLAN` registers one"
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("id", "plan", "when", "state", "next", "last"):
        table.add_column(column)
    for a in found:
        tz_name = str(a.settings.get("tz", "UTC"))
        nxt = cron_times.iso(a.next_at, tz_name) if a.next_at and a.kind == "schedule" else ""
        fire = last[a.id][0] if last[a.id] else None
        shown = f"{fire.outcome} {fire.run_id or ''}".strip() if fire else ""
        table.add_row(a.id, a.plan, describe(a), "paused" if a.paused else "active", nxt, shown)
    Console().print(table)


@schedule_app.command("list")
def schedule_list(json_output: JsonOpt = False) -> None:
    """Schedules, their next tick and what their last tick did."""
    _listing(("schedule",), json_output, "schedules")


@triggers_app.command("list")
def triggers_list(json_output: JsonOpt = False) -> None:
    """Triggers and what their last match did."""
    _listing(("after", "on"), json_output, "triggers")


def _pause(automation_id: str) -> None:
    record = common.store().set_automation(automation_id, paused=True)
    print(f"{record.kind} {record.id} paused")


@schedule_app.command("pause")
def schedule_pause(name: NameArg) -> None:
    """Start no runs from this schedule until `resume` (its ticks are skipped)."""
    _pause(name)


@schedule_app.command("resume")
def schedule_resume(name: NameArg) -> None:
    """Start runs again from the next tick on (ticks while paused are not caught up)."""
    from agenthq.engine import cron as cron_times
    from agenthq.engine.automation import resume

    record = resume(common.store(), name, time.time())
    tz_name = str(record.settings.get("tz", "UTC"))
    nxt = cron_times.iso(record.next_at, tz_name) if record.next_at else "never"
    print(f"schedule {name} active; next {nxt}")


@schedule_app.command("remove")
def schedule_remove(name: NameArg) -> None:
    """Forget a schedule (its runs and history stay)."""
    common.store().remove_automation(name)
    print(f"schedule {name} removed")


@triggers_app.command("pause")
def triggers_pause(name: NameArg) -> None:
    """Start no runs from this trigger until `resume` (matches meanwhile are not replayed)."""
    _pause(name)


@triggers_app.command("resume")
def triggers_resume(name: NameArg) -> None:
    """Act on this trigger's matches again."""
    from agenthq.engine.automation import resume

    record = resume(common.store(), name, time.time())
    print(f"{record.kind} {record.id} active")


@triggers_app.command("remove")
def triggers_remove(name: NameArg) -> None:
    """Forget a trigger."""
    common.store().remove_automation(name)
    print(f"trigger {name} removed")


@schedule_app.command("history")
def schedule_history(name: NameArg, json_output: JsonOpt = False, limit: int = 20) -> None:
    """Recent ticks of a schedule and what each did."""
    _history(name, json_output, limit)


@triggers_app.command("history")
def triggers_history(name: NameArg, json_output: JsonOpt = False, limit: int = 20) -> None:
    """Recent matches of a trigger and what each did."""
    _history(name, json_output, limit)


def _history(name: str, json_output: bool, limit: int) -> None:
    store = common.store()
    store.get_automation(name)
    fires = store.list_fires(name, limit)
    if json_output:
        common.print_json([fire_json(f) for f in fires])
        return
    for fire in fires:
        extra = " ".join(f"{k}={v}" for k, v in fire.details.items())
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(fire.at))
        print(f"{when}  {fire.outcome:<22} {fire.run_id or '-':<24} {extra}")
