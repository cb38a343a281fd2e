"""From telemetry rows to the features the failure model reads, without seeing the future.

A row holds what was known when its attempt was dispatched. The history features — how often
this agent and this step failed in the last day, the agent's failure rate so far, the step's
usual duration — are derived here from the rows that had *finished* before the attempt
started: the export, the training set and a live prediction all go through `History`, so a
model is trained on exactly what it will be shown when it is used. A step with no finished
attempt yet borrows the step history of the last step that ran its command family for its
agent (`History.history_of`), in all three alike.
"""

from __future__ import annotations

import functools
import heapq
import os
import re
import shlex
import statistics
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agenthq.store.api import TelemetryRow

__all__ = [
    "CATEGORICAL",
    "NUMERIC",
    "Candidate",
    "History",
    "candidate_of",
    "command_family",
    "derive",
    "export_columns",
    "export_record",
]

DAY = 86400.0
DURATIONS_KEPT = 50  # a step's usual duration is the median of its last 50 successful attempts
NO_AGENT = "-"

NUMERIC = (
    "risk_score",
    "reason_count",
    "attempt",
    "fan_in",
    "parallelism",
    "hour",
    "agent_failures_24h",
    "agent_failure_rate",
    "step_failures_24h",
    "step_median_s",
)
CATEGORICAL = ("agent", "kind", "family")

# Words that run the next word as the command: `sudo make install` is a `make install`.
_WRAPPERS = frozenset(
    {"sudo", "env", "nice", "nohup", "time", "timeout", "exec", "command", "stdbuf", "ionice"}
)
# Programs whose first argument names what really runs: `python -m pytest`, `sh deploy.sh`.
_INTERPRETERS = frozenset(
    {"sh", "bash", "zsh", "dash", "python", "python3", "node", "ruby", "perl", "deno", "bun"}
)
_SUBCOMMAND = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_VERSIONED = re.compile(r"^(python|pip|node|ruby|perl)[0-9.]*$")


@functools.lru_cache(maxsize=1024)
def command_family(command: str | None) -> str | None:
    """The first word(s) of a command line's first command: `git push`, `pytest`,
    `python -m pytest` → `python pytest`, `sh deploy.sh` → `sh deploy.sh`.

    A family groups commands that succeed or fail for the same reasons while leaving out
    what varies (paths, ids, messages), so a model can learn from a few hundred of them.
    Cached: a fan-out runs the same command hundreds of times, and lexing it was a tenth of
    the engine's work per shell step.
    """
    if not command or not command.strip():
        return None
    words = _first_command(command)
    while words and (_ASSIGNMENT.match(words[0]) or os.path.basename(words[0]) in _WRAPPERS):
        wrapper = os.path.basename(words.pop(0))
        while words and (
            words[0].startswith("-") or (wrapper == "timeout" and words[0][0:1].isdigit())
        ):
            words.pop(0)
    if not words:
        return None
    program = os.path.basename(words[0])
    program = _VERSIONED.sub(r"\1", program) if _VERSIONED.match(program) else program
    rest = words[1:]
    if program in _INTERPRETERS or program == "python":
        if len(rest) >= 2 and rest[0] == "-m":
            return f"{program} {rest[1]}"
        script = next((w for w in rest if not w.startswith("-")), None)
        if script is None or rest[:1] == ["-c"]:
            return program
        return f"{program} {os.path.basename(script)}"
    sub = next((w for w in rest if not w.startswith("-")), None)
    if sub is not None and _SUBCOMMAND.match(sub) and "/" not in sub and "." not in sub:
        return f"{program} {sub}"
    return program


