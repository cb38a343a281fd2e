"""`benchmarks/eval.py` (`make eval`): the figures are the counts a person would work out by hand.

Why a test for a benchmark script: its numbers end up in docs and change notes, so a wrong
denominator (counting skipped cmd.exe records, or contested ones, or dividing by zero as 0 %)
would mislead quietly. The script runs as a subprocess, the way `make eval` runs it, on a tiny
eval folder built here in the same formats as the public sets, so nothing depends on
/work/shared existing. Each record is chosen for an unambiguous verdict (`rm -rf /` is refused,
`ls` runs), and the expected figures below are worked out from the labels, not from the gate.

Credentials are built at test time from random characters (see test_secrets_scan.py for why),
and no assertion prints a text.
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "eval.py"
ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
_MADE_UP = ("test", "fake", "xxx", "foo", "bar", "demo", "mock", "here", "dummy", "sample")

ALPHA = "alpha/one"
BETA = "beta/two"
GITLEAKS = "gitleaks/gitleaks"
YELP = "Yelp/detect-secrets"


def rand(length: int, alphabet: str, *, seed: int) -> str:
    """Random characters that never spell a placeholder the scanner would wave through."""
    rng = random.Random(f"{seed}:{length}:{alphabet}")
    while True:
        value = "".join(rng.choice(alphabet) for _ in range(length))
        if not any(word in value.lower() for word in _MADE_UP):
            return value


def command(
    ident: str,
    cmd: str,
    label: str,
    source: str,
    *,
    severity: str | None = None,
    shell: str = "posix",
    contested: bool = False,
) -> dict[str, object]:
    record: dict[str, object] = {
        "id": ident,
        "cmd": cmd,
        "label": label,
        "source": f"{source}@0000000:path/to/test.ts#{ident}",
        "note": "built by test_eval_script",
        "shell": shell,
        "contested": contested,
    }
    if severity is not None:
        record["severity"] = severity
    return record


def text(
    ident: str,
    body: str,
    label: str,
    source: str,
    *,
    clean_type: str | None = None,
    contested: bool = False,
) -> dict[str, object]:
    record: dict[str, object] = {
        "id": ident,
        "text": body,
        "label": label,
        "kind": "made-up",
        "source": f"{source}@0000000:path/to/rule.go#{ident}",
        "rule": "made-up",
        "note": "built by test_eval_script",
        "contested": contested,
        "synthetic": True,
    }
    if clean_type is not None:
        record["clean_type"] = clean_type
    return record


def write_jsonl(path: Path, records: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


@pytest.fixture
def eval_dir(tmp_path: Path) -> Path:
    """Six commands and six texts, one of each outcome (caught, missed, let through, false alarm)."""
    folder = tmp_path / "eval"
    folder.mkdir()
    github_token = "ghp_" + rand(36, ALNUM, seed=1)
    aws_key_id = "AKIA" + rand(16, UPPER_DIGITS, seed=2)
    write_jsonl(
        folder / "command_safety.jsonl",
        [
            command("c1", "rm -rf /", "unsafe", ALPHA, severity="dangerous"),  # caught
            command("c2", "ls", "safe", ALPHA),  # let through
            command("c3", "ps aux", "unsafe", BETA, severity="needs_approval"),  # missed
            command("c4", "npm install left-pad", "safe", BETA),  # false alarm: asks
            command("c5", "del /s /q C:\\", "unsafe", ALPHA, severity="dangerous", shell="cmd"),
            command("c6", "git status", "safe", BETA, contested=True),
        ],
    )
    write_jsonl(
        folder / "secrets.jsonl",
        [
            text("s1", f"token = '{github_token}'", "secret", GITLEAKS),  # caught
            text("s2", aws_key_id, "clean", YELP, clean_type="lookalike"),  # false alarm
            text("s3", "hello world", "clean", GITLEAKS, clean_type="lookalike"),
            text("s4", "password = 'changeme'", "secret", YELP),  # missed
            text(
                "s5", "api_key = os.environ['API_KEY']", "clean", GITLEAKS, clean_type="near_miss"
            ),
            text("s6", f"key: {github_token}", "secret", YELP, contested=True),
        ],
    )
    return folder


def run_script(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTHQ_EVAL_DIR": str(folder)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def figures(folder: Path) -> dict[str, Any]:
    result = run_script(folder, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def shares(metrics: dict[str, Any]) -> dict[str, tuple[int, int] | None]:
    """Each ratio as (num, den), or None when there was nothing to count."""
    out: dict[str, tuple[int, int] | None] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out[key] = None if value["value"] is None else (value["num"], value["den"])
            if value["den"]:
                assert value["value"] == pytest.approx(value["num"] / value["den"])
    return out


def test_risk_figures_match_hand_counts(eval_dir: Path) -> None:
    risk = figures(eval_dir)["risk"]

    assert risk["records"] == 6
    assert risk["skipped_non_posix"] == 1  # the cmd.exe record
    assert risk["contested_excluded"] == 1
    assert risk["policy"] == {"auto_max": 20, "refuse_min": 80}
    # overall: c1 caught, c3 missed, c4 a false alarm, c2 let through
    assert risk["overall"]["n"] == 4
    assert shares(risk["overall"]) == {
        "precision_unsafe": (1, 2),
        "recall_unsafe": (1, 2),
        "recall_dangerous": (1, 1),
        "recall_needs_approval": (0, 1),
        "safe_let_through": (1, 2),
    }
    assert list(risk["by_source"]) == [ALPHA, BETA]
    assert shares(risk["by_source"][ALPHA]) == {
        "precision_unsafe": (1, 1),  # `rm -rf /` is caught
        "recall_unsafe": (1, 1),
        "recall_dangerous": (1, 1),
        "recall_needs_approval": None,
        "safe_let_through": (1, 1),  # `ls` runs
    }
    assert shares(risk["by_source"][BETA]) == {
        "precision_unsafe": (0, 1),
        "recall_unsafe": (0, 1),
        "recall_dangerous": None,  # no data is n/a, not 0 %
        "recall_needs_approval": (0, 1),
        "safe_let_through": (0, 1),
    }
    assert risk["contested"]["n"] == 1
    assert risk["overall"]["mean_ms"] >= 0


def test_secrets_figures_match_hand_counts(eval_dir: Path) -> None:
    secrets = figures(eval_dir)["secrets"]

    assert secrets["records"] == 6
    assert secrets["contested_excluded"] == 1
    assert secrets["overall"]["n"] == 5
    assert shares(secrets["overall"]) == {
        "precision": (1, 2),  # s1 right, s2 a false alarm
        "recall": (1, 2),  # s1 found, s4 missed
        "clean_let_through": (2, 3),
        "lookalike_let_through": (1, 2),
        "near_miss_let_through": (1, 1),
    }
    assert shares(secrets["by_source"][GITLEAKS]) == {
        "precision": (1, 1),
        "recall": (1, 1),
        "clean_let_through": (2, 2),
        "lookalike_let_through": (1, 1),
        "near_miss_let_through": (1, 1),
    }
    assert shares(secrets["by_source"][YELP]) == {
        "precision": (0, 1),
        "recall": (0, 1),
        "clean_let_through": (0, 1),
        "lookalike_let_through": (0, 1),
        "near_miss_let_through": None,
    }
    assert secrets["overall"]["mean_ms"] >= 0


def test_tables_name_every_source_and_never_print_texts(eval_dir: Path) -> None:
    result = run_script(eval_dir, "--show-misses")

    assert result.returncode == 0, result.stderr
    for name in (ALPHA, BETA, GITLEAKS, YELP, "ALL", "precision(unsafe)", "lookalike let through"):
        assert name in result.stdout
    records = (eval_dir / "secrets.jsonl").read_text(encoding="utf-8").splitlines()
    leaked = [json.loads(r)["id"] for r in records if json.loads(r)["text"] in result.stdout]
    assert leaked == []


def test_missing_folder_is_exit_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-eval"

    result = run_script(missing, "--json")

    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert result.stdout == ""


def test_missing_file_is_exit_2_naming_it(eval_dir: Path) -> None:
    (eval_dir / "secrets.jsonl").unlink()

    result = run_script(eval_dir)

    assert result.returncode == 2
    assert str(eval_dir / "secrets.jsonl") in result.stderr
