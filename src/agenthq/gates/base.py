"""The gate seam: small named checks that decide whether a step may run, or may stand.

A gate looks at `StepFacts` (what the step is about to do, or what it did) and returns a
`GateResult`. Gates are policies: they return decisions and never act; the engine applies
them. `run_gates` is the only place gates are called, and it fails closed: a gate that raises
or overruns its time budget yields `ask`, so a bug in a gate can delay a step but never wave a
dangerous one through.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from agenthq.records import record


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    ASK = "ask"  # a person must decide
    REFUSE = "refuse"  # the step fails with failure class `gate`
    RETRY = "retry"  # not now; try again later (a breaker open, a budget refilling)


# When several gates answer, the most severe answer wins.
SEVERITY = {Outcome.PASS: 0, Outcome.RETRY: 1, Outcome.ASK: 2, Outcome.REFUSE: 3}


class Phase(StrEnum):
    BEFORE = "before"  # before the step runs: may it start?
    AFTER = "after"  # after it ran: may its result stand?


@record
class GateResult:
    gate: str
    outcome: Outcome
    reason: str
    score: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0


@record
class StepFacts:
    """Everything a gate may look at. Built by the engine; gates never query the store."""

    run_id: str
    step_id: str
    attempt: int
    workspace: Path
    command: str | None = None  # a shell step's rendered command
    target: str | None = None  # a python step's `module:function`
    agent: str | None = None
    writes: Sequence[str] = ()
    approval_required: bool = False  # the step (or its agent) declared `risk: approval_required`
    approval_source: str = "the step declared"  # or "agent NAME has": for the reason text
    # For the failure model (ml/): where the step sits and how busy the run is.
    plan: str = ""
    step: str = ""  # the id in the plan (`shard` for `shard[2]`)
    kind: str = "shell"  # shell | python | agent
    fan_in: int = 0
    parallelism: int = 1  # how many of the run's attempts run at once if it starts
    # After the step ran:
    stdout_path: Path | None = None
    stderr_path: Path | None = None
    changed_files: Sequence[str] = ()  # workspace-relative paths the step changed
    diff: str | None = None  # unified diff of its changes, when the workspace is a git repo
    usage: Mapping[str, float] = field(default_factory=dict)


class Gate(Protocol):
    """A named check. `check` must be fast and pure apart from reading files it is shown."""

    name: str
    phase: Phase

    def check(self, facts: StepFacts) -> GateResult: ...


def run_gates(
    gates: Sequence[Gate], facts: StepFacts, *, budget_s: float = 5.0
) -> list[GateResult]:
    """Run every gate of one phase in order. A crash or an overrun means `ask`, never `pass`."""
    results: list[GateResult] = []
    for gate in gates:
        started = time.perf_counter()
        try:
            result = gate.check(facts)
        except Exception as exc:  # fail closed: any gate bug becomes a question for a person
            result = GateResult(
                gate.name,
                Outcome.ASK,
                f"gate {gate.name!r} failed ({type(exc).__name__}: {exc})",
                details={"gate_error": True},
            )
        elapsed = time.perf_counter() - started
        if elapsed > budget_s and result.outcome is Outcome.PASS:
            result = GateResult(
                gate.name,
                Outcome.ASK,
                f"gate {gate.name!r} took {elapsed:.1f}s (limit {budget_s:g}s)",
                details={"gate_error": True},
            )
        results.append(
            GateResult(
                result.gate,
                result.outcome,
                result.reason,
                result.score,
                result.details,
                round(elapsed * 1000, 3),
            )
        )
    return results


def verdict(results: Sequence[GateResult]) -> Outcome:
    """The most severe outcome among `results` (PASS when there are none)."""
    return max((r.outcome for r in results), key=SEVERITY.__getitem__, default=Outcome.PASS)
