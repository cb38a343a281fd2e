"""Undo a run: the `compensate` of each succeeded step, newest dependency first.

A rollback is a run of its own (plan `NAME-rollback`, origin `{"kind": "rollback", "run": ID}`)
so that it gets everything a run has for free: each compensation passes the gates, may wait
for a person, is logged, retried only for `lost`, shown on the dashboard, and survives a
crash (`agenthq resume`). Its steps form one chain in reverse topological order of the
original run: a compensation starts only after every compensation of the steps that depended
on its step, and a failed one blocks the rest — the rollback stops where it could not go on.

Compensations are rendered here, against the original run's params, items and outputs (a
compensation may read its own step's outputs: `git revert {{ steps.deploy.outputs.sha }}`).
The rendered values travel as the rollback run's params, never as template text, so an
output that happens to contain `{{` cannot become a template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from agenthq.engine.context import StepResults, template_context
from agenthq.errors import StateError
from agenthq.graph import PlanGraph, StepNode
from agenthq.spec import templating
from agenthq.spec.models import PlanSpec, RetrySpec, StepSpec
from agenthq.states import FailureClass, StepState
from agenthq.store.api import RunRecord, StepRecord

ORIGIN = "rollback"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def undo_id(step_id: str) -> str:
    """`deploy` → `undo-deploy`; `shard[2]` → `undo-shard-2`."""
    return "undo-" + _UNSAFE.sub("-", step_id).strip("-")


def compensated(rollbacks: Sequence[Sequence[StepRecord]]) -> set[str]:
    """Undo steps that already succeeded in earlier rollbacks of the same run."""
    return {s.step_id for steps in rollbacks for s in steps if s.state is StepState.SUCCEEDED}


def rollback_spec(
    run: RunRecord, graph: PlanGraph, steps: Sequence[StepRecord], done: set[str]
) -> tuple[PlanSpec, dict[str, Any]]:
    """The rollback plan of `run` and its params; StateError when there is nothing to undo."""
    by_id = {s.step_id: s for s in steps}

    def lookup(step_id: str) -> tuple[StepState, Mapping[str, Any]]:
        record = by_id[step_id]
        return record.state, record.outputs

    results = StepResults(graph, lookup)
    undo_steps: list[StepSpec] = []
    params: dict[str, Any] = {}
    for node in reversed(list(graph.nodes.values())):
        record = by_id.get(node.id)
        compensate = node.spec.compensate
        if compensate is None or record is None or record.state is not StepState.SUCCEEDED:
            continue
        step_id = undo_id(node.id)
        if step_id in done:
            continue
        context = template_context(graph, node, results)
        key = step_id.replace("-", "_")
        try:
            rendered = _render(node, context)
        except templating.TemplateError as exc:
            raise StateError(f"cannot render the compensation of step {node.id}: {exc}") from None
        params[key] = rendered
        fields: dict[str, Any] = {
            "id": step_id,
            "description": f"undo {node.id}",
            "needs": [undo_steps[-1].id] if undo_steps else [],
            # Only a vanished process is retried: running an undo twice is rarely safe.
            "retry": RetrySpec(max_attempts=1, on=[FailureClass.LOST]),
            "env": {k: _ref(key, "env", k) for k in rendered["env"]},
            "timeout": compensate.timeout,
            "agent": node.agent,
        }
        if compensate.run is not None:
            fields["run"] = f"{{{{ params.{key}['run'] }}}}"
        else:
            fields["uses"] = compensate.uses
            fields["with"] = {k: _ref(key, "with", k) for k in rendered["with"]}
        undo_steps.append(StepSpec.model_validate(fields))
    if not undo_steps:
        raise StateError(
            f"run {run.id} has no succeeded step with a `compensate` left to undo; "
            "add `compensate:` to the steps that change something"
        )
    original = graph.spec
    spec = PlanSpec(
        name=f"{original.name}-rollback",
        description=f"rollback of run {run.id}",
        params={name: {"default": None} for name in params},
        defaults=original.defaults.model_copy(update={"retry": None, "timeout": None}),
        secrets=original.secrets,
        policy=original.policy,
        agents=original.agents,
        steps=undo_steps,
    )
    return spec, params


def _ref(key: str, part: str, name: str) -> str:
    quoted = name.replace("\\", "\\\\").replace("'", "\\'")
    return f"{{{{ params.{key}['{part}']['{quoted}'] }}}}"


def _render(node: StepNode, context: Mapping[str, Any]) -> dict[str, Any]:
    compensate = node.spec.compensate
    assert compensate is not None
    return {
        "run": templating.render(compensate.run, context) if compensate.run is not None else None,
        "with": {k: templating.render_value(v, context) for k, v in compensate.with_.items()},
        "env": {k: templating.render(v, context) for k, v in compensate.env.items()},
    }
