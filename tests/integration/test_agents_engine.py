"""Agents inside the engine, on a real SQLite file with real processes: steps that ask for a
capability go to the least-loaded healthy agent, never past its max_concurrency; a step no
agent can take waits and says why; health checks hold unhealthy agents back; an agent that
requires approval asks; a budget hold names a cheaper agent; bad agent use is refused."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agenthq
from agenthq.agents.registry import agents_from_table
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner, RunOptions
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.errors import ConfigError
from agenthq.gates.policy import Policy
from agenthq.spec.agents import AgentSpec
from agenthq.store.api import Quarantine, Store

WAIT = RunOptions(no_wait=True)
WHO = 'sleep 0.3; echo "{\\"who\\": \\"$AGENTHQ_AGENT\\", \\"step\\": \\"$AGENTHQ_STEP_ID\\"}"'


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
    store: Store, tmp_path: Path, agents: dict[str, Any], gates: GateConfig | None = None
) -> Runner:
    environ = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    return Runner(
        store,
        home=tmp_path / ".agenthq",
        environ=environ,
        gates=gates or GateConfig(policy=Policy(allow=("sleep *", "echo *", "test *"))),
        agents=agents_from_table(agents, "agenthq.toml"),
        scheduler_options=SchedulerOptions(poll_interval=0.05),
    )


def spans(store: Store, run_id: str) -> dict[str, list[tuple[float, float]]]:
    """Agent → (start, end) of each attempt it ran."""
    steps = {s.step_id: s for s in store.get_steps(run_id)}
    out: dict[str, list[tuple[float, float]]] = {}
    for attempt in store.get_attempts(run_id):
        who = steps[attempt.step_id].outputs["who"]
        assert attempt.finished_at is not None
        out.setdefault(who, []).append((attempt.started_at, attempt.finished_at))
    return out


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = now = 0
    for _, delta in edges:
        now += delta
        best = max(best, now)
    return best


def test_capability_steps_spread_over_agents_within_their_limits(
    store: Store, tmp_path: Path, workspace: Path
) -> None:
    agents = {
        "rev-a": {"capabilities": ["review"], "max_concurrency": 1},
        "rev-b": {"capabilities": ["review", "lint"], "max_concurrency": 2},
        "other": {"capabilities": ["deploy"], "max_concurrency": 5},
    }
    runner = make_runner(store, tmp_path, agents)
    plan = agenthq.Plan("p")
    for i in range(6):
        plan.step(f"r{i}", run=WHO, agent={"capability": "review"})
    run = runner.run(plan, workspace=workspace, max_workers=8)
    assert run.state.value == "succeeded"
    used = spans(store, run.id)
    assert set(used) == {"rev-a", "rev-b"}  # never the agent without the tag
    assert most_at_once(used["rev-a"]) <= 1
    assert most_at_once(used["rev-b"]) <= 2
    assert most_at_once(used["rev-a"] + used["rev-b"]) == 3  # both were kept busy
    picked = [
        e.details.get("agent") for e in store.read_events(run_id=run.id) if e.to_state == "running"
    ]
    assert sorted(p for p in picked if p) == sorted(
        agent for agent, times in used.items() for _ in times
    )


def test_a_named_agent_never_runs_past_its_max_concurrency(
    store: Store, tmp_path: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, {"solo": {"max_concurrency": 1}})
    plan = agenthq.Plan("p")
    for i in range(3):
        plan.step(f"s{i}", run=WHO, agent="solo")
    run = runner.run(plan, workspace=workspace, max_workers=8)
    assert run.state.value == "succeeded"
    assert most_at_once(spans(store, run.id)["solo"]) == 1


def test_a_step_no_agent_can_take_waits_and_says_why(
    store: Store, tmp_path: Path, workspace: Path
) -> None:
    store.apply(
        agenthq.store.api.Batch(
            at=time.time(), quarantines=[Quarantine("rev-a", "left TODOs", "old-run", "fix")]
        )
    )
    runner = make_runner(store, tmp_path, {"rev-a": {"capabilities": ["review"]}})
    plan = agenthq.Plan("p").step("r", run=WHO, agent={"capability": "review"})
    run = runner.run(plan, workspace=workspace, options=WAIT)
    assert run.state.value == "awaiting_approval"  # only a person (a release) can move it
    (step,) = store.get_steps(run.id)
    assert step.state.value == "ready"
    assert step.reason is not None
    assert "no agent with 'review' can take it" in step.reason
    assert "rev-a is quarantined (left TODOs)" in step.reason
    store.release_agent("rev-a", by="alice", note="fixed", at=time.time())
    assert runner.resume(run.id).state.value == "succeeded"


def test_an_unhealthy_agent_gets_no_steps_until_its_check_passes(
    store: Store, tmp_path: Path, workspace: Path
) -> None:
    flag = tmp_path / "up"
    check = {"command": f"test -f {flag}", "every": "0.2s", "retries": 1, "backoff": "0.05s"}
    runner = make_runner(store, tmp_path, {"svc": {"health": check}})
    plan = agenthq.Plan("p").step("s", run=WHO, agent="svc")
    record = runner.start(plan, workspace=workspace)
    seen: list[str | None] = []

    def watch() -> None:
        deadline = time.time() + 20
        while time.time() < deadline:
            (step,) = store.get_steps(record.id)
            if step.reason and "unhealthy" in step.reason:
                seen.append(step.reason)
                flag.write_text("")
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    run = runner.execute(record.id)
    watcher.join()
    assert run.state.value == "succeeded"
    assert seen
    assert seen[0].startswith("agent svc is unhealthy: exit 1")
    health = store.agent_health()["svc"]
    assert health.health == "healthy"
    kinds = [e.kind for e in store.read_events() if e.kind == "agent.health"]
    assert kinds == ["agent.health", "agent.health"]  # unhealthy, then healthy again


def test_an_agent_that_requires_approval_asks_for_every_step(
    store: Store, tmp_path: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, {"careful": {"risk": "approval_required"}})
    plan = agenthq.Plan("p").step("s", run="echo hi", agent="careful")
    run = runner.run(plan, workspace=workspace, options=WAIT)
    assert run.state.value == "awaiting_approval"
    (ask,) = store.list_approvals(run_id=run.id)
    # The person is told who asked: the agent, not the step.
    assert "agent careful has risk: approval_required" in ask.reasons
    assert "the step declared" not in " ".join(ask.reasons)
    assert ask.step_id == "s"
    assert not any(a.step_id == "s" for a in store.get_attempts(run.id))


def test_a_budget_hold_names_a_cheaper_agent_with_the_same_capability(
    store: Store, tmp_path: Path, workspace: Path
) -> None:
    agents = {
        "opus": {"capabilities": ["code"], "price": {"input_per_mtok": 15, "output_per_mtok": 75}},
        "haiku": {"capabilities": ["code"], "price": {"input_per_mtok": 1, "output_per_mtok": 5}},
    }
    runner = make_runner(store, tmp_path, agents)
    spend = 'echo \'{"agenthq": {"cost_usd": 0.2}}\''
    plan = (
        agenthq.Plan("p", budgets={"run_usd": 0.1})
        .step("first", run=spend, agent="opus")
        .step("second", run=spend, agent="opus", needs=["first"])
    )
    run = runner.run(plan, workspace=workspace, options=WAIT)
    assert run.state.value == "awaiting_approval"
    (ask,) = store.list_approvals(run_id=run.id)
    assert ask.kind.value == "budget"
    assert "haiku is a cheaper agent with the same capability" in " ".join(ask.reasons)


@pytest.mark.parametrize(
    ("agents", "step", "message"),
    [
        ({}, {"prompt": "fix it", "agent": "claude"}, "agent 'claude', which is not declared"),
        (
            {"sh": {}},
            {"prompt": "fix it", "agent": "sh"},
            'agent sh is a shell agent; prompts go to kind = "cli" or "llm" agents',
        ),
        ({}, {"agent": {"capability": "gpu"}, "run": "true"}, "no agent has it"),
        ({"sh": {}}, {"agent": "sh"}, "agent 'sh' has no callable of its own"),
        (
            {
                "gpt": {
                    "kind": "llm",
                    "base_url": "http://127.0.0.1:9",
                    "model": "m",
                    "api_key_secret": "NO_SUCH_KEY_VAR",
                }
            },
            {"prompt": "hi", "agent": "gpt"},
            "reads its API key from $NO_SUCH_KEY_VAR, which is not set",
        ),
    ],
)
def test_steps_asking_agents_for_what_they_cannot_do_are_refused_before_the_run(
    store: Store, tmp_path: Path, agents: dict[str, Any], step: dict[str, Any], message: str
) -> None:
    runner = make_runner(store, tmp_path, agents)
    plan = agenthq.Plan("p").step("s", **step)
    with pytest.raises(ConfigError, match=None) as caught:
        runner.start(plan)
    assert message in str(caught.value)
    assert store.list_runs() == []


def test_bad_agent_tables_name_the_file_agent_and_key() -> None:
    with pytest.raises(ConfigError) as caught:
        agents_from_table({"claude": {"kind": "cli"}}, "agenthq.toml")
    assert str(caught.value).startswith("agenthq.toml: [agents.claude]: a cli agent needs `tool`")
    with pytest.raises(ConfigError) as caught:
        agents_from_table({"x": {"max_concurrency": 0}}, "agenthq.toml")
    assert "max_concurrency" in str(caught.value)
    assert isinstance(AgentSpec(), AgentSpec)
