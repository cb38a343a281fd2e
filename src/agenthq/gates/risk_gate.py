"""The `risk` gate: before a shell step runs, score its command and apply the project's policy.

It is the seam between the pure pieces (`risk.assess`, `policy.decide`) and the engine's gate
protocol: it turns a verdict into PASS / ASK / REFUSE and records why in `details`, so the
audit log shows the reasons and the rule that decided.
"""

from __future__ import annotations

from pathlib import Path

from agenthq.gates.base import GateResult, Outcome, Phase, StepFacts
from agenthq.gates.policy import Policy, decide
from agenthq.gates.risk import RiskAssessment, assess

__all__ = ["RiskGate"]

_OUTCOMES = {"run": Outcome.PASS, "ask": Outcome.ASK, "refuse": Outcome.REFUSE}


def _declared(facts: StepFacts) -> str:
    return f"{facts.approval_source} risk: approval_required"


_CACHE_SIZE = 4096


class RiskGate:
    """Scores shell commands; Python steps pass (their code is another gate's business)."""

    name: str = "risk"
    phase: Phase = Phase.BEFORE

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        workspace: Path | None = None,
        home: Path | None = None,
    ) -> None:
        self.policy = policy if policy is not None else Policy()
        self.workspace = workspace
        self.home = home
        # Scoring reads only the text (never the file system), so a command seen before in
        # this run scores the same: a fan-out of one command is parsed once.
        self._seen: dict[tuple[str, Path | None], RiskAssessment] = {}

    def check(self, facts: StepFacts) -> GateResult:
        if facts.command is None:
            if facts.approval_required:
                return GateResult(self.name, Outcome.ASK, _declared(facts), 0.0, {"reasons": []})
            return GateResult(self.name, Outcome.PASS, "not a shell step", 0.0, {"reasons": []})
        workspace = self.workspace if self.workspace is not None else facts.workspace
        key = (facts.command, workspace)
        assessment = self._seen.get(key)
        if assessment is None:
            assessment = assess(facts.command, workspace=workspace, home=self.home)
            if len(self._seen) < _CACHE_SIZE:
                self._seen[key] = assessment
        decision = decide(self.policy, assessment)
        outcome = _OUTCOMES[decision.verdict]
        reason = decision.reason
        if facts.approval_required and outcome is Outcome.PASS:
            outcome, reason = Outcome.ASK, f"{_declared(facts)}; {reason}"
        details = {
            "reasons": list(assessment.reasons),
            "rule": decision.matched_rule,
            "verdict": decision.verdict,
            "parse_ok": assessment.parse_ok,
        }
        return GateResult(self.name, outcome, reason, float(assessment.score), details)
