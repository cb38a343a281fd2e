"""What the scheduler remembers of each attempt it starts, so its end can be written as one
telemetry row (store/api.py TelemetryRow) in the same batch as the attempt's end.

The facts are the ones known at dispatch — the rendered command's family, the risk gate's
score and reasons, the model's prediction, how many of the run's attempts were running — so
the failure model learns from what it will be shown when it is asked before a step starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agenthq.engine.dispatch import Finished, Prepared
from agenthq.gates.base import GateResult
from agenthq.ml.features import command_family
from agenthq.records import record
from agenthq.store.api import TelemetryRow

__all__ = ["Dispatched", "TelemetryLog", "kind_of", "risk_of"]


@record
class Dispatched:
    step: str
    kind: str
    family: str | None
    risk_score: float | None
    risk_reasons: tuple[str, ...]
    predicted_failure: float | None
    fan_in: int
    parallelism: int
    started_at: float


def kind_of(prepared: Prepared) -> str:
    spec = prepared.node.spec
    if spec.prompt is not None or (prepared.invocation and prepared.invocation.agent):
        return "agent"
    return "python" if spec.uses is not None else "shell"


def risk_of(results: Iterable[GateResult]) -> tuple[float | None, tuple[str, ...], float | None]:
    """The risk gate's score, reasons and the model's prediction, from the gates' answers."""
    for result in results:
        if result.gate == "risk":
            reasons = result.details.get("reasons") or ()
            predicted = result.details.get("predicted_failure")
            return (
                result.score,
                tuple(str(r) for r in reasons),
                float(predicted) if isinstance(predicted, (int, float)) else None,
            )
    return None, (), None


class TelemetryLog:
    def __init__(self, run_id: str, plan: str) -> None:
        self.run_id = run_id
        self.plan = plan
        self._started: dict[str, Dispatched] = {}
        self._gated: dict[str, list[GateResult]] = {}  # answers of steps a person was asked about

    def gated(self, step_id: str, results: list[GateResult]) -> None:
        """Keep the before-gates' answers of a step that waits for a person: it starts later."""
        self._gated[step_id] = results

    def started(
        self, prepared: Prepared, at: float, parallelism: int, results: Iterable[GateResult] | None
    ) -> None:
        node = prepared.node
        answers = list(results) if results is not None else self._gated.pop(node.id, [])
        score, reasons, predicted = risk_of(answers)
        family: str | None
        if prepared.invocation is not None and prepared.invocation.agent is not None:
            family = command_family(prepared.command) or prepared.invocation.agent.name
        elif node.spec.uses is not None:
            family = node.spec.uses
        else:
            family = command_family(prepared.command)
        self._started[node.id] = Dispatched(
            step=node.base_id,
            kind=kind_of(prepared),
            family=family,
            risk_score=score,
            risk_reasons=reasons,
            predicted_failure=predicted,
            fan_in=len(node.spec.needs),
            parallelism=parallelism,
            started_at=at,
        )

    def finished(self, result: Finished, agent: str | None, at: float) -> TelemetryRow | None:
        facts = self._started.pop(result.step_id, None)
        if facts is None:  # started by a process before a resume: its facts went with it
            return None
        outcome = result.outcome
        state = "cancelled" if result.cancelled else "succeeded" if outcome.succeeded else "failed"
        usage: Mapping[str, Any] = outcome.usage or {}
        cost = usage.get("cost_usd")
        return TelemetryRow(
            run_id=self.run_id,
            step_id=result.step_id,
            attempt=result.attempt,
            plan=self.plan,
            step=facts.step,
            agent=agent,
            kind=facts.kind,
            family=facts.family,
            risk_score=facts.risk_score,
            risk_reasons=facts.risk_reasons,
            predicted_failure=facts.predicted_failure,
            fan_in=facts.fan_in,
            parallelism=facts.parallelism,
            started_at=facts.started_at,
            finished_at=at,
            outcome=state,
            failure_class=None
            if outcome.failure_class is None
            else str(outcome.failure_class.value),
            cost_usd=float(cost) if isinstance(cost, (int, float)) else None,
        )
