"""What the spawner helper buys on W4: the same plan with it on and off, interleaved.

python benchmarks/spawner_bench.py [--rounds 11]

Each round runs W4 (300 `/bin/true` steps, 8 at a time) as a user would — `agenthq run` in a
fresh process with a fresh store — once with the helper and once with `AGENTHQ_SPAWNER=off`,
then the bare asyncio floor. Alternating matters on a shared VM whose speed drifts by tens of
percent within minutes: medians of interleaved runs compare like with like.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import floor, run_once
from workloads import WORKLOADS, compile_bytecode, write_plan

WORKERS = 8


def main() -> None:
    compile_bytecode()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    factory, steps = WORKLOADS["W4 shell-300"]
    phases: dict[str, list[float]] = {"helper": [], "in-process": [], "floor": []}
    saved = os.environ.get("AGENTHQ_SPAWNER")
    with tempfile.TemporaryDirectory(prefix="agenthq-plans-") as plans:
        path = write_plan(Path(plans), factory())
        homes = Path(plans)  # every run's home kept to the end, as in run.py
        try:
            for _ in range(args.rounds):
                os.environ["AGENTHQ_SPAWNER"] = "on"
                phases["helper"].append(run_once(path, WORKERS, homes)[1])
                os.environ["AGENTHQ_SPAWNER"] = "off"
                phases["in-process"].append(run_once(path, WORKERS, homes)[1])
                phases["floor"].append(floor("w4")[1])
        finally:
            if saved is None:
                os.environ.pop("AGENTHQ_SPAWNER", None)
            else:
                os.environ["AGENTHQ_SPAWNER"] = saved
    medians = {name: statistics.median(values) for name, values in phases.items()}
    print(f"\nW4 shell-300 ({steps} steps, {WORKERS} at a time), {args.rounds} interleaved rounds")
    for name, median in medians.items():
        values = phases[name]
        print(
            f"  {name:<11} run phase median {median:.3f} s  ({min(values):.3f}–{max(values):.3f})"
            f"  {median / medians['floor']:.2f}x the floor"
        )
    change = medians["helper"] / medians["in-process"] - 1
    print(f"  the helper changes W4's run phase by {change:+.1%}")


if __name__ == "__main__":
    main()
