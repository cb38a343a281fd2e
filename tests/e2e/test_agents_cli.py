"""`agenthq agents` as a user meets it: agents declared in agenthq.toml with health checks,
`agents check`, capability steps placed by the real binary, and bad agent tables refused with
the file, the agent and the key named."""

from __future__ import annotations

from tests.e2e.conftest import Cli, no_traceback

TOML = """
[policy]
allow = ["echo *", "true", "false", "test *"]

[agents.fast]
capabilities = ["review"]
max_concurrency = 2
[agents.fast.health]
command = "true"

[agents.broken]
capabilities = ["review"]
[agents.broken.health]
command = "false"
retries = 1
backoff = "0.01s"

[agents.ghost]
[agents.ghost.health]
command = "definitely-not-a-command-xyz"

[agents.nocli]
kind = "cli"
tool = "generic"
command = "not-installed-agent-xyz --message {prompt}"
"""


def test_agents_check_records_health_and_the_table_shows_it(cli: Cli) -> None:
    cli.write("agenthq.toml", TOML)
    checked = cli("agents", "check")
    assert checked.code == 1  # one agent is not healthy
    assert "fast  healthy" in checked.out
    assert "broken  unhealthy: exit 1" in checked.out
    assert "ghost  offline" in checked.out
    listed = {a["name"]: a for a in cli("agents", "--json", check=True).json()}
    assert listed["fast"]["state"] == "idle"
    assert listed["fast"]["max_concurrency"] == 2
    assert listed["broken"]["state"] == "unhealthy"
    assert listed["ghost"]["state"] == "offline"
    assert listed["fast"]["source"] == "agenthq.toml"
    assert listed["nocli"]["state"] == "offline"
    assert listed["nocli"]["health_detail"] == "not-installed-agent-xyz is not on PATH"
    table = cli("agents", check=True).out
    assert "unhealthy" in table
    assert "review" in table


def test_a_capability_step_runs_on_the_healthy_agent(cli: Cli) -> None:
    cli.write("agenthq.toml", TOML)
    cli.write(
        "plan.yaml",
        """
        name: review
        steps:
          - id: look
            agent: {capability: review}
            run: |
              echo "{\\"who\\": \\"$AGENTHQ_AGENT\\"}"
        """,
    )
    done = cli("run", "plan.yaml", "--quiet")
    assert done.code == 0, done.err
    (run,) = cli("runs", "--json", check=True).json()
    status = cli("status", run["id"], "--json", check=True).json()
    assert status["steps"][0]["outputs"] == {"who": "fast"}


def test_bad_agent_tables_are_input_errors_naming_file_agent_and_key(cli: Cli) -> None:
    cli.write("agenthq.toml", '[agents.claude]\nkind = "cli"\n')
    result = cli("agents")
    assert result.code == 2
    assert "agenthq.toml: [agents.claude]: a cli agent needs `tool`" in result.err
    no_traceback(result)
    cli.write("agenthq.toml", "[agents.x]\nmax_concurrency = 0\n")
    result = cli("agents")
    assert result.code == 2
    assert "[agents.x]: max_concurrency" in result.err
    no_traceback(result)


def test_a_prompt_for_an_undeclared_agent_is_refused_before_the_run(cli: Cli) -> None:
    cli.write(
        "plan.yaml",
        """
        name: fix
        steps:
          - id: fix
            agent: claude
            prompt: fix the tests
        """,
    )
    result = cli("run", "plan.yaml")
    assert result.code == 2
    assert "agent 'claude', which is not declared" in result.err
    no_traceback(result)
    assert cli("runs", "--json", check=True).json() == []
