"""Which gates a step passes through, with what settings — and what their answers mean.

The gates themselves (agenthq.gates) only judge. This module is where the engine meets them:
it resolves each step's gate list (step → plan defaults → agenthq.toml → all gates), builds
the facts a gate may look at, runs the gates of a phase through `run_gates` (fail closed),
keeps a breaker per gate so a gate that keeps crashing is asked about instead of called,
and turns answers into `GateRecord`s for the store.

Gates that cannot apply to a step are not run and leave no record (the risk gate on a Python
step, the secrets gate on a step that wrote nothing): W1's thousand no-op steps cost nothing
here, and the records that exist all mean something.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agenthq.agents.registry import Agent
from agenthq.errors import ConfigError
from agenthq.gates import breaker as breakers
from agenthq.gates.base import Gate, GateResult, Outcome, Phase, StepFacts, run_gates
from agenthq.gates.cost import CostFacts, check_budget
from agenthq.gates.policy import Policy
from agenthq.graph import PlanGraph, StepNode
from agenthq.ml.predictor import FailurePredictor, ModelSettings
from agenthq.spec.agents import AgentRisk
from agenthq.spec.models import GATE_NAMES, ApprovalSpec, BudgetSpec, OnTimeout, RiskLevel
from agenthq.store.api import GateRecord

__all__ = ["GateConfig", "GatePipeline", "gate_config_from_tables"]

# `approval` asks a person every time, so a step opts into it; the rest judge and mostly pass.
DEFAULT_GATES = ("risk", "secrets", "quality", "cost")


@dataclass(frozen=True)
class GateConfig:
    """The project's gate settings (agenthq.toml), handed to the engine as values."""

    policy: Policy = field(default_factory=Policy)
    default_gates: tuple[str, ...] = DEFAULT_GATES
    approval: ApprovalSpec = field(default_factory=ApprovalSpec)
    budgets: BudgetSpec = field(default_factory=BudgetSpec)
    breaker: breakers.BreakerSettings = field(default_factory=breakers.BreakerSettings)
    approve_on_timeout: bool = False  # may an SLA expiry approve? Only the project may say so.
    gate_time_budget_s: float = 5.0
    # Python SDK: replace a built-in gate's implementation by name (a stricter risk gate, a
    # company secrets scanner). Overrides are still run through run_gates, so they fail closed.
    implementations: Mapping[str, Gate] = field(default_factory=dict)
    model: ModelSettings = field(default_factory=ModelSettings)  # [model]: the failure model


def gate_config_from_tables(tables: Mapping[str, Any], where: str) -> GateConfig:
    """Build from agenthq.toml's tables; ConfigError naming the file and key on bad input."""
    policy = Policy.from_mapping(tables["policy"], where) if "policy" in tables else Policy()
    gates_table = _table(tables, "gates", where)
    _only(gates_table, ("default", "time_budget_s"), "gates", where)
    default = gates_table.get("default", list(DEFAULT_GATES))
    if not isinstance(default, list) or not all(isinstance(g, str) for g in default):
        raise ConfigError(f"{where}: gates.default must be a list of gate names")
    unknown = [g for g in default if g not in GATE_NAMES]
    if unknown:
        raise ConfigError(
            f"{where}: gates.default names unknown gate {unknown[0]!r}; "
            f"the gates are {', '.join(GATE_NAMES)}"
        )
    budget_s = gates_table.get("time_budget_s", 5.0)
    if not isinstance(budget_s, int | float) or budget_s <= 0:
        raise ConfigError(f"{where}: gates.time_budget_s must be a positive number of seconds")
    approvals_table = dict(_table(tables, "approvals", where))
    approve_on_timeout = approvals_table.pop("allow_approve_on_timeout", False)
    if not isinstance(approve_on_timeout, bool):
        raise ConfigError(f"{where}: approvals.allow_approve_on_timeout must be true or false")
    approval = _model(ApprovalSpec, approvals_table, "approvals", where)
    budgets = _model(BudgetSpec, _table(tables, "budgets", where), "budgets", where)
    breaker_table = _table(tables, "breaker", where)
    _only(breaker_table, ("failures", "cooldown_s", "max_cooldown_s"), "breaker", where)
    try:
        breaker = breakers.BreakerSettings(
            failures=int(breaker_table.get("failures", 3)),
            cooldown_s=float(breaker_table.get("cooldown_s", 60.0)),
            max_cooldown_s=float(breaker_table.get("max_cooldown_s", 3600.0)),
        )
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: [breaker] values must be numbers") from None
    if breaker.failures < 1 or breaker.cooldown_s <= 0:
        raise ConfigError(f"{where}: breaker.failures must be ≥ 1 and breaker.cooldown_s > 0")
    if approval.on_timeout is OnTimeout.APPROVE and not approve_on_timeout:
        raise ConfigError(
            f"{where}: approvals.on_timeout = 'approve' needs "
            "approvals.allow_approve_on_timeout = true"
        )
    return GateConfig(
        policy=policy,
        default_gates=tuple(default),
        approval=approval,
        budgets=budgets,
        breaker=breaker,
        approve_on_timeout=approve_on_timeout,
        gate_time_budget_s=float(budget_s),
        model=_model_settings(_table(tables, "model", where), where),
    )


