"""The work queue on both backends: claims are exclusive and follow capabilities, leases are
renewed only by their holder, a result from a worker whose lease expired is refused, and a
dead executor's work is fenced off."""

from __future__ import annotations

import threading

from agenthq.store.api import Batch, WorkItem
from agenthq.store.sql import SqlStore
from tests.conftest import make_run


def queue(store: SqlStore, run_id: str, steps: dict[str, list[str]], at: float = 100.0) -> None:
    store.apply(
        Batch(
            at=at,
            work_items=[
                WorkItem(run_id, step, 1, needs, {"kind": "shell", "command": f"echo {step}"}, at)
                for step, needs in steps.items()
            ],
        )
    )


def test_claims_follow_capabilities_and_never_overlap(store: SqlStore) -> None:
    run = make_run(store, ["a", "b", "g1", "g2"])
    queue(store, run.id, {"a": [], "b": [], "g1": ["gpu"], "g2": ["gpu", "big"]})
    plain = store.claim_work("cpu-1", [], 10, 30.0, 200.0)
    assert sorted(c.step_id for c in plain) == ["a", "b"]
    assert plain[0].payload["kind"] == "shell"
    assert plain[0].lease_expires_at == 230.0
    gpu = store.claim_work("gpu-1", ["gpu"], 10, 30.0, 200.0)
    assert [c.step_id for c in gpu] == ["g1"]
    big = store.claim_work("gpu-2", ["gpu", "big", "extra"], 10, 30.0, 200.0)
    assert [c.step_id for c in big] == ["g2"]
    assert store.claim_work("cpu-2", ["gpu", "big"], 10, 30.0, 200.0) == []


def test_racing_workers_take_each_item_once(store: SqlStore) -> None:
    run = make_run(store, [f"s{i}" for i in range(60)])
    queue(store, run.id, {f"s{i}": [] for i in range(60)})
    taken: dict[str, list[str]] = {}

    def work(name: str) -> None:
        mine: list[str] = []
        while True:
            claims = store.claim_work(name, [], 3, 30.0, 200.0)
            if not claims:
                break
            mine += [c.step_id for c in claims]
        taken[name] = mine

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [step for steps in taken.values() for step in steps]
    assert sorted(everything) == sorted(f"s{i}" for i in range(60))  # each exactly once


def test_only_the_holder_renews_and_reports(store: SqlStore) -> None:
    run = make_run(store, ["a"])
    queue(store, run.id, {"a": []})
    (claim,) = store.claim_work("w1", [], 1, 10.0, 200.0)
    key = (claim.run_id, claim.step_id, claim.number)
    assert store.renew_work("w1", [key], 300.0) == {key}
    assert store.renew_work("w2", [key], 300.0) == set()
    assert not store.finish_work("w2", key, {"failure_class": None}, 250.0)
    # The scheduler settles it lost only once its lease expired …
    assert not store.settle_work(key, "lost", expired_before=299.0)
    assert store.settle_work(key, "lost", expired_before=301.0)
    # … and the late result of the worker that held it is refused, not written.
    assert not store.finish_work("w1", key, {"failure_class": None, "outputs": {"x": 1}}, 302.0)
    assert store.renew_work("w1", [key], 400.0) == set()
    assert [s.state for s in store.work_status(run.id)] == []  # lost: nothing to collect


def test_a_result_is_collected_once_and_logs_are_kept(store: SqlStore) -> None:
    run = make_run(store, ["a"])
    queue(store, run.id, {"a": []})
    (claim,) = store.claim_work("w1", [], 1, 10.0, 200.0)
    key = (claim.run_id, claim.step_id, claim.number)
    store.append_log(key, "stdout", 1, "world\n")
    store.append_log(key, "stdout", 0, "hello ")
    assert store.finish_work("w1", key, {"failure_class": None, "exit_code": 0}, 201.0)
    (status,) = store.work_status(run.id)
    assert (status.state, status.worker, status.outcome) == (
        "done",
        "w1",
        {"failure_class": None, "exit_code": 0},
    )
    assert store.settle_work(key, "collected")
    assert not store.settle_work(key, "collected")
    assert store.read_log(key, "stdout") == "hello world\n"
    assert store.read_log(key, "stderr") is None


def test_a_dead_executors_work_is_fenced(store: SqlStore) -> None:
    run = make_run(store, ["a", "b"])
    queue(store, run.id, {"a": [], "b": []})
    (claim,) = store.claim_work("w1", [], 1, 30.0, 200.0)
    assert store.abandon_work(run.id) == 2
    assert store.claim_work("w2", [], 5, 30.0, 201.0) == []
    key = (claim.run_id, claim.step_id, claim.number)
    assert not store.finish_work("w1", key, {"failure_class": None}, 202.0)


def test_doctor_reports_stale_leases(store: SqlStore) -> None:
    from agenthq.engine.doctor import check_store
    from agenthq.states import RunState
    from agenthq.store.api import RunChange

    run = make_run(store, ["a"])
    store.apply(Batch(at=150.0, runs=[RunChange(run.id, RunState.PENDING, RunState.RUNNING)]))
    queue(store, run.id, {"a": []})
    store.claim_work("w-gone", [], 1, 10.0, 200.0)
    findings, _ = check_store(store, 205.0)
    assert [f.level for f in findings if f.check == "leases"] == ["ok"]
    findings, _ = check_store(store, 211.0)
    (stale,) = [f for f in findings if f.check == "leases"]
    assert stale.level == "degraded"
    assert "w-gone" in stale.message
    assert f"agenthq resume {run.id}" in stale.message


def test_a_claim_in_progress_locks_only_what_it_takes(store_url: str, store: SqlStore) -> None:
    """A worker with capabilities choosing among queued items must not hold every candidate
    locked: another worker claiming meanwhile still gets the rest (PostgreSQL's SKIP LOCKED;
    on SQLite one writer at a time makes this moot, and the claim simply waits)."""
    from sqlalchemy import create_engine

    from agenthq.store import work as work_rows

    run = make_run(store, [f"s{i}" for i in range(8)])
    queue(store, run.id, {f"s{i}": [] for i in range(8)})
    if not store_url.startswith("postgresql"):
        assert len(store.claim_work("gpu-1", ["gpu"], 1, 30.0, 200.0)) == 1
        return
    engine = create_engine(store_url)
    try:
        with engine.connect() as held:
            transaction = held.begin()
            mine = work_rows.claim(held, "gpu-1", ["gpu"], 1, until=230.0, now=200.0)
            assert len(mine) == 1  # not committed yet: its rows stay locked
            others = store.claim_work("cpu-1", [], 10, 30.0, 200.0)
            assert len(others) == 7
            transaction.commit()
    finally:
        engine.dispose()
