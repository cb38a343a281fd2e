"""The pure parts of the gates' engine side: breakers, budgets, approval SLAs, gate settings."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import agenthq
from agenthq.engine import approvals
from agenthq.engine.gating import DEFAULT_GATES, GateConfig, GatePipeline, gate_config_from_tables
from agenthq.errors import ConfigError
from agenthq.gates.base import GateResult, Outcome, Phase, StepFacts
from agenthq.gates.breaker import (
    Breaker,
    BreakerPhase,
    BreakerSettings,
    admit,
    record_failure,
    record_success,
)
from agenthq.gates.cost import CostFacts, check_budget
from agenthq.graph import compile_plan
from agenthq.spec.models import ApprovalSpec
from agenthq.store.api import ApprovalKind, ApprovalRecord, ApprovalState

SETTINGS = BreakerSettings(failures=3, cooldown_s=10.0, max_cooldown_s=35.0)


def test_breaker_opens_after_n_consecutive_failures_only() -> None:
    b = Breaker("agent:a")
    b = record_failure(b, SETTINGS, now=1.0)
    b = record_failure(b, SETTINGS, now=2.0)
    assert b.phase is BreakerPhase.CLOSED
    b = record_success(b, SETTINGS)  # a success in between resets the count
    for t in (3.0, 4.0):
        b = record_failure(b, SETTINGS, now=t)
    assert b.phase is BreakerPhase.CLOSED
    b = record_failure(b, SETTINGS, now=5.0)
    assert b.phase is BreakerPhase.OPEN
    assert b.opened_at == 5.0
    assert b.trips == 1


def test_open_breaker_refuses_until_cooldown_then_lets_exactly_one_trial() -> None:
    b = Breaker("agent:a", BreakerPhase.OPEN, 3, opened_at=100.0, cooldown_s=10.0, trips=1)
    early = admit(b, SETTINGS, now=105.0)
    assert not early.allowed
    assert early.retry_at == 110.0
    assert "again in 5s" in (early.reason or "")
    trial = admit(b, SETTINGS, now=110.0)
    assert trial.allowed
    assert trial.breaker.phase is BreakerPhase.HALF_OPEN
    second = admit(trial.breaker, SETTINGS, now=110.5)
    assert not second.allowed
    assert "half-open" in (second.reason or "")


def test_failed_trial_reopens_with_doubled_capped_cooldown_and_success_closes() -> None:
    half = Breaker("agent:a", BreakerPhase.HALF_OPEN, 3, 100.0, 10.0, 1, trial_running=True)
    reopened = record_failure(half, SETTINGS, now=120.0)
    assert reopened.phase is BreakerPhase.OPEN
    assert reopened.cooldown_s == 20.0
    assert reopened.trips == 2
    again = record_failure(
        Breaker("agent:a", BreakerPhase.HALF_OPEN, 4, 120.0, 20.0, 2), SETTINGS, now=150.0
    )
    assert again.cooldown_s == 35.0  # capped at max_cooldown_s
    closed = record_success(half, SETTINGS)
    assert closed.phase is BreakerPhase.CLOSED
    assert closed.failures == 0
    assert closed.trips == 1


def facts(**kw: float | None) -> CostFacts:
    base: dict[str, float | None] = {
        "step_spent": 0.0,
        "run_spent": 0.0,
        "hour_spent": 0.0,
        "step_limit": None,
        "run_limit": None,
        "hourly_limit": None,
    }
    base.update(kw)
    return CostFacts(**base)  # type: ignore[arg-type]


def test_budgets_step_then_run_ask_and_the_hour_retries() -> None:
    assert check_budget(facts()).outcome is Outcome.PASS
    assert check_budget(facts(run_spent=0.5, run_limit=1.0)).outcome is Outcome.PASS
    step = check_budget(facts(step_spent=1.0, step_limit=1.0, run_spent=9, run_limit=1))
    assert step.outcome is Outcome.ASK
    assert step.details["budget"]["scope"] == "step"
    run = check_budget(facts(run_spent=1.2, run_limit=1.0))
    assert run.outcome is Outcome.ASK
    assert run.details["budget"] == {"scope": "run", "spent_usd": 1.2, "limit_usd": 1.0}
    assert "--extend" in run.reason
    hour = check_budget(facts(hour_spent=3.0, hourly_limit=2.0))
    assert hour.outcome is Outcome.RETRY


def ask(gate: str, reason: str, **details: object) -> GateResult:
    return GateResult(gate, Outcome.ASK, reason, 40.0 if gate == "risk" else None, details)


def test_approval_request_carries_sla_reasons_and_kind() -> None:
    spec = ApprovalSpec(timeout=3600, warn_before=600, escalate_after=1200, escalate_to="oncall")
    request = approvals.request(
        run_id="r",
        step_id="s",
        attempt=1,
        at=1000.0,
        spec=spec,
        command="git push",
        results=[ask("risk", "risk 40: pushes", reasons=["pushes to a remote"])],
    )
    assert request.kind is ApprovalKind.GATE
    assert request.expires_at == 4600.0
    assert request.warn_at == 4000.0
    assert request.escalate_at == 2200.0
    assert request.escalate_to == "oncall"
    assert request.reasons == ("pushes to a remote",)
    assert request.score == 40.0
    budget = approvals.request(
        run_id="r",
        step_id="s",
        attempt=1,
        at=0.0,
        spec=ApprovalSpec(),
        command=None,
        results=[ask("cost", "over", budget={"scope": "run", "spent_usd": 2, "limit_usd": 1})],
    )
    assert budget.kind is ApprovalKind.BUDGET
    assert budget.request["scope"] == "run"


def record(kind: ApprovalKind, on_timeout: str) -> ApprovalRecord:
    return ApprovalRecord(
        id=7,
        run_id="r",
        step_id="s",
        attempt=1,
        kind=kind,
        state=ApprovalState.PENDING,
        requested_at=0.0,
        expires_at=10.0,
        warn_at=None,
        escalate_at=None,
        escalate_to=None,
        warned=False,
        escalated=False,
        on_timeout=on_timeout,
        command=None,
        score=None,
        reasons=(),
        request={},
        decided_at=None,
        decided_by=None,
        note=None,
        extend_usd=None,
    )


def test_expiry_follows_on_timeout_but_never_grants_money() -> None:
    rejected = approvals.expiry(record(ApprovalKind.GATE, "reject"), now=7200.0)
    assert rejected.state is ApprovalState.REJECTED
    assert rejected.by == "timeout"
    assert rejected.expired
    assert "2.0h" in (rejected.note or "")
    approved = approvals.expiry(record(ApprovalKind.GATE, "approve"), now=20.0)
    assert approved.state is ApprovalState.APPROVED
    money = approvals.expiry(record(ApprovalKind.BUDGET, "approve"), now=20.0)
    assert money.state is ApprovalState.REJECTED


def test_approval_spec_is_validated() -> None:
    with pytest.raises(ValueError, match="escalate"):
        ApprovalSpec(escalate_after=60)
    with pytest.raises(ValueError, match="shorter than"):
        ApprovalSpec(timeout=60, escalate_after=120, escalate_to="x")


def test_gate_config_from_toml_tables() -> None:
    where = str(Path("agenthq.toml"))
    config = gate_config_from_tables(
        {
            "policy": {"allow": ["make *"], "auto_max": 10},
            "gates": {"default": ["risk", "approval"], "time_budget_s": 2},
            "approvals": {
                "timeout": "2h",
                "allow_approve_on_timeout": True,
                "on_timeout": "approve",
            },
            "budgets": {"run_usd": 5},
            "breaker": {"failures": 5, "cooldown_s": 30},
        },
        where,
    )
    assert config.policy.allow == ("make *",)
    assert config.policy.auto_max == 10
    assert config.default_gates == ("risk", "approval")
    assert config.gate_time_budget_s == 2.0
    assert config.approval.timeout == 7200.0
    assert config.approve_on_timeout
    assert config.budgets.run_usd == 5
    assert config.breaker == BreakerSettings(failures=5, cooldown_s=30.0, max_cooldown_s=3600.0)
    assert GateConfig().default_gates == DEFAULT_GATES
    assert "approval" not in DEFAULT_GATES


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"gates": {"default": ["risky"]}}, "unknown gate 'risky'"),
        ({"gates": {"defaults": ["risk"]}}, "unknown key gates.defaults"),
        ({"gates": {"time_budget_s": 0}}, "time_budget_s"),
        ({"approvals": {"timeout": "later"}}, "approvals.timeout"),
        ({"approvals": {"on_timeout": "approve"}}, "allow_approve_on_timeout"),
        ({"budgets": {"run_usd": -1}}, "budgets.run_usd"),
        ({"breaker": {"failures": "many"}}, "numbers"),
        ({"breaker": {"flaky": 1}}, "unknown key breaker.flaky"),
        ({"gates": "all"}, "[gates] must be a table"),
    ],
)
def test_bad_gate_settings_say_where_and_what(tables: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        gate_config_from_tables(tables, "/p/agenthq.toml")
    assert message in str(caught.value)
    assert "/p/agenthq.toml" in str(caught.value)


class FlakyRiskGate:
    """Raises for its first `crashes` checks, then passes."""

    name = "risk"
    phase = Phase.BEFORE

    def __init__(self, crashes: int) -> None:
        self.crashes = crashes

    def check(self, facts: StepFacts) -> GateResult:
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("model file missing")
        return GateResult("risk", Outcome.PASS, "fine")


def test_a_gates_breaker_opens_on_crashes_lets_one_trial_through_and_stays_quiet_on_passes(
    tmp_path: Path,
) -> None:
    graph = compile_plan(agenthq.Plan("p").step("ls", run="ls").spec())
    node = graph.nodes["ls"]

    def before(pipeline: GatePipeline) -> GateResult:
        (result,) = pipeline.before(node, attempt=1, command="ls", cost=None)
        return result

    passing = GatePipeline(GateConfig(implementations={"risk": FlakyRiskGate(0)}), graph, tmp_path)
    assert [before(passing).outcome for _ in range(5)] == [Outcome.PASS] * 5
    assert passing.take_breaker_changes() == []  # nothing for the store: nothing changed

    settings = BreakerSettings(failures=2, cooldown_s=0.2)
    config = GateConfig(implementations={"risk": FlakyRiskGate(2)}, breaker=settings)
    crashing = GatePipeline(config, graph, tmp_path)
    first, second, third = before(crashing), before(crashing), before(crashing)
    assert first.outcome is second.outcome is Outcome.ASK
    assert "model file missing" in first.reason
    assert third.outcome is Outcome.ASK
    assert "breaker gate:risk is open after 2 failures" in third.reason
    assert [(b.phase, b.failures) for b in crashing.take_breaker_changes()] == [
        (BreakerPhase.CLOSED, 1),
        (BreakerPhase.OPEN, 2),
    ]
    time.sleep(0.25)
    assert before(crashing).outcome is Outcome.PASS  # the trial, let through and passed
    assert [(b.phase, b.failures) for b in crashing.take_breaker_changes()] == [
        (BreakerPhase.CLOSED, 0)
    ]
    assert before(crashing).outcome is Outcome.PASS
    assert crashing.take_breaker_changes() == []


@pytest.mark.parametrize(
    ("plan", "built"),
    [
        (agenthq.Plan("p").step("py", uses="agenthq.builtin:noop").step("sh", run="ls"), True),
        (agenthq.Plan("p").step("py", uses="agenthq.builtin:noop"), False),
        (agenthq.Plan("p").step("sh", run="ls", gates=["secrets"]), False),
        (agenthq.Plan("p").defaults(gates=[]).step("sh", run="ls"), False),
    ],
    ids=["shell-step", "python-only", "shell-without-risk", "gates-off"],
)
def test_prepare_builds_the_risk_gate_only_for_a_plan_whose_processes_it_will_score(
    tmp_path: Path, plan: agenthq.Plan, built: bool
) -> None:
    """Built in setup rather than by the first step, so the run does not wait for the shell
    parser; never for a plan no step of which it would score, nor any after-gate."""
    pipeline = GatePipeline(GateConfig(), compile_plan(plan.spec()), tmp_path)
    pipeline.prepare()
    assert sorted(pipeline.gates) == (["risk"] if built else [])
    if built:
        gate = pipeline.gates["risk"]
        (result,) = pipeline.before(pipeline.graph.nodes["sh"], attempt=1, command="ls", cost=None)
        assert result.gate == "risk"
        assert pipeline.gates["risk"] is gate  # the step used the one built, not a second


@pytest.mark.parametrize(
    ("step", "loaded"), [("run='ls'", True), ("uses='agenthq.builtin:noop'", False)]
)
def test_prepare_loads_the_shell_parser_for_a_plan_with_shell_steps_only(
    step: str, loaded: bool
) -> None:
    """In a fresh interpreter: after prepare(), the first command needs nothing loaded."""
    code = (
        "import sys, tempfile, pathlib, agenthq\n"
        "from agenthq.engine.gating import GateConfig, GatePipeline\n"
        "from agenthq.graph import compile_plan\n"
        f"graph = compile_plan(agenthq.Plan('p').step('s', {step}).spec())\n"
        "GatePipeline(GateConfig(), graph, pathlib.Path(tempfile.gettempdir())).prepare()\n"
        "print('tree_sitter_bash' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == str(loaded)


@pytest.mark.parametrize(
    ("wrote", "out_text", "applies"),
    [
        (True, None, True),  # the executor says it wrote: no file is asked (there is none)
        (False, "ghp_token\n", False),  # it says it did not: the files are not read
        (None, "ghp_token\n", True),  # it cannot tell: the files are asked
        (None, "", False),
    ],
    ids=["wrote", "did-not-write", "unknown-with-output", "unknown-empty"],
)
def test_the_secrets_gate_applies_after_a_step_by_the_executors_word_on_its_logs(
    tmp_path: Path, wrote: bool | None, out_text: str | None, applies: bool
) -> None:
    plan = agenthq.Plan("p").step("sh", run="ls", gates=["secrets"])
    pipeline = GatePipeline(GateConfig(), compile_plan(plan.spec()), tmp_path)
    stdout, stderr = tmp_path / "sh.1.out", tmp_path / "sh.1.err"
    if out_text is not None:
        stdout.write_text(out_text)
    node = pipeline.graph.nodes["sh"]
    assert pipeline.after_applies(node, stdout, stderr, wrote) is applies
