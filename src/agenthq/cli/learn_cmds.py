"""Learning from history: `agenthq telemetry export`, `agenthq model train|eval|predict|status`,
`agenthq policy suggest`, `agenthq report`.

scikit-learn, skops and matplotlib (the `learn` extra) are imported inside the commands that
need them, so the rest of the CLI starts as fast as before and works without them.
"""

from __future__ import annotations

import csv
import difflib
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agenthq.cli import common
from agenthq.errors import ConfigError, InputError, LearningError

if TYPE_CHECKING:
    from agenthq.config import Settings
    from agenthq.graph import StepNode
    from agenthq.ml.model import Metrics, ModelMeta

telemetry_app = typer.Typer(
    help="The history of every attempt, for analysis.", no_args_is_help=True
)
model_app = typer.Typer(
    help="The failure model: which attempts are likely to fail.", no_args_is_help=True
)
policy_app = typer.Typer(help="Policy rules from what people decided.", no_args_is_help=True)

MODELS = "models"
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since", help="Only attempts started in this window, e.g. 7d, 12h (default: all)."
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(telemetry_app, name="telemetry")
    app.add_typer(model_app, name="model")
    app.add_typer(policy_app, name="policy")
    app.command("report")(report)


def _seconds(text: str, option: str) -> float:
    from agenthq.spec.durations import parse_duration

    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise InputError(f"{option}: {exc}") from None
    if value <= 0:
        raise InputError(f"{option} must be longer than 0 (e.g. 7d)")
    return value


def _models_dir(config: Settings) -> Path:
    return config.home / MODELS


# ---- telemetry ---------------------------------------------------------------------------------


@telemetry_app.command("export")
def export(
    csv_path: Annotated[
        str | None, typer.Option("--csv", help="Write CSV to this file (- for stdout).")
    ] = None,
    parquet_path: Annotated[
        Path | None, typer.Option("--parquet", help="Write Parquet to this file (needs pyarrow).")
    ] = None,
    since: SinceOpt = None,
) -> None:
    """One row per finished attempt: what was known at dispatch, its history features, outcome."""
    from agenthq.ml.features import derive, export_columns, export_record

    if (csv_path is None) == (parquet_path is None):
        raise InputError("give exactly one of --csv FILE (or --csv -) and --parquet FILE")
    store = common.store()
    started_from = time.time() - _seconds(since, "--since") if since else None
    # History features read everything before each row (the agent's rate has no window), so
    # all rows are derived and only the window's are written: the same values as in training.
    records = [
        export_record(row, features)
        for row, features in derive(store.list_telemetry())
        if started_from is None or row.started_at >= started_from
    ]
    columns = list(export_columns())
    if csv_path is not None:
        if csv_path == "-":
            _write_csv(sys.stdout, columns, records)
        else:
            with _output(Path(csv_path)).open("w", newline="") as out:
                _write_csv(out, columns, records)
            print(f"wrote {len(records)} rows to {csv_path}", file=sys.stderr)
        return
    assert parquet_path is not None
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise LearningError("Parquet export needs pyarrow: pip install 'agenthq[learn]'") from None
    table = (
        pyarrow.Table.from_pylist(records, schema=_arrow_schema(pyarrow))
        if records
        else (_arrow_schema(pyarrow).empty_table())
    )
    pyarrow.parquet.write_table(table, str(_output(parquet_path)))
    print(f"wrote {len(records)} rows to {parquet_path}", file=sys.stderr)


def _write_csv(out: Any, columns: list[str], records: list[dict[str, Any]]) -> None:
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)


def _arrow_schema(pyarrow: Any) -> Any:
    text = {
        "run_id",
        "step_id",
        "plan",
        "step",
        "agent",
        "kind",
        "family",
        "risk_reasons",
        "started_at",
        "finished_at",
        "outcome",
        "failure_class",
    }
    whole = {
        "attempt",
        "reason_count",
        "fan_in",
        "parallelism",
        "hour",
        "agent_failures_24h",
        "step_failures_24h",
        "failed",
    }
    from agenthq.ml.features import export_columns

    fields = []
    for name in export_columns():
        kind = (
            pyarrow.string()
            if name in text
            else pyarrow.int64()
            if name in whole
            else pyarrow.float64()
        )
        fields.append(pyarrow.field(name, kind))
    return pyarrow.schema(fields)


