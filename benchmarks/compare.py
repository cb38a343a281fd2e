"""Compare revisions of agenthq on one workload, interleaved: `python benchmarks/compare.py
--workload W4 --rounds 11 HEAD~3 HEAD` (the working tree is `.`).

This VM's speed drifts by 2x within minutes, so a change is only measurable against the code
before it in the same minutes: each round runs every revision once, then the floor, and the
table shows medians. Each revision is exported from git into a temporary directory and
byte-compiled (see `workloads.compile_bytecode`: a tree without .pyc files would measure the
compiler) and run with its `src` first on PYTHONPATH, by the same interpreter and packages.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import DEFAULT_WORKERS, FLOORS, WORKERS, floor, run_once
from workloads import WORKLOADS, compile_bytecode, write_plan

ROOT = Path(__file__).resolve().parent.parent


def export(revision: str, into: Path) -> Path:
    """The `src` directory of `revision` (`.`: the working tree), byte-compiled."""
    if revision == ".":
        compile_bytecode()
        return ROOT / "src"
    target = into / revision.replace("/", "_")
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    compileall.compile_dir(str(target / "src"), quiet=1)
    return target / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("revisions", nargs="+", help="git revisions; `.` is the working tree")
    parser.add_argument("--workload", default="W4", help="a workload whose name starts so")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    name = next((n for n in WORKLOADS if n.lower().startswith(args.workload.lower())), None)
    if name is None:
        raise SystemExit(f"no workload starts with {args.workload!r}: {', '.join(WORKLOADS)}")
    with tempfile.TemporaryDirectory(prefix="agenthq-compare-") as scratch:
        trees = {rev: export(rev, Path(scratch)) for rev in args.revisions}
        plan = write_plan(Path(scratch), WORKLOADS[name][0]())
        homes = Path(scratch)  # kept to the end: deleting a run's logs slows the next's (run.py)
        runs: dict[str, list[tuple[float, float]]] = {rev: [] for rev in trees}
        floors: list[float] = []
        for _ in range(args.rounds):
            for rev, src in trees.items():
                os.environ["PYTHONPATH"] = str(src)
                runs[rev].append(run_once(plan, WORKERS.get(name, DEFAULT_WORKERS), homes))
            os.environ.pop("PYTHONPATH", None)
            if name in FLOORS:
                floors.append(floor(FLOORS[name])[1])
    base = statistics.median(floors) if floors else float("nan")
    print(f"\n{name}, medians of {args.rounds} interleaved rounds")
    print(f"{'revision':<24} {'run s':>7} {'/floor':>7} {'wall s':>7}")
    for rev, values in runs.items():
        run = statistics.median(phase for _, phase in values)
        wall = statistics.median(whole for whole, _ in values)
        print(f"{rev:<24} {run:>7.3f} {run / base:>7.2f} {wall:>7.3f}")
    print(f"{'floor':<24} {base:>7.3f}")
    print("run: the run's started_at..finished_at; wall: the whole `agenthq run` process")


if __name__ == "__main__":
    main()
