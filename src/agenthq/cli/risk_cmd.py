"""`agenthq risk CMD`: show how the risk gate would judge a shell command, without running it.

For people writing policy (why is this asked?) and for scripts: `--json` prints one object, and
`agenthq risk -` reads one command per line from stdin and prints one JSON line per command.
The policy comes from the `[policy]` table of `agenthq.toml` in the current directory, if any.
Heavy imports (tree-sitter) happen inside the command so `agenthq --help` stays fast.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agenthq.errors import ConfigError

if TYPE_CHECKING:
    from agenthq.gates.policy import Policy

CONFIG_FILE = "agenthq.toml"

CommandArg = Annotated[
    str,
    typer.Argument(
        help="The shell command line to judge, or - to read one command per line from stdin.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        help="Directory the command would run in (default: the current directory).",
        file_okay=False,
    ),
]


def register(app: typer.Typer) -> None:
    app.command("risk")(risk)


def risk(command: CommandArg, json_output: JsonOpt = False, workspace: WorkspaceOpt = None) -> None:
    """Score a shell command 0-100 and show the verdict (run / ask / refuse) and reasons."""
    policy = load_policy(Path.cwd() / CONFIG_FILE)
    where = (workspace or Path.cwd()).resolve()
    if command == "-":
        for line in sys.stdin:
            text = line.rstrip("\r\n")
            if text.strip():
                print(json.dumps(judge(text, policy, where), ensure_ascii=False))
        return
    result = judge(command, policy, where)
    if json_output:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"score:   {result['score']}")
    print(f"verdict: {result['verdict']}")
    if result["rule"]:
        print(f"rule:    {result['rule']}")
    if not result["parse_ok"]:
        print("parse:   the command could not be parsed reliably")
    for reason in result["reasons"]:
        print(f"  - {reason}")


def judge(command: str, policy: Policy, workspace: Path) -> dict[str, Any]:
    """The JSON-ready verdict for one command."""
    from agenthq.gates.policy import decide
    from agenthq.gates.risk import assess

    assessment = assess(command, workspace=workspace)
    decision = decide(policy, assessment)
    return {
        "command": command,
        "score": assessment.score,
        "verdict": decision.verdict,
        "reasons": list(assessment.reasons),
        "parse_ok": assessment.parse_ok,
        "rule": decision.matched_rule,
    }


def load_policy(path: Path) -> Policy:
    """The `[policy]` table of agenthq.toml, or the default policy when there is none."""
    from agenthq.gates.policy import Policy

    if not path.is_file():
        return Policy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    if "policy" not in data:
        return Policy()
    return Policy.from_mapping(data["policy"], str(path))
