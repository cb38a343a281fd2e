"""The `secrets` gate on real files: step output, changed files, workspace confinement and real
`git diff` output from throw-away repositories.

Credentials are assembled at test time from parts and random characters; assertions about
leaks compute a plain bool first, so a failure never prints a value.
"""

from __future__ import annotations

import json
import random
import string
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agenthq.gates.base import GateResult, Outcome, Phase, StepFacts, run_gates
from agenthq.gates.secrets_gate import SecretsGate

ALNUM = string.ascii_letters + string.digits
_MADE_UP = ("test", "fake", "xxx", "foo", "bar", "demo", "mock", "here", "dummy", "sample")


def rand(length: int, alphabet: str = ALNUM, *, seed: int = 0) -> str:
    rng = random.Random(f"{seed}:{length}")
    while True:
        value = "".join(rng.choice(alphabet) for _ in range(length))
        if not any(word in value.lower() for word in _MADE_UP):
            return value


GITHUB = "gh" + "p_" + rand(36, seed=1)
AWS = "AK" + "IA" + rand(16, string.ascii_uppercase + string.digits, seed=2)


def facts(workspace: Path, **kwargs: Any) -> StepFacts:
    return StepFacts(run_id="run-1", step_id="build", attempt=1, workspace=workspace, **kwargs)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def lines(count: int, secret_at: int, secret: str) -> str:
    return "".join(
        (f"token = '{secret}'\n" if n == secret_at else f"line {n}\n") for n in range(1, count + 1)
    )


def leaked(result: GateResult, *values: str) -> bool:
    shown = result.reason + json.dumps(dict(result.details))
    return any(value in shown for value in values)


# ---- outcome and wording --------------------------------------------------------------------


def test_gate_identity() -> None:
    gate = SecretsGate()
    assert (gate.name, gate.phase) == ("secrets", Phase.AFTER)


def test_clean_output_and_files_pass(tmp_path: Path) -> None:
    out = write(tmp_path / "out.log", "building...\ndone in 2.1s\n")
    write(tmp_path / "src" / "app.py", "print('hello')\n")
    result = SecretsGate().check(facts(tmp_path, stdout_path=out, changed_files=["src/app.py"]))
    assert result.outcome is Outcome.PASS
    assert result.details == {"findings": []}


def test_secret_in_stdout_and_in_a_changed_file(tmp_path: Path) -> None:
    out = write(tmp_path / ".out" / "stdout.log", f"cloning\nauth ok\nusing {GITHUB}\n")
    write(tmp_path / "src" / "app.py", "\n" * 11 + f'AWS_KEY_ID = "{AWS}"\n')
    result = SecretsGate().check(facts(tmp_path, stdout_path=out, changed_files=["src/app.py"]))

    assert result.outcome is Outcome.REFUSE
    assert result.reason == (
        "secret found: stdout line 3 (GitHub Token); src/app.py:12 (AWS Access Key)"
    )
    assert result.details == {
        "findings": [
            {"file": "stdout", "line": 3, "kind": "GitHub Token"},
            {"file": "src/app.py", "line": 12, "kind": "AWS Access Key"},
        ]
    }
    assert not leaked(result, GITHUB, AWS)


def test_stderr_is_scanned_too(tmp_path: Path) -> None:
    err = write(tmp_path / "stderr.log", f"warning: DB_PASSWORD={rand(12, seed=3)}#1 in env\n")
    result = SecretsGate().check(facts(tmp_path, stderr_path=err))
    assert result.reason == "secret found: stderr line 1 (Secret Keyword)"


def test_a_shared_output_file_is_scanned_once(tmp_path: Path) -> None:
    out = write(tmp_path / "combined.log", f"{GITHUB}\n")
    result = SecretsGate().check(facts(tmp_path, stdout_path=out, stderr_path=out))
    assert result.reason == "secret found: stdout line 1 (GitHub Token)"