def _output(path: Path) -> Path:
    if path.exists() and path.is_dir():
        raise InputError(f"{path} is a directory; give a file name")
    if not path.parent.exists():
        raise InputError(f"{path.parent} does not exist; create it or choose another path")
    return path


# ---- model -------------------------------------------------------------------------------------


@model_app.command("train")
def train(json_output: JsonOpt = False) -> None:
    """Fit the failure model on all telemetry (time-ordered split) and save it with skops."""
    from agenthq.ml import model

    config = common.settings()
    store = common.store(config)
    trained = model.train(store.list_telemetry())
    path = model.save(trained, _models_dir(config))
    meta = model.read_meta(_models_dir(config))
    assert meta is not None
    if json_output:
        common.print_json({"path": str(path), **meta.to_json()})
        return
    print(
        f"trained {meta.kind} on {meta.train_rows} attempts "
        f"({_day(meta.data_from)} to {_day(meta.data_to)}) in {meta.train_seconds:.1f}s"
    )
    print(
        "  candidates (validation ROC-AUC): "
        + ", ".join(f"{k} {v:.3f}" for k, v in meta.selection.items())
    )
    _print_metrics(meta)
    settings = common.gate_config(config).model
    usable, why = meta.usable(time.time(), settings.max_age_days)
    print(f"saved {path}")
    print(("the risk gate will use it: " if usable and settings.enabled else "not used: ") + why)


@model_app.command("eval")
def evaluate(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Directory for calibration.png and importances.png "
            "(default: the models directory).",
            file_okay=False,
        ),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Score the saved model and the baseline on held-out and newer attempts; draw the plots."""
    from agenthq.ml import charts, model

    config = common.settings()
    directory = _models_dir(config)
    trained = model.load(directory)
    updated, result = model.evaluate(trained, common.store(config).list_telemetry())
    model.write_meta(updated.meta, directory)
    target = out or directory
    if not target.exists():
        raise InputError(f"{target} does not exist; create it or choose another --out")
    calibration = target / "calibration.png"
    calibration.write_bytes(
        charts.calibration_png(result.failed, result.predicted, result.baseline_predicted)
    )
    assert result.part is not None
    names, means, stds = model.importances(updated, result.part)
    importances = target / "importances.png"
    importances.write_bytes(charts.importances_png(names, means, stds))
    meta = updated.meta
    if json_output:
        common.print_json(
            {
                **meta.to_json(),
                "calibration_png": str(calibration),
                "importances_png": str(importances),
                "importances": dict(zip(names, means, strict=True)),
            }
        )
        return
    _print_metrics(meta)
    usable, why = meta.usable(time.time(), common.gate_config(config).model.max_age_days)
    print(("usable: " if usable else "not used: ") + why)
    print(f"wrote {calibration} and {importances}")


@model_app.command("status")
def status(json_output: JsonOpt = False) -> None:
    """Which model is saved, how good it was, and whether the risk gate uses it."""
    from agenthq.ml.model import read_meta

    config = common.settings()
    meta = read_meta(_models_dir(config))
    settings = common.gate_config(config).model
    if meta is None:
        if json_output:
            common.print_json(None)
        else:
            print("no model: run plans, then `agenthq model train`")
        return
    usable, why = meta.usable(time.time(), settings.max_age_days)
    if json_output:
        common.print_json({**meta.to_json(), "used": usable and settings.enabled, "why": why})
        return
    print(f"{meta.kind}, trained {_day(meta.created_at)} on {meta.train_rows} attempts")
    _print_metrics(meta)
    used = usable and settings.enabled
    print(
        (f"used by the risk gate (weight {settings.weight:g}): " if used else "not used: ")
        + (why if settings.enabled else "[model] enabled = false")
    )


@model_app.command("predict")
def predict(
    plan: Annotated[
        Path | None, typer.Argument(help="A plan file; score one of its steps.", show_default=False)
    ] = None,
    step: Annotated[
        str | None, typer.Option("--step", help="The step of the plan to score.")
    ] = None,
    command: Annotated[
        str | None, typer.Option("--command", help="Score a shell command instead of a plan step.")
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="The agent that would run it.")
    ] = None,
    parallelism: Annotated[
        int, typer.Option("--parallelism", min=1, help="Attempts running at once when it starts.")
    ] = 1,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="A plan parameter, key=value.")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """The probability that a plan's step (or a command) fails if it starts now."""
    from agenthq.engine.foresight import as_written
    from agenthq.gates.risk import assess
    from agenthq.ml.features import Candidate, command_family
    from agenthq.ml.model import load
    from agenthq.ml.predictor import FailurePredictor

    if (plan is None) == (command is None):
        raise InputError("give a plan file with --step, or --command 'CMD'")
    config = common.settings()
    plan_name, step_id, fan_in = "", "", 0
    kind, family, text = "shell", command_family(command), command
    if plan is not None:
        if step is None:
            raise InputError(f"{plan}: which step? add --step ID")
        plan_name, node = _plan_step(plan, step, param)
        described = as_written(node)
        if described is None:
            raise InputError(f"{plan}: step {step!r} only waits; nothing runs to predict")
        kind, family, text = described
        step_id, fan_in, agent = node.base_id, len(node.spec.needs), agent or node.agent
    trained = load(_models_dir(config))
    predictor = FailurePredictor(trained, common.store(config).list_telemetry)
    assessment = assess(text, workspace=Path.cwd()) if text else None
    candidate = Candidate(
        plan=plan_name,
        step=step_id,
        agent=agent,
        kind=kind,
        family=family,
        risk_score=float(assessment.score) if assessment else None,
        reason_count=len(assessment.reasons) if assessment else 0,
        attempt=1,
        fan_in=fan_in,
        parallelism=parallelism,
        at=time.time(),
    )
    probability = predictor.predict(candidate)
    history = predictor.history.history_of(candidate)
    meta = trained.meta
    settings = common.gate_config(config).model
    usable, why = meta.usable(time.time(), settings.max_age_days)
    verdict = "likely to fail" if probability >= meta.threshold else "likely to succeed"
    result = {
        "probability": round(probability, 4),
        "threshold": meta.threshold,
        "verdict": verdict,
        "family": candidate.family,
        "agent": agent,
        "risk_score": candidate.risk_score,
        "history_of": "/".join(history) if history else None,
        "model_used_by_risk_gate": usable and settings.enabled,
        "why": why,
        "risk_points": round(100 * settings.weight * probability) if usable else 0,
    }
    if json_output:
        common.print_json(result)
        return
    print(f"predicted failure: {probability:.0%} ({verdict}; threshold {meta.threshold:.0%})")
    print(
        f"  family {candidate.family or '-'}, agent {agent or '-'}, parallelism {parallelism}"
        f", risk score {candidate.risk_score if candidate.risk_score is not None else '-'}"
    )
    if history is None:
        print("  no step has run it or its family for this agent: judged without step history")
    elif history != (plan_name, step_id):
        print(
            f"  judged with the history of step {history[1]} of plan {history[0]}, which last"
            " ran this family for this agent"
        )
    if usable and settings.enabled:
        print(f"  the risk gate adds {result['risk_points']} points for it")
    else:
        print(f"  the risk gate does not use the model: {why}")


