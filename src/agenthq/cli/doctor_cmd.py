"""`agenthq doctor`: check the installation and the store; `--fix` repairs what is safe."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from agenthq.cli import common

_MARK = {"ok": ("✓", "green"), "degraded": ("!", "yellow"), "repair": ("✗", "red")}


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    fix: Annotated[bool, typer.Option("--fix", help="Repair what is safe to repair.")] = False,
    retention: Annotated[
        str, typer.Option("--log-retention", help="With --fix: prune logs older than this.")
    ] = "30d",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Healthy, degraded or needs-repair, with one line per finding saying what to do.
    Exit 0 when healthy, 1 otherwise."""
    from sqlalchemy.engine import make_url

    from agenthq.engine import doctor as checks
    from agenthq.errors import InputError
    from agenthq.spec.durations import parse_duration
    from agenthq.store import HEAD_REVISION

    try:
        keep_logs = parse_duration(retention)
    except ValueError as exc:
        raise InputError(f"--log-retention {retention!r}: {exc}") from None
    config = common.settings()
    url = make_url(config.db_url)
    findings: list[checks.Finding] = []
    repaired: list[str] = []
    if url.get_backend_name() == "sqlite" and url.database:
        findings += checks.check_database_file(Path(url.database), HEAD_REVISION)
    exists = (
        not (url.get_backend_name() == "sqlite" and url.database) or Path(url.database).exists()
    )
    usable = exists and not any(
        f.level == "repair" and f.check in ("database", "schema", "integrity") for f in findings
    )
    if usable and (fix or all(f.level == "ok" for f in findings)):
        store = common.store(config)  # opening migrates and turns WAL on: the safe fixes
        if fix and any(f.check in ("schema", "wal") and f.level != "ok" for f in findings):
            repaired.append("schema upgraded and WAL on")
            findings = [f for f in findings if f.check not in ("schema", "wal")]
        now = time.time()
        run_findings, orphans = checks.check_store(store, now)
        if fix and orphans:
            from agenthq.cli.run_cmds import runner_for

            runner = runner_for(config)
            for run_id in orphans:
                lost = runner.recover(run_id)
                repaired.append(f"run {run_id}: {lost} interrupted step(s) marked lost")
            run_findings, _ = checks.check_store(store, now)
        findings += run_findings
        if fix:
            finished = {r.id for r in store.list_runs(limit=100_000) if r.state.finished}
            pruned = checks.prune_logs(config.home, keep_logs, now, finished.__contains__)
            if pruned:
                repaired.append(f"pruned the logs of {pruned} finished run(s)")
    findings += checks.check_disk(config.home)
    findings += checks.check_spawner(config.spawner)
    findings += checks.check_model(
        config.home / "models", common.gate_config(config).model, time.time()
    )
    result = checks.verdict(findings)
    if json_output:
        common.print_json(
            {
                "verdict": result,
                "findings": [f.__dict__ for f in findings],
                "repaired": repaired,
            }
        )
    else:
        from rich.console import Console
        from rich.text import Text

        console = Console()
        for f in findings:
            mark, style = _MARK[f.level]
            console.print(
                Text.assemble((f" {mark} ", style), (f"{f.check:<10}", "bold"), f.message)
            )
        for line in repaired:
            console.print(Text.assemble((" + ", "cyan"), ("fixed     ", "bold"), line))
        console.print(
            Text(
                f"\n{result}",
                style=_MARK[{"healthy": "ok", "degraded": "degraded"}.get(result, "repair")][1],
            )
        )
    if result != "healthy":
        raise typer.Exit(1)
