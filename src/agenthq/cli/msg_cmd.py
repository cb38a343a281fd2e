"""`agenthq msg`: agent-to-agent messages, from a terminal or from inside a step."""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer

from agenthq import messages
from agenthq.cli import common
from agenthq.errors import InputError

msg_app = typer.Typer(help="Durable messages between agents: send, inbox, read, prune.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def register(app: typer.Typer) -> None:
    app.add_typer(msg_app, name="msg")


def _me() -> str:
    return os.environ.get("AGENTHQ_AGENT") or os.environ.get("AGENTHQ_STEP_ID") or "cli"


@msg_app.command("send")
def send(
    recipient: Annotated[str, typer.Argument(help="The agent it is for.")],
    body: Annotated[str, typer.Argument(help="The message; `-` reads it from stdin.")],
    sender: Annotated[
        str | None,
        typer.Option("--from", help="Who sends it (default: $AGENTHQ_AGENT, the step, `cli`)."),
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", "-s")] = None,
    dedupe_key: Annotated[
        str | None, typer.Option("--dedupe-key", help="Sending twice with it stores it once.")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Send a message; inside a step, the run and step are recorded with it."""
    import sys

    text = sys.stdin.read() if body == "-" else body
    message_id, new = messages.send(
        common.store(),
        sender or _me(),
        recipient,
        text,
        subject=subject,
        dedupe_key=dedupe_key,
        run_id=os.environ.get("AGENTHQ_RUN_ID"),
        step_id=os.environ.get("AGENTHQ_STEP_ID"),
    )
    if json_output:
        common.print_json({"id": message_id, "new": new})
    else:
        print(f"message {message_id} {'sent' if new else 'was already sent'} to {recipient}")


@msg_app.command("inbox")
def inbox(
    agent: Annotated[str | None, typer.Argument(help="Whose (default: $AGENTHQ_AGENT).")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Read ones too.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """List an agent's unread messages (--all: read ones too), oldest first."""
    who = agent or os.environ.get("AGENTHQ_AGENT")
    if not who:
        raise InputError("whose inbox? give an agent name (or run inside a step with an agent)")
    found = messages.inbox(common.store(), who, unread=not show_all)
    if json_output:
        common.print_json([messages.as_json(m) for m in found])
        return
    if not found:
        print(f"no {'' if show_all else 'unread '}message for {who}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "from", "sent", "subject", "body"):
        table.add_column(column, overflow="fold")
    for m in found:
        sent = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.created_at))
        table.add_row(str(m.id), m.sender, sent, m.subject or "", m.body)
    Console().print(table)


@msg_app.command("read")
def read(
    ids: Annotated[list[int] | None, typer.Argument(help="Message ids to mark read.")] = None,
    agent: Annotated[
        str | None, typer.Option("--all", help="Mark every message of this agent read.")
    ] = None,
) -> None:
    """Mark messages read (they stay until pruned)."""
    changed = messages.mark_read(common.store(), list(ids) if ids else None, agent=agent)
    print(f"marked {changed} message{'s' if changed != 1 else ''} read")


@msg_app.command("prune")
def prune(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Read more than this long ago, e.g. 30d.")
    ] = "30d",
) -> None:
    """Delete read messages older than the retention (unread ones are kept)."""
    from agenthq.spec.durations import parse_duration

    try:
        seconds = parse_duration(older_than)
    except ValueError as exc:
        raise InputError(f"--older-than {older_than!r}: {exc}") from None
    removed = messages.prune(common.store(), seconds / 86400.0)
    print(f"pruned {removed} message{'s' if removed != 1 else ''}")
