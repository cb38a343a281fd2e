"""Plans finish correctly under injected faults (AGENTHQ_CHAOS): on a real store with real
processes, failures and SIGKILLed process groups are retried until every step succeeded with
the right outputs, every injection is an event of its attempt, and the audit chain holds."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import agenthq
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner
from agenthq.engine.scheduler import SchedulerOptions
from agenthq.errors import ConfigError
from agenthq.events.audit import verify_chain
from agenthq.executors.chaos import parse_chaos
from agenthq.spec.load import load_plan_text
from agenthq.store.api import Store

PLAN = """
name: chaotic
defaults:
  retry: {max_attempts: 12, initial: 0.02s, max: 0.1s, on: [execution, lost]}
policy: {allow: ["sleep *"]}
steps:
  - id: shard
    foreach: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
    run: >-
      sleep 0.15; echo '{"n": {{ item }}}'
  - id: total
    needs: [shard]
    uses: agenthq.builtin:echo
    with: {text: "{{ steps.shard.outputs | map(attribute='n') | sum }}"}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as opened:
        yield opened


@pytest.mark.parametrize("seed", [7, 11])
def test_a_plan_finishes_right_under_chaos(store: Store, tmp_path: Path, seed: int) -> None:
    runner = Runner(
        store,
        home=tmp_path / ".agenthq",
        environ={
            "HOME": str(tmp_path),
            "PATH": os.environ["PATH"],
            "AGENTHQ_CHAOS": f"latency=0.05,fail=0.2,kill=0.2,seed={seed}",
        },
        gates=GateConfig(),
        scheduler_options=SchedulerOptions(poll_interval=0.05),
    )
    final = runner.run(load_plan_text(PLAN, name="chaos.yaml"), workspace=tmp_path, max_workers=6)
    assert final.state.value == "succeeded"
    steps = {s.step_id: s for s in store.get_steps(final.id)}
    assert all(steps[f"shard[{i}]"].outputs == {"n": i} for i in range(1, 21))
    assert steps["total"].outputs["text"] == 210
    events = store.read_events(run_id=final.id, limit=100_000)
    faults = Counter(e.details["fault"] for e in events if e.kind.startswith("chaos."))
    assert faults["fail"] > 0
    assert faults["kill"] > 0
    assert faults["latency"] >= 21  # one per attempt
    # Each injected failure is an attempt that failed and was retried.
    attempts = store.get_attempts(final.id)
    failed = Counter(str(a.failure_class) for a in attempts if a.failure_class is not None)
    assert failed["execution"] == faults["fail"]
    assert failed["lost"] + failed["execution"] >= faults["fail"] + 1
    for e in events:
        if e.kind == "chaos.kill":
            assert e.step_id is not None
            assert e.attempt is not None
    assert verify_chain(store).intact


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fail=2", "fail is a probability"),
        ("latency=-1", "latency must not be negative"),
        ("boom=1", "'boom=1' is not one of latency=N"),
        ("kill=often", "kill='often' is not a number"),
    ],
)
def test_bad_chaos_settings_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_chaos(text)


def test_chaos_settings_parse() -> None:
    settings = parse_chaos("latency=0.2, fail=0.05,kill=0.01,seed=7")
    assert (settings.latency, settings.fail, settings.kill, settings.seed) == (0.2, 0.05, 0.01, 7)
