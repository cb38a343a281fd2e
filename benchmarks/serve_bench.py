"""`make bench`, server part: the live stream under load, serve vs run, API latency.

1. SSE: 10 clients follow /api/events/stream while W3 (5,000 steps) runs in the server; every
   client must receive every event of the run, and the lag at the end (run finished in the
   store → the client has its last event) must stay under a second.
2. serve vs run: W3's run phase (started_at..finished_at) executed by `agenthq serve` against
   the same plan run by `agenthq run` (target: < 20% more).
3. API latency: wrk (Debian's) with 50 connections reading run lists (50 runs) and the detail
   of a 20-step run for 30 s while W3 runs over and over in the server (queued with
   `agenthq run --detach`); p50/p95/p99 and errors (target p95 < 50 ms).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from workloads import compile_bytecode, w3_layered, write_plan

AGENTHQ = [sys.executable, "-m", "agenthq"]
CLIENTS = 10
# Run details are read for a run of everyday size: a 5,000-step run's detail is 1 MB of JSON.
SMALL_PLAN = "name: small\nsteps:\n" + "".join(
    f"  - id: s{i}\n    uses: agenthq.builtin:noop\n" for i in range(20)
)
LOAD_SECONDS = int(os.environ.get("AGENTHQ_BENCH_LOAD_SECONDS", "30"))
REPEAT = 5  # W3 runs each way for serve vs run; the first in the server also feeds the SSE clients


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, home: Path, project: Path) -> None:
        self.home = home
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHQ_")}
        env["AGENTHQ_HOME"] = str(home)
        self.process = subprocess.Popen(
            [*AGENTHQ, "serve", "--port", str(self.port)],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        token = ""
        deadline = time.monotonic() + 30
        while not token and time.monotonic() < deadline:
            match = re.search(r"token=(\S+)", self.process.stderr.readline())
            if match:
                token = match.group(1)
        if not token:
            raise SystemExit("agenthq serve did not start")
        self.token = token
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=60)

    def start(self, plan: Path) -> str:
        with self.client() as http:
            response = http.post("/api/runs", json={"path": plan.name, "max_workers": 200})
            response.raise_for_status()
            return str(response.json()["id"])

    def wait(self, run_id: str) -> dict[str, Any]:
        """Poll the run list, as a dashboard's overview does: the run's own detail is a
        megabyte for W3, and fetching it twenty times a second would measure this loop."""
        with self.client() as http:
            while True:
                runs = http.get("/api/runs", params={"limit": 10}).json()["runs"]
                run = next((r for r in runs if r["id"] == run_id), None)
                if run is None:
                    run = http.get(f"/api/runs/{run_id}").json()
                if run["state"] in ("succeeded", "failed", "cancelled"):
                    return dict(run)
                time.sleep(0.05)

    def head(self) -> int:
        with self.client() as http:
            return int(http.get("/api/events", params={"after": 0, "limit": 1}).json()["last_seq"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=30)


def follow(server: Server, after: int, run_box: dict[str, str], out: dict[str, Any]) -> None:
    """One SSE client: count the run's events; note when the run's final event arrived."""
    counts: dict[str, int] = {}
    with (
        httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as http,
        http.stream("GET", "/api/events/stream", params={"after": after}) as response,
    ):
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            run_id = event.get("run_id")
            counts[run_id] = counts.get(run_id, 0) + 1
            finished = event["kind"] == "run" and event["to"] in ("succeeded", "failed")
            if finished and run_id == run_box.get("id"):
                out["received_at"] = time.time()
                out["count"] = counts[run_id]
                return


def sse_and_overhead(server: Server, plan: Path, project: Path) -> dict[str, float]:
    after = server.head()
    run_box: dict[str, str] = {}
    results = [dict[str, Any]() for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=follow, args=(server, after, run_box, results[i]), daemon=True)
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    started = time.perf_counter()
    run_box["id"] = server.start(plan)
    run = server.wait(run_box["id"])
    wall = time.perf_counter() - started
    for thread in threads:
        thread.join(timeout=60)
    with server.client() as http:
        total = len(http.get(f"/api/runs/{run_box['id']}/events").json())
    complete = sum(1 for r in results if r.get("count") == total)
    lags = [r["received_at"] - run["finished_at"] for r in results if "received_at" in r]
    return {
        "events": float(total),
        "clients_complete": float(complete),
        "lag_max_s": max(lags) if lags else float("inf"),
        "events_per_s_per_client": total / wall,
        "serve_run_phase_s": run["finished_at"] - run["started_at"],
    }


def plain_run_phase(plan: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="agenthq-bench-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHQ_")}
        env["AGENTHQ_HOME"] = home
        subprocess.run(
            [*AGENTHQ, "run", str(plan), "--quiet", "--max-workers", "200"],
            env=env,
            cwd=plan.parent,
            check=True,
            capture_output=True,
        )
        runs = subprocess.run(
            [*AGENTHQ, "runs", "--json"], env=env, cwd=plan.parent, check=True, capture_output=True
        )
        run = json.loads(runs.stdout)[0]
        return float(run["finished_at"] - run["started_at"])


WRK_SCRIPT = """
local paths = {"/api/runs?limit=50", "/api/runs/%s"}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% 2) + 1], {["Authorization"] = "Bearer %s"})
end
done = function(summary, latency, requests)
  io.write(string.format("AGENTHQ p50=%%f p95=%%f p99=%%f requests=%%d errors=%%d non2xx=%%d\\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status))
end
"""


def api_latency(server: Server, plan: Path, run_id: str) -> dict[str, float] | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed (apt-get install wrk): API latency not measured")
        return None
    stop = threading.Event()

    def keep_running() -> None:
        # Queued as users do, `agenthq run --detach`; AGENTHQ_BENCH_VIA_API=1 posts the plan
        # to the API instead (compiled in the server's compile worker).
        if os.environ.get("AGENTHQ_BENCH_VIA_API") == "1":
            while not stop.is_set():
                server.wait(server.start(plan))
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHQ_")}
        env["AGENTHQ_HOME"] = str(server.home)
        while not stop.is_set():
            queued = subprocess.run(
                [*AGENTHQ, "run", plan.name, "--detach", "--max-workers", "200"],
                cwd=plan.parent,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            server.wait(queued.stdout.strip())

    background = threading.Thread(target=keep_running, daemon=True)
    background.start()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (run_id, server.token))
    try:
        done = subprocess.run(
            [
                wrk,
                "-t2",
                "-c50",
                f"-d{LOAD_SECONDS}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                server.url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        stop.set()
        os.unlink(script.name)
    background.join(timeout=120)
    match = re.search(r"AGENTHQ (.*)", done.stdout)
    if match is None:
        raise SystemExit(f"wrk gave no summary:\n{done.stdout}\n{done.stderr}")
    return {k: float(v) for k, v in (pair.split("=") for pair in match.group(1).split())}


def main() -> None:
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="agenthq-serve-bench-") as scratch:
        project = Path(scratch)
        plan = write_plan(project, w3_layered())
        server = Server(project / ".agenthq", project)
        try:
            sse = sse_and_overhead(server, plan, project)
            plain = statistics.median(plain_run_phase(plan) for _ in range(REPEAT))
            serve_phases = [sse["serve_run_phase_s"]]
            for _ in range(REPEAT - 1):
                run = server.wait(server.start(plan))
                serve_phases.append(run["finished_at"] - run["started_at"])
            serve_phase = statistics.median(serve_phases)
            small = project / "small.yaml"
            small.write_text(SMALL_PLAN)
            detail_run = server.start(small)
            server.wait(detail_run)
            latency = api_latency(server, plan, detail_run)
        finally:
            server.stop()
    overhead = serve_phase / plain - 1
    print("\nagenthq serve benchmark (W3 layered-5000 in the server, SQLite)\n")
    print(
        f"SSE: {CLIENTS} clients, {sse['events']:.0f} events each; complete: "
        f"{sse['clients_complete']:.0f}/{CLIENTS}; lag at the end: {sse['lag_max_s']:.3f} s "
        f"(target < 1 s: {'ok' if sse['lag_max_s'] < 1 and sse['clients_complete'] == CLIENTS else 'MISS'}); "
        f"{sse['events_per_s_per_client']:.0f} events/s per client, "
        f"{sse['events_per_s_per_client'] * CLIENTS:.0f} events/s delivered"
    )
    print(
        f"serve vs run, W3 run phase (median of {REPEAT}): {serve_phase:.3f} s vs {plain:.3f} s: "
        f"{overhead:+.1%} (target < 20%: {'ok' if overhead < 0.2 else 'MISS'})"
    )
    if latency is not None:
        print(
            f"API under load (wrk, 50 connections, {LOAD_SECONDS} s, W3 running throughout): "
            f"p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms, p99 {latency['p99']:.1f} ms, "
            f"{latency['requests']:.0f} requests, {latency['errors'] + latency['non2xx']:.0f} errors "
            f"(target p95 < 50 ms, no errors: "
            f"{'ok' if latency['p95'] < 50 and latency['errors'] + latency['non2xx'] == 0 else 'MISS'})"
        )


if __name__ == "__main__":
    main()
