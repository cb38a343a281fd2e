"""Rollback on a real SQLite store with real processes: compensations run in reverse
dependency order on a diamond, read their step's outputs without turning them into
templates, pass the gates, stop at the first failure with a critical alert, and a second
rollback does only what the first left undone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import agenthq
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.errors import StateError
from agenthq.events.alerts import AlertEvaluator, AlertSettings
from agenthq.spec.load import load_plan_text
from agenthq.store.api import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as opened:
        yield opened


def runner_for(store: Store, tmp_path: Path) -> Runner:
    return Runner(
        store,
        home=tmp_path / ".agenthq",
        environ={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        gates=GateConfig(),
        scheduler_options=SchedulerOptions(poll_interval=0.02),
    )


DIAMOND = """
name: diamond
on_failure: rollback
policy: {allow: ["echo *"]}
steps:
  - id: top
    run: >-
      echo '{"sha": "{{ '{{' }}evil}}"}'
    compensate: echo undo top {{ steps.top.outputs.sha }} >> undo.log
  - id: left
    needs: [top]
    run: echo left
    compensate: echo undo left >> undo.log
  - id: right
    needs: [top]
    run: echo right
    compensate: {run: "echo undo right $WHO >> undo.log", env: {WHO: "{{ params.who }}"}}
  - id: bottom
    needs: [left, right]
    run: echo bottom
    compensate: echo undo bottom >> undo.log
  - id: fail
    needs: [bottom]
    run: exit 4
    compensate: echo never >> undo.log
params: {who: ana}
"""


def undo_log(tmp_path: Path) -> list[str]:
    return (tmp_path / "undo.log").read_text().splitlines()


def test_on_failure_rollback_undoes_a_diamond_newest_first(store: Store, tmp_path: Path) -> None:
    runner = runner_for(store, tmp_path)
    final = runner.run(load_plan_text(DIAMOND, name="diamond.yaml"), workspace=tmp_path)
    assert final.state.value == "failed"
    lines = undo_log(tmp_path)
    # bottom before both middles, both middles before top; the failed step is not undone.
    assert lines[0] == "undo bottom"
    assert set(lines[1:3]) == {"undo left", "undo right ana"}
    # The output held `{{evil}}`: it reached the command as text, never as a template.
    assert lines[3] == "undo top {{evil}}"
    assert len(lines) == 4
    (rollback,) = store.list_runs(origin_run=final.id)
    assert rollback.plan == "diamond-rollback"
    assert rollback.state.value == "succeeded"
    assert rollback.origin == {"kind": "rollback", "run": final.id}
    kinds = [e.kind for e in store.read_events(run_id=final.id)]
    assert "run.rollback_started" in kinds
    assert "run.rolled_back" in kinds
    # Each compensation passed the gates like any step (the plan's policy allowed echo).
    gate_rows = store.get_gate_results(rollback.id)
    assert {g.step_id for g in gate_rows} >= {"undo-bottom", "undo-top"}


def test_a_failed_compensation_stops_the_rollback_and_alerts(store: Store, tmp_path: Path) -> None:
    text = DIAMOND.replace("compensate: echo undo left >> undo.log", "compensate: exit 9")
    runner = runner_for(store, tmp_path)
    final = runner.run(load_plan_text(text, name="diamond.yaml"), workspace=tmp_path)
    (rollback,) = store.list_runs(origin_run=final.id)
    assert rollback.state.value == "failed"
    lines = undo_log(tmp_path)
    assert "undo top {{evil}}" not in lines  # stopped before the top
    assert lines[0] == "undo bottom"
    states = {s.step_id: s.state.value for s in store.get_steps(rollback.id)}
    assert states["undo-left"] == "failed"
    assert states["undo-top"] == "blocked"
    opened = AlertEvaluator(store, AlertSettings()).evaluate()
    (alert,) = [a for a in opened if a.rule == "rollback_failed"]
    assert alert.severity == "critical"
    assert alert.run_id == final.id
    assert "undo-left" in alert.message

    # A second rollback (after fixing whatever failed) does only what is left undone.
    (tmp_path / "undo.log").unlink()
    with pytest.raises(StateError, match="itself a rollback"):
        runner.rollback(rollback.id)
    again = runner.rollback(final.id)
    steps = [s.step_id for s in store.get_steps(again.id)]
    assert "undo-bottom" not in steps  # compensated by the first rollback
    assert steps[-1] == "undo-top"


def test_rollback_is_refused_while_running_or_with_nothing_to_undo(
    store: Store, tmp_path: Path
) -> None:
    runner = runner_for(store, tmp_path)
    plain = load_plan_text("name: plain\nsteps:\n  - id: a\n    run: echo a\n", name="p.yaml")
    record = runner.start(plain, workspace=tmp_path)
    with pytest.raises(StateError, match="let it finish"):
        runner.rollback(record.id)
    runner.execute(record.id)
    with pytest.raises(StateError, match="no succeeded step with a `compensate`"):
        runner.rollback(record.id)
    assert store.list_runs(origin_run=record.id) == []
