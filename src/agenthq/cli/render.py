"""How runs look in a terminal: a Rich live view on a TTY, plain lines elsewhere.

Rich is imported where something is drawn: `run --quiet`, `--json` and plain output never
need it, and importing it cost every command 30-40 ms.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from agenthq.engine.scheduler import Progress
from agenthq.spec.durations import format_duration
from agenthq.states import RunState, StepState
from agenthq.store.api import BreakerRecord, RunRecord, StepRecord

if TYPE_CHECKING:
    from rich.console import Console, Group
    from rich.table import Table
    from rich.text import Text

    from agenthq.agents.roster import AgentStatus

STATE_STYLE: Mapping[str, str] = {
    "pending": "dim",
    "ready": "cyan",
    "gating": "cyan",
    "queued": "cyan",
    "running": "bold blue",
    "retrying": "yellow",
    "waiting": "magenta",
    "lost": "yellow",
    "awaiting_approval": "bold magenta",
    "paused": "magenta",
    "succeeded": "green",
    "failed": "bold red",
    "blocked": "red",
    "skipped": "dim",
    "cancelled": "yellow",
}
STATE_MARK: Mapping[str, str] = {
    "succeeded": "✓",
    "failed": "✗",
    "blocked": "⊘",
    "skipped": "↷",
    "cancelled": "■",
    "retrying": "↻",
    "waiting": "⏳",
    "running": "▶",
    "lost": "?",
}
ORDER = [s.value for s in StepState]


def styled_state(state: str) -> Text:
    from rich.text import Text

    return Text(state, style=STATE_STYLE.get(state, ""))


class PlainView:
    """One line per finished step and per retry: readable in CI logs and pipes."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream
        self.started = time.monotonic()

    def on_progress(self, progress: Progress) -> None:
        for step_id, state, reason in progress.changes:
            if state in (StepState.PENDING, StepState.READY, StepState.GATING):
                continue
            elapsed = format_duration(time.monotonic() - self.started)
            mark = STATE_MARK.get(state.value, "·")
            tail = f"  ({reason})" if reason and state is not StepState.SUCCEEDED else ""
            if state is StepState.AWAITING_APPROVAL:
                tail += f"\n         decide: agenthq approve|reject {progress.run_id} {step_id}"
            print(
                f"[{elapsed:>6}] {mark} {step_id} {state.value}{tail}", file=self.stream, flush=True
            )


class LiveView:
    """A live panel: a progress bar, counts by state, the steps running now."""

    def __init__(self, console: Console, title: str) -> None:
        from rich.live import Live

        self.console = console
        self.title = title
        self.started = time.monotonic()
        self.live = Live(console=console, refresh_per_second=8, transient=False)
        self.last: Progress | None = None
        self.log: list[str] = []
        self.waiting: dict[str, str] = {}  # step → why it waits for a person

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.last is not None:
            self.live.update(self._render(self.last), refresh=True)
        self.live.__exit__(None, None, None)

    def on_progress(self, progress: Progress) -> None:
        self.last = progress
        for step_id, state, reason in progress.changes:
            if state is StepState.AWAITING_APPROVAL:
                self.waiting[step_id] = reason or "a gate asked"
            else:
                self.waiting.pop(step_id, None)
            if state in (StepState.FAILED, StepState.RETRYING, StepState.BLOCKED):
                self.log.append(
                    f"{STATE_MARK.get(state.value, '·')} {step_id} {state.value}: {reason or ''}"
                )
        self.live.update(self._render(progress))

    def _render(self, progress: Progress) -> Group:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.text import Text

        done = sum(n for s, n in progress.counts.items() if StepState(s).finished)
        bar = ProgressBar(total=max(progress.total, 1), completed=done, width=40)
        elapsed = format_duration(time.monotonic() - self.started)
        header = Text.assemble(
            (f"{self.title} ", "bold"),
            (f"{progress.run_id}  ", "dim"),
            f"{done}/{progress.total} steps  {elapsed}",
        )
        counts = Text("  ").join(
            Text.assemble((f"{progress.counts[s]} ", "bold"), styled_state(s))
            for s in ORDER
            if progress.counts.get(s)
        )
        parts: list[Any] = [header, bar, counts]
        if progress.running:
            shown = ", ".join(progress.running[:8])
            more = f" +{len(progress.running) - 8}" if len(progress.running) > 8 else ""
            parts.append(Text(f"running: {shown}{more}", style="blue"))
        parts.extend(Text(line, style="yellow") for line in self.log[-5:])
        for step_id, why in list(self.waiting.items())[:5]:
            parts.append(
                Text(
                    f"waiting for you: {step_id} ({why}) — "
                    f"agenthq approve|reject {progress.run_id} {step_id}",
                    style="magenta",
                )
            )
        return Group(*parts)


