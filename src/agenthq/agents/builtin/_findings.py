"""What the checking agents report, and the one rule that decides whether a step fails.

Severities are ordered info < low < medium < high. A threshold names the lowest severity that
fails the step; `none` (or no threshold) only reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from agenthq.agents.builtin._workspace import Context, log
from agenthq.errors import FindingsError, InputError

SEVERITIES = ("info", "low", "medium", "high")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
MAX_LISTED = 500  # outputs are stored with the run: counts cover everything, the list is capped


@dataclass(frozen=True, order=True)
class Finding:
    """One problem at file:line. `message` never holds a secret's value."""

    file: str
    line: int
    tool: str
    rule: str
    severity: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity.upper():<6} {self.file}:{self.line}  [{self.tool} {self.rule}] {self.message}"


def threshold(value: str | None, *, name: str) -> str | None:
    """The validated threshold (`low`, `medium`, `high`), or None for report-only."""
    if value is None or str(value).strip().lower() in ("", "none", "off"):
        return None
    level = str(value).strip().lower()
    if level not in _RANK or level == "info":
        raise InputError(f"{name} must be one of low, medium, high or none, got {value!r}")
    return level


def at_or_above(findings: Iterable[Finding], level: str | None) -> list[Finding]:
    if level is None:
        return []
    return [f for f in findings if _RANK[f.severity] >= _RANK[level]]


def counts(findings: Sequence[Finding]) -> dict[str, int]:
    by_severity = Counter(f.severity for f in findings)
    return {name: by_severity.get(name, 0) for name in reversed(SEVERITIES)}


def report(
    ctx: Context | None, agent: str, findings: Sequence[Finding], level: str | None
) -> dict[str, Any]:
    """Log every finding, then return the common outputs or raise FindingsError.

    Logging comes first so that a failed step's log still shows what failed it.
    """
    ordered = sorted(findings, key=lambda f: (-_RANK[f.severity], f.file, f.line, f.rule))
    for finding in ordered:
        log(ctx, str(finding))
    tally = counts(ordered)
    over = at_or_above(ordered, level)
    summary = ", ".join(f"{n} {name}" for name, n in tally.items() if n) or "nothing"
    log(ctx, f"{agent}: {len(ordered)} finding(s): {summary}")
    if over:
        raise FindingsError(
            f"{agent}: {len(over)} finding(s) at or above {level!r} "
            f"(first: {over[0].file}:{over[0].line} {over[0].rule}); see the step's log"
        )
    return {
        "findings": [f.as_dict() for f in ordered[:MAX_LISTED]],
        "truncated": len(ordered) > MAX_LISTED,
        "counts": tally,
        "total": len(ordered),
        "failed": {"threshold": level, "at_or_above": len(over), "failed": False},
    }
