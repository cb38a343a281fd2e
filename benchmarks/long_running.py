"""`make bench`, long-running plans: restarting a big waiting run, the CPU a waiting run
costs, and a plan under injected faults (AGENTHQ_CHAOS).

1. restart: a run with 10,000 finished steps and 3 `wait: 1h` steps is stopped while it
   waits; a fresh process picks it up. Measured: seconds from the new process's start to its
   first scheduler tick (imports, loading 10,003 rows, compiling, recovery, priming).
   Target < 2 s.
2. waiting: CPU seconds that process uses over 5 s of nothing but waiting. Target: ~0 (the
   scheduler sleeps until its next timer or poll, it does not spin).
3. chaos: 200 shell steps with retries, plain and under
   AGENTHQ_CHAOS="latency=0.2,fail=0.05,kill=0.01,seed=7": both must succeed with every
   output right; reported are the faults injected and the slowdown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAOS = "latency=0.2,fail=0.05,kill=0.01,seed=7"


def big_waiting_plan(finished: int = 10_000, waiting: int = 3) -> dict[str, object]:
    return {
        "name": "long-haul",
        "steps": [
            {"id": "work", "foreach": list(range(finished)), "uses": "agenthq.builtin:noop"},
            *({"id": f"hold{i}", "needs": ["work"], "wait": "1h"} for i in range(waiting)),
        ],
    }


def prepare(home: Path) -> str:
    """Run the big plan until its waits start, then stop it; the run id."""
    import yaml

    import agenthq
    from agenthq.engine.runner import Runner

    plan = home / "plan.yaml"
    plan.write_text(yaml.safe_dump(big_waiting_plan()))
    store = agenthq.open_store(f"sqlite:///{home / 'agenthq.db'}")
    runner = Runner(store, home=home)
    record = runner.start(agenthq.load_plan(plan), workspace=home, max_workers=200)

    async def until_waiting() -> None:
        task = asyncio.create_task(runner.execute_async(record.id))
        while True:
            await asyncio.sleep(0.2)
            counts = store.get_run(record.id).step_counts
            if counts.get("waiting", 0) == 3:
                break
        task.cancel()  # what a stopping server does: the run stays unfinished in the store
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(until_waiting())
    store.close()
    return record.id


def restart(home: Path, run_id: str, watch: float) -> None:
    """In a fresh process: time to the first tick, then CPU over `watch` s of waiting."""
    started = time.perf_counter()
    import agenthq
    from agenthq.engine.runner import Runner
    from agenthq.engine.scheduler import SchedulerOptions

    first: list[float] = []

    def on_tick(_: float) -> None:
        if not first:
            first.append(time.perf_counter() - started)

    store = agenthq.open_store(f"sqlite:///{home / 'agenthq.db'}")
    runner = Runner(store, home=home, scheduler_options=SchedulerOptions(on_tick=on_tick))

    async def go() -> float:
        task = asyncio.create_task(runner.execute_async(run_id))
        while not first:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.5)  # let start-up work (health, GC) settle
        cpu = time.process_time()
        await asyncio.sleep(watch)
        used = time.process_time() - cpu
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return used

    cpu = asyncio.run(go())
    print(json.dumps({"first_tick_s": first[0], "cpu_s": cpu, "watch_s": watch}))


def chaos_plan(count: int = 200) -> dict[str, object]:
    return {
        "name": "chaos-200",
        "defaults": {
            "retry": {
                "max_attempts": 10,
                "initial": "0.05s",
                "max": "0.5s",
                "on": ["execution", "lost"],
            }
        },
        "policy": {"allow": ["sleep *"]},
        "steps": [
            {
                "id": "job",
                "foreach": list(range(count)),
                "run": "sleep 0.05; echo '{\"n\": {{ item }}}'",
            }
        ],
    }


def chaos_once(plan: Path, chaos: str | None) -> tuple[float, int, int]:
    """(wall s, faults injected, attempts) of one `agenthq run`; exits if it went wrong."""
    import agenthq

    with tempfile.TemporaryDirectory(prefix="agenthq-chaos-") as home:
        env = {**os.environ, "AGENTHQ_HOME": home}
        env.pop("AGENTHQ_CHAOS", None)
        if chaos:
            env["AGENTHQ_CHAOS"] = chaos
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "agenthq", "run", str(plan), "--quiet", "--max-workers", "16"],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"chaos run failed ({done.returncode}): {done.stdout}{done.stderr}")
        with agenthq.open_store(f"sqlite:///{home}/agenthq.db") as store:
            (run,) = store.list_runs()
            steps = store.get_steps(run.id)
            wrong = [s.step_id for s in steps if s.outputs != {"n": int(s.step_id[4:-1])}]
            if wrong:
                raise SystemExit(f"wrong outputs under chaos: {wrong[:5]}")
            events = store.read_events(run_id=run.id, limit=1_000_000)
            faults = sum(1 for e in events if e.kind in ("chaos.fail", "chaos.kill"))
            attempts = len(store.get_attempts(run.id))
        return wall, faults, attempts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--restart", nargs=2, metavar=("HOME", "RUN"), help=argparse.SUPPRESS)
    parser.add_argument("--watch", type=float, default=5.0)
    args = parser.parse_args()
    if args.restart:
        restart(Path(args.restart[0]), args.restart[1], args.watch)
        return
    import yaml

    print("\nagenthq long-running benchmark\n")
    with tempfile.TemporaryDirectory(prefix="agenthq-long-") as tmp:
        home = Path(tmp)
        made = time.perf_counter()
        run_id = prepare(home)
        print(f"set-up: 10,000 finished steps + 3 waiting, in {time.perf_counter() - made:.1f} s")
        samples = []
        for _ in range(args.repeat):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--restart",
                    str(home),
                    run_id,
                    "--watch",
                    str(args.watch),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
        first = statistics.median(s["first_tick_s"] for s in samples)
        cpu = statistics.median(s["cpu_s"] for s in samples)
        print(
            f"restart of a 10,003-step waiting run, fresh process to first tick: {first:.2f} s "
            f"(median of {args.repeat}; target < 2 s: {'ok' if first < 2 else 'MISS'})"
        )
        print(
            f"CPU while waiting: {cpu * 1000:.0f} ms over {args.watch:g} s "
            f"({cpu / args.watch:.2%} of a core: with only timers left it polls for cancel and pause every 2 s)"
        )
        plan = home / "chaos.yaml"
        plan.write_text(yaml.safe_dump(chaos_plan()))
        plain = [chaos_once(plan, None) for _ in range(args.repeat)]
        chaotic = [chaos_once(plan, CHAOS) for _ in range(args.repeat)]
    plain_wall = statistics.median(w for w, _, _ in plain)
    chaos_wall = statistics.median(w for w, _, _ in chaotic)
    faults = statistics.median(f for _, f, _ in chaotic)
    attempts = statistics.median(a for _, _, a in chaotic)
    print(
        f"chaos-200 (200 shell steps, retries on execution/lost): plain {plain_wall:.2f} s, "
        f'AGENTHQ_CHAOS="{CHAOS}" {chaos_wall:.2f} s ({chaos_wall / plain_wall:.2f}x), '
        f"{faults:g} faults injected, {attempts:g} attempts, every run succeeded with every "
        "output right"
    )


if __name__ == "__main__":
    main()
