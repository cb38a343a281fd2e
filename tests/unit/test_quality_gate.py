"""The `quality` gate: which steps it judges, where it gets the diff, what it decides."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from agenthq.gates import quality_gate
from agenthq.gates.base import Gate, Outcome, Phase, StepFacts, run_gates
from agenthq.gates.quality_gate import QualityGate, workspace_reader

ORIGINAL = (
    "def area(w, h):\n"
    "    checked_w = max(w, 0)\n"
    "    checked_h = max(h, 0)\n"
    "    return checked_w * checked_h\n"
    "\n"
    "\n"
    "def perimeter(w, h):\n"
    "    return 2 * (w + h)\n"
)
GUTTED = "def area(w, h):\n    pass\n\n\n# ... existing code ...\n"
IMPROVED = ORIGINAL.replace("max(w, 0)", "max(int(w), 0)")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def make_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    for name, text in files.items():
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", "base")
    return root


def facts(workspace: Path, **kw: Any) -> StepFacts:
    return StepFacts(run_id="r1", step_id="s1", attempt=1, workspace=workspace, **kw)


def test_it_is_an_after_gate_named_quality() -> None:
    gate: Gate = QualityGate()
    assert gate.name == "quality"
    assert gate.phase is Phase.AFTER


def test_steps_that_change_no_code_pass(tmp_path: Path) -> None:
    result = QualityGate().check(facts(tmp_path, command="make test", diff="+# ..."))
    assert result.outcome is Outcome.PASS
    assert result.reason == "not a code-changing step"


def test_agent_step_with_placeholders_is_refused_and_quarantined(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"geo.py": ORIGINAL})
    (repo / "geo.py").write_text(GUTTED)

    result = QualityGate().check(facts(repo, agent="coder"))

    assert result.outcome is Outcome.REFUSE
    assert result.details["quarantine"] is True
    assert result.details["diff_source"] == "git diff"
    kinds = [(v["file"], v["line"], v["kind"]) for v in result.details["violations"]]
    assert kinds == [("geo.py", 2, "stub"), ("geo.py", 5, "placeholder")]
    assert "geo.py:2 stub: area: body replaced by a stub (pass)" in result.reason
    assert "geo.py:5 placeholder:" in result.reason


def test_the_step_diff_is_used_when_given(tmp_path: Path) -> None:
    """A declared-writes step with the engine's diff; the workspace need not be a repo."""
    (tmp_path / "new.go").write_text("package p\n\nfunc F() {\n")
    diff = (
        "diff --git a/new.go b/new.go\nnew file mode 100644\n--- /dev/null\n+++ b/new.go\n"
        "@@ -0,0 +1,3 @@\n+package p\n+\n+func F() {\n"
    )

    result = QualityGate().check(facts(tmp_path, writes=["new.go"], diff=diff))

    assert result.outcome is Outcome.REFUSE
    assert result.details["diff_source"] == "step diff"
    assert [v["kind"] for v in result.details["violations"]] == ["syntax"]


def test_a_clean_change_passes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"geo.py": ORIGINAL})
    (repo / "geo.py").write_text(IMPROVED)

    result = QualityGate().check(facts(repo, agent="coder"))

    assert result.outcome is Outcome.PASS
    assert result.details["violations"] == []
    assert result.details["files_checked"] == 1


def test_reason_lists_five_and_details_list_all(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {})
    (repo / "many.py").write_text("".join(f"# TODO: implement\nx{i} = {i}\n" for i in range(8)))

    result = QualityGate().check(facts(repo, agent="coder"))

    assert result.outcome is Outcome.REFUSE
    assert len(result.details["violations"]) == 8
    assert result.reason.startswith("8 code-quality problem(s): ")
    assert result.reason.count("many.py:") == 5
    assert result.reason.endswith("; and 3 more")


def test_only_the_files_the_step_changed_are_judged(tmp_path: Path) -> None:
    """Someone's uncommitted work elsewhere in the workspace is not this agent's doing."""
    repo = make_repo(tmp_path, {"geo.py": ORIGINAL, "other.py": ORIGINAL})
    (repo / "other.py").write_text(GUTTED)
    (repo / "geo.py").write_text(IMPROVED)

    result = QualityGate().check(facts(repo, agent="coder", changed_files=["./geo.py"]))

    assert result.outcome is Outcome.PASS


def test_without_git_or_diff_the_changed_files_are_asked_about(tmp_path: Path) -> None:
    """Whole files may hold older placeholders: a finding is a question, not a refusal."""
    (tmp_path / "geo.py").write_text(GUTTED)

    result = QualityGate().check(facts(tmp_path, agent="coder", changed_files=["geo.py"]))

    assert result.outcome is Outcome.ASK
    assert "quarantine" not in result.details
    assert result.details["diff_source"] == "whole files"


def test_without_git_diff_or_changed_files_there_is_nothing_to_check(tmp_path: Path) -> None:
    result = QualityGate().check(facts(tmp_path, agent="coder"))
    assert result.outcome is Outcome.PASS
    assert "nothing to check" in result.reason


def test_git_failing_means_ask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path, {"geo.py": ORIGINAL})
    monkeypatch.setattr(quality_gate, "workspace_diff", lambda *_a, **_k: None)

    result = QualityGate().check(facts(repo, agent="coder"))

    assert result.outcome is Outcome.ASK
    assert "git diff" in result.reason


def test_a_diff_cannot_make_the_gate_read_outside_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (tmp_path / "secret.py").write_text("def broken(:\n")
    (workspace / "link.py").symlink_to(tmp_path / "secret.py")
    diff = "".join(
        f"diff --git a/{p} b/{p}\n--- a/{p}\n+++ b/{p}\n@@ -1 +1 @@\n-def ok(): pass\n+x = 1\n"
        for p in ("../secret.py", "link.py", str(tmp_path / "secret.py"))
    )

    result = QualityGate().check(facts(workspace, agent="coder", diff=diff))

    assert result.outcome is Outcome.PASS  # the broken file was never read, so never parsed


def test_workspace_reader_refuses_what_it_must_not_read(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01")
    (tmp_path / "big.py").write_text("x = 1\n" * 100)
    (tmp_path / "dir").mkdir()
    read = workspace_reader(tmp_path, max_bytes=200)

    assert read("ok.py") == "x = 1\n"
    assert read("./dir/../ok.py") == "x = 1\n"
    assert read("blob.bin") is None
    assert read("big.py") is None
    assert read("dir") is None
    assert read("missing.py") is None
    assert read("nul\0.py") is None
    assert read("/etc/passwd") is None


def test_runs_under_run_gates(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"geo.py": ORIGINAL})
    (repo / "geo.py").write_text(GUTTED)

    [result] = run_gates([QualityGate()], facts(repo, agent="coder"))

    assert result.gate == "quality"
    assert result.outcome is Outcome.REFUSE
    assert result.duration_ms > 0
