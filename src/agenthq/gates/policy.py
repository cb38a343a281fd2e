"""A project's own rules on top of the risk score: allow, ask and deny patterns, and thresholds.

Why patterns match *parsed* simple commands and never raw text: a substring rule cannot tell
`git push --force` from `echo "git push --force"`, and `pytest *` as a substring would allow
`pytest; rm -rf ~`. A pattern is shell words (quotes allowed), each a shell-style glob for one
word; a trailing lone `*` also matches no words at all.

How rules combine, safest first:

1. any simple command anywhere in the line (pipes, substitutions, `bash -c` bodies) matching
   a `deny` pattern → refuse;
2. a score at or above `refuse_min` → refuse, whatever `allow` says (a rule cannot wave through
   `rm -rf ~` because it happens to match `rm *`);
3. any simple command matching an `ask` pattern → ask;
4. `allow` lifts an `ask` to `run` only when *every* simple command matches an allow pattern
   and the line parsed cleanly;
5. otherwise the thresholds decide (`verdict_for`).

`deny` and `ask` patterns match their words in order but may skip words in between
(`git push --force*` catches `git push origin main --force`), because for them a wider match is
the safe side. `allow` patterns match a strict prefix, because for allow a narrower match is.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from agenthq.errors import ConfigError

if TYPE_CHECKING:  # the parser and scorer load on first decision, not with the settings
    from agenthq.gates.risk import RiskAssessment, Verdict
    from agenthq.gates.shell_syntax import SimpleCommand

__all__ = ["Policy", "PolicyDecision", "decide", "pattern_matches"]

_LIST_KEYS = ("allow", "ask", "deny")
_INT_KEYS = ("auto_max", "refuse_min")


@dataclass(frozen=True)
class Policy:
    """Patterns and thresholds; the defaults ask about anything above a read-only score."""

    allow: tuple[str, ...] = ()
    ask: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    auto_max: int = 20
    refuse_min: int = 80

    @classmethod
    def from_mapping(cls, data: object, where: str) -> Policy:
        """Build from a `[policy]` table; `where` names the source file in error messages."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: [policy] must be a table, got {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in (*_LIST_KEYS, *_INT_KEYS))
        if unknown:
            expected = ", ".join((*_LIST_KEYS, *_INT_KEYS))
            raise ConfigError(f"{where}: unknown key policy.{unknown[0]} (expected {expected})")
        lists = {key: _patterns(data.get(key, ()), key, where) for key in _LIST_KEYS}
        auto_max = _threshold(data.get("auto_max", cls.auto_max), "auto_max", where)
        refuse_min = _threshold(data.get("refuse_min", cls.refuse_min), "refuse_min", where)
        if auto_max >= refuse_min:
            raise ConfigError(
                f"{where}: policy.auto_max ({auto_max}) must be below "
                f"policy.refuse_min ({refuse_min})"
            )
        return cls(lists["allow"], lists["ask"], lists["deny"], auto_max, refuse_min)


@dataclass(frozen=True)
class PolicyDecision:
    """What to do with a command, why, and which rule (if any) decided it."""

    verdict: Verdict
    reason: str
    matched_rule: str | None = None


