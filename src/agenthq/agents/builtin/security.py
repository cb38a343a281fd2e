"""`security-scanner`: secrets (detect-secrets) and Python security issues (bandit) over a path.

Findings name the file, line and kind of secret, never its value. The step fails when a
finding is at or above `severity` (default high: a leaked credential, bandit's high-severity
issues), after every finding was logged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agenthq.agents.builtin._findings import Finding, report, threshold
from agenthq.agents.builtin._workspace import (
    Context,
    files_under,
    inside,
    log,
    relative,
    workspace_of,
)
from agenthq.errors import AgentTaskError

TOOL_TIMEOUT = 600.0
_BANDIT_SEVERITY = {"LOW": "low", "MEDIUM": "medium", "HIGH": "high"}


def scan(
    path: str = ".",
    *,
    severity: str | None = "high",
    exclude: Sequence[str] = (),
    secrets: bool = True,
    python: bool = True,
    ctx: Context | None = None,
) -> dict[str, Any]:
    """Scan `path` (inside the workspace); outputs `findings`, `counts`, `total`."""
    level = threshold(severity, name="severity")
    root = inside(ctx, path)
    workspace = workspace_of(ctx)
    files = files_under(root, workspace, exclude=exclude)
    findings: list[Finding] = []
    if secrets:
        findings += _secrets(files, workspace)
    if python:
        py_files = [f for f in files if f.suffix == ".py"]
        if py_files:
            findings += _bandit([str(f) for f in py_files], workspace)
    log(ctx, f"security-scanner: {len(files)} file(s) under {relative(root, workspace)}")
    return report(ctx, "security-scanner", findings, level)


def _secrets(files: Sequence[Path], workspace: Path) -> list[Finding]:
    """detect-secrets in a process of its own: its settings are global to a process, and the
    engine's secrets gate may be using them in another thread at this very moment."""
    if not files:
        return []
    # It names files relative to its working directory: run it in the workspace.
    argv = [sys.executable, "-m", "detect_secrets", "scan", *map(str, files)]
    data = _tool_json(argv, "detect-secrets", cwd=workspace)
    found: list[Finding] = []
    for filename, secrets in (data.get("results") or {}).items():
        for secret in secrets:
            kind = str(secret.get("type", "secret"))
            found.append(
                Finding(
                    file=relative((workspace / filename).resolve(), workspace),
                    line=int(secret.get("line_number") or 0),
                    tool="detect-secrets",
                    rule=kind,
                    severity="high",
                    message=f"possible {kind.lower()} (value not shown)",
                )
            )
    return found


def _tool_json(argv: list[str], tool: str, cwd: Path | None = None) -> dict[str, Any]:
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise AgentTaskError(f"{tool} took longer than {TOOL_TIMEOUT:g}s") from None
    if "No module named" in done.stderr:
        raise AgentTaskError(
            f"{tool} is not installed; `pip install 'agenthq[agents]'` adds the analysers"
        )
    try:
        data = json.loads(done.stdout or "{}")
    except ValueError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise AgentTaskError(f"{tool} failed: {last}") from None
    if not isinstance(data, dict):
        raise AgentTaskError(f"{tool} printed something other than a JSON object")
    return data


def _bandit(paths: list[str], workspace: Path) -> list[Finding]:
    data = _tool_json([sys.executable, "-m", "bandit", "-f", "json", "-q", *paths], "bandit")
    found = []
    for issue in data.get("results", []):
        found.append(
            Finding(
                file=relative(Path(issue["filename"]).resolve(), workspace),
                line=int(issue.get("line_number") or 0),
                tool="bandit",
                rule=f"{issue.get('test_id')} {issue.get('test_name')}",
                severity=_BANDIT_SEVERITY.get(str(issue.get("issue_severity")), "low"),
                message=str(issue.get("issue_text", "")).strip(),
            )
        )
    return found
