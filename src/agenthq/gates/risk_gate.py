"""The `risk` gate: before a shell step runs, score its command and apply the project's policy.

It is the seam between the pure pieces (`risk.assess`, `policy.decide`) and the engine's gate
protocol: it turns a verdict into PASS / ASK / REFUSE and records why in `details`, so the
audit log shows the reasons and the rule that decided.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from agenthq.gates.base import GateResult, Outcome, Phase, StepFacts
from agenthq.gates.policy import Policy, PolicyDecision, decide
from agenthq.gates.risk import RiskAssessment, assess
from agenthq.gates.shell_syntax import load_parser
from agenthq.ml.features import Candidate, command_family
from agenthq.ml.predictor import FailurePredictor

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
        predictor: FailurePredictor | None = None,
        model_weight: float = 0.25,
    ) -> None:
        self.policy = policy if policy is not None else Policy()
        self.workspace = workspace
        self.home = home
        # The failure model, when one beats the baseline (ml/predictor.py): a predicted
        # failure probability p adds round(100 * model_weight * p) points to the score.
        self.predictor = predictor
        self.model_weight = model_weight
        # Scoring reads only the text (never the file system), so a command seen before in
        # this run scores the same: a fan-out of one command is parsed once. The policy is
        # fixed too, so its decision on that score is kept with it (the model's points vary:
        # with a model the policy decides again on every command).
        self._seen: dict[tuple[str, Path | None], tuple[RiskAssessment, PolicyDecision]] = {}
        # The engine builds this gate in a run's setup (GatePipeline.prepare): loading the
        # parser then, not at the first command, keeps it out of the run's time. A parser
        # that cannot load fails each check instead, where run_gates turns it into `ask`.
        with contextlib.suppress(Exception):
            load_parser()

    def check(self, facts: StepFacts) -> GateResult:
        if facts.command is None:
            if facts.approval_required:
                return GateResult(self.name, Outcome.ASK, _declared(facts), 0.0, {"reasons": []})
            return GateResult(self.name, Outcome.PASS, "not a shell step", 0.0, {"reasons": []})
        workspace = self.workspace if self.workspace is not None else facts.workspace
        key = (facts.command, workspace)
        seen = self._seen.get(key)
        if seen is None:
            scored = assess(facts.command, workspace=workspace, home=self.home)
            seen = scored, decide(self.policy, scored)
            if len(self._seen) < _CACHE_SIZE:
                self._seen[key] = seen
        assessment, decision = seen
        model: dict[str, Any] = {}
        if self.predictor is not None:
            assessment, model = self._with_model(facts, assessment)
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
            **model,
        }
        return GateResult(self.name, outcome, reason, float(assessment.score), details)

    def _with_model(
        self, facts: StepFacts, assessment: RiskAssessment
    ) -> tuple[RiskAssessment, dict[str, Any]]:
        """The assessment with the model's points added, and what the model said."""
        assert self.predictor is not None
        candidate = Candidate(
            plan=facts.plan,
            step=facts.step or facts.step_id,
            agent=facts.agent,
            kind=facts.kind,
            family=command_family(facts.command),
            risk_score=float(assessment.score),
            reason_count=len(assessment.reasons),
            attempt=facts.attempt,
            fan_in=facts.fan_in,
            parallelism=facts.parallelism,
            at=time.time(),
        )
        probability = self.predictor.predict(candidate)
        points = round(100 * self.model_weight * probability)
        said = {"predicted_failure": round(probability, 4), "model_points": points}
        if points <= 0:
            return assessment, said
        reason = f"the failure model predicts {probability:.0%} failure (+{points})"
        return (
            replace(
                assessment,
                score=min(100, assessment.score + points),
                reasons=(*assessment.reasons, reason),
            ),
            said,
        )
