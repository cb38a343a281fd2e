"""`agenthq secrets scan`: human lines, --json, stdin, directories, exit codes, lazy imports.

The command is tested on a local Typer app built with `register()`, so it does not depend on
how the main CLI wires its commands. Credentials are assembled at test time from parts.
"""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from agenthq.cli import secrets_cmd
from agenthq.errors import InputError

_RNG = random.Random(5)
TOKEN = "gh" + "p_" + "".join(_RNG.choice(string.ascii_letters + string.digits) for _ in range(36))


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    secrets_cmd.register(app)

    @app.callback()
    def main() -> None:  # a group, so the command is invoked as `secrets scan …`
        """Test app."""

    return app


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def scan(app: typer.Typer, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, ["secrets", "scan", *args], input=stdin)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_findings_are_printed_as_file_line_kind_and_exit_1(app: typer.Typer) -> None:
    write(Path("deploy.sh"), f"#!/bin/sh\nexport GH_TOKEN={TOKEN}\n")
    result = scan(app, "deploy.sh")
    assert result.exit_code == 1
    assert result.output == "deploy.sh:2: GitHub Token\n"
    leaked = TOKEN in result.output
    assert not leaked


def test_clean_input_prints_nothing_and_exits_0(app: typer.Typer) -> None:
    write(Path("README.md"), "nothing to see here\n")
    result = scan(app, "README.md")
    assert (result.exit_code, result.output) == (0, "")


def test_json_output(app: typer.Typer) -> None:
    write(Path("src/a.py"), f"x = 1\ny = 2\nTOKEN = '{TOKEN}'\n")
    write(Path("src/b.py"), "print('ok')\n")
    result = scan(app, "--json", "src")
    assert result.exit_code == 1
    assert json.loads(result.output) == [{"file": "src/a.py", "line": 3, "kind": "GitHub Token"}]
    leaked = TOKEN in result.output
    assert not leaked


def test_json_output_when_clean(app: typer.Typer) -> None:
    write(Path("ok.txt"), "fine\n")
    result = scan(app, "--json", "ok.txt")
    assert (result.exit_code, json.loads(result.output)) == (0, [])


def test_stdin(app: typer.Typer) -> None:
    result = scan(app, "-", stdin=f"log start\nAuthorization: Bearer {TOKEN}\n")
    assert result.exit_code == 1
    assert result.output == "<stdin>:2: GitHub Token\n"


def test_several_paths_in_order(app: typer.Typer) -> None:
    write(Path("b.env"), f"T={TOKEN}\n")
    write(Path("a.env"), f"\nT={TOKEN}\n")
    result = scan(app, "b.env", "a.env")
    assert result.output.splitlines() == ["b.env:1: GitHub Token", "a.env:2: GitHub Token"]


def test_missing_path_is_an_input_error(app: typer.Typer) -> None:
    result = scan(app, "no-such-dir")
    assert isinstance(result.exception, InputError)
    assert "no such file or directory: no-such-dir" in str(result.exception)


def test_help_lists_the_command(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["secrets", "--help"])
    assert result.exit_code == 0
    assert "scan" in result.output


def test_registering_does_not_import_the_scanner() -> None:
    code = (
        "import sys, typer\n"
        "from agenthq.cli import secrets_cmd\n"
        "secrets_cmd.register(typer.Typer())\n"
        "print(sorted(m for m in sys.modules if m.startswith(('detect_secrets', "
        "'agenthq.gates.secrets_scan'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
