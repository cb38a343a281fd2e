"""Policy suggestions from what people decided: allow what is always approved, deny what is
always rejected — as patterns a person reviews and applies (`agenthq policy suggest`).

A command line is the unit people approved, but policy patterns match *simple* commands (see
policy.py), so a suggestion for `make build && make test` carries one pattern per simple
command, each its exact words with glob characters escaped: an allow rule must never let
through more than people saw. A deny suggestion names only the simple commands of a rejected
line that never appeared in an approved one (`cd repo && rm -rf build` denies `rm -rf build`,
not `cd repo`). Patterns the policy already has are not suggested again. Lines that did not
parse cleanly or hold run-time expansions are left out: no exact pattern describes them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agenthq.gates.policy import Policy
from agenthq.gates.shell_syntax import parse
from agenthq.store.api import ApprovalKind, ApprovalRecord, ApprovalState

__all__ = ["Suggestion", "suggest"]

_GLOB = re.compile(r"([*?\[\]])")
# Decisions no person made — an SLA expired (engine/approvals.py), a run was cancelled — say
# nothing about the command.
_MACHINE_DECIDERS = frozenset({"timeout", "agenthq"})


@dataclass(frozen=True)
class Suggestion:
    rule: str  # allow | deny
    patterns: tuple[str, ...]
    command: str  # the command line people decided about
    approved: int
    rejected: int

    @property
    def note(self) -> str:
        """The comment written beside the rule: counts, and the line when it differs."""
        if self.rule == "allow":
            counts = f"approved {self.approved}x, never rejected"
        else:
            counts = f"rejected {self.rejected}x, never approved"
        return counts if self.patterns == (self.command,) else f"{counts}: {self.command}"


def suggest(
    approvals: Iterable[ApprovalRecord],
    policy: Policy,
    *,
    min_approved: int = 3,
    min_rejected: int = 2,
) -> list[Suggestion]:
    """Suggestions, most-decided first."""
    counts: dict[str, list[int]] = {}
    for record in approvals:
        if record.kind is not ApprovalKind.GATE or not record.command:
            continue
        if record.state is ApprovalState.PENDING:
            continue
        if record.decided_by in _MACHINE_DECIDERS:
            continue
        line = " ".join(record.command.split())
        tally = counts.setdefault(line, [0, 0])
        tally[0 if record.state is ApprovalState.APPROVED else 1] += 1
    simple: dict[str, tuple[tuple[str, ...], ...] | None] = {line: _simple(line) for line in counts}
    approved_words = {
        words
        for line, (approved, _) in counts.items()
        if approved and simple[line] is not None
        for words in simple[line] or ()
    }
    existing = {" ".join(p.split()) for p in (*policy.allow, *policy.deny)}
    out: list[Suggestion] = []
    for line, (approved, rejected) in counts.items():
        commands = simple[line]
        if commands is None:
            continue
        if approved >= min_approved and rejected == 0:
            patterns = _new(commands, existing)
            if patterns:
                out.append(Suggestion("allow", patterns, line, approved, rejected))
        elif rejected >= min_rejected and approved == 0:
            patterns = _new([w for w in commands if w not in approved_words], existing)
            if patterns:
                out.append(Suggestion("deny", patterns, line, approved, rejected))
    out.sort(key=lambda s: (-(s.approved + s.rejected), s.rule, s.command))
    return out


def _simple(line: str) -> tuple[tuple[str, ...], ...] | None:
    parsed = parse(line)
    if not parsed.parse_ok or parsed.dynamic or not parsed.commands:
        return None
    if any(c.dynamic for c in parsed.commands):
        return None
    return tuple(c.words for c in parsed.commands if c.words)


def _new(commands: Sequence[tuple[str, ...]], existing: set[str]) -> tuple[str, ...]:
    patterns: list[str] = []
    for words in commands:
        pattern = " ".join(shlex.quote(_GLOB.sub(r"[\1]", w)) for w in words)
        if pattern not in existing and pattern not in patterns:
            patterns.append(pattern)
    return tuple(patterns)
