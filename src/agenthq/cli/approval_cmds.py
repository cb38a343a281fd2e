"""A person's commands: see what waits, approve or reject it, release a quarantined agent.

Decisions go to the store, so they work from any terminal while `agenthq run` waits in
another (it acts within a second), and on runs nobody is executing (`agenthq resume` acts).
Who decided is `--by`, defaulting to the login name and host, and lands in the audit log.
"""

from __future__ import annotations

import getpass
import socket
import time
from typing import Annotated, Any

import typer

from agenthq.cli import common, render
from agenthq.engine.approvals import human_duration
from agenthq.errors import InputError
from agenthq.events.serialize import approval_json
from agenthq.store.api import BreakerRecord

agents_app = typer.Typer(
    help="Agents: list them with their state and load, check their health, release a quarantined one.",
    invoke_without_command=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
NoteOpt = Annotated[str | None, typer.Option("--note", "-m", help="Why: kept in the audit log.")]
ByOpt = Annotated[
    str | None, typer.Option("--by", help="Who decides (default: your login name @ host).")
]


def register(app: typer.Typer) -> None:
    app.command()(approvals)
    app.command("approval-link")(approval_link)
    app.command()(approve)
    app.command()(reject)
    app.add_typer(agents_app, name="agents")


def approvals(
    run_id: Annotated[
        str | None, typer.Option("--run", help="Only this run (id, prefix or `last`).")
    ] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="Only approvals escalated to this group.")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """List what waits for a person: run, step, command, score, reasons, how long it waited."""
    store = common.store()
    resolved = store.resolve_run_id(run_id) if run_id else None
    pending = store.list_approvals(run_id=resolved)
    if group is not None:
        pending = [a for a in pending if a.escalated and a.escalate_to == group]
    now = time.time()
    if json_output:
        common.print_json([approval_json(a, now) for a in pending])
        return
    if not pending:
        print("nothing is waiting for approval")
        return
    for a in pending:
        score = f"score {a.score:.0f}" if a.score is not None else a.kind.value
        print(f"{a.run_id}  {a.step_id}  [{score}]  waiting {human_duration(now - a.requested_at)}")
        if a.command:
            print(f"    command: {a.command}")
        for reason in a.reasons:
            print(f"    - {reason}")
        escalated = f", escalated to {a.escalate_to}" if a.escalated else ""
        print(
            f"    expires in {human_duration(a.expires_at - now)} (then: {a.on_timeout}){escalated}"
        )
    print(f"\n{len(pending)} waiting. `agenthq approve RUN STEP` or `agenthq reject RUN STEP`.")


def approve(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix or `last` works).")],
    step_id: Annotated[str | None, typer.Argument(help="The waiting step.")] = None,
    all_steps: Annotated[
        bool, typer.Option("--all", help="Approve every waiting step of the run.")
    ] = False,
    max_score: Annotated[
        float | None,
        typer.Option("--max-score", min=0, max=100, help="With --all: only up to this risk score."),
    ] = None,
    extend: Annotated[
        float | None,
        typer.Option("--extend", help="For a budget approval: dollars to add to the budget."),
    ] = None,
    note: NoteOpt = None,
    by: ByOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Let a waiting step run (or, with --all, every waiting step of the run)."""
    _decide(run_id, step_id, all_steps, max_score, extend, note, by, json_output, approve=True)


def reject(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix or `last` works).")],
    step_id: Annotated[str | None, typer.Argument(help="The waiting step.")] = None,
    all_steps: Annotated[
        bool, typer.Option("--all", help="Reject every waiting step of the run.")
    ] = False,
    note: NoteOpt = None,
    by: ByOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Refuse a waiting step: it fails (failure class `gate`) and its dependents follow their
    trigger rules."""
    _decide(run_id, step_id, all_steps, None, None, note, by, json_output, approve=False)


def _decide(
    run_id: str,
    step_id: str | None,
    all_steps: bool,
    max_score: float | None,
    extend: float | None,
    note: str | None,
    by: str | None,
    json_output: bool,
    *,
    approve: bool,
) -> None:
    from agenthq.errors import InputError
    from agenthq.store.api import ApprovalKind

    if (step_id is None) == (not all_steps):
        raise InputError("name one waiting STEP, or pass --all for every waiting step of the run")
    if max_score is not None and not all_steps:
        raise InputError("--max-score only goes with --all")
    config = common.settings()
    from agenthq.cli.run_cmds import runner_for

    runner = runner_for(config)
    resolved = runner.store.resolve_run_id(run_id)
    decided = runner.decide(
        resolved,
        step_id,
        approve=approve,
        by=by or default_identity(),
        note=note,
        extend_usd=extend,
        max_score=max_score,
    )
    now = time.time()
    if json_output:
        common.print_json([approval_json(a, now) for a in decided])
        return
    verb = "approved" if approve else "rejected"
    if not decided:
        skipped = [
            a for a in runner.store.list_approvals(run_id=resolved) if a.kind is ApprovalKind.BUDGET
        ]
        hint = " (budget approvals need a STEP and --extend USD)" if skipped and approve else ""
        print(f"nothing {verb}: no waiting step matched{hint}")
        raise typer.Exit(1)
    for a in decided:
        extra = f", budget +${a.extend_usd:.2f}" if a.extend_usd else ""
        print(f"{verb} {a.step_id} of run {a.run_id}{extra}")
    from agenthq.engine.ownership import owner_alive

    run = runner.store.get_run(resolved)
    if run.owner is None or not owner_alive(run.owner, run.heartbeat_at, now):
        print(f"nobody is executing run {resolved}; `agenthq resume {resolved}` continues it")


def approval_link(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix or `last` works).")],
    step_id: Annotated[str, typer.Argument(help="The waiting step.")],
    ttl: Annotated[
        str, typer.Option("--ttl", help="How long the link stays valid, e.g. 30m, 4h.")
    ] = "1h",
    base_url: Annotated[
        str, typer.Option("--base-url", help="Where people reach `agenthq serve`.")
    ] = "http://127.0.0.1:8765",
) -> None:
    """Print a signed, expiring link that decides one waiting step through `agenthq serve`
    (for a chat message): it needs no login and works once."""
    from agenthq.errors import InputError
    from agenthq.spec.durations import parse_duration

    try:
        seconds = parse_duration(ttl)
    except ValueError as exc:
        raise InputError(f"--ttl: {exc}") from None
    config = common.settings()
    store = common.store(config)
    resolved = store.resolve_run_id(run_id)
    waiting = [a for a in store.list_approvals(run_id=resolved) if a.step_id == step_id]
    if not waiting:
        raise InputError(f"step {step_id!r} of run {resolved} is not waiting for approval")
    from agenthq.engine.links import signed_link

    print(
        f"{base_url.rstrip('/')}/approval-link/{signed_link(config.home, waiting[-1].id, time.time() + seconds)}"
    )


