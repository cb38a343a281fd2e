"""`agenthq new` as a user meets it: each template writes a plan that validates and runs,
the migration waits for a sign-off and then for the migration's own approval, nothing is
overwritten."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Cli, no_traceback


@pytest.mark.parametrize(
    ("template", "expected_exit", "waiting"),
    [
        ("nightly-maintenance", 0, None),
        ("fan-out-review", 0, None),
        ("migration-with-signoff", 3, "sign-off"),
    ],
)
def test_each_template_writes_a_plan_that_runs(
    cli: Cli, template: str, expected_exit: int, waiting: str | None
) -> None:
    cli.write("src/app.py", "def f():\n    return 1\n")
    cli.write("tests/test_app.py", "def test_f():\n    assert True\n")
    made = cli("new", "mine", "--template", template)
    assert made.code == 0, made.err
    text = (cli.project / "mine.yaml").read_text()
    assert "name: mine" in text
    assert cli("validate", "mine.yaml").code == 0
    ran = cli("run", "mine.yaml", "--no-wait", "--quiet")
    assert ran.code == expected_exit, ran.err
    if waiting:
        (approval,) = cli("approvals", "--json", check=True).json()
        assert approval["step_id"] == waiting
        assert approval["kind"] == "wait"
        assert "migrate staging?" in approval["reasons"][0]
        cli("approve", "last", "sign-off", check=True)
        assert cli("resume", "last", "--no-wait", "--quiet").code == 3
        (second,) = cli("approvals", "--json", check=True).json()
        assert second["step_id"] == "migrate"
        cli("approve", "last", "migrate", check=True)
        assert cli("resume", "last", "--quiet").code == 0


def test_new_refuses_to_overwrite_and_explains_bad_input(cli: Cli) -> None:
    assert cli("new", "mine").code == 0
    again = cli("new", "mine")
    assert again.code == 2
    assert "already exists; pick another name or pass --force" in again.err
    assert cli("new", "mine", "--force").code == 0
    unknown = cli("new", "x", "--template", "nope")
    assert unknown.code == 2
    assert (
        "choose one of nightly-maintenance, fan-out-review, migration-with-signoff" in unknown.err
    )
    bad = cli("new", "1bad")
    assert bad.code == 2
    no_traceback(bad)


def test_typed_params_are_checked_before_a_run_starts(cli: Cli) -> None:
    assert cli("new", "mig", "--template", "migration-with-signoff").code == 0
    wrong = cli("run", "mig.yaml", "-p", "environment=prod")
    assert wrong.code == 2
    assert "param 'environment' must be one of staging, production; got 'prod'" in wrong.err
    assert cli("runs", "--json", check=True).json() == []