def _model_settings(table: Mapping[str, Any], where: str) -> ModelSettings:
    _only(table, ("enabled", "weight", "max_age_days"), "model", where)
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: model.enabled must be true or false")
    weight = table.get("weight", 0.25)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        raise ConfigError(
            f"{where}: model.weight must be a number from 0 to 1 (the share of the 100 risk "
            "points a certain failure adds); 0 shows the prediction without using it"
        )
    age = table.get("max_age_days", 30)
    if isinstance(age, bool) or not isinstance(age, int | float) or age <= 0:
        raise ConfigError(f"{where}: model.max_age_days must be a number of days > 0")
    return ModelSettings(enabled=enabled, weight=float(weight), max_age_days=float(age))


def _table(tables: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = tables.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: [{name}] must be a table")
    return value


def _only(table: Mapping[str, Any], keys: Sequence[str], name: str, where: str) -> None:
    for key in table:
        if key not in keys:
            raise ConfigError(
                f"{where}: unknown key {name}.{key} (expected one of {', '.join(keys)})"
            )


def _model(model: Any, data: Mapping[str, Any], name: str, where: str) -> Any:
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}: {name}.{key}: {first['msg']}") from None


class GatePipeline:
    """The gates of one run. Lives as long as the scheduler; holds only gate breakers."""

    def __init__(
        self,
        config: GateConfig,
        graph: PlanGraph,
        workspace: Path,
        *,
        home: Path | None = None,
        gate_breakers: Mapping[str, breakers.Breaker] | None = None,
        predictor: Callable[[], FailurePredictor | None] | None = None,
    ) -> None:
        self.config = config
        # The failure model (only when it beats the baseline), asked for when the risk gate is
        # first built: a run of Python steps never loads scikit-learn.
        self.predictor = predictor
        self.graph = graph
        self.workspace = workspace
        plan_policy = graph.spec.policy
        self.policy = Policy(
            allow=(*config.policy.allow, *plan_policy.allow),
            ask=(*config.policy.ask, *plan_policy.ask),
            deny=(*config.policy.deny, *plan_policy.deny),
            auto_max=config.policy.auto_max,
            refuse_min=config.policy.refuse_min,
        )
        self.user_home = home if home is not None else Path(os.path.expanduser("~"))
        # Built on first use: the risk, secrets and quality gates import parsers and
        # detect-secrets (a tenth of a second), which a run of Python steps never needs.
        self.gates: dict[str, Gate] = dict(config.implementations)
        self.breakers: dict[str, breakers.Breaker] = dict(gate_breakers or {})
        self.changed_breakers: list[breakers.Breaker] = []
        # Both per plan step (`base_id`) and fixed for the run: asked for every step started.
        self._names: dict[str, tuple[str, ...]] = {}
        self._uses_cost: dict[str, bool] = {}
        plan_budgets, project = graph.spec.budgets, config.budgets
        self._budgets = BudgetSpec(
            step_usd=plan_budgets.step_usd or project.step_usd,
            run_usd=plan_budgets.run_usd or project.run_usd,
            hourly_usd=plan_budgets.hourly_usd or project.hourly_usd,
        )

    # ---- which gates -----------------------------------------------------------------------

    def names(self, node: StepNode) -> tuple[str, ...]:
        names = self._names.get(node.base_id)
        if names is None:
            chosen = node.spec.gates
            if chosen is None:
                chosen = self.graph.spec.defaults.gates
            names = tuple(chosen) if chosen is not None else self.config.default_gates
            self._names[node.base_id] = names
        return names

    def prepare(self) -> None:
        """Build now the gate that steps starting a process consult before they start. The
        risk gate loads the shell parser (about 60 ms): built by the first such step, that
        time was spent inside the run with every step waiting, where here it is setup, spent
        while the spawner boots on the other core. The after-gates stay lazy: most steps never
        leave anything for them to read."""
        if any(n.starts_process and "risk" in self.names(n) for n in self.graph.nodes.values()):
            self._gate("risk")

    def approval_spec(self, node: StepNode) -> ApprovalSpec:
        return node.spec.approval or self.graph.spec.defaults.approval or self.config.approval

    def budgets(self) -> BudgetSpec:
        """The plan's budgets, each falling back to the project's."""
        return self._budgets

    def uses_cost(self, node: StepNode) -> bool:
        uses = self._uses_cost.get(node.base_id)
        if uses is None:
            budgets = self._budgets
            limits = (node.spec.budget_usd, budgets.step_usd, budgets.run_usd, budgets.hourly_usd)
            uses = "cost" in self.names(node) and any(x is not None for x in limits)
            self._uses_cost[node.base_id] = uses
        return uses

    # ---- before ---------------------------------------------------------------------------

    def before(
        self,
        node: StepNode,
        *,
        attempt: int,
        command: str | None,
        cost: CostFacts | None,
        agent: Agent | None = None,
        kind: str = "shell",
        parallelism: int = 1,
    ) -> list[GateResult]:
        """The answers of the before-gates that apply (none: the step may simply start)."""
        names = self.names(node)
        results: list[GateResult] = []
        agent_asks = agent is not None and agent.spec.risk is AgentRisk.APPROVAL_REQUIRED
        facts = StepFacts(
            run_id="",
            step_id=node.id,
            attempt=attempt,
            workspace=self.workspace,
            command=command,
            target=node.spec.uses or (agent.spec.uses if agent is not None else None),
            agent=agent.name if agent is not None else node.agent,
            writes=node.writes,
            approval_required=node.spec.risk is RiskLevel.APPROVAL_REQUIRED or agent_asks,
            approval_source=(
                f"agent {agent.name} has"
                if agent_asks
                and agent is not None
                and node.spec.risk is not RiskLevel.APPROVAL_REQUIRED
                else "the step declared"
            ),
            plan=self.graph.spec.name,
            step=node.base_id,
            kind=kind,
            fan_in=len(node.spec.needs),
            parallelism=parallelism,
        )
        who = facts.approval_source
        if "risk" in names and (command is not None or facts.approval_required):
            results.extend(self._run(["risk"], facts))
        elif facts.approval_required:
            results.append(GateResult("risk", Outcome.ASK, f"{who} risk: approval_required"))
        if "approval" in names:
            results.append(
                GateResult("approval", Outcome.ASK, "the step's gates include `approval`")
            )
        if cost is not None:
            results.append(check_budget(cost))
        return results

    # ---- after ----------------------------------------------------------------------------

    def after_applies(
        self, node: StepNode, stdout: Path | None, stderr: Path | None, wrote: bool | None
    ) -> bool:
        """Cheap enough for the event loop, and asked before the step's facts are gathered:
        is there anything for an after-gate to read (output in these logs, or code changes)?
        `wrote` is the executor's word on whether the attempt wrote to its logs (see
        `Outcome.wrote_logs`); only when it cannot tell (None) is the file system asked —
        two calls a file, 4 % of W3's run when every step was asked."""

        def logs_hold_anything() -> bool:
            if wrote is not None:
                return wrote
            return _holds_anything(stdout) or _holds_anything(stderr)

        return bool(self._after_names(node, logs_hold_anything))

    def wants_snapshot(self, node: StepNode) -> bool:
        """Will an after-gate read this step's code changes? Then snapshot before it runs."""
        names = self.names(node)
        return _agent_step(node) and ("quality" in names or "secrets" in names)

    def snapshot(self, cwd: Path) -> str | None:
        """The work tree before the step (off the event loop: git reads the workspace)."""
        from agenthq.gates.diffs import snapshot_tree

        return snapshot_tree(cwd)

    def after(
        self, node: StepNode, facts: StepFacts, before_tree: str | None = None
    ) -> list[GateResult]:
        """The after-gates that apply. Called off the event loop: they read files and git.
        With the `before_tree` snapshot, the gates see exactly this step's changes."""
        if before_tree is not None:
            from agenthq.gates.diffs import diff_since

            diff = diff_since(facts.workspace, before_tree)
            if diff is not None:
                facts = replace(facts, diff=diff)
        return self._run(self._after_names(node, lambda: _has_output(facts)), facts)

    def _after_names(self, node: StepNode, wrote: Callable[[], bool]) -> list[str]:
        """The after-gates that apply; `wrote` (did the step leave anything to scan) is asked
        only when the secrets gate is among them: it reads the file system."""
        names = self.names(node)
        chosen = []
        if "secrets" in names and wrote():
            chosen.append("secrets")
        if "quality" in names and _agent_step(node):
            chosen.append("quality")
        return chosen

    # ---- records --------------------------------------------------------------------------

    def records(
        self,
        run_id: str,
        node: StepNode,
        attempt: int,
        phase: Phase,
        results: Sequence[GateResult],
        *,
        at: float,
    ) -> list[GateRecord]:
        return [
            GateRecord(
                run_id=run_id,
                step_id=node.id,
                attempt=attempt,
                gate=r.gate,
                phase=phase.value,
                outcome=r.outcome.value,
                reason=r.reason,
                score=r.score,
                details=dict(r.details),
                duration_ms=r.duration_ms,
                at=at,
            )
            for r in results
        ]

    def _gate(self, name: str) -> Gate:
        gate = self.gates.get(name)
        if gate is None:
            gate = self.gates[name] = _build_gate(self, name)
        return gate

    def take_breaker_changes(self) -> list[breakers.Breaker]:
        changed, self.changed_breakers = self.changed_breakers, []
        return changed

    # ---- internals ------------------------------------------------------------------------

    def _run(self, names: Sequence[str], facts: StepFacts) -> list[GateResult]:
        """Run gates by name, each behind its breaker: an open breaker means `ask` at once."""
        results: list[GateResult] = []
        for name in names:
            key = f"gate:{name}"
            state = self.breakers.get(key)
            if state is None:
                state = self.breakers[key] = breakers.Breaker(key)
            admission: breakers.Admission | None = None
            if not _untouched(state):  # an untouched breaker is closed: it admits
                admission = breakers.admit(state, self.config.breaker, time.time())
                if not admission.allowed:
                    results.append(
                        GateResult(name, Outcome.ASK, f"{admission.reason}; a person decides")
                    )
                    continue
            (result,) = run_gates(
                [self._gate(name)], facts, budget_s=self.config.gate_time_budget_s
            )
            crashed = bool(result.details.get("gate_error"))
            if admission is None and not crashed:
                # Nearly every step: a success leaves an untouched breaker exactly as it is.
                results.append(result)
                continue
            admitted = admission.breaker if admission is not None else state
            if crashed:
                updated = breakers.record_failure(admitted, self.config.breaker, time.time())
            else:
                updated = breakers.record_success(admitted, self.config.breaker)
            if updated != state:
                self.breakers[key] = updated
                self.changed_breakers.append(updated)
            results.append(result)
        return results


