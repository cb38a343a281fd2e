"""The `quality` gate: after an agent changed code, refuse placeholder code and quarantine it.

An agent that answers "done" with `# ... existing code ...` where a function used to be, or a
body swapped for `pass`, or a file that no longer parses, has not done the work; letting the
result stand would ship the damage. This gate reads the step's diff (`facts.diff`, or the
workspace's own `git diff` when the engine had none), runs `quality.check_changes` and turns
violations into REFUSE with `details["quarantine"] = True`, which the engine acts on.

What it will not do: read outside the workspace (paths from a diff are resolved and must stay
inside it, so `../` or a symlink cannot make the gate read elsewhere), or blame the agent for
what it cannot attribute. Without a diff and outside git it checks the files the step reports
as changed, whole, and a finding there is a question (ASK), not a refusal: it may predate the
step. When git itself fails the gate asks too: it could not look.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Any

from agenthq.gates.base import GateResult, Outcome, Phase, StepFacts
from agenthq.gates.diffs import FileChange, is_git_repo, parse_diff, split_lines, workspace_diff
from agenthq.gates.quality import Violation, check_changes

__all__ = ["MAX_FILE_BYTES", "QualityGate", "workspace_reader"]

# Files bigger than this are not read: a generated bundle is not where an agent elides code.
MAX_FILE_BYTES = 2 * 1024 * 1024
_LISTED = 5  # violations spelled out in the reason; all of them are in details


class QualityGate:
    """Refuses an agent's code change that contains placeholders, gutted bodies or broken
    syntax. Steps that neither run an agent nor declare writes pass untouched."""

    name: str = "quality"
    phase: Phase = Phase.AFTER

    def __init__(self, *, git_timeout_s: float = 4.0, max_file_bytes: int = MAX_FILE_BYTES) -> None:
        # run_gates gives a gate 5 s by default; git must answer well within that.
        self.git_timeout_s = git_timeout_s
        self.max_file_bytes = max_file_bytes

    def check(self, facts: StepFacts) -> GateResult:
        """Judge the step's diff: the engine's, else git's, else the changed files whole."""
        if not facts.agent and not facts.writes:
            return GateResult(self.name, Outcome.PASS, "not a code-changing step")
        read = workspace_reader(facts.workspace, self.max_file_bytes)
        if facts.diff is not None:
            return self._judge(parse_diff(facts.diff), read, "step diff")
        if is_git_repo(facts.workspace, timeout_s=self.git_timeout_s):
            diff = workspace_diff(facts.workspace, timeout_s=self.git_timeout_s)
            if diff is None:
                return GateResult(self.name, Outcome.ASK, "could not read the workspace's git diff")
            return self._judge(_only(parse_diff(diff), facts.changed_files), read, "git diff")
        if not facts.changed_files:
            return GateResult(
                self.name, Outcome.PASS, "no diff and no changed files reported: nothing to check"
            )
        whole = [_whole_file(path, read) for path in facts.changed_files]
        return self._judge([c for c in whole if c is not None], read, "whole files")

    def _judge(
        self, changes: Sequence[FileChange], read: Callable[[str], str | None], source: str
    ) -> GateResult:
        """REFUSE and quarantine on violations the diff attributes to the step; ASK when the
        source is whole files (the violations may be older than the step)."""
        violations = check_changes(changes, read_file=read)
        details: dict[str, Any] = {
            "violations": [asdict(v) for v in violations],
            "files_checked": len(changes),
            "diff_source": source,
        }
        if not violations:
            return GateResult(
                self.name, Outcome.PASS, f"{len(changes)} changed file(s) clean", 0.0, details
            )
        if source == "whole files":  # cannot tell the step's lines from older ones
            return GateResult(
                self.name, Outcome.ASK, _reason(violations), float(len(violations)), details
            )
        details["quarantine"] = True
        return GateResult(
            self.name, Outcome.REFUSE, _reason(violations), float(len(violations)), details
        )


def _reason(violations: Sequence[Violation]) -> str:
    shown = "; ".join(f"{v.file}:{v.line} {v.kind}: {v.message}" for v in violations[:_LISTED])
    more = len(violations) - _LISTED
    tail = f"; and {more} more" if more > 0 else ""
    return f"{len(violations)} code-quality problem(s): {shown}{tail}"


def _normal(path: str) -> str:
    return str(PurePosixPath(path.replace("\\", "/")))


def _only(changes: Sequence[FileChange], paths: Sequence[str]) -> list[FileChange]:
    """Keep the files the step reports as changed: a workspace diff also shows other people's
    uncommitted work, which is not this agent's to answer for. No report means keep all."""
    if not paths:
        return list(changes)
    wanted = {_normal(p) for p in paths}
    return [c for c in changes if c.path in wanted or (c.old_path or "") in wanted]


def _whole_file(path: str, read: Callable[[str], str | None]) -> FileChange | None:
    """A changed file seen without a diff: every line counts as added."""
    text = read(path)
    if text is None:
        return None
    added = tuple(enumerate(split_lines(text), 1))
    return FileChange(path=_normal(path), old_path=None, added=added, is_new=True)


def workspace_reader(
    workspace: Path, max_bytes: int = MAX_FILE_BYTES
) -> Callable[[str], str | None]:
    """A `read_file` for `check_changes` that only reads regular text files inside `workspace`
    (after resolving symlinks and `..`), up to `max_bytes`; anything else reads as None."""
    root = workspace.resolve()

    def read(path: str) -> str | None:
        if "\0" in path:
            return None
        try:
            target = (root / path).resolve()
            if not target.is_relative_to(root) or not target.is_file():
                return None
            if target.stat().st_size > max_bytes:
                return None
            data = target.read_bytes()
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop on older Pythons
            return None
        if b"\0" in data[:8000]:
            return None
        return data.decode("utf-8", "replace")

    return read