@agents_app.callback()
def agents(ctx: typer.Context, json_output: JsonOpt = False) -> None:
    """List agents: state (idle, busy, quarantined, unhealthy, offline), load, failure rate,
    mean risk; declared ones (built-in, agenthq.toml) and any a step has named."""
    if ctx.invoked_subcommand is not None:
        return
    from agenthq.agents.registry import Registry
    from agenthq.agents.roster import roster

    config = common.settings()
    registry = Registry.build(common.agent_specs(config))
    store = common.store(config)
    statuses = roster(registry, store, time.time())
    breakers = store.get_breakers()
    if json_output:
        common.print_json(
            [
                {**s.as_json(), "breaker": _breaker_json(breakers.get(f"agent:{s.name}"))}
                for s in statuses
            ]
        )
        return
    render.agents_table(statuses, breakers)


def _breaker_json(breaker: BreakerRecord | None) -> dict[str, Any] | None:
    return None if breaker is None else {"state": breaker.state, "trips": breaker.trips}


@agents_app.command("check")
def check(
    names: Annotated[
        list[str] | None, typer.Argument(help="Agents to check (default: all).")
    ] = None,
) -> None:
    """Run agents' health checks now and record the answers (exit 1 if any is not healthy)."""
    import asyncio
    import os

    from agenthq.agents.health import check_agent
    from agenthq.agents.registry import Registry

    config = common.settings()
    registry = Registry.build(common.agent_specs(config))
    store = common.store(config)
    chosen = [registry.get(n) for n in names] if names else list(registry.agents.values())
    unknown = [n for n, a in zip(names or [], chosen, strict=False) if a is None]
    if unknown:
        raise InputError(
            f"no agent named {', '.join(unknown)}; `agenthq agents` lists the declared ones"
        )
    with_checks = [a for a in chosen if a is not None and a.spec.health is not None]
    if not with_checks:
        print('no agent to check: declare [agents.NAME.health] command = "..." in agenthq.toml')
        return

    async def all_checks() -> list[Any]:
        env = dict(os.environ)
        return list(await asyncio.gather(*(check_agent(store, a, env) for a in with_checks)))

    bad = 0
    for record in asyncio.run(all_checks()):
        if record is None:
            continue
        detail = f": {record.detail}" if record.detail else ""
        print(f"{record.name}  {record.health}{detail}")
        bad += record.health != "healthy"
    if bad:
        raise typer.Exit(1)


@agents_app.command("release")
def release(
    name: Annotated[str, typer.Argument(help="The quarantined agent.")],
    note: NoteOpt = None,
    by: ByOpt = None,
) -> None:
    """End an agent's quarantine, recorded with who and why; it takes steps again."""
    store = common.store()
    record = store.release_agent(name, by=by or default_identity(), note=note, at=time.time())
    print(f"released agent {record.name}")


def default_identity() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
