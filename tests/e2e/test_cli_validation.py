"""Bad input through the real binary: exit 2, file:line:column, a hint, no traceback, nothing
written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Cli, no_traceback

# (name, plan text, expected fragment of the message, expected `file:line`)
BAD_PLANS = [
    # YAML itself is broken: the parser's position is reported.
    ("yaml", "name: p\nsteps:\n  - id: a\n    run: [unclosed\n", "", "plan.yaml:5"),
    # A typo in a key: suggested spelling.
    (
        "unknown-key",
        "name: p\nsteps:\n  - id: a\n    run: 'true'\n    neds: [b]\n",
        "did you mean `needs`",
        "plan.yaml:5",
    ),
    # A step with nothing to do.
    ("missing-run", "name: p\nsteps:\n  - id: a\n    needs: []\n", "`run`", "plan.yaml:3"),
    # Two steps with one id.
    (
        "duplicate-id",
        "name: p\nsteps:\n  - id: a\n    run: 'true'\n  - id: a\n    run: 'true'\n",
        "duplicate step id 'a'",
        "plan.yaml:5",
    ),
    # A need that names no step, with a suggestion.
    (
        "unknown-need",
        "name: p\nsteps:\n  - id: build\n    run: 'true'\n  - id: t\n    needs: [biuld]\n    run: 'true'\n",
        "did you mean 'build'",
        "plan.yaml:6",
    ),
    # A cycle, printed as a path.
    (
        "cycle",
        "name: p\nsteps:\n  - id: a\n    needs: [c]\n    run: 'true'\n"
        "  - id: b\n    needs: [a]\n    run: 'true'\n  - id: c\n    needs: [b]\n    run: 'true'\n",
        "→",
        "plan.yaml:",
    ),
    # A template that reads a step that is not upstream.
    (
        "not-upstream",
        "name: p\nsteps:\n  - id: a\n    run: 'true'\n  - id: b\n"
        "    run: echo {{ steps.a.outputs.x }}\n",
        "not upstream",
        "plan.yaml:6",
    ),
    # A template that reads an undeclared param.
    (
        "unknown-param",
        "name: p\nsteps:\n  - id: a\n    run: echo {{ params.nope }}\n",
        "nope",
        "plan.yaml:4",
    ),
    # A duration nobody can read.
    (
        "duration",
        "name: p\nsteps:\n  - id: a\n    run: 'true'\n    timeout: ten minutes\n",
        "duration",
        "plan.yaml:5",
    ),
    # A callable that cannot be imported.
    (
        "uses",
        "name: p\nsteps:\n  - id: a\n    uses: no_such_module_xyz:f\n",
        "no_such_module_xyz",
        "plan.yaml:4",
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "fragment", "where"), BAD_PLANS, ids=[p[0] for p in BAD_PLANS]
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_plan_is_refused_and_nothing_is_written(
    cli: Cli, command: str, name: str, text: str, fragment: str, where: str
) -> None:
    cli.write("plan.yaml", text)
    result = cli(command, "plan.yaml")
    assert result.code == 2, (result.out, result.err)
    assert where in result.err
    assert fragment in result.err
    no_traceback(result)
    listed = cli("runs", "--json", check=True)
    assert listed.json() == []


def test_missing_file(cli: Cli) -> None:
    result = cli("validate", "nope.yaml")
    assert result.code == 2
    assert "nope.yaml" in result.err
    no_traceback(result)


def test_bad_param(cli: Cli) -> None:
    cli.write("plan.yaml", "name: p\nparams: {repo: '.'}\nsteps:\n  - id: a\n    run: 'true'\n")
    for args, fragment in (
        (["-p", "rpeo=x"], "did you mean 'repo'"),
        (["-p", "novalue"], "key=value"),
    ):
        result = cli("run", "plan.yaml", *args)
        assert result.code == 2
        assert fragment in result.err
        no_traceback(result)
    assert cli("runs", "--json", check=True).json() == []


def test_unknown_run_and_bad_options(cli: Cli) -> None:
    for args in (
        ["status", "nope"],
        ["logs", "nope"],
        ["resume", "nope"],
        ["runs", "--state", "odd"],
    ):
        result = cli(*args)
        assert result.code == 2, args
        no_traceback(result)
    result = cli("run", "plan.yaml", "--max-workers", "0")
    assert result.code == 2
    no_traceback(result)


def test_valid_plan(cli: Cli) -> None:
    cli.write(
        "plan.yaml",
        "name: p\nsteps:\n  - id: a\n    foreach: [1, 2]\n    run: echo {{ item }}\n"
        "  - id: b\n    needs: [a]\n    run: 'true'\n",
    )
    result = cli("validate", "plan.yaml")
    assert result.code == 0
    assert "valid" in result.out
    assert "3 to run" in result.out


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_plan_is_valid(cli: Cli, example: Path) -> None:
    """The plans a new user runs first must never rot (ship-it.yaml once did)."""
    result = cli("validate", str(example))
    assert result.code == 0, result.err
    assert "is valid" in result.out