def _plan_step(path: Path, step: str, param: list[str] | None) -> tuple[str, StepNode]:
    """The plan's name and the step (an instance id, or the first instance of a plan id)."""
    from agenthq.graph import compile_plan
    from agenthq.spec.load import load_plan
    from agenthq.spec.params import parse_param_args, resolve_params

    loaded = load_plan(path)
    values = resolve_params(loaded.spec, parse_param_args(param or []), allow_missing=True)
    graph = compile_plan(
        loaded.spec, params=values, source=loaded.source, plan_dir=path.resolve().parent
    )
    node = graph.nodes.get(step) or next(
        (n for n in graph.nodes.values() if n.base_id == step), None
    )
    if node is None:
        close = difflib.get_close_matches(step, list(graph.groups), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InputError(f"{path}: no step {step!r}{hint}")
    return loaded.spec.name, node


def _print_metrics(meta: ModelMeta) -> None:
    def line(name: str, m: Metrics) -> str:
        return (
            f"  {name:<9} ROC-AUC {m.roc_auc:.3f}  PR-AUC {m.pr_auc:.3f}  "
            f"F1 {m.f1:.3f} (threshold {m.threshold:.2f})  Brier {m.brier:.4f}"
        )

    print(
        f"held-out attempts: {meta.model.rows} ({meta.model.failures} failed), "
        f"started from {_day(meta.test_from)}"
    )
    print(line("model", meta.model))
    print(line("baseline", meta.baseline) + "   (the agent's failure rate so far)")
    print(f"  ROC-AUC difference: {meta.model.roc_auc - meta.baseline.roc_auc:+.3f}")


def _day(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


# ---- policy suggest ----------------------------------------------------------------------------


@policy_app.command("suggest")
def suggest(
    min_approved: Annotated[
        int, typer.Option("--min-approved", min=1, help="Approvals needed for an allow rule.")
    ] = 3,
    min_rejected: Annotated[
        int, typer.Option("--min-rejected", min=1, help="Rejections needed for a deny rule.")
    ] = 2,
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the suggested rules into agenthq.toml.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Allow rules for commands people always approved, deny rules for ones always rejected."""
    from agenthq.gates.suggest import suggest as make_suggestions

    config = common.settings()
    gates = common.gate_config(config)
    store = common.store(config)
    suggestions = make_suggestions(
        store.list_approvals(state=None, limit=1_000_000),
        gates.policy,
        min_approved=min_approved,
        min_rejected=min_rejected,
    )
    if json_output and not apply:
        common.print_json(
            [
                {
                    "rule": s.rule,
                    "patterns": list(s.patterns),
                    "command": s.command,
                    "approved": s.approved,
                    "rejected": s.rejected,
                }
                for s in suggestions
            ]
        )
        return
    if not suggestions:
        print(
            f"nothing to suggest: no command was approved {min_approved}+ times and never "
            f"rejected, or rejected {min_rejected}+ times and never approved"
        )
        return
    path = config.config_file
    old = path.read_text() if path.exists() else ""
    new = _with_rules(old, suggestions, str(path))
    diff = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{path.name}",
        tofile=f"{path.name} (suggested)",
    )
    sys.stdout.writelines(diff)
    if apply:
        path.write_text(new)
        print(f"\napplied {len(suggestions)} suggestion(s) to {path}", file=sys.stderr)
    else:
        print(
            f"\n{len(suggestions)} suggestion(s); `agenthq policy suggest --apply` writes them",
            file=sys.stderr,
        )


def _with_rules(text: str, suggestions: list[Any], where: str) -> str:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(
            f"{where}: not valid TOML ({exc}); fix it before applying suggestions"
        ) from None
    policy = document.get("policy")
    if policy is None:
        policy = tomlkit.table()
        document["policy"] = policy
    for rule in ("allow", "deny"):
        chosen = [s for s in suggestions if s.rule == rule]
        if not chosen:
            continue
        existing = policy.get(rule)
        if existing is None:
            existing = tomlkit.array()
            policy[rule] = existing
        if not hasattr(existing, "add_line"):
            raise ConfigError(f"{where}: policy.{rule} must be a list to add rules to it")
        for s in chosen:
            for n, pattern in enumerate(s.patterns):
                existing.add_line(pattern, comment=s.note if n == 0 else None)
        existing.add_line(indent="")
    return str(tomlkit.dumps(document))


# ---- report ------------------------------------------------------------------------------------


def report(
    since: Annotated[str, typer.Option("--since", help="The window, e.g. 7d, 24h.")] = "7d",
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    csv_dir: Annotated[
        Path | None,
        typer.Option(
            "--csv-dir", help="Write each chart's data as CSV into this directory.", file_okay=False
        ),
    ] = None,
    png_dir: Annotated[
        Path | None,
        typer.Option(
            "--png-dir", help="Write each chart as PNG into this directory.", file_okay=False
        ),
    ] = None,
) -> None:
    """Trends: attempts per hour, failure rate by agent, p50/p95 duration, approval waits, cost."""
    from agenthq.ml.trends import trends

    window = _seconds(since, "--since")
    charts_list = trends(common.store(), window)
    for directory in (csv_dir, png_dir):
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
    if csv_dir is not None:
        for chart in charts_list:
            (csv_dir / f"{chart.name}.csv").write_text(chart.csv())
    if png_dir is not None:
        from agenthq.ml.charts import draw

        for chart in charts_list:
            (png_dir / f"{chart.name}.png").write_bytes(draw(chart, "png"))
    if html is not None:
        from agenthq.ml.report import render_html

        _output(html).write_text(render_html(charts_list, since=since, now=time.time()))
        print(f"wrote {html}")
    if html is None and csv_dir is None and png_dir is None:
        # On a terminal, hours and days with nothing in them are left out (files keep them,
        # so a plot of the CSV has its gaps).
        for chart in charts_list:
            print(f"== {chart.title}")
            busy = [r for r in chart.rows if any(v != 0 for v in r[1:])]
            shown = replace(chart, rows=busy)
            print(shown.csv() if busy else "(no data in this window)\n")