def _untouched(state: breakers.Breaker) -> bool:
    """Closed with no failure on record: a success leaves it exactly as it is."""
    return (
        state.phase is breakers.BreakerPhase.CLOSED
        and not state.failures
        and state.opened_at is None
        and not state.cooldown_s
        and not state.trial_running
    )


def _build_gate(pipeline: GatePipeline, name: str) -> Gate:
    if name == "risk":
        from agenthq.gates.risk_gate import RiskGate

        return RiskGate(
            pipeline.policy,
            workspace=pipeline.workspace,
            home=pipeline.user_home,
            predictor=pipeline.predictor() if pipeline.predictor is not None else None,
            model_weight=pipeline.config.model.weight,
        )
    if name == "secrets":
        from agenthq.gates.secrets_gate import SecretsGate

        return SecretsGate()
    if name == "quality":
        from agenthq.gates.quality_gate import QualityGate

        return QualityGate()
    raise KeyError(name)


def _agent_step(node: StepNode) -> bool:
    """Steps whose code changes the quality gate reads: agents' and those declaring writes."""
    return bool(node.agent or node.capability or node.writes)


def _has_output(facts: StepFacts) -> bool:
    if facts.changed_files or facts.diff:
        return True
    return _holds_anything(facts.stdout_path) or _holds_anything(facts.stderr_path)


def _holds_anything(path: Path | None) -> bool:
    """Asked for every step that ends. Most Python steps never create their log files, and
    asking whether one exists costs a third of failing to stat it (an exception, twice per
    step: 3.5 % of W3's run)."""
    if path is None or not os.access(path, os.F_OK):
        return False
    try:
        return os.stat(path).st_size > 0
    except OSError:  # removed in between
        return False
