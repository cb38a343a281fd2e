"""`make bench`, learning from history: training the failure model on 100,000 telemetry rows
(target < 30 s), scoring one step (target < 5 ms), and model vs baseline on the held-out part.

The rows are synthetic but shaped like real history: five agents, eight command families,
parallelism 1-16; agent `flaky` fails most of its `deploy.sh` attempts when more than six
run at once, every attempt fails 4 % of the time by chance, and `flaky` is also a little worse
everywhere (so the baseline, its failure rate, is not useless).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import agenthq  # noqa: E402
from agenthq.ml import model  # noqa: E402
from agenthq.ml.features import Candidate, History  # noqa: E402
from agenthq.store.api import Batch, TelemetryRow  # noqa: E402

AGENTS = ("flaky", "steady", "coder", "reviewer", None)
FAMILIES = (
    "sh deploy.sh",
    "pytest",
    "ruff check",
    "git push",
    "make build",
    "npm test",
    "sh lint.sh",
    "python migrate.py",
)


def synthetic_rows(count: int, seed: int = 7, start: float = 1_780_000_000.0) -> list[TelemetryRow]:
    rng = random.Random(seed)
    rows = []
    at = start
    for n in range(count):
        at += rng.expovariate(1 / 6.0)  # an attempt every ~6 s: 100k rows ≈ a week
        agent = rng.choice(AGENTS)
        family = rng.choice(FAMILIES)
        parallelism = rng.randint(1, 16)
        attempt = 1 if rng.random() < 0.85 else 2
        risk = rng.choice((0.0, 0.0, 10.0, 25.0, 40.0))
        p = 0.04 + (0.05 if agent == "flaky" else 0.0)
        if agent == "flaky" and family == "sh deploy.sh" and parallelism > 6:
            p = 0.8
        failed = rng.random() < p
        duration = rng.uniform(0.5, 3.0) * (2 if family == "pytest" else 1)
        rows.append(
            TelemetryRow(
                run_id=f"run{n // 50}",
                step_id=f"s{n % 50}",
                attempt=attempt,
                plan=f"plan{n % 7}",
                step=f"s{n % 50}",
                agent=agent,
                kind="shell",
                family=family,
                risk_score=risk,
                risk_reasons=("writes files",) if risk else (),
                predicted_failure=None,
                fan_in=rng.randint(0, 3),
                parallelism=parallelism,
                started_at=at,
                finished_at=at + duration,
                outcome="failed" if failed else "succeeded",
                failure_class="execution" if failed else None,
                cost_usd=None,
            )
        )
    return rows


def main() -> None:
    rows = synthetic_rows(100_000)
    # As `agenthq model train` does it: read the rows from a real store, then train.
    with (
        tempfile.TemporaryDirectory() as directory,
        agenthq.open_store(f"sqlite:///{directory}/agenthq.db") as store,
    ):
        for start in range(0, len(rows), 5000):
            store.apply(Batch(at=time.time(), telemetry=rows[start : start + 5000]))
        began = time.perf_counter()
        stored = store.list_telemetry()
        read_s = time.perf_counter() - began
        trained = model.train(stored)
        train_s = time.perf_counter() - began
    meta = trained.meta
    print("ML: failure model on 100,000 synthetic telemetry rows (2 cores)")
    print(
        f"  read from SQLite + train (2 candidates): {train_s:.1f} s (read {read_s:.1f} s)   "
        f"target < 30 s   chose {meta.kind} {dict(meta.selection)}"
    )
    print(
        f"  held-out {meta.model.rows} rows: model ROC-AUC {meta.model.roc_auc:.3f} PR-AUC {meta.model.pr_auc:.3f} "
        f"F1 {meta.model.f1:.3f} Brier {meta.model.brier:.4f}"
    )
    print(
        f"                       baseline ROC-AUC {meta.baseline.roc_auc:.3f} PR-AUC {meta.baseline.pr_auc:.3f} "
        f"F1 {meta.baseline.f1:.3f} Brier {meta.baseline.brier:.4f}   (difference {meta.model.roc_auc - meta.baseline.roc_auc:+.3f})"
    )
    with tempfile.TemporaryDirectory() as directory:
        model.save(trained, Path(directory))
        loaded = model.load(Path(directory))
    history = History()
    for row in rows[-20_000:]:
        history.add(row)
    candidate = Candidate(
        "plan1", "s3", "flaky", "shell", "sh deploy.sh", 10.0, 1, 1, 2, 12, rows[-1].finished_at
    )
    timings = []
    for _ in range(300):
        t0 = time.perf_counter()
        (p,) = loaded.predict_many([history.features(candidate)])
        timings.append(time.perf_counter() - t0)
    median_ms = statistics.median(timings) * 1000
    p95_ms = sorted(timings)[int(len(timings) * 0.95)] * 1000
    print(
        f"  predict one step (features + model): median {median_ms:.2f} ms, p95 {p95_ms:.2f} ms   target < 5 ms   (p={p:.2f})"
    )


if __name__ == "__main__":
    main()
