"""The failure model's view of a run's steps that have not finished: how likely each is to fail
if it starts now — for the dashboard's run page and `GET /api/runs/{id}/predictions`.

A pending step's command is not rendered yet (its upstream outputs do not exist), so it is
judged — family and risk score — on the command as written; a step waiting for a person keeps
the score the gate gave. All steps go to the model in one call. Parallelism is what the run
would allow it: min(max_workers, unfinished steps).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from agenthq.graph import PlanGraph, StepNode
from agenthq.ml.features import Candidate, command_family
from agenthq.ml.predictor import FailurePredictor
from agenthq.states import StepState
from agenthq.store.api import RunRecord, StepRecord

__all__ = ["LIMIT", "as_written", "pending_predictions"]

LIMIT = 200  # steps scored per request: a 10,000-step fan-out is judged by its first ones


def as_written(node: StepNode) -> tuple[str, str | None, str | None] | None:
    """A step before it runs, as the model sees it: kind, command family, and the shell
    command to score (templates unrendered); None for a wait, which runs nothing."""
    spec = node.spec
    if spec.uses is not None:
        return "python", spec.uses, None
    if spec.prompt is not None:
        return "agent", node.agent, None
    if spec.run is not None:
        return "shell", command_family(spec.run), spec.run
    return None


def pending_predictions(
    predictor: FailurePredictor,
    run: RunRecord,
    graph: PlanGraph,
    steps: list[StepRecord],
    scores: Mapping[str, float | None],
) -> dict[str, float]:
    # Here, not at the top: the runner imports this module, and the risk scorer's patterns
    # cost a run of Python steps (W1, W3) 10-15 ms of start-up it never needs.
    from agenthq.gates.risk import assess

    unfinished = [s for s in steps if not s.state.finished and s.state is not StepState.RUNNING]
    parallelism = max(1, min(run.max_workers, len(unfinished)))
    now = time.time()
    judged: dict[str, tuple[int, int]] = {}  # command as written → (risk score, reasons)
    candidates: dict[str, Candidate] = {}
    for step in unfinished[:LIMIT]:
        node = graph.nodes.get(step.step_id)
        if node is None:
            continue
        described = as_written(node)
        if described is None:
            continue  # a wait: nothing runs
        kind, family, command = described
        risk: float | None = scores.get(step.step_id)
        reasons = 0
        if command is not None:
            if command not in judged:
                assessment = assess(command, workspace=Path(run.workspace))
                judged[command] = (assessment.score, len(assessment.reasons))
            score, reasons = judged[command]
            risk = score if risk is None else risk
        spec = node.spec
        candidates[step.step_id] = Candidate(
            plan=run.plan,
            step=node.base_id,
            agent=node.agent,
            kind=kind,
            family=family,
            risk_score=risk,
            reason_count=reasons,
            attempt=step.attempts + 1,
            fan_in=len(spec.needs),
            parallelism=parallelism,
            at=now,
        )
    found = predictor.predict_many(list(candidates.values()))
    return {step_id: round(p, 4) for step_id, p in zip(candidates, found, strict=True)}
