"""Commands that read: runs, status, logs, events, graph, audit verify."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from agenthq.cli import common
from agenthq.errors import InputError, NotFoundError
from agenthq.events import serialize
from agenthq.store.api import AttemptRecord, Store

RunArg = Annotated[
    str, typer.Argument(help="Run id (a unique prefix or `last` works).", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


class GraphFormat(StrEnum):
    MERMAID = "mermaid"
    DOT = "dot"
    TEXT = "text"


def register(app: typer.Typer, audit_app: typer.Typer) -> None:
    app.command()(runs)
    app.command()(status)
    app.command()(logs)
    app.command()(events)
    app.command()(graph)
    audit_app.command("verify")(audit_verify)


def runs(
    json_output: JsonOpt = False,
    state: Annotated[str | None, typer.Option(help="Only runs in this state.")] = None,
    plan: Annotated[str | None, typer.Option(help="Only runs of this plan.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many runs to show.")] = 20,
) -> None:
    """List runs, newest first."""
    from agenthq.states import RunState

    run_state = None
    if state is not None:
        try:
            run_state = RunState(state)
        except ValueError:
            choices = ", ".join(s.value for s in RunState)
            raise InputError(f"unknown run state {state!r}; choose one of {choices}") from None
    records = common.store().list_runs(state=run_state, plan=plan, limit=limit)
    if json_output:
        common.print_json([common.run_json(r) for r in records])
        return
    if not records:
        print("no runs yet: start one with `agenthq run PLAN.yaml`")
        return
    from rich.console import Console

    from agenthq.cli import render

    Console().print(render.runs_table(records))


def status(run_id: RunArg, json_output: JsonOpt = False) -> None:
    """Show one run and its steps."""
    store = common.store()
    record = store.get_run(store.resolve_run_id(run_id))
    steps = store.get_steps(record.id)
    started = store.list_runs(origin_run=record.id, limit=50)
    if json_output:
        common.print_json(
            {
                **common.run_json(record),
                "steps": [common.step_json(s) for s in steps],
                "started_runs": [serialize.started_run_json(r) for r in started],
            }
        )
        return
    from rich.console import Console

    from agenthq.cli import render

    console = Console()
    console.print(render.run_header(record))
    if record.origin:
        follows = record.origin.get("run")
        console.print(serialize.origin_text(record.origin) + (f" run {follows}" if follows else ""))
    for later in started:
        kind = (later.origin or {}).get("kind", "")
        verb = "rolled back by" if kind == "rollback" else f"started ({kind})"
        console.print(f"{verb} run {later.id}  plan {later.plan}  {later.state.value}")
    console.print(render.steps_table(steps))


def logs(
    run_id: RunArg,
    step: Annotated[
        str | None, typer.Argument(help="Only this step (default: every step).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing while the run goes on.")
    ] = False,
    attempt: Annotated[
        int | None, typer.Option(help="Attempt number (default: the latest).")
    ] = None,
) -> None:
    """Print the stdout and stderr of a run's steps."""
    config = common.settings()
    store = common.store(config)
    rid = store.resolve_run_id(run_id)
    printed: dict[str, int] = {}
    while True:
        attempts = store.get_attempts(rid, step)
        if step is not None and not attempts and not follow:
            known = {s.step_id for s in store.get_steps(rid)}
            if step not in known:
                raise NotFoundError(f"run {rid} has no step {step!r}")
        latest: dict[str, AttemptRecord] = {}
        for a in attempts:
            if attempt is None or a.number == attempt:
                latest[a.step_id] = a
        for a in latest.values():
            prefix = a.step_id if step is None else None
            for stream, path_text in (("stdout", a.stdout_path), ("stderr", a.stderr_path)):
                if path_text and Path(path_text).exists():
                    _print_new(Path(path_text), config.home, printed, prefix=prefix)
                elif a.finished_at is not None:  # ran on a worker: its log is in the store
                    _print_stored(store, (a.run_id, a.step_id, a.number), stream, printed, prefix)
        if not follow or store.get_run(rid).state.finished:
            return
        time.sleep(0.5)


