"""Commands that change runs: validate, run, resume, cancel, retry."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agenthq.cli import common, startup_gc
from agenthq.states import RunState

if TYPE_CHECKING:
    from agenthq.config import Settings
    from agenthq.engine.runner import Runner


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(run)
    app.command()(resume)
    app.command()(pause)
    app.command()(cancel)
    app.command()(retry)
    app.command()(rollback)


PlanArg = Annotated[Path, typer.Argument(help="The plan file (YAML).", show_default=False)]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", "-p", help="A plan parameter, key=value. Repeatable.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON for machines.")]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--max-workers", min=1, help="Steps running at once (default: CPU count)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary.")]
NoWaitOpt = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        help="Exit with code 3 instead of waiting when only approvals remain; resume later.",
    ),
]


def validate(plan: PlanArg, param: ParamOpt = None) -> None:
    """Check a plan without running it; exit 2 with file:line for every problem."""
    from agenthq.graph import compile_plan
    from agenthq.spec.load import load_plan
    from agenthq.spec.params import parse_param_args, resolve_params

    loaded = load_plan(plan)
    values = resolve_params(loaded.spec, parse_param_args(param or []), allow_missing=True)
    graph = compile_plan(
        loaded.spec, params=values, source=loaded.source, plan_dir=plan.resolve().parent
    )
    print(
        f"{plan}: plan {loaded.spec.name!r} is valid: {len(loaded.spec.steps)} steps, {len(graph.nodes)} to run"
    )


def run(
    plan: PlanArg,
    param: ParamOpt = None,
    max_workers: WorkersOpt = None,
    workspace: Annotated[
        Path | None, typer.Option(help="Directory the steps run in (default: here).")
    ] = None,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    no_wait: NoWaitOpt = False,
    detach: Annotated[
        bool,
        typer.Option("--detach", help="Hand the run to `agenthq serve` and return at once."),
    ] = False,
    on_workers: Annotated[
        bool,
        typer.Option(
            "--on-workers", help="Run the steps on `agenthq worker` processes (same database)."
        ),
    ] = False,
) -> None:
    """Run a plan to its end, showing progress. Ctrl-C cancels cleanly."""
    from agenthq.spec.load import load_plan
    from agenthq.spec.params import parse_param_args

    with startup_gc.setting_up():
        config = common.settings()
        loaded = load_plan(plan)
        values = parse_param_args(param or [])
        runner = runner_for(config)
        record = runner.start(
            loaded,
            params=values,
            workspace=workspace,
            max_workers=max_workers or config.max_workers,
        )
    if detach:
        from agenthq.engine.ownership import QUEUED

        runner.store.claim_run(record.id, QUEUED)
        if json_output:
            common.print_json(common.run_json(runner.store.get_run(record.id)))
        else:
            print(record.id)
            print(
                f"queued for `agenthq serve`; follow it with `agenthq status {record.id}`",
                file=sys.stderr,
            )
        return
    if not json_output and not quiet:
        total = sum(record.step_counts.values())
        print(f"run {record.id} started: {total} steps", file=sys.stderr)
    _execute(
        runner,
        record.id,
        title=loaded.spec.name,
        json_output=json_output,
        quiet=quiet,
        no_wait=no_wait,
        on_workers=on_workers,
    )


def resume(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix or `last` works).")],
    max_workers: WorkersOpt = None,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    no_wait: NoWaitOpt = False,
) -> None:
    """Continue a paused run, or one that stopped (crash, kill, reboot): finished steps are
    kept. A paused run that a live process executes simply goes on there."""
    config = common.settings()
    runner = runner_for(config)
    run_id = runner.store.resolve_run_id(run_id)
    was_paused = runner.store.get_run_control(run_id).pause_requested
    owner = runner.lift_pause(run_id) if was_paused else None
    if owner is not None:
        print(f"run {run_id} resumed: process {owner} continues it")
        return
    run_record = runner.store.get_run(run_id)
    _execute(
        runner,
        run_id,
        title=run_record.plan,
        json_output=json_output,
        quiet=quiet,
        max_workers=max_workers,
        no_wait=no_wait,
    )


def pause(run_id: Annotated[str, typer.Argument(help="Run id.")]) -> None:
    """Pause a run: nothing new starts, running steps finish; `agenthq resume RUN` continues."""
    import time

    config = common.settings()
    runner = runner_for(config)
    run_id = runner.store.resolve_run_id(run_id)
    record = runner.pause(run_id)
    deadline = time.monotonic() + 5  # a live executor pauses within a poll interval
    while record.state is not RunState.PAUSED and record.owner and time.monotonic() < deadline:
        time.sleep(0.1)
        record = runner.store.get_run(run_id)
    if record.state is RunState.PAUSED:
        print(f"run {run_id} paused; running steps finish. `agenthq resume {run_id}` continues")
    else:
        print(
            f"run {run_id}: pause recorded; it stays paused when it is next executed. "
            f"`agenthq resume {run_id}` lifts it"
        )


def cancel(run_id: Annotated[str, typer.Argument(help="Run id.")]) -> None:
    """Cancel a run: its running steps are stopped and recorded as cancelled."""
    import time

    config = common.settings()
    runner = runner_for(config)
    run_id = runner.store.resolve_run_id(run_id)
    record = runner.cancel(run_id)
    if not record.state.finished:
        # The executing process acts on the request; wait briefly so the answer is the outcome.
        deadline = time.monotonic() + 15
        while not record.state.finished and time.monotonic() < deadline:
            time.sleep(0.2)
            record = runner.store.get_run(run_id)
    print(
        f"run {run_id} {record.state.value}"
        + ("" if record.state.finished else " (cancel requested)")
    )


def retry(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    from_step: Annotated[
        str | None, typer.Option("--from", help="Run this step and everything after it again.")
    ] = None,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """New attempts for failed/cancelled steps and what depends on them; succeeded steps are kept."""
    config = common.settings()
    runner = runner_for(config)
    run_id = runner.store.resolve_run_id(run_id)
    record = runner.retry(run_id, from_step)
    _execute(runner, run_id, title=record.plan, json_output=json_output, quiet=quiet)


def rollback(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix or `last` works).")],
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    no_wait: NoWaitOpt = False,
    detach: Annotated[
        bool,
        typer.Option("--detach", help="Hand the rollback to `agenthq serve` and return at once."),
    ] = False,
) -> None:
    """Undo a finished run: the `compensate` of each succeeded step, newest dependency first,
    each through the gates, as a run of its own (plan NAME-rollback). A failed compensation
    stops the rollback and raises a critical alert."""
    config = common.settings()
    runner = runner_for(config)
    run_id = runner.store.resolve_run_id(run_id)
    record = runner.rollback(run_id)
    if detach:
        from agenthq.engine.ownership import QUEUED

        runner.store.claim_run(record.id, QUEUED)
        print(record.id)
        print(f"rollback of {run_id} queued for `agenthq serve`", file=sys.stderr)
        return
    if not json_output and not quiet:
        total = sum(record.step_counts.values())
        print(
            f"rolling back run {run_id} as run {record.id}: {total} compensations", file=sys.stderr
        )
    _execute(
        runner, record.id, title=record.plan, json_output=json_output, quiet=quiet, no_wait=no_wait
    )


def runner_for(config: Settings) -> Runner:
    with startup_gc.setting_up():
        from agenthq.engine.runner import Runner

        gates = common.gate_config(config)
        agents = common.agent_specs(config)
        return Runner(
            common.store(config),
            home=config.home,
            gates=gates,
            agents=agents,
            spawner=config.spawner,
        )


def _execute(
    runner: Runner,
    run_id: str,
    *,
    title: str,
    json_output: bool,
    quiet: bool,
    max_workers: int | None = None,
    no_wait: bool = False,
    on_workers: bool = False,
) -> None:
    from agenthq.cli import render
    from agenthq.engine.runner import RunOptions

    options = RunOptions(max_workers=max_workers, no_wait=no_wait, on_workers=on_workers)
    if json_output or quiet:
        final = runner.execute(run_id, options=options)
    elif sys.stdout.isatty():
        from rich.console import Console

        with render.LiveView(Console(), title) as view:
            final = runner.execute(run_id, observer=view, options=options)
    else:
        final = runner.execute(run_id, observer=render.PlainView(), options=options)
    if json_output:
        steps = runner.store.get_steps(run_id)
        common.print_json({**common.run_json(final), "steps": [common.step_json(s) for s in steps]})
    else:
        print(render.summary_line(final))
        for started in runner.store.list_runs(origin_run=run_id, limit=5):
            if (started.origin or {}).get("kind") == "rollback":  # on_failure: rollback
                print("rolled back: " + render.summary_line(started))
    raise typer.Exit(common.RUN_EXIT_CODES.get(final.state, 1))
