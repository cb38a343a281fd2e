"""`make bench`: wall time and per-step overhead of W1–W4, whole process, durable on SQLite.

Each workload runs as a user would run it — `agenthq run plan.yaml` in a fresh process with a
fresh store — `--repeat` times, in rounds (every workload and floor once per round); the table
shows medians of the whole process and of the run itself. Floors from plain asyncio with no
persistence (benchmarks/baseline.py) are measured in the same rounds for comparison.

W4 creates 600 log files. Where the file system makes new files slow (see "new files" in
docs/performance.md: on ext4 without a journal, each new inode is found past every inode
deleted in the last minutes), that is measured as well, so the table can tell the engine
from the disk: every run's home is kept until the benchmark ends (deleting a run's logs slowed
the next run's), each round times 600 new files in the same file system, and "W4 logs in RAM"
runs W4 again with its log directory on tmpfs (its store stays on disk). Before the first
round it waits (up to five minutes, and says so) until new files cost about what they cost
on an undisturbed disk: a test suite, pip or the last benchmark's deletions slow them for
minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from workloads import WORKLOADS, compile_bytecode, write_plan

ROOT = Path(__file__).resolve().parent.parent
AGENTHQ = [sys.executable, "-m", "agenthq"]
WALL_TARGETS = {"W1 fanout-1000": 1.0, "W3 layered-5000": 3.0}
# W4 must be limited by spawning, not by the engine: its run phase within 1.5x of bare asyncio.
RATIO_TARGETS = {"W4 shell-300": 1.5}
FLOORS = {
    "W1 fanout-1000": "w1",
    "W1 gates off": "w1",
    "W3 layered-5000": "w3",
    "W4 shell-300": "w4",
    "W4 gates off": "w4",
    "W4 logs in RAM": "w4",
}
W4, W4_LOGS_IN_RAM = "W4 shell-300", "W4 logs in RAM"
RAM = Path("/dev/shm")  # tmpfs on Linux
NEW_FILES = 600  # W4's log files: two for each of its 300 steps
SETTLE_FACTOR, SETTLE_CONFIRM, SETTLE_INTERVAL, SETTLE_PATIENCE = 4.0, 5.0, 10.0, 300.0
GATE_PAIRS = {"W1 fanout-1000": "W1 gates off", "W4 shell-300": "W4 gates off"}
GATES_TARGET = 0.05  # the gates add < 5% to W1
WORKERS = {"W4 shell-300": 8, "W4 gates off": 8}  # W4 is "8 at a time", with or without gates
DEFAULT_WORKERS = 200


def run_once(
    plan_path: Path, workers: int, homes: Path, logs_in: Path | None = None
) -> tuple[float, float]:
    """(whole-process wall seconds, seconds the run itself took as recorded in the store).
    The run's home is made in `homes` and left there: the caller deletes them all at the end.
    With `logs_in`, its log directory is a new directory there."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=homes))
    if logs_in is not None:
        (home / "logs").symlink_to(tempfile.mkdtemp(prefix="logs-", dir=logs_in))
    env = {**os.environ, "AGENTHQ_HOME": str(home)}
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
    runs = subprocess.run(
        [*AGENTHQ, "runs", "--json"], env=env, cwd=home, capture_output=True, check=True
    )
    run = json.loads(runs.stdout)[0]
    return elapsed, run["finished_at"] - run["started_at"]


def new_files_seconds(homes: Path, count: int = NEW_FILES) -> float:
    """How long this file system takes to create `count` empty files in a new directory, as
    W4's log files are created (kept, like the runs' homes, until the benchmark ends)."""
    directory = Path(tempfile.mkdtemp(prefix="probe-", dir=homes))
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    started = time.perf_counter()
    for n in range(count):
        os.close(os.open(directory / f"{n:04d}.log", flags, 0o644))
    return time.perf_counter() - started