def _first_command(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    try:
        for token in lexer:
            if token and all(c in "();<>|&" for c in token):
                break
            words.append(token)
    except ValueError:  # an unclosed quote: the words up to it still name the program
        return command.split()[:3]
    return words


@dataclass(frozen=True)
class Candidate:
    """An attempt about to start, as the model sees it (before its history is added)."""

    plan: str
    step: str
    agent: str | None
    kind: str
    family: str | None
    risk_score: float | None
    reason_count: int
    attempt: int
    fan_in: int
    parallelism: int
    at: float


def candidate_of(row: TelemetryRow) -> Candidate:
    return Candidate(
        plan=row.plan,
        step=row.step,
        agent=row.agent,
        kind=row.kind,
        family=row.family,
        risk_score=row.risk_score,
        reason_count=len(row.risk_reasons),
        attempt=row.attempt,
        fan_in=row.fan_in,
        parallelism=row.parallelism,
        at=row.started_at,
    )


class History:
    """What had happened before a moment: failures in the last day by agent and by step, each
    agent's record so far, each step's recent successful durations.

    Rows must be added in the order they finished, and asked about at non-decreasing times
    (`derive` does both); a live predictor adds rows as they arrive and asks about now.
    """

    def __init__(self) -> None:
        self._agent_failures: dict[str, deque[float]] = {}
        self._step_failures: dict[tuple[str, str], deque[float]] = {}
        self._agent_record: dict[str, list[int]] = {}  # [attempts, failures]
        self._durations: dict[tuple[str, str], deque[float]] = {}
        # (family, agent) -> the (plan, step) that last finished an attempt of it
        self._latest_step: dict[tuple[str, str], tuple[str, str]] = {}
        self.latest_finish = 0.0

    def add(self, row: TelemetryRow) -> None:
        if row.outcome not in ("succeeded", "failed"):
            return  # a cancelled attempt says nothing about how likely a failure was
        self.latest_finish = max(self.latest_finish, row.finished_at)
        agent = row.agent or NO_AGENT
        record = self._agent_record.setdefault(agent, [0, 0])
        record[0] += 1
        key = (row.plan, row.step)
        if row.family is not None:
            self._latest_step[(row.family, agent)] = key
        if row.outcome == "failed":
            record[1] += 1
            self._agent_failures.setdefault(agent, deque()).append(row.finished_at)
            self._step_failures.setdefault(key, deque()).append(row.finished_at)
        else:
            kept = self._durations.setdefault(key, deque(maxlen=DURATIONS_KEPT))
            kept.append(row.duration_s)

    def agent_failure_rate(self, agent: str | None) -> float:
        """Failures over attempts so far, with one success and one failure assumed (so an
        agent never seen is 0.5, not 0 or undefined). This alone is the baseline model."""
        attempts, failures = self._agent_record.get(agent or NO_AGENT, (0, 0))
        return (failures + 1) / (attempts + 2)

    def history_of(self, c: Candidate) -> tuple[str, str] | None:
        """Whose step history the candidate is judged with: its own step's once that has
        finished an attempt; before that, the step that last finished an attempt of the same
        command family for the same agent (a plan's new step that runs `sh deploy.sh`, or a
        bare command, is as risky as the deploys before it); None when neither exists.
        Without the borrowing such a candidate looks like a step's very first attempt,
        which the model sees least of and judges worst."""
        own = (c.plan, c.step)
        if own in self._durations or own in self._step_failures:  # it finished an attempt
            return own
        if c.family is None:
            return None
        return self._latest_step.get((c.family, c.agent or NO_AGENT))

    def features(self, c: Candidate) -> dict[str, Any]:
        agent = c.agent or NO_AGENT
        key = self.history_of(c) or (c.plan, c.step)
        durations = self._durations.get(key)
        return {
            "agent": agent,
            "kind": c.kind,
            "family": c.family or "-",
            "risk_score": -1.0 if c.risk_score is None else float(c.risk_score),
            "reason_count": c.reason_count,
            "attempt": c.attempt,
            "fan_in": c.fan_in,
            "parallelism": c.parallelism,
            "hour": time.localtime(c.at).tm_hour,
            "agent_failures_24h": _recent(self._agent_failures.get(agent), c.at),
            "agent_failure_rate": self.agent_failure_rate(c.agent),
            "step_failures_24h": _recent(self._step_failures.get(key), c.at),
            "step_median_s": statistics.median(durations) if durations else -1.0,
        }


def _recent(times: deque[float] | None, at: float) -> int:
    if not times:
        return 0
    while times and times[0] < at - DAY:
        times.popleft()
    return len(times)


def derive(rows: Iterable[TelemetryRow]) -> Iterator[tuple[TelemetryRow, dict[str, Any]]]:
    """Each row (oldest start first) with its features, from the rows finished before it
    started. Rows must come sorted by `started_at` (the store returns them so)."""
    history = History()
    finishing: list[tuple[float, int, TelemetryRow]] = []
    for n, row in enumerate(rows):
        while finishing and finishing[0][0] <= row.started_at:
            history.add(heapq.heappop(finishing)[2])
        yield row, history.features(candidate_of(row))
        heapq.heappush(finishing, (row.finished_at, n, row))


def export_columns() -> Sequence[str]:
    return (
        "run_id",
        "step_id",
        "attempt",
        "plan",
        "step",
        "agent",
        "kind",
        "family",
        "risk_score",
        "risk_reasons",
        "reason_count",
        "predicted_failure",
        "fan_in",
        "parallelism",
        "hour",
        "agent_failures_24h",
        "agent_failure_rate",
        "step_failures_24h",
        "step_median_s",
        "started_at",
        "finished_at",
        "duration_s",
        "outcome",
        "failure_class",
        "cost_usd",
        "failed",
    )


def export_record(row: TelemetryRow, features: Mapping[str, Any]) -> dict[str, Any]:
    """One line of `agenthq telemetry export`: the row as stored, its features, the label."""
    return {
        "run_id": row.run_id,
        "step_id": row.step_id,
        "attempt": row.attempt,
        "plan": row.plan,
        "step": row.step,
        "agent": row.agent or "",
        "kind": row.kind,
        "family": row.family or "",
        "risk_score": row.risk_score,
        "risk_reasons": "; ".join(row.risk_reasons),
        "reason_count": features["reason_count"],
        "predicted_failure": row.predicted_failure,
        "fan_in": row.fan_in,
        "parallelism": row.parallelism,
        "hour": features["hour"],
        "agent_failures_24h": features["agent_failures_24h"],
        "agent_failure_rate": round(features["agent_failure_rate"], 6),
        "step_failures_24h": features["step_failures_24h"],
        "step_median_s": round(features["step_median_s"], 6),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "duration_s": round(row.duration_s, 6),
        "outcome": row.outcome,
        "failure_class": row.failure_class or "",
        "cost_usd": row.cost_usd,
        "failed": int(row.outcome == "failed"),
    }


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
