"""Real history for the failure model's tests: a project whose plans run real shell steps, in
which agent `flaky` fails its `sh deploy.sh` steps whenever more than two of them run at once
(they contend for a lock directory) and every step fails ~8 % of the time by its item number.

Runs alternate between 2 and 16 workers and are spread over the last two days (each run's
clock is shifted by 4 h: the durations are real, the 24-hour windows slide as in a real
project).
"""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path

import agenthq
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner
from agenthq.gates.breaker import BreakerSettings
from agenthq.gates.policy import Policy
from agenthq.spec.load import load_plan

WORKERS = (16, 2, 8, 4, 2, 16, 4, 8, 16, 2, 8, 4)
WIDTH = 20
RUN_SPACING_S = 4 * 3600.0

DEPLOY = """\
# Contends for a lock directory: fails when more than $2 deploys run at once.
d=slots-$2; mkdir -p "$d"; touch "$d/$$"; sleep 0.1; n=$(ls "$d" | wc -l); rm -f "$d/$$"
if [ "$n" -gt "$2" ]; then echo "deploy lock busy: $n at once" >&2; exit 1; fi
"""
LINT = """\
r=$(( ($1 * 7919 + $2 * 104729) % 100 )); sleep 0.02
if [ "$r" -lt 8 ]; then echo "lint found $r problems" >&2; exit 1; fi
"""
TOML = """\
# The team's settings.
[policy]
allow = ["sh deploy.sh *", "sh lint.sh *"]

[breaker]
failures = 100000
"""


def plan_text(width: int = WIDTH) -> str:
    items = ", ".join(str(i) for i in range(1, width + 1))
    return textwrap.dedent(
        f"""\
        name: nightly
        params: {{seed: {{default: 1}}}}
        defaults: {{retry: {{max_attempts: 1}}}}
        steps:
          - id: deploy
            agent: flaky
            foreach: [{items}]
            run: sh deploy.sh {{{{ item }}}} 2
          - id: lint
            agent: flaky
            foreach: [{items}]
            run: sh lint.sh {{{{ item }}}} {{{{ params.seed }}}}
          - id: check
            agent: steady
            foreach: [{items}]
            run: sh lint.sh {{{{ item }}}} {{{{ params.seed + 50 }}}}
          - id: ship
            agent: steady
            foreach: [{items}]
            run: sh deploy.sh {{{{ item }}}} 99
        """
    )


def make_project(project: Path) -> Path:
    project.mkdir(parents=True, exist_ok=True)
    (project / "deploy.sh").write_text(DEPLOY)
    (project / "lint.sh").write_text(LINT)
    (project / "agenthq.toml").write_text(TOML)
    (project / "nightly.yaml").write_text(plan_text())
    return project


def gate_config() -> GateConfig:
    return GateConfig(
        policy=Policy(allow=("sh deploy.sh *", "sh lint.sh *")),
        breaker=BreakerSettings(failures=100_000),
    )


def generate(project: Path, workers: tuple[int, ...] = WORKERS) -> None:
    """Run the plan once per entry of `workers` into project/.agenthq, the first run
    `len(workers) * 4 h` ago and the last 4 h ago."""
    make_project(project)
    start_offset = -len(workers) * RUN_SPACING_S
    offset = [start_offset]
    home = project / ".agenthq"
    with agenthq.open_store(f"sqlite:///{home / 'agenthq.db'}") as store:
        runner = Runner(
            store,
            home=home,
            environ={},
            gates=gate_config(),
            clock=lambda: time.time() + offset[0],
        )
        for n, max_workers in enumerate(workers):
            offset[0] = start_offset + n * RUN_SPACING_S
            runner.run(
                load_plan(project / "nightly.yaml"),
                params={"seed": n},
                workspace=project,
                max_workers=max_workers,
            )


def copy_project(source: Path, target: Path) -> Path:
    """A private copy of a generated project (its database closed, so the file is whole)."""
    shutil.copytree(source, target)
    return target