def settle(homes: Path, patience: float = SETTLE_PATIENCE) -> str:
    """Wait, up to `patience` seconds, until new files cost here about what they cost on a
    quiet disk, and say what was waited for ("" when nothing was). Right after a benchmark,
    a test suite or pip has deleted its files, new files on this VM's ext4 (no journal) cost
    10-40x what they cost minutes later, and W4 would time the file system, not the engine.
    Quiet means within SETTLE_FACTOR of the same probe on tmpfs (an undisturbed ext4 took
    1.5-3x tmpfs here, a disturbed one 4-40x). The slowdown begins a second or two after
    the deletions, so a quiet reading counts once another, SETTLE_CONFIRM seconds later,
    agrees. Each probe makes as many files as a W4 run: right after a benchmark the first
    hundred took 3 ms and the sixth 15 ms, so a small probe missed it. `sync` did not help."""
    if not (RAM.is_dir() and os.access(RAM, os.W_OK)):
        return ""
    with tempfile.TemporaryDirectory(prefix="agenthq-probe-", dir=RAM) as ram:
        in_ram = min(new_files_seconds(Path(ram)) for _ in range(3))
    limit = in_ram * SETTLE_FACTOR
    started = time.monotonic()
    costs: list[float] = []
    quiet_since: float | None = None
    while time.monotonic() - started < patience:
        costs.append(new_files_seconds(homes))
        if costs[-1] > limit:
            if quiet_since is not None or len(costs) == 1:  # said once each time it turns slow
                print(
                    f"{NEW_FILES} new files took {costs[-1] * 1000:.0f} ms here"
                    f" ({in_ram * 1000:.0f} ms in RAM): waiting up to {patience:.0f} s for the"
                    " file system to settle (--no-settle skips this; see docs/performance.md)",
                    flush=True,
                )
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= SETTLE_CONFIRM:
            break
        time.sleep(SETTLE_CONFIRM if quiet_since is not None else SETTLE_INTERVAL)
    if max(costs) <= limit:
        return ""
    outcome = (
        "settled" if quiet_since is not None else "did not settle: W4's lines include the disk"
    )
    return (
        f"waited {time.monotonic() - started:.0f} s for the file system ({NEW_FILES} new files:"
        f" {max(costs) * 1000:.0f} ms at worst -> {costs[-1] * 1000:.0f} ms; {outcome})"
    )


