"""The failure model's view of a run's steps that have not finished: how likely each is to fail
if it starts now — for the dashboard's run page and `GET /api/runs/{id}/predictions`.

A pending step's command is not rendered yet (its upstream outputs do not exist), so it is
judged on the command as written; its risk score, when it is waiting for a person, is the one
the gate gave. Parallelism is what the run would allow it: min(max_workers, unfinished steps).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from agenthq.graph import PlanGraph
from agenthq.ml.features import Candidate, command_family
from agenthq.ml.predictor import FailurePredictor
from agenthq.states import StepState
from agenthq.store.api import RunRecord, StepRecord

__all__ = ["LIMIT", "pending_predictions"]

LIMIT = 200  # steps scored per request: a 10,000-step fan-out is judged by its first ones


def pending_predictions(
    predictor: FailurePredictor,
    run: RunRecord,
    graph: PlanGraph,
    steps: list[StepRecord],
    scores: Mapping[str, float | None],
) -> dict[str, float]:
    unfinished = [s for s in steps if not s.state.finished and s.state is not StepState.RUNNING]
    parallelism = max(1, min(run.max_workers, len(unfinished)))
    now = time.time()
    predictions: dict[str, float] = {}
    for step in unfinished[:LIMIT]:
        node = graph.nodes.get(step.step_id)
        if node is None:
            continue
        spec = node.spec
        family: str | None
        if spec.uses is not None:
            kind, family = "python", spec.uses
        elif spec.prompt is not None:
            kind, family = "agent", node.agent
        else:
            kind, family = "shell", command_family(spec.run)
        if spec.run is None and spec.uses is None and spec.prompt is None:
            continue  # a wait: nothing runs
        candidate = Candidate(
            plan=run.plan,
            step=node.base_id,
            agent=node.agent,
            kind=kind,
            family=family,
            risk_score=scores.get(step.step_id),
            reason_count=0,
            attempt=step.attempts + 1,
            fan_in=len(spec.needs),
            parallelism=parallelism,
            at=now,
        )
        predictions[step.step_id] = round(predictor.predict(candidate), 4)
    return predictions