def test_a_long_list_of_findings_is_summarised(tmp_path: Path) -> None:
    out = write(tmp_path / "out.log", "".join(f"{GITHUB}\n" for _ in range(13)))
    result = SecretsGate().check(facts(tmp_path, stdout_path=out))
    assert result.reason.endswith("stdout line 10 (GitHub Token) and 3 more")
    assert len(result.details["findings"]) == 13


def test_large_output_is_scanned_to_the_end_with_true_line_numbers(tmp_path: Path) -> None:
    out = write(tmp_path / "out.log", lines(60_000, 59_990, GITHUB))  # several read chunks
    result = SecretsGate().check(facts(tmp_path, stdout_path=out))
    assert result.details["findings"] == [
        {"file": "stdout", "line": 59_990, "kind": "GitHub Token"}
    ]


def test_missing_output_files_are_not_an_error(tmp_path: Path) -> None:
    result = SecretsGate().check(facts(tmp_path, stdout_path=tmp_path / "never-written.log"))
    assert result.outcome is Outcome.PASS


def test_run_gates_applies_the_gate(tmp_path: Path) -> None:
    out = write(tmp_path / "out.log", GITHUB)
    [result] = run_gates([SecretsGate()], facts(tmp_path, stdout_path=out))
    assert (result.gate, result.outcome) == ("secrets", Outcome.REFUSE)


# ---- workspace confinement ------------------------------------------------------------------


def test_paths_outside_the_workspace_are_not_read(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    outside = write(tmp_path / "outside.env", f"TOKEN={GITHUB}\n")
    (workspace / "conf").mkdir(parents=True)
    (workspace / "conf" / "link.env").symlink_to(outside)
    changed = ["../outside.env", str(outside), "conf/link.env"]

    result = SecretsGate().check(facts(workspace, changed_files=changed))

    assert result.outcome is Outcome.PASS
    assert result.details["skipped"] == [
        {"file": name, "why": "resolves outside the workspace"} for name in changed
    ]


def test_deleted_and_binary_changed_files(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01" + GITHUB.encode())
    result = SecretsGate().check(facts(tmp_path, changed_files=["gone.py", "blob.bin"]))
    assert result.outcome is Outcome.PASS
    assert result.details["skipped"] == [
        {"file": "blob.bin", "why": "binary or larger than the scan limit"}
    ]


# ---- diffs from a real git repository ------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose committed config.py already holds a credential on line 2."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    write(root / "config.py", f"DEBUG = False\nOLD_TOKEN = '{GITHUB}'\nNAME = 'x'\n")
    git(root, "add", "-A")
    git(root, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "base")
    return root


def test_diff_reports_added_lines_at_their_new_line_numbers(repo: Path) -> None:
    path = repo / "config.py"
    text = path.read_text().replace("NAME = 'x'\n", f"NAME = 'y'\n\nAWS_KEY_ID = '{AWS}'\n")
    path.write_text(text)
    write(repo / "new.txt", f"a\nb\nleak {GITHUB}\n")
    git(repo, "add", "-N", "new.txt")  # intent to add: `git diff` shows the new file

    diff = git(repo, "diff")
    result = SecretsGate().check(facts(repo, diff=diff, changed_files=["config.py", "new.txt"]))

    assert result.details["findings"] == [
        {"file": "config.py", "line": 5, "kind": "AWS Access Key"},
        {"file": "new.txt", "line": 3, "kind": "GitHub Token"},
    ]
    assert not leaked(result, GITHUB, AWS)


def test_diff_does_not_blame_a_step_for_what_was_already_there(repo: Path) -> None:
    path = repo / "config.py"
    path.write_text(path.read_text() + "VERSION = '1.2.3'\n")
    diff = git(repo, "diff")
    result = SecretsGate().check(facts(repo, diff=diff, changed_files=["config.py"]))
    assert result.outcome is Outcome.PASS


def test_diff_that_removes_a_secret_passes(repo: Path) -> None:
    path = repo / "config.py"
    path.write_text(path.read_text().replace(f"OLD_TOKEN = '{GITHUB}'\n", ""))
    result = SecretsGate().check(facts(repo, diff=git(repo, "diff")))
    assert result.outcome is Outcome.PASS
