"""Coding-agent command lines through the real engine, with stand-ins on PATH that print what
Claude Code, Codex, Aider and Gemini CLI print: prompts rendered from upstream outputs, usage
and cost recorded for the cost gate, a retry resuming the session, the launch command judged
by the gates, timeouts killing the tool, a missing tool reported as infrastructure, and
changes made in a worktree merged back."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agenthq
from agenthq.agents.registry import agents_from_table
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner, RunOptions
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.executors.agent_cli import command_for, parse_report
from agenthq.executors.base import AgentCall
from agenthq.gates.policy import Policy
from agenthq.store.api import Store

FAKE = Path(__file__).parents[1] / "fakes" / "fake_agent.py"
ALLOW_AGENTS = Policy(allow=("claude *", "codex *", "aider *", "gemini *", "echo *"))


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    for tool in ("claude", "codex", "aider", "gemini"):
        script = path / tool
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" {tool} "$@"\n')
        script.chmod(0o755)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as opened:
        yield opened


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def make_runner(
    store: Store,
    tmp_path: Path,
    bin_dir: Path,
    agents: dict[str, Any],
    policy: Policy = ALLOW_AGENTS,
) -> Runner:
    environ = {"HOME": str(tmp_path), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return Runner(
        store,
        home=tmp_path / ".agenthq",
        environ=environ,
        gates=GateConfig(policy=policy),
        agents=agents_from_table(agents, "agenthq.toml"),
        scheduler_options=SchedulerOptions(poll_interval=0.05),
    )


def test_claude_gets_the_rendered_prompt_and_reports_usage_cost_and_session(
    store: Store, tmp_path: Path, bin_dir: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, bin_dir, {"claude": {"kind": "cli", "tool": "claude"}})
    plan = (
        agenthq.Plan("fix")
        .step("test", run='echo \'{"summary": "2 failing in test_calc.py"}\'')
        .step(
            "fix",
            agent="claude",
            prompt="Fix the failing tests: {{ steps.test.outputs.summary }}",
            needs=["test"],
        )
    )
    run = runner.run(plan, workspace=workspace)
    assert run.state.value == "succeeded"
    notes = (workspace / "NOTES.md").read_text()
    assert notes == "claude: Fix the failing tests: 2 failing in test_calc.py\n"
    fix = {s.step_id: s for s in store.get_steps(run.id)}["fix"]
    assert fix.outputs["text"] == "done: Fix the failing tests: 2 failing in test_calc.py"
    (attempt,) = store.get_attempts(run.id, "fix")
    assert attempt.cost_usd == pytest.approx(0.0123)
    assert attempt.usage["input_tokens"] == 1200
    assert attempt.usage["output_tokens"] == 340
    assert attempt.session_id == "claude-session-1"


def test_a_retry_resumes_the_agents_session(
    store: Store, tmp_path: Path, bin_dir: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, bin_dir, {"claude": {"kind": "cli", "tool": "claude"}})
    plan = agenthq.Plan("p").step(
        "fix",
        agent="claude",
        prompt='FAIL-ONCE then json: {"summary": "fixed"}',
        retry={"max_attempts": 2, "initial": 0.01, "on": ["execution"]},
    )
    run = runner.run(plan, workspace=workspace)
    assert run.state.value == "succeeded"
    first, second = store.get_attempts(run.id, "fix")
    assert first.state == "failed"
    assert first.error is not None
    assert "claude failed: it broke" in first.error
    assert first.session_id == "claude-session-1"
    (step,) = store.get_steps(run.id)
    assert step.outputs["text"].startswith("resumed claude-session-1:")
    assert second.session_id == "claude-session-1"
    assert store.run_spending(run.id)["fix"] == pytest.approx(0.0246)  # both attempts count


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        ("codex", {"input_tokens": 2000, "output_tokens": 1000, "cost_usd": 0.021}),
        ("aider", {"input_tokens": 2100, "output_tokens": 350, "cost_usd": 0.03}),
        ("gemini", {"input_tokens": 800, "output_tokens": 200, "cost_usd": 0.0054}),
    ],
)
def test_each_tool_s_usage_is_read_and_priced(
    store: Store,
    tmp_path: Path,
    bin_dir: Path,
    workspace: Path,
    tool: str,
    expected: dict[str, float],
) -> None:
    price = {"input_per_mtok": 3.0, "output_per_mtok": 15.0}
    runner = make_runner(
        store, tmp_path, bin_dir, {"bot": {"kind": "cli", "tool": tool, "price": price}}
    )
    plan = agenthq.Plan("p").step("ask", agent="bot", prompt='json: {"lines_changed": 7}')
    run = runner.run(plan, workspace=workspace)
    assert run.state.value == "succeeded"
    (attempt,) = store.get_attempts(run.id)
    for key, value in expected.items():
        assert attempt.usage[key] == pytest.approx(value), key
    (step,) = store.get_steps(run.id)
    if tool != "aider":  # aider prints prose, not the answer as JSON
        assert step.outputs["lines_changed"] == 7


def test_the_launch_command_is_judged_by_the_gates(
    store: Store, tmp_path: Path, bin_dir: Path, workspace: Path
) -> None:
    runner = make_runner(
        store, tmp_path, bin_dir, {"claude": {"kind": "cli", "tool": "claude"}}, Policy()
    )
    plan = agenthq.Plan("p").step("fix", agent="claude", prompt="tidy up")
    run = runner.run(plan, workspace=workspace, options=RunOptions(no_wait=True))
    assert run.state.value == "awaiting_approval"  # `claude` is an unknown program: ask
    (ask,) = store.list_approvals(run_id=run.id)
    assert ask.command == "claude -p 'tidy up' --output-format json"
    assert not (workspace / "NOTES.md").exists()


def test_a_hanging_agent_is_killed_at_its_timeout(
    store: Store, tmp_path: Path, bin_dir: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, bin_dir, {"claude": {"kind": "cli", "tool": "claude"}})
    plan = agenthq.Plan("p").step("fix", agent="claude", prompt="SLEEP!", timeout="1s")
    run = runner.run(plan, workspace=workspace)
    assert run.state.value == "failed"
    (step,) = store.get_steps(run.id)
    assert step.failure_class is not None
    assert step.failure_class.value == "timeout"


def test_a_missing_tool_is_an_infrastructure_failure(
    store: Store, tmp_path: Path, workspace: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    runner = make_runner(store, tmp_path, empty, {"claude": {"kind": "cli", "tool": "claude"}})
    runner.environ["PATH"] = str(empty)
    plan = agenthq.Plan("p").step("fix", agent="claude", prompt="hi")
    run = runner.run(plan, workspace=workspace)
    (step,) = store.get_steps(run.id)
    assert step.failure_class is not None
    assert step.failure_class.value == "infrastructure"
    assert "claude is not on PATH" in (step.reason or "")


def test_an_agent_in_a_worktree_has_its_changes_merged_back(
    store: Store, tmp_path: Path, bin_dir: Path, workspace: Path
) -> None:
    git = ["git", "-C", str(workspace), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (workspace / "README").write_text("hi\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    agents = {"coder": {"kind": "cli", "tool": "aider", "workspace": "worktree"}}
    runner = make_runner(store, tmp_path, bin_dir, agents)
    plan = (
        agenthq.Plan("p")
        .step("a", agent="coder", prompt="one")
        .step("b", agent="coder", prompt="two", needs=["a"])
    )
    run = runner.run(plan, workspace=workspace)
    assert run.state.value == "succeeded"
    assert (workspace / "NOTES.md").read_text() == "aider: one\naider: two\n"
    log = subprocess.run(
        [*git, "log", "--format=%an %s"], capture_output=True, text=True, check=True
    ).stdout
    assert "agenthq agenthq:" in log
    assert {w.state for w in store.list_worktrees(run_id=run.id)} == {"removed"}


def test_command_lines_are_built_without_a_shell() -> None:
    call = AgentCall(
        name="c",
        kind="cli",
        prompt="it's $(rm -rf ~) time",
        tool="claude",
        model="opus",
        session_id="s-1",
    )
    assert command_for(call) == [
        "claude",
        "-p",
        "it's $(rm -rf ~) time",
        "--output-format",
        "json",
        "--model",
        "opus",
        "--resume",
        "s-1",
    ]
    codex = AgentCall(name="x", kind="cli", prompt="p", tool="codex", session_id="t-9")
    assert command_for(codex) == ["codex", "exec", "--json", "resume", "t-9", "p"]
    generic = AgentCall(
        name="g",
        kind="cli",
        prompt="a b",
        tool="generic",
        command="mytool --message {prompt} --model={model}",
        model="m1",
    )
    assert command_for(generic) == ["mytool", "--message", "a b", "--model=m1"]


def test_reports_that_cannot_be_read_are_plain_text() -> None:
    report = parse_report("claude", "Traceback (most recent call last): boom")
    assert report.text == "Traceback (most recent call last): boom"
    assert report.usage == {}
    aider = parse_report("aider", "Tokens: 1.5M sent, 2,000 received.\nok\n")
    assert aider.usage == {"input_tokens": 1_500_000, "output_tokens": 2000}