def runs_table(runs: Sequence[RunRecord]) -> Table:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("run", "plan", "state", "steps", "created", "duration"):
        table.add_column(column)
    for run in runs:
        total = sum(run.step_counts.values())
        done = run.step_counts.get("succeeded", 0)
        table.add_row(
            run.id,
            run.plan,
            styled_state(run.state.value),
            f"{done}/{total}",
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.created_at)),
            _duration(run.started_at, run.finished_at),
        )
    return table


def steps_table(steps: Sequence[StepRecord]) -> Table:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("step", "state", "attempts", "failure", "duration", "note"):
        table.add_column(column, overflow="fold")
    for step in steps:
        table.add_row(
            step.step_id,
            styled_state(step.state.value),
            str(step.attempts),
            step.failure_class.value if step.failure_class else "",
            _duration(step.started_at, step.finished_at) if step.started_at else "",
            step.reason or "",
        )
    return table


def run_header(run: RunRecord) -> Text:
    from rich.text import Text

    return Text.assemble(
        ("run ", "dim"),
        (run.id, "bold"),
        ("  plan ", "dim"),
        run.plan,
        ("  state ", "dim"),
        styled_state(run.state.value),
        ("  duration ", "dim"),
        _duration(run.started_at, run.finished_at),
    )


def _duration(start: float | None, end: float | None) -> str:
    if start is None:
        return ""
    return format_duration((end or time.time()) - start)


def summary_line(run: RunRecord) -> str:
    counts = ", ".join(
        f"{n} {s}" for s, n in sorted(run.step_counts.items(), key=lambda kv: ORDER.index(kv[0]))
    )
    verb = {
        RunState.SUCCEEDED: "succeeded",
        RunState.FAILED: "failed",
        RunState.CANCELLED: "was cancelled",
    }
    return f"run {run.id} {verb.get(run.state, run.state.value)} in {_duration(run.started_at, run.finished_at)}: {counts}"


_AGENT_STYLE = {
    "idle": "green",
    "busy": "cyan",
    "quarantined": "bold red",
    "unhealthy": "red",
    "offline": "dim",
}


def agents_table(statuses: Sequence[AgentStatus], breakers: Mapping[str, BreakerRecord]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("agent", "kind", "state", "load", "fail 24h", "risk", "capabilities", "note"):
        table.add_column(column, overflow="fold")
    for s in statuses:
        limit = f"/{s.max_concurrency}" if s.max_concurrency else ""
        notes = []
        if s.quarantine_reason:
            notes.append(f"{s.quarantine_reason} ({s.quarantined_step} of {s.quarantined_run})")
        elif s.health_detail:
            notes.append(s.health_detail)
        breaker = breakers.get(f"agent:{s.name}")
        if breaker is not None and breaker.state != "closed":
            notes.append(f"breaker {breaker.state}")
        table.add_row(
            s.name,
            s.kind,
            Text(s.state, style=_AGENT_STYLE.get(s.state, "")),
            f"{s.load}{limit}",
            f"{s.failure_rate:.0%} of {s.attempts}" if s.attempts else "",
            f"{s.mean_risk:.2f}" if s.mean_risk is not None else "",
            ", ".join(s.capabilities),
            "; ".join(notes),
        )
    Console().print(table)
