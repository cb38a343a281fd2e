"""The engine end to end in one process, on a real SQLite file: retries, trigger rules, `when`,
fan-out/fan-in, the SDK, and random DAGs that must run every step once, after its needs."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agenthq
from agenthq.engine.runner import Runner
from agenthq.graph import compile_plan
from agenthq.store.api import Store
from tests.integration import recorder

RECORD = "tests.integration.recorder:record"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[Store, Runner]]:
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as store:
        yield store, Runner(store, home=tmp_path, environ={})


def states(store: Store, run_id: str) -> dict[str, str]:
    return {s.step_id: s.state.value for s in store.get_steps(run_id)}


def test_retries_then_success(engine: tuple[Store, Runner]) -> None:
    store, runner = engine
    plan = agenthq.Plan("retry").step(
        "flaky",
        uses="tests.integration.recorder:fail_first",
        with_={"times": 2},
        retry={"max_attempts": 3, "initial": 0.01, "max": 0.05, "on": ["execution"]},
    )
    run = runner.run(plan)
    assert run.state == "succeeded"
    step = store.get_steps(run.id)[0]
    assert step.attempts == 3
    assert step.retries_used == {"execution": 2}
    assert step.outputs == {"attempt": 3}
    attempts = store.get_attempts(run.id, "flaky")
    assert [a.state for a in attempts] == ["failed", "failed", "succeeded"]
    assert "planned failure 1" in (attempts[0].error or "")
    moves = [(e.from_state, e.to_state) for e in store.read_events(run_id=run.id) if e.step_id]
    assert moves.count(("running", "retrying")) == 2


def test_budget_spent_fails_and_timeouts_have_their_own(engine: tuple[Store, Runner]) -> None:
    store, runner = engine
    plan = agenthq.Plan("budget").step(
        "bad",
        uses="tests.integration.recorder:always_fail",
        retry={"max_attempts": 5, "initial": 0.01, "on": {"execution": 1}},
    )
    run = runner.run(plan)
    assert run.state == "failed"
    step = store.get_steps(run.id)[0]
    assert step.attempts == 2
    assert step.failure_class == "execution"
    assert "budget spent" in (store.read_events(run_id=run.id)[-2].details.get("retry") or "")


def test_trigger_rules_and_when(engine: tuple[Store, Runner]) -> None:
    store, runner = engine
    plan = (
        agenthq.Plan("rules")
        .step("bad", uses="tests.integration.recorder:always_fail")
        .step("good", uses=RECORD)
        .step("on_fail", needs=["bad"], trigger="one_failed", uses=RECORD)
        .step("blocked", needs=["bad", "good"], uses=RECORD)
        .step("done", needs=["bad"], trigger="all_done", uses=RECORD)
        .step("nofail", needs=["good"], trigger="none_failed", uses=RECORD)
        .step(
            "skipme", needs=["good"], when="{{ steps.good.outputs.step == 'other' }}", uses=RECORD
        )
        .step("after_skip", needs=["skipme"], uses=RECORD)
        .step("after_skip_done", needs=["skipme"], trigger="none_failed", uses=RECORD)
        .step("no_fail_rule", needs=["bad"], trigger="none_failed", uses=RECORD)
    )
    run = runner.run(plan)
    assert run.state == "failed"
    assert states(store, run.id) == {
        "bad": "failed",
        "good": "succeeded",
        "on_fail": "succeeded",
        "blocked": "blocked",
        "done": "succeeded",
        "nofail": "succeeded",
        "skipme": "skipped",
        "after_skip": "skipped",  # skips propagate under all_success
        "after_skip_done": "succeeded",  # none_failed runs after a skip
        "no_fail_rule": "skipped",
    }


def test_fan_out_fan_in_reads_every_instance(engine: tuple[Store, Runner]) -> None:
    store, runner = engine
    plan = (
        agenthq.Plan("fan")
        .param("regions", default=["eu", "us", "ap"])
        .step("region", foreach="{{ params.regions }}", run='echo \'{"r": "{{ item }}"}\'')
        .step(
            "report",
            needs=["region"],
            uses="agenthq.builtin:echo",
            with_={"text": "{{ steps.region.outputs | map(attribute='r') | join(',') }}"},
        )
    )
    run = runner.run(plan, params={"regions": ["eu", "us"]})
    assert run.state == "succeeded"
    report = {s.step_id: s for s in store.get_steps(run.id)}["report"]
    assert report.outputs == {"text": "eu,us"}


def test_finished_run_cannot_be_executed_again(engine: tuple[Store, Runner]) -> None:
    _, runner = engine
    run = runner.run(agenthq.Plan("once").step("a", uses=RECORD))
    with pytest.raises(agenthq.StateError, match="already succeeded"):
        runner.execute(run.id)


@st.composite
def dags(draw: st.DrawFn) -> list[dict[str, Any]]:
    size = draw(st.integers(min_value=1, max_value=25))
    steps: list[dict[str, Any]] = []
    for i in range(size):
        earlier = [f"s{j}" for j in range(i)]
        needs = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=4)) if earlier else []
        steps.append({"id": f"s{i}", "needs": needs, "uses": RECORD})
    return draw(st.permutations(steps))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=dags(), workers=st.integers(min_value=1, max_value=6))
def test_random_dags_run_each_step_once_after_its_needs(
    steps: list[dict[str, Any]], workers: int
) -> None:
    recorder.ORDER.clear()
    with (
        tempfile.TemporaryDirectory() as home,
        agenthq.open_store(f"sqlite:///{home}/a.db") as store,
    ):
        spec = agenthq.Plan("random")
        for step in steps:
            spec.step(step["id"], needs=step["needs"], uses=step["uses"])
        run = Runner(store, home=Path(home), environ={}).run(spec, max_workers=workers)
        assert run.state == "succeeded"
    assert sorted(recorder.ORDER) == sorted(s["id"] for s in steps)
    position = {step_id: i for i, step_id in enumerate(recorder.ORDER)}
    for step in steps:
        for need in step["needs"]:
            assert position[need] < position[step["id"]]


def test_run_lists_keep_step_counts_exact(engine: tuple[Store, Runner]) -> None:
    """runs.step_counts is maintained by every write; it must equal a count of the rows."""
    store, runner = engine
    plan = (
        agenthq.Plan("counts")
        .step("ok", uses=RECORD)
        .step("bad", uses="tests.integration.recorder:always_fail")
        .step("after_bad", uses=RECORD, needs=["bad"])
        .step("cleanup", uses=RECORD, needs=["bad"], trigger="all_done")
        .step("fan", uses=RECORD, foreach=[1, 2, 3])
    )
    run = runner.run(plan)
    listed = store.list_runs(limit=1)[0]
    assert dict(listed.step_counts) == dict(store.get_run(run.id).step_counts)
    assert dict(listed.step_counts) == {"succeeded": 5, "failed": 1, "blocked": 1}
    runner.retry(run.id)
    again = store.list_runs(limit=1)[0]
    assert dict(again.step_counts) == dict(store.get_run(run.id).step_counts)


def test_a_run_started_here_is_compiled_once_and_its_stored_spec_compiles_the_same(
    engine: tuple[Store, Runner], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, runner = engine
    from agenthq.engine import runner as runner_module

    compiled: list[bool] = []  # check_callables of each compile_plan call

    def counting(*args: Any, **kwargs: Any) -> Any:
        compiled.append(kwargs.get("check_callables", True))
        return compile_plan(*args, **kwargs)

    monkeypatch.setattr(runner_module, "compile_plan", counting)
    plan = (
        agenthq.Plan("twice")
        .param("shards", default=["a", "b"])
        .step("shard", foreach="{{ params.shards }}", run="echo {{ item }}")
        .step("join", needs=["shard"], uses="agenthq.builtin:echo", with_={"text": "done"})
    )
    assert runner.run(plan, params={"shards": ["0", "1", "2"]}).state == "succeeded"
    assert compiled == [True]  # validated by start(); execute() ran that very graph

    params = {"shards": ["0", "1", "2"]}
    started = runner.start(plan, params=params)
    # What start() compiles for a Plan (no file, so no directory) and what the stored spec
    # compiles to are the same graph.
    assert runner.graph_of(started.id) == compile_plan(plan.spec(), params=params)

    compiled.clear()
    elsewhere = Runner(store, home=tmp_path, environ={})  # as `agenthq resume` would
    assert elsewhere.execute(started.id).state == "succeeded"
    assert compiled == [False]  # compiled from the stored spec
    assert states(store, started.id) == {
        "shard[0]": "succeeded",
        "shard[1]": "succeeded",
        "shard[2]": "succeeded",
        "join": "succeeded",
    }
