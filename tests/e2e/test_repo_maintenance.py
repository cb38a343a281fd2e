"""examples/repo-maintenance.yaml as a new user runs it: three built-in agents in parallel,
the patch waiting for a person, the report after it — through the real binary."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.e2e.conftest import Cli

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_the_repo_maintenance_demo_waits_for_the_patch_and_then_reports(cli: Cli) -> None:
    shutil.copytree(EXAMPLES / "sample-repo", cli.project / "examples" / "sample-repo")
    shutil.copytree(EXAMPLES / "patches", cli.project / "examples" / "patches")
    shutil.copy(EXAMPLES / "repo-maintenance.yaml", cli.project / "examples")
    waiting = cli("run", "examples/repo-maintenance.yaml", "--no-wait", "--quiet")
    assert waiting.code == 3, waiting.err
    (approval,) = cli("approvals", "--json", check=True).json()
    assert approval["step_id"] == "patch"
    assert "approval_required" in " ".join(approval["reasons"])
    assert cli("approve", "last", "patch", "--note", "looks right").code == 0
    done = cli("resume", "last", "--quiet")
    assert done.code == 0, done.err
    status = cli("status", "last", "--json", check=True).json()
    steps = {s["id"]: s for s in status["steps"]}
    assert {s["state"] for s in steps.values()} == {"succeeded"}
    assert steps["review"]["outputs"]["counts"]["high"] == 2  # eval and SQL by concatenation
    assert steps["compliance"]["outputs"]["license"] == "MIT"
    assert steps["patch"]["outputs"]["files"] == ["NOTICE.md"]
    repo = cli.project / ".agenthq" / "demo" / "sample-repo"
    report = (repo / "MAINTENANCE.md").read_text()
    assert "review 6 (2 high), licence MIT, patch succeeded" in report
    assert (repo / "NOTICE.md").exists()
    assert not (cli.project / "examples" / "sample-repo" / "NOTICE.md").exists()  # a copy
