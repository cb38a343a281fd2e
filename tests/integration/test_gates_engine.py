"""The gates inside the engine, on a real SQLite file with real processes: dangerous commands
never run, people decide, approvals expire loudly, quarantine and breakers hold agents back,
budgets stop spending, and a gate that breaks makes a step wait instead of run."""

from __future__ import annotations

import os
import random
import string
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import agenthq
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner, RunOptions
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.errors import StateError
from agenthq.gates.base import GateResult, Phase, StepFacts
from agenthq.gates.breaker import BreakerSettings
from agenthq.gates.policy import Policy
from agenthq.store.api import AgentState, ApprovalState, Store

WAIT = RunOptions(no_wait=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as opened:
        yield opened


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A HOME of our own with canary files that a `rm -rf ~/` would delete."""
    path = tmp_path / "home"
    (path / ".ssh").mkdir(parents=True)
    (path / "canary.txt").write_text("still here\n")
    (path / ".ssh" / "id_canary").write_text("not a real key\n")
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


# `touch` would be asked about (it creates files); these tests use it to prove a step ran.
TOUCH_ALLOWED = Policy(allow=("touch *",))


def make_runner(
    store: Store, tmp_path: Path, home: Path, gates: GateConfig | None = None
) -> Runner:
    gates = gates if gates is not None else GateConfig(policy=TOUCH_ALLOWED)
    environ = {"HOME": str(home), "PATH": os.environ["PATH"]}
    options = SchedulerOptions(poll_interval=0.05)
    return Runner(
        store, home=tmp_path / ".agenthq", environ=environ, gates=gates, scheduler_options=options
    )


def step_states(store: Store, run_id: str) -> dict[str, str]:
    return {s.step_id: s.state.value for s in store.get_steps(run_id)}


def event_kinds(store: Store, run_id: str) -> list[str]:
    return [e.kind for e in store.read_events(run_id=run_id)]


@pytest.mark.parametrize(
    "command",
    [
        "rm -rf ~/",
        "rm -rf ~",
        "bash -c 'rm -rf $HOME/*'",
        "cd ~ && rm -rf .",
        "find ~ -delete",
        'sh -c "find ~ -type f -exec rm {} +"',
    ],
)
def test_rm_rf_home_never_runs(
    store: Store, tmp_path: Path, home: Path, workspace: Path, command: str
) -> None:
    runner = make_runner(store, tmp_path, home)
    plan = agenthq.Plan("wipe").step("wipe", run=command).step("after", run="true", needs=["wipe"])
    run = runner.run(plan, workspace=workspace, options=WAIT)
    assert (home / "canary.txt").read_text() == "still here\n"
    assert (home / ".ssh" / "id_canary").exists()
    steps = {s.step_id: s for s in store.get_steps(run.id)}
    assert steps["wipe"].state.value in ("failed", "awaiting_approval")
    assert steps["wipe"].attempts == 0  # no attempt, no process, ever
    assert store.get_attempts(run.id, "wipe") == []
    assert steps["after"].state.value in ("blocked", "pending")
    risk = [g for g in store.get_gate_results(run.id, "wipe") if g.gate == "risk"]
    assert risk
    assert risk[0].outcome in ("refuse", "ask")
    assert risk[0].score is not None
    assert risk[0].score >= 50


def test_refused_step_fails_with_class_gate_and_the_reasons(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, home)
    run = runner.run(agenthq.Plan("p").step("wipe", run="rm -rf /"), workspace=workspace)
    assert run.state.value == "failed"
    (step,) = store.get_steps(run.id)
    assert step.failure_class is not None
    assert step.failure_class.value == "gate"
    assert step.reason is not None
    assert "risk" in step.reason
    moves = [(e.from_state, e.to_state) for e in store.read_events(run_id=run.id) if e.step_id]
    assert ("ready", "gating") in moves
    assert ("gating", "failed") in moves
    gated = next(e for e in store.read_events(run_id=run.id) if e.to_state == "failed")
    assert gated.details["gates"][0]["outcome"] == "refuse"


def test_policy_rules_of_plan_and_project(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    project = GateConfig(policy=Policy(deny=("echo forbidden*",)))
    runner = make_runner(store, tmp_path, home, project)
    plan = (
        agenthq.Plan("p", policy={"allow": ["curl *"]})
        .step("quoted", run="echo 'git push --force'")  # an echo is not a push
        .step("denied", run="echo forbidden fruit")
    )
    run = runner.run(plan, workspace=workspace, options=WAIT)
    states = step_states(store, run.id)
    assert states["quoted"] == "succeeded"
    assert states["denied"] == "failed"


def test_approve_lets_the_step_run_and_resume_finishes(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, home)
    plan = (
        agenthq.Plan("p")
        .step("deploy", run="touch deployed", risk="approval_required")
        .step("after", run="touch after", needs=["deploy"])
    )
    run = runner.run(plan, workspace=workspace, options=WAIT)
    assert run.state.value == "awaiting_approval"
    assert not (workspace / "deployed").exists()
    (waiting,) = store.list_approvals(run_id=run.id)
    assert waiting.step_id == "deploy"
    assert waiting.kind.value == "gate"
    decided = runner.decide(run.id, "deploy", approve=True, by="alice", note="ship it")
    assert decided[0].state is ApprovalState.APPROVED
    assert decided[0].decided_by == "alice"
    with pytest.raises(StateError, match="not waiting"):
        runner.decide(run.id, "deploy", approve=True, by="bob")
    final = runner.resume(run.id)
    assert final.state.value == "succeeded"
    assert (workspace / "deployed").exists()
    assert (workspace / "after").exists()
    kinds = event_kinds(store, run.id)
    assert kinds.index("approval.requested") < kinds.index("approval.decided")
    decided_event = next(
        e for e in store.read_events(run_id=run.id) if e.kind == "approval.decided"
    )
    assert decided_event.details["by"] == "alice"
    assert decided_event.details["note"] == "ship it"


def test_reject_fails_the_step_and_trigger_rules_decide_the_rest(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, home)
    plan = (
        agenthq.Plan("p")
        .step("deploy", run="touch deployed", risk="approval_required")
        .step("notify", run="touch notified", needs=["deploy"])
        .step("cleanup", run="touch cleaned", needs=["deploy"], trigger="all_done")
    )
    run = runner.run(plan, workspace=workspace, options=WAIT)
    runner.decide(run.id, "deploy", approve=False, by="alice", note="not today")
    final = runner.resume(run.id)
    assert final.state.value == "failed"
    states = step_states(store, run.id)
    assert states == {"deploy": "failed", "notify": "blocked", "cleanup": "succeeded"}
    deploy = next(s for s in store.get_steps(run.id) if s.step_id == "deploy")
    assert deploy.reason == "approval rejected by alice: not today"
    assert not (workspace / "deployed").exists()


def test_approve_all_with_max_score_approves_only_the_low_ones(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, home)
    plan = (
        agenthq.Plan("p")
        .step("fetch", run="curl -s https://example.invalid/ -o page.html")
        .step("push", run="git push origin main")
    )
    run = runner.run(plan, workspace=workspace, options=WAIT)
    pending = {a.step_id: a.score for a in store.list_approvals(run_id=run.id)}
    assert set(pending) == {"fetch", "push"}
    low = min(s for s in pending.values() if s is not None)
    decided = runner.decide(run.id, None, approve=True, by="alice", max_score=low)
    assert [a.step_id for a in decided] == [min(pending, key=lambda k: pending[k] or 0)]


def test_expired_approval_rejects_with_a_warning_first(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, home)
    plan = agenthq.Plan("p").step(
        "deploy",
        run="touch deployed",
        risk="approval_required",
        approval={"timeout": "1s", "warn_before": "0.6s"},
    )
    final = runner.run(plan, workspace=workspace)  # waits: the SLA decides
    assert final.state.value == "failed"
    assert not (workspace / "deployed").exists()
    (approval,) = store.list_approvals(run_id=final.id, state=None)
    assert approval.state is ApprovalState.REJECTED
    assert approval.decided_by == "timeout"
    kinds = event_kinds(store, final.id)
    assert kinds.index("approval.warning") < kinds.index("approval.expired")
    (step,) = store.get_steps(final.id)
    assert step.reason is not None
    assert "expired" in step.reason


def test_on_timeout_approve_needs_the_project_to_allow_it(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    plan = agenthq.Plan("p").step(
        "deploy",
        run="touch deployed",
        risk="approval_required",
        approval={"timeout": "0.5s", "on_timeout": "approve"},
    )
    with pytest.raises(agenthq.ConfigError, match="allow_approve_on_timeout"):
        make_runner(store, tmp_path, home).run(plan, workspace=workspace)
    assert store.list_runs() == []  # nothing written for a refused plan
    allowed = make_runner(
        store, tmp_path, home, GateConfig(policy=TOUCH_ALLOWED, approve_on_timeout=True)
    )
    final = allowed.run(plan, workspace=workspace)
    assert final.state.value == "succeeded"
    assert (workspace / "deployed").exists()


class ExplodingGate:
    name = "risk"
    phase = Phase.BEFORE

    def check(self, facts: StepFacts) -> GateResult:
        raise RuntimeError("model file missing")


def test_a_gate_that_raises_makes_the_step_wait(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    config = GateConfig(implementations={"risk": ExplodingGate()})
    runner = make_runner(store, tmp_path, home, config)
    run = runner.run(agenthq.Plan("p").step("ls", run="ls"), workspace=workspace, options=WAIT)
    assert run.state.value == "awaiting_approval"
    (step,) = store.get_steps(run.id)
    assert step.state.value == "awaiting_approval"
    assert step.attempts == 0
    assert step.reason is not None
    assert "model file missing" in step.reason


def test_the_secrets_gate_reads_the_steps_that_wrote_something_and_only_those(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    rng = random.Random(7)
    token = "ghp_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(36))
    plan = (
        agenthq.Plan("p")
        .step("quiet", run="true")
        .step("loud", run=f"echo {token}")
        .step("grumbles", run=f"sh -c 'echo {token} >&2'")
        .step("python", uses="agenthq.builtin:noop")  # no `ctx`: its logs are not looked at
        .step("python-logs", uses="agenthq.builtin:echo", with_={"text": token})  # logs via ctx
    )
    config = GateConfig(policy=Policy(allow=("echo *", "sh -c *")))
    run = make_runner(store, tmp_path, home, config).run(plan, workspace=workspace)
    after = {g.step_id: g.outcome for g in store.get_gate_results(run.id) if g.phase == "after"}
    # nothing to read elsewhere
    assert after == {"loud": "refuse", "grumbles": "refuse", "python-logs": "refuse"}
    states = step_states(store, run.id)
    assert states == {
        "quiet": "succeeded",
        "loud": "failed",
        "grumbles": "failed",
        "python": "succeeded",
        "python-logs": "failed",
    }


def git_workspace(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "src").mkdir()
    (path / "src" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True, env=env)
    return path


def test_placeholder_code_quarantines_the_agent_until_released(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    git_workspace(workspace)
    runner = make_runner(store, tmp_path, home)
    lazy = "printf 'def add(a, b):\\n    # ... existing code ...\\n    pass\\n' > src/calc.py"
    plan = agenthq.Plan("p", policy={"allow": ["printf *"]}).step(
        "edit", run=lazy, agent="coder", writes=["src/**"]
    )
    run = runner.run(plan, workspace=workspace, options=WAIT)
    (edit,) = store.get_steps(run.id)
    assert edit.state.value == "failed"
    assert edit.failure_class is not None
    assert edit.failure_class.value == "gate"
    (agent,) = store.list_agents()
    assert agent.name == "coder"
    assert agent.state is AgentState.QUARANTINED
    assert agent.step_id == "edit"
    assert agent.run_id == run.id
    quality = [g for g in store.get_gate_results(run.id, "edit") if g.gate == "quality"]
    assert quality[0].outcome == "refuse"
    assert quality[0].phase == "after"

    # A quarantined agent gets no steps: the next run waits for a person.
    follow = agenthq.Plan("q").step("more", run="touch more-work", agent="coder")
    held = runner.run(follow, workspace=workspace, options=WAIT)
    assert held.state.value == "awaiting_approval"
    assert not (workspace / "more-work").exists()
    assert store.get_attempts(held.id) == []

    released = store.release_agent("coder", by="alice", note="fixed the prompt", at=1.0)
    assert released.state is AgentState.OK
    with pytest.raises(StateError, match="not quarantined"):
        store.release_agent("coder", by="alice", note=None, at=2.0)
    assert runner.resume(held.id).state.value == "succeeded"
    assert (workspace / "more-work").exists()
    released_events = [e for e in store.read_events() if e.kind == "agent.released"]
    assert released_events[0].details["by"] == "alice"


def test_breaker_opens_half_opens_and_closes(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    config = GateConfig(policy=TOUCH_ALLOWED, breaker=BreakerSettings(failures=2, cooldown_s=0.3))
    runner = make_runner(store, tmp_path, home, config)
    plan = (
        agenthq.Plan("p")
        .step("f1", run="false", agent="flaky")
        .step("f2", run="false", agent="flaky")
        .step("ok1", run="touch ok1", agent="flaky")
        .step("ok2", run="touch ok2", agent="flaky")
    )
    run = runner.run(plan, workspace=workspace, max_workers=1)
    assert step_states(store, run.id) == {
        "f1": "failed",
        "f2": "failed",
        "ok1": "succeeded",
        "ok2": "succeeded",
    }
    transitions = [e.kind for e in store.read_events() if e.kind.startswith("breaker.")]
    assert transitions == ["breaker.open", "breaker.half_open", "breaker.closed"]
    opened = next(e for e in store.read_events() if e.kind == "breaker.open")
    ok1 = store.get_attempts(run.id, "ok1")[0]
    assert ok1.started_at >= opened.at + 0.3  # held for the whole cool-down
    (breaker,) = store.get_breakers().values()
    assert breaker.state == "closed"
    assert breaker.trips == 1


def test_breaker_state_survives_a_restart(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    config = GateConfig(policy=TOUCH_ALLOWED, breaker=BreakerSettings(failures=1, cooldown_s=3600))
    runner = make_runner(store, tmp_path, home, config)
    runner.run(agenthq.Plan("p").step("f", run="false", agent="flaky"), workspace=workspace)
    assert store.get_breakers()["agent:flaky"].state == "open"
    again = make_runner(store, tmp_path, home, config)  # a new process would read the same row
    plan = agenthq.Plan("q").step("later", run="touch later", agent="flaky")
    record = again.start(plan, workspace=workspace)
    import asyncio

    async def briefly() -> None:
        task = asyncio.create_task(again.execute_async(record.id))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(briefly())
    assert not (workspace / "later").exists()
    assert store.get_attempts(record.id) == []


def usage(cost: float) -> str:
    return f'echo \'{{"agenthq": {{"cost_usd": {cost}}}}}\''


def test_cost_budget_blocks_the_next_step_until_extended(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, home)
    plan = (
        agenthq.Plan("p", budgets={"run_usd": 0.10})
        .step("c1", run=usage(0.06))
        .step("c2", run=usage(0.06), needs=["c1"])
        .step("c3", run="touch c3", needs=["c2"])
    )
    run = runner.run(plan, workspace=workspace, options=WAIT)
    assert run.state.value == "awaiting_approval"
    assert not (workspace / "c3").exists()
    attempts = {a.step_id: a for a in store.get_attempts(run.id)}
    assert attempts["c1"].cost_usd == pytest.approx(0.06)
    assert store.run_spending(run.id) == pytest.approx({"c1": 0.06, "c2": 0.06})
    (ask,) = store.list_approvals(run_id=run.id)
    assert ask.kind.value == "budget"
    assert ask.step_id == "c3"
    assert ask.request["scope"] == "run"
    assert ask.request["spent_usd"] == pytest.approx(0.12)
    with pytest.raises(StateError, match="--extend"):
        runner.decide(run.id, "c3", approve=True, by="alice")
    runner.decide(run.id, "c3", approve=True, by="alice", extend_usd=1.0)
    assert runner.resume(run.id).state.value == "succeeded"
    assert (workspace / "c3").exists()


def test_step_budget_counts_every_attempt(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, home)
    spend_and_fail = usage(0.05) + "; exit 1"
    plan = agenthq.Plan("p").step(
        "agent",
        run=spend_and_fail,
        budget_usd=0.08,
        retry={"max_attempts": 5, "initial": 0.01, "on": ["execution"]},
        gates=["cost"],
    )
    run = runner.run(plan, workspace=workspace, options=WAIT)
    assert run.state.value == "awaiting_approval"
    assert len(store.get_attempts(run.id, "agent")) == 2  # 0.05 + 0.05 ≥ 0.08: no third try
    (ask,) = store.list_approvals(run_id=run.id)
    assert ask.request["scope"] == "step"


def test_cancel_answers_the_open_approvals(
    store: Store, tmp_path: Path, home: Path, workspace: Path
) -> None:
    runner = make_runner(store, tmp_path, home)
    plan = agenthq.Plan("p").step("deploy", run="true", risk="approval_required")
    run = runner.run(plan, workspace=workspace, options=WAIT)
    runner.cancel(run.id)
    (approval,) = store.list_approvals(run_id=run.id, state=None)
    assert approval.state is ApprovalState.REJECTED
    assert approval.note == "run cancelled"
    assert store.list_approvals() == []
