"""`agenthq secrets scan PATH|-`: find credentials the way the `secrets` gate does.

For people checking a tree before they commit, and for scripts: each finding is printed as
`file:line: kind` (never the value), `--json` prints an array of {file, line, kind}, and the
exit code is 1 when anything was found, 0 otherwise. `-` reads the text from stdin.
The scanner (and detect-secrets behind it) is imported inside the command, so `agenthq --help`
stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agenthq.errors import InputError

if TYPE_CHECKING:
    from agenthq.gates.secrets_scan import Finding

STDIN = "-"
STDIN_NAME = "<stdin>"

PathsArg = Annotated[
    list[str],
    typer.Argument(
        help="Files or directories to scan, or - to read text from stdin.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON array for machines.")]


def register(app: typer.Typer) -> None:
    secrets_app = typer.Typer(
        help="Find credentials in files, directories or stdin.", no_args_is_help=True
    )
    secrets_app.command("scan")(scan)
    app.add_typer(secrets_app, name="secrets")


def scan(paths: PathsArg, json_output: JsonOpt = False) -> None:
    """Report credentials as file:line: kind (never the value); exit 1 when any is found."""
    findings = find(paths)
    if json_output:
        print(json.dumps([finding.as_dict() for finding in findings], ensure_ascii=False))
    else:
        for finding in findings:
            print(finding)
    if findings:
        raise typer.Exit(1)


def find(paths: list[str]) -> list[Finding]:
    """Findings for every argument, in order; a missing path is an input error."""
    from agenthq.gates.secrets_scan import scan_path, scan_text

    missing = [p for p in paths if p != STDIN and not Path(p).exists()]
    if missing:
        raise InputError(f"no such file or directory: {', '.join(missing)}")
    findings: list[Finding] = []
    for arg in paths:
        if arg == STDIN:
            findings.extend(scan_text(sys.stdin.read(), filename=STDIN_NAME))
        else:
            findings.extend(scan_path(Path(arg)))
    return findings