def _patterns(value: object, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(
            f"{where}: policy.{key} must be a list of strings, got {type(value).__name__}"
        )
    patterns: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{where}: policy.{key}[{index}] must be a non-empty string")
        try:
            _compile(item)
        except ValueError as exc:
            raise ConfigError(f"{where}: policy.{key}[{index}] {item!r}: {exc}") from None
        patterns.append(item)
    return tuple(patterns)


def _threshold(value: object, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: policy.{key} must be an integer, got {type(value).__name__}")
    if not 0 <= value <= 101:
        raise ConfigError(f"{where}: policy.{key} must be between 0 and 101, got {value}")
    return value


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> tuple[str, ...]:
    """Split a pattern into words the way the shell would (quotes group words)."""
    words = tuple(shlex.split(pattern))
    if not words:
        raise ValueError("empty pattern")
    return words


def pattern_matches(pattern: str, command: SimpleCommand, *, skipping: bool = False) -> bool:
    """Does `pattern` match `command`? The first word matches the program's base name.

    With `skipping`, later pattern words may skip command words (deny/ask); without, they
    must match a prefix of the command (allow).
    """
    if not command.words:
        return False
    words = _compile(pattern)
    if not _first_word_matches(words[0], command.words[0], case_insensitive=skipping):
        return False
    rest = words[1:]
    if rest and rest[-1] == "*":
        rest = rest[:-1]
    args = command.words[1:]
    if skipping:
        return _subsequence(rest, args)
    return len(args) >= len(rest) and all(
        fnmatch.fnmatchcase(a, p) for p, a in zip(rest, args, strict=False)
    )


def _first_word_matches(pattern: str, word: str, *, case_insensitive: bool) -> bool:
    if "/" in pattern:
        return fnmatch.fnmatchcase(word, pattern)
    name = word.rsplit("/", 1)[-1]
    if case_insensitive:
        return fnmatch.fnmatchcase(name.lower(), pattern.lower())
    return fnmatch.fnmatchcase(name, pattern)


def _subsequence(patterns: tuple[str, ...], args: tuple[str, ...]) -> bool:
    position = 0
    for pattern in patterns:
        while position < len(args) and not fnmatch.fnmatchcase(args[position], pattern):
            position += 1
        if position == len(args):
            return False
        position += 1
    return True


def _first_match(
    patterns: Iterable[str], commands: Iterable[SimpleCommand], *, skipping: bool
) -> str | None:
    for command in commands:
        for pattern in patterns:
            if pattern_matches(pattern, command, skipping=skipping):
                return pattern
    return None


def _must_be_allowed(command: SimpleCommand) -> bool:
    """Commands an allow rule has to cover: all but transparent wrappers (`timeout 60 pytest`
    is covered by allowing `pytest *`) and bare assignments. Privilege wrappers and anything
    running code only known at run time always need their own rule."""
    if not command.words:
        return bool(command.redirects)
    dynamic = bool(command.flags & {"dynamic-code", "dynamic-name"})
    from agenthq.gates.shell_syntax import PRIVILEGE_WRAPPERS, command_name

    privileged = command_name(command.words[0]) in PRIVILEGE_WRAPPERS
    return dynamic or privileged or not command.wraps


def _allowed_by(patterns: tuple[str, ...], assessment: RiskAssessment) -> str | None:
    if not patterns or not assessment.parse_ok:
        return None
    needed = [c for c in assessment.commands if _must_be_allowed(c)]
    if not needed:
        return None
    matched: list[str] = []
    for command in needed:
        rule = _first_match(patterns, (command,), skipping=False)
        if rule is None:
            return None
        matched.append(rule)
    return matched[0]


def decide(policy: Policy, assessment: RiskAssessment) -> PolicyDecision:
    """Apply deny > refuse threshold > ask > allow > thresholds (see the module docstring)."""
    why = "; ".join(assessment.reasons)
    score = assessment.score
    denied = _first_match(policy.deny, assessment.commands, skipping=True)
    if denied is not None:
        return PolicyDecision("refuse", f"matches deny rule {denied!r}; {why}", denied)
    from agenthq.gates.risk import verdict_for

    base = verdict_for(score, auto_max=policy.auto_max, refuse_min=policy.refuse_min)
    if base == "refuse":
        return PolicyDecision("refuse", f"risk {score}: {why}")
    asked = _first_match(policy.ask, assessment.commands, skipping=True)
    if asked is not None:
        return PolicyDecision("ask", f"matches ask rule {asked!r}; {why}", asked)
    allowed = _allowed_by(policy.allow, assessment)
    if allowed is not None:
        return PolicyDecision("run", f"allowed by rule {allowed!r} (risk {score}: {why})", allowed)
    return PolicyDecision(base, f"risk {score}: {why}")
