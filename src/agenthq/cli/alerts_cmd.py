"""`agenthq alerts`: what needs attention, acknowledging and resolving it, a pass on demand."""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer

from agenthq.cli import common
from agenthq.errors import InputError
from agenthq.events.alerts import at_least
from agenthq.events.serialize import alert_json

alerts_app = typer.Typer(
    help="Alerts: list them, acknowledge or resolve one, evaluate the rules now.",
    invoke_without_command=True,
)
_STYLE = {"low": "dim", "medium": "yellow", "high": "red", "critical": "bold red"}
_STATES = {"open": ("open", "acknowledged"), "all": None, "resolved": ("resolved",)}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
NoteOpt = Annotated[str | None, typer.Option("--note", "-m", help="Why: kept with the alert.")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who (default: your login name @ host).")]


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")


@alerts_app.callback()
def alerts(
    ctx: typer.Context,
    state: Annotated[
        str, typer.Option("--state", help="open (default), resolved or all.")
    ] = "open",
    min_severity: Annotated[
        str, typer.Option("--min-severity", help="low (default), medium, high or critical.")
    ] = "low",
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 500,
    json_output: JsonOpt = False,
) -> None:
    """List alerts, most severe first (open and acknowledged ones unless --state says)."""
    if ctx.invoked_subcommand is not None:
        return
    if state not in _STATES:
        raise InputError(f"--state {state!r}: use open, resolved or all")
    severities = at_least(min_severity)
    found = common.store().list_alerts(states=_STATES[state], severities=severities, limit=limit)
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    found.sort(key=lambda a: (order.get(a.severity, 9), -a.last_seen))
    if json_output:
        common.print_json([alert_json(a) for a in found])
        return
    if not found:
        print("no open alert" if state == "open" else "no alert")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "severity", "rule", "state", "count", "last seen", "message"):
        table.add_column(column, overflow="fold")
    for a in found:
        table.add_row(
            str(a.id),
            Text(a.severity, style=_STYLE.get(a.severity, "")),
            a.rule,
            a.state,
            str(a.count),
            time.strftime("%m-%d %H:%M", time.localtime(a.last_seen)),
            a.message,
        )
    Console().print(table)


@alerts_app.command("ack")
def ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's id.")],
    note: NoteOpt = None,
    by: ByOpt = None,
) -> None:
    """Acknowledge: someone is on it (high and critical alerts stay until resolved)."""
    from agenthq.cli.approval_cmds import default_identity

    record = common.store().change_alert(
        alert_id, "acknowledged", by=by or default_identity(), note=note, at=time.time()
    )
    print(f"alert {record.id} acknowledged by {record.acked_by}")


@alerts_app.command("resolve")
def resolve(
    alert_id: Annotated[int, typer.Argument(help="The alert's id.")],
    note: NoteOpt = None,
    by: ByOpt = None,
) -> None:
    """Resolve: the problem is gone (the next occurrence opens a new alert)."""
    from agenthq.cli.approval_cmds import default_identity

    record = common.store().change_alert(
        alert_id, "resolved", by=by or default_identity(), note=note, at=time.time()
    )
    print(f"alert {record.id} resolved")


@alerts_app.command("check")
def check(json_output: JsonOpt = False) -> None:
    """Evaluate every rule now and deliver new alerts to the channels (for cron and CI;
    `agenthq serve` does this every few seconds). Exit 1 when an alert was opened."""
    from agenthq.engine.alerting import build_evaluator

    config = common.settings()
    evaluator, notifier = build_evaluator(
        common.store(config), config.tables, config.config_file, os.environ
    )
    opened = evaluator.evaluate()
    notifier.drain()
    if json_output:
        common.print_json([alert_json(a) for a in opened])
    else:
        for a in opened:
            print(f"opened alert {a.id} [{a.severity}] {a.rule}: {a.message}")
        if not opened:
            print("no new alert")
    if opened:
        raise typer.Exit(1)
