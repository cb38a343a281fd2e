"""The `secrets` gate: after a step ran, its output and its changes must not carry a credential.

A credential printed to stdout ends up in logs and the audit trail; one written into a file
ends up in a commit. The gate scans the step's stdout and stderr, and either the lines the step
added (when the engine passes a diff: a key that was already in a file is not this step's
doing) or the whole files it changed. Any finding refuses the step, naming where and what kind;
the value itself never appears in the reason or the details.

Files are read only inside the workspace: a changed path that resolves elsewhere (`../x`, an
absolute path, a symlink out) is not opened, only listed under `details["skipped"]`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from agenthq.gates.base import GateResult, Outcome, Phase, StepFacts
from agenthq.gates.diffs import parse_diff
from agenthq.gates.secrets_scan import Finding, read_text_file, scan_text

__all__ = ["SecretsGate"]

_STREAM_CHUNK_BYTES = 1024 * 1024
_CHUNK_OVERLAP_LINES = 64  # a private key block spans ~30 lines; scan it whole across chunks
_REASON_LIMIT = 10  # findings named in the reason; all of them are in the details


class SecretsGate:
    """Refuses a step whose output or changes contain a credential."""

    name: str = "secrets"
    phase: Phase = Phase.AFTER

    def check(self, facts: StepFacts) -> GateResult:
        findings: list[Finding] = []
        skipped: list[dict[str, str]] = []
        for label, path in _outputs(facts):
            findings.extend(_scan_stream(path, label))
        if facts.diff is not None:
            findings.extend(_scan_diff(facts.diff))
        else:
            findings.extend(_scan_changed_files(facts.workspace, facts.changed_files, skipped))
        details: dict[str, object] = {"findings": [f.as_dict() for f in findings]}
        if skipped:
            details["skipped"] = skipped
        if not findings:
            return GateResult(self.name, Outcome.PASS, "no secrets found", details=details)
        return GateResult(self.name, Outcome.REFUSE, _reason(findings), details=details)


def _reason(findings: Sequence[Finding]) -> str:
    """`secret found: stdout line 3 (GitHub Token); src/app.py:12 (AWS Access Key)`."""
    named = "; ".join(_where(finding) for finding in findings[:_REASON_LIMIT])
    more = len(findings) - _REASON_LIMIT
    return f"secret found: {named}" + (f" and {more} more" if more > 0 else "")


def _where(finding: Finding) -> str:
    if finding.file in ("stdout", "stderr"):
        return f"{finding.file} line {finding.line} ({finding.kind})"
    return f"{finding.file}:{finding.line} ({finding.kind})"


# ---- step output ---------------------------------------------------------------------------


def _outputs(facts: StepFacts) -> list[tuple[str, Path]]:
    """("stdout", path), ("stderr", path); one entry when both streams share a file."""
    outputs: list[tuple[str, Path]] = []
    if facts.stdout_path is not None:
        outputs.append(("stdout", facts.stdout_path))
    if facts.stderr_path is not None and facts.stderr_path != facts.stdout_path:
        outputs.append(("stderr", facts.stderr_path))
    return outputs


def _scan_stream(path: Path, label: str) -> list[Finding]:
    """Scan a step's output file, however large, a chunk of lines at a time.

    Output is scanned even when it holds binary noise: a token printed between escape
    sequences is still a leak.
    """
    found: set[Finding] = set()
    for first_line, text in _chunks(path):
        for finding in scan_text(text, filename=label):
            found.add(Finding(label, finding.line + first_line - 1, finding.kind))
    return sorted(found)


def _chunks(path: Path) -> Iterator[tuple[int, str]]:
    """(number of the first line, text) for consecutive chunks that overlap by a few lines."""
    try:
        handle = path.open("rb")
    except OSError:
        return
    with handle:
        carry: list[bytes] = []
        first_line = 1
        while True:
            block = handle.readlines(_STREAM_CHUNK_BYTES)
            if not block:
                break
            lines = carry + block
            yield first_line, b"".join(lines).decode("utf-8", errors="replace")
            carry = lines[-_CHUNK_OVERLAP_LINES:]
            first_line += len(lines) - len(carry)


# ---- changes --------------------------------------------------------------------------------


def _scan_diff(diff: str) -> list[Finding]:
    """Scan only the lines the diff adds, reported at their line numbers in the new file."""
    findings: list[Finding] = []
    for change in parse_diff(diff):
        if change.is_deleted or not change.added:
            continue
        numbers = [number for number, _text in change.added]
        text = "\n".join(text for _number, text in change.added)
        for finding in scan_text(text, filename=change.path):
            findings.append(Finding(change.path, numbers[finding.line - 1], finding.kind))
    return findings


def _scan_changed_files(
    workspace: Path, changed: Sequence[str], skipped: list[dict[str, str]]
) -> list[Finding]:
    """Scan each changed file that is a readable text file inside the workspace."""
    root = workspace.resolve()
    findings: list[Finding] = []
    for name in dict.fromkeys(changed):  # each file once, in the order given
        path = (root / name).resolve()
        if not path.is_relative_to(root):
            skipped.append({"file": name, "why": "resolves outside the workspace"})
            continue
        text = read_text_file(path)
        if text is not None:
            findings.extend(scan_text(text, filename=path.relative_to(root).as_posix()))
        elif path.is_file():
            skipped.append({"file": name, "why": "binary or larger than the scan limit"})
    return findings