def floor(which: str) -> tuple[float, float]:
    """(whole-process wall seconds, seconds of the asyncio loop alone) of the plain baseline."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "baseline.py"), which],
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - started, float(result.stdout)


def main() -> None:
    compile_bytecode()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", help="run only workloads whose name contains this")
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="start at once, even while new files are slow to create (W4 then times the disk)",
    )
    args = parser.parse_args()
    chosen = {
        name: (factory, steps)
        for name, (factory, steps) in WORKLOADS.items()
        if not args.only or args.only.lower() in name.lower()
    }
    with contextlib.ExitStack() as stack:
        plans = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agenthq-plans-")))
        homes = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agenthq-bench-")))
        # (plan, workers, directory for its logs: None for the run's home)
        jobs: dict[str, tuple[Path, int, Path | None]] = {
            name: (write_plan(plans, factory()), WORKERS.get(name, DEFAULT_WORKERS), None)
            for name, (factory, _) in chosen.items()
        }
        if W4 in jobs and RAM.is_dir() and os.access(RAM, os.W_OK):
            ram = stack.enter_context(tempfile.TemporaryDirectory(prefix="agenthq-", dir=RAM))
            jobs[W4_LOGS_IN_RAM] = (jobs[W4][0], jobs[W4][1], Path(ram))
            chosen[W4_LOGS_IN_RAM] = chosen[W4]
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in jobs}
        needed = {FLOORS[name] for name in jobs if name in FLOORS}
        floor_samples: dict[str, list[tuple[float, float]]] = {which: [] for which in needed}
        new_files: list[float] = []
        # Round by round, every workload and floor once: the VM's speed drifts within minutes,
        # and a pair compared (gates on and off, a run and its floor) must see the same drift.
        # Each round runs them in a new order (seeded: the same each time), so that no
        # workload always follows the same one: on this VM a W4 run's time depends on what
        # the file system did just before (see "New files" in docs/performance.md).
        settled = settle(homes) if W4 in jobs and not args.no_settle else ""
        if settled:
            print(settled, flush=True)
        names = list(jobs)
        shuffle = random.Random(42).shuffle
        for _ in range(args.repeat):
            if W4 in jobs:
                new_files.append(new_files_seconds(homes))
            shuffle(names)
            for name in names:
                path, workers, logs_in = jobs[name]
                samples[name].append(run_once(path, workers, homes, logs_in))
            for which, values in floor_samples.items():
                values.append(floor(which))
    rows = [
        (
            name,
            steps,
            statistics.median(wall for wall, _ in samples[name]),
            statistics.median(phase for _, phase in samples[name]),
        )
        for name, (_, steps) in chosen.items()
    ]
    floors = {
        which: (
            statistics.median(wall for wall, _ in values),
            statistics.median(loop for _, loop in values),
        )
        for which, values in floor_samples.items()
    }
    print(f"\nagenthq benchmark, SQLite durable, median of {args.repeat} fresh processes\n")
    print(
        f"{'workload':<16} {'steps':>5} {'wall s':>7} {'run s':>6} {'ms/step':>8} "
        f"{'floor wall':>10} {'floor run':>9} {'run/floor':>9}  target"
    )
    for name, steps, wall, phase in rows:
        floor_wall, floor_loop = floors.get(FLOORS.get(name, ""), (float("nan"), float("nan")))
        ratio = phase / floor_loop if floor_loop == floor_loop else float("nan")
        print(
            f"{name:<16} {steps:>5} {wall:>7.3f} {phase:>6.3f} {phase / steps * 1000:>8.3f} "
            f"{floor_wall:>10.3f} {floor_loop:>9.3f} {ratio:>9.2f}  {_verdict(name, wall, ratio)}"
        )
    if new_files:
        print(
            f"new files: {len(new_files)} rounds, each creating {NEW_FILES} empty files in this"
            f" file system: median {statistics.median(new_files) * 1000:.0f} ms"
            f" (max {max(new_files) * 1000:.0f} ms); W4 creates as many log files"
        )
    if settled:
        print(f"before the first round: {settled}")
    for gated, ungated in GATE_PAIRS.items():
        if gated in samples and ungated in samples:
            wall_cost, low, high = paired_cost(samples[gated], samples[ungated], 0)
            run_cost, _, _ = paired_cost(samples[gated], samples[ungated], 1)
            verdict = ""
            if gated.startswith("W1"):
                met = "ok" if wall_cost < GATES_TARGET else "MISS"
                verdict = f"  (target < {GATES_TARGET:.0%}: {met})"
            print(
                f"gates add {wall_cost:+.1%} wall (rounds {low:+.1%} to {high:+.1%}),"
                f" {run_cost:+.1%} run phase to {gated}{verdict}"
            )
    print(
        "\nwall: whole `agenthq run` process incl. interpreter start, imports and a new store."
        "\nrun: the run's started_at..finished_at as recorded in the store (the engine at work)."
        "\nfloor: plain asyncio + graphlib (or bare process spawning for W4), no persistence."
    )


def paired_cost(
    gated: list[tuple[float, float]], ungated: list[tuple[float, float]], index: int
) -> tuple[float, float, float]:
    """What the gates add, as the median over rounds of each round's own ratio (and the
    lowest and highest): the pair ran in the same minute, so the VM's drift between rounds,
    which is larger than the gates' cost, cancels; a ratio of two medians taken over
    different minutes flipped the verdict from run to run. `index`: 0 wall, 1 run phase."""
    ratios = sorted(g[index] / u[index] - 1 for g, u in zip(gated, ungated, strict=True))
    return statistics.median(ratios), ratios[0], ratios[-1]


def _verdict(name: str, wall: float, ratio: float) -> str:
    if name in WALL_TARGETS:
        target = WALL_TARGETS[name]
        return f"wall < {target:g} s: {'ok' if wall < target else 'MISS'}"
    if name in RATIO_TARGETS:
        target = RATIO_TARGETS[name]
        return f"run/floor <= {target:g}x: {'ok' if ratio <= target else 'MISS'}"
    return ""


if __name__ == "__main__":
    main()
