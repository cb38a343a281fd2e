"""`make bench`: wall time and per-step overhead of W1–W4, whole process, durable on SQLite.

Each workload runs as a user would run it — `agenthq run plan.yaml` in a fresh process with a
fresh store — `--repeat` times; the table shows medians. Floors from plain asyncio with no
persistence (benchmarks/baseline.py) are measured in the same run for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from workloads import WORKLOADS, write_plan

ROOT = Path(__file__).resolve().parent.parent
AGENTHQ = [sys.executable, "-m", "agenthq"]
TARGETS = {"W1 fanout-1000": 1.0, "W3 layered-5000": 3.0}
WORKERS = {"W4 shell-300": 8}
DEFAULT_WORKERS = 200


def run_once(plan_path: Path, workers: int) -> float:
    with tempfile.TemporaryDirectory(prefix="agenthq-bench-") as home:
        env = {**os.environ, "AGENTHQ_HOME": home}
        env.pop("AGENTHQ_DB_URL", None)
        started = time.perf_counter()
        result = subprocess.run(
            [*AGENTHQ, "run", str(plan_path), "--quiet", "--max-workers", str(workers)],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(
                f"{plan_path.name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return elapsed


def floor(which: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "baseline.py"), which],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="run only workloads whose name contains this")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="agenthq-plans-") as plans:
        for name, (factory, steps) in WORKLOADS.items():
            if args.only and args.only.lower() not in name.lower():
                continue
            path = write_plan(Path(plans), factory())
            times = [run_once(path, WORKERS.get(name, DEFAULT_WORKERS)) for _ in range(args.repeat)]
            rows.append((name, steps, statistics.median(times), min(times)))
        floors = {
            w: statistics.median(floor(w) for _ in range(args.repeat)) for w in ("w1", "w3", "w4")
        }
    print(
        f"\nagenthq benchmark (median of {args.repeat}, whole process incl. start-up, SQLite durable)\n"
    )
    print(
        f"{'workload':<18} {'steps':>6} {'wall s':>8} {'best s':>8} {'per step ms':>12} {'target':>8}"
    )
    for name, steps, median, best in rows:
        target = TARGETS.get(name)
        verdict = (
            ""
            if target is None
            else (f"<{target:g}s ok" if median < target else f"<{target:g}s MISS")
        )
        print(
            f"{name:<18} {steps:>6} {median:>8.3f} {best:>8.3f} {median / steps * 1000:>12.3f} {verdict:>8}"
        )
    print("\nfloors (plain asyncio, no persistence, whole process):")
    for which, seconds in floors.items():
        print(f"  {which}: {seconds:.3f} s")
    w4 = next((r for r in rows if r[0].startswith("W4")), None)
    if w4 is not None:
        ratio = w4[2] / floors["w4"]
        print(
            f"\nW4 vs bare asyncio spawning the same 300 processes 8 at a time: {ratio:.2f}x (target <= 1.5x)"
        )


if __name__ == "__main__":
    main()
