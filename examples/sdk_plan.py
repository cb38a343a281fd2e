"""A plan built in Python and run with the same engine as the YAML plans.

python examples/sdk_plan.py
"""

from __future__ import annotations

from pathlib import Path

import agenthq


def build() -> agenthq.Plan:
    plan = agenthq.Plan("sdk-demo", description="built with the Python SDK")
    plan.param("who", default="world")
    plan.step("greet", run='echo \'{"greeting": "hello {{ params.who }}"}\'')
    plan.step("count", foreach=[1, 2, 3], run="echo counting {{ item }}")
    plan.step(
        "summary",
        needs=["greet", "count"],
        uses="agenthq.builtin:echo",
        with_={
            "text": "{{ steps.greet.outputs.greeting }} after {{ steps.count.outputs | length }} counts"
        },
    )
    return plan


def main() -> int:
    home = Path(".agenthq")
    with agenthq.open_store(f"sqlite:///{home / 'agenthq.db'}") as store:
        runner = agenthq.Runner(store, home=home)
        run = runner.run(build(), params={"who": "agents"})
        for step in store.get_steps(run.id):
            print(f"{step.step_id:<10} {step.state:<10} {dict(step.outputs)}")
        print(f"run {run.id}: {run.state}")
        return 0 if run.state == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
