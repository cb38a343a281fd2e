"""`agenthq worktrees` and `agenthq diff`: the git worktrees coding agents worked in."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agenthq.cli import common
from agenthq.errors import NotFoundError
from agenthq.store.api import Store, WorktreeRecord

if TYPE_CHECKING:
    from agenthq.agents.worktree import Worktree

worktrees_app = typer.Typer(
    help="Git worktrees of coding-agent attempts: list them, prune finished ones.",
    invoke_without_command=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
_FINISHED = ("merged", "removed")
_PRUNABLE = ("kept",)


def register(app: typer.Typer) -> None:
    app.add_typer(worktrees_app, name="worktrees")
    app.command("diff")(diff)


@worktrees_app.callback()
def worktrees(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Argument(help="Only this run (id, prefix or `last`).")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Also merged and removed ones.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """List worktrees kept for review, after a conflict or a failure (--all: every one)."""
    if ctx.invoked_subcommand is not None:
        return
    store = common.store()
    run_id = store.resolve_run_id(run) if run else None
    rows = [w for w in store.list_worktrees(run_id=run_id) if show_all or w.state not in _FINISHED]
    if json_output:
        common.print_json([w.__dict__ for w in rows])
        return
    if not rows:
        print("no worktree kept" + ("" if show_all else " (--all lists merged ones too)"))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("run", "step", "attempt", "state", "branch", "path"):
        table.add_column(column, overflow="fold")
    for w in rows:
        table.add_row(w.run_id, w.step_id, str(w.attempt), w.state, w.branch, w.path)
    Console().print(table)


@worktrees_app.command("prune")
def prune(
    keep_branches: Annotated[
        bool, typer.Option("--keep-branches", help="Remove directories, keep the branches.")
    ] = False,
) -> None:
    """Remove worktrees kept after failures of runs that have finished (not review or
    conflict ones: those wait for a person's merge)."""
    from agenthq.agents import worktree

    store = common.store()
    removed = 0
    for row in store.list_worktrees(states=_PRUNABLE):
        if not store.get_run(row.run_id).state.finished:
            continue
        worktree.remove(_tree(row), keep_branch=keep_branches)
        store.update_worktree(row.run_id, row.step_id, row.attempt, "removed", time.time())
        removed += 1
    print(f"removed {removed} worktree{'s' if removed != 1 else ''}")


def diff(
    run: Annotated[str, typer.Argument(help="The run (id, prefix or `last`).")],
    step: Annotated[str, typer.Argument(help="The step whose agent worked in a worktree.")],
    attempt: Annotated[int | None, typer.Option("--attempt", help="Default: the latest.")] = None,
) -> None:
    """Print what a coding agent changed in its worktree (for `merge: review` steps)."""
    from agenthq.agents import worktree

    store = common.store()
    row = _find(store, store.resolve_run_id(run), step, attempt)
    if row.state in _FINISHED and row.merge == "auto":
        print(
            f"{step} attempt {row.attempt} was merged; its changes are in the history of {row.repo}"
        )
        return
    text = worktree.diff(_tree(row))
    if not text:
        print(f"{step} attempt {row.attempt} changed nothing")
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.syntax import Syntax

        Console().print(Syntax(text, "diff", theme="ansi_dark", background_color="default"))
    else:
        sys.stdout.write(text)


def _find(store: Store, run_id: str, step: str, attempt: int | None) -> WorktreeRecord:
    rows = [w for w in store.list_worktrees(run_id=run_id) if w.step_id == step]
    if attempt is not None:
        rows = [w for w in rows if w.attempt == attempt]
    if not rows:
        raise NotFoundError(
            f"step {step} of run {run_id} has no worktree"
            + (f" for attempt {attempt}" if attempt is not None else "")
            + "; only steps with `workspace: worktree` have one (`agenthq worktrees` lists them)"
        )
    return max(rows, key=lambda w: w.attempt)


def _tree(row: WorktreeRecord) -> Worktree:
    from agenthq.agents import worktree

    return worktree.Worktree(
        path=Path(row.path), branch=row.branch, base=row.base, repo=Path(row.repo)
    )