def _print_stored(
    store: Store,
    key: tuple[str, str, int],
    stream: str,
    printed: dict[str, int],
    prefix: str | None,
) -> None:
    name = f"{key}:{stream}"
    if name in printed:
        return
    text = store.read_log(key, stream)
    printed[name] = 1
    if text:
        _write(text, prefix)


def _write(text: str, prefix: str | None) -> None:
    if prefix is None:
        sys.stdout.write(text)
    else:
        for line in text.splitlines():
            sys.stdout.write(f"{prefix} | {line}\n")
    sys.stdout.flush()


def _print_new(path: Path, home: Path, printed: dict[str, int], prefix: str | None) -> None:
    resolved = path.resolve()
    if not resolved.is_relative_to(home.resolve()):
        raise InputError(f"refusing to read {path}: log files live under {home}")
    try:
        with resolved.open("rb") as handle:
            handle.seek(printed.get(str(resolved), 0))
            data = handle.read()
    except FileNotFoundError:
        return
    printed[str(resolved)] = printed.get(str(resolved), 0) + len(data)
    _write(data.decode("utf-8", errors="replace"), prefix)


def events(
    run_id: RunArg,
    json_output: JsonOpt = False,
    after: Annotated[int, typer.Option(help="Only events after this sequence number.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 10_000,
) -> None:
    """Print the event log of one run."""
    store = common.store()
    rid = store.resolve_run_id(run_id)
    records = store.read_events(after_seq=after, run_id=rid, limit=limit)
    if json_output:
        common.print_json(
            [
                {
                    "seq": e.seq,
                    "run_id": e.run_id,
                    "step_id": e.step_id,
                    "attempt": e.attempt,
                    "kind": e.kind,
                    "from": e.from_state,
                    "to": e.to_state,
                    "at": e.at,
                    "details": dict(e.details),
                    "hash": e.hash,
                }
                for e in records
            ]
        )
        return
    for e in records:
        stamp = time.strftime("%H:%M:%S", time.localtime(e.at)) + f".{int(e.at * 1000) % 1000:03d}"
        subject = e.step_id or "run"
        change = f"{e.from_state} → {e.to_state}" if e.to_state else ""
        extra = " ".join(f"{k}={v}" for k, v in e.details.items() if v not in (None, "", {}))
        print(f"{e.seq:>7} {stamp} {e.kind:<22} {subject:<24} {change} {extra}".rstrip())


def graph(
    plan: Annotated[Path, typer.Argument(help="The plan file.")],
    fmt: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="Output format.")
    ] = GraphFormat.TEXT,
) -> None:
    """Draw a plan's DAG as Mermaid, Graphviz dot or text."""
    from agenthq.cli import diagram
    from agenthq.graph import compile_plan
    from agenthq.spec.load import load_plan

    loaded = load_plan(plan)
    compiled = compile_plan(loaded.spec, source=loaded.source, plan_dir=plan.resolve().parent)
    drawers = {
        GraphFormat.MERMAID: diagram.mermaid,
        GraphFormat.DOT: diagram.dot,
        GraphFormat.TEXT: diagram.text,
    }
    print(drawers[fmt](compiled))


def audit_verify(json_output: JsonOpt = False) -> None:
    """Recompute the event log's hash chain; exit 1 naming the first edited event."""
    from agenthq.events.audit import verify_chain

    report = verify_chain(common.store())
    if json_output:
        common.print_json(
            {
                "intact": report.intact,
                "events": report.events,
                "first_bad_seq": report.first_bad_seq,
                "problem": report.problem,
            }
        )
    elif report.intact:
        print(f"audit chain intact: {report.events} events verified")
    else:
        print(
            f"audit chain BROKEN at event {report.first_bad_seq}: {report.problem}", file=sys.stderr
        )
    if not report.intact:
        raise typer.Exit(1)
