"""The Store contract, run against every backend in tests/conftest.py BACKENDS.

What the engine relies on: a batch is written whole or not at all, every hop is checked and
leaves one event, a stale writer loses its whole batch, ownership is exclusive, and the event
chain names the first event anyone edited or deleted — also with several processes writing
one SQLite file at once.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agenthq.errors import (
    IllegalTransitionError,
    NotFoundError,
    RunBusyError,
    StaleWriteError,
    StoreError,
)
from agenthq.events.audit import verify_chain
from agenthq.states import FailureClass, RunState, StepState
from agenthq.store import HEAD_REVISION, open_store
from agenthq.store.api import (
    AttemptStart,
    AttemptUpdate,
    Batch,
    NewEvent,
    RunChange,
    StepChange,
)
from agenthq.store.chain import GENESIS, canonical_json, event_hash, link_hash, time_json
from agenthq.store.sql import SqlStore
from tests.conftest import make_run, postgres_database

S, R = StepState, RunState
ROOT = Path(__file__).resolve().parents[2]


def behind_its_back(store_url: str, statement: str, **params: object) -> None:
    """Edit the database with a connection of its own, as a person with a SQL shell would."""
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement), params)
    finally:
        engine.dispose()


def states(store: SqlStore, run_id: str) -> dict[str, str]:
    return {s.step_id: s.state.value for s in store.get_steps(run_id)}


def event_count(store: SqlStore) -> int:
    return len(store.read_events(limit=100_000))


# ---- creating and reading runs ----------------------------------------------------------------


def test_create_run_makes_pending_steps_in_the_given_order(store: SqlStore) -> None:
    run = make_run(store, ["zeta", "alpha", "mid[1]", "mid[0]"], params={"word": "hi"})
    assert run.state is R.PENDING
    assert run.step_counts == {"pending": 4}
    again = store.get_run(run.id)
    assert again == run
    assert again.spec["steps"][0] == {"id": "zeta", "run": "true"}
    steps = store.get_steps(run.id)
    assert [s.step_id for s in steps] == ["zeta", "alpha", "mid[1]", "mid[0]"]
    assert all(s.state is S.PENDING and s.attempts == 0 and s.outputs == {} for s in steps)
    [created] = store.read_events(run_id=run.id)
    assert (created.kind, created.to_state, created.details) == (
        "run.created",
        "pending",
        {"plan": "demo", "steps": 4},
    )
    assert created.prev_hash == GENESIS


def test_a_run_id_is_used_once(store: SqlStore) -> None:
    make_run(store, run_id="r-1")
    with pytest.raises(StoreError, match="already exists"):
        make_run(store, run_id="r-1")
    assert event_count(store) == 1


def test_missing_runs_are_reported_for_people(store: SqlStore) -> None:
    for read in (store.get_run, store.get_steps, store.get_attempts, store.get_run_control):
        with pytest.raises(NotFoundError, match=r"no run 'nope'; `agenthq runs` lists them"):
            read("nope")


def test_list_runs_newest_first_with_counts_filters_and_pages(store: SqlStore) -> None:
    old = make_run(store, ["a", "b"], plan="alpha", created_at=100.0)
    mid = make_run(store, ["a"], plan="beta", created_at=200.0)
    new = make_run(store, ["a", "b", "c"], plan="alpha", created_at=300.0)
    batch = Batch(at=400.0)
    batch.runs.append(RunChange(mid.id, R.PENDING, R.RUNNING, {"started_at": 400.0}))
    batch.steps.append(StepChange(mid.id, "a", S.PENDING, S.READY))
    store.apply(batch)

    listed = store.list_runs()
    assert [r.id for r in listed] == [new.id, mid.id, old.id]
    assert [dict(r.step_counts) for r in listed] == [
        {"pending": 3},
        {"ready": 1},
        {"pending": 2},
    ]
    assert [r.id for r in store.list_runs(plan="alpha")] == [new.id, old.id]
    assert [r.id for r in store.list_runs(state=R.RUNNING)] == [mid.id]
    assert store.list_runs(state=R.FAILED) == []
    assert [r.id for r in store.list_runs(limit=2)] == [new.id, mid.id]
    assert [r.id for r in store.list_runs(limit=2, offset=2)] == [old.id]


def test_resolve_run_id(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="no runs yet"):
        store.resolve_run_id("last")
    first = make_run(store, run_id="20260101-aaaa01", created_at=1.0)
    second = make_run(store, run_id="20260101-aaaa02", created_at=2.0)
    make_run(store, run_id="20260102-bbbb01", created_at=0.5)  # created earliest, sorts last
    assert store.resolve_run_id(first.id) == first.id
    assert store.resolve_run_id("last") == second.id
    assert store.resolve_run_id("20260102") == "20260102-bbbb01"
    with pytest.raises(NotFoundError, match="ambiguous") as info:
        store.resolve_run_id("20260101-aaaa")
    assert first.id in str(info.value)
    assert second.id in str(info.value)
    with pytest.raises(NotFoundError, match="`agenthq runs` lists them"):
        store.resolve_run_id("2027")
    with pytest.raises(NotFoundError):
        store.resolve_run_id("2026010_")  # LIKE wildcards are taken literally
    with pytest.raises(NotFoundError):
        store.resolve_run_id("")


# ---- applying batches -------------------------------------------------------------------------


def test_hops_of_one_step_collapse_but_each_leaves_an_event(store: SqlStore) -> None:
    run = make_run(store, ["a", "b"])
    batch = Batch(at=1000.123456789)
    batch.runs.append(RunChange(run.id, R.PENDING, R.RUNNING, {"started_at": 1000.0}))
    batch.steps += [
        StepChange(run.id, "a", S.PENDING, S.READY, {"reason": "waiting"}),
        StepChange(run.id, "b", S.PENDING, S.SKIPPED, {"reason": "`when` is false"}),
        StepChange(run.id, "a", S.READY, S.RUNNING, {"attempts": 1, "started_at": 1000.0}, 1),
        StepChange(
            run.id,
            "a",
            S.RUNNING,
            S.RETRYING,
            {
                "failure_class": FailureClass.EXECUTION,
                "retries_used": {"execution": 1},
                "next_at": 1005.0,
                "reason": None,
            },
            1,
            {"error": "exit 1", "exit_code": 1},
        ),
    ]
    store.apply(batch)

    a, b = store.get_steps(run.id)
    assert a.state is S.RETRYING
    assert (a.attempts, a.started_at, a.next_at, a.reason) == (1, 1000.0, 1005.0, None)
    assert a.failure_class is FailureClass.EXECUTION
    assert a.retries_used == {"execution": 1}
    assert a.updated_at == batch.at
    assert (b.state, b.reason) == (S.SKIPPED, "`when` is false")
    assert store.get_run(run.id).state is R.RUNNING

    events = store.read_events(run_id=run.id)[1:]
    assert [(e.kind, e.step_id, e.from_state, e.to_state, e.attempt) for e in events] == [
        ("run", None, "pending", "running", None),
        ("step", "a", "pending", "ready", None),
        ("step", "b", "pending", "skipped", None),
        ("step", "a", "ready", "running", 1),
        ("step", "a", "running", "retrying", 1),
    ]
    assert events[-1].details == {"error": "exit 1", "exit_code": 1}
    assert all(e.at == 1000.123457 for e in events)
    assert [e.seq for e in events] == list(range(2, 7))


def test_run_start_comes_first_and_its_end_last_in_the_events(store: SqlStore) -> None:
    run = make_run(store, ["a"])
    batch = Batch(at=5.0)
    batch.runs.append(RunChange(run.id, R.PENDING, R.RUNNING))
    batch.steps.append(StepChange(run.id, "a", S.PENDING, S.SKIPPED))
    batch.events.append(NewEvent("note", run.id, "a", details={"text": "hello"}))
    batch.runs.append(RunChange(run.id, R.RUNNING, R.SUCCEEDED, {"finished_at": 5.0}))
    store.apply(batch)
    kinds = [(e.kind, e.to_state) for e in store.read_events(run_id=run.id)]
    assert kinds == [
        ("run.created", "pending"),
        ("run", "running"),
        ("step", "skipped"),
        ("note", None),
        ("run", "succeeded"),
    ]
    assert store.get_run(run.id).finished_at == 5.0


def test_an_illegal_transition_writes_nothing(store: SqlStore) -> None:
    run = make_run(store, ["a", "b"])
    before = event_count(store)
    batch = Batch(at=1.0)
    batch.steps += [
        StepChange(run.id, "a", S.PENDING, S.READY),
        StepChange(run.id, "b", S.PENDING, S.SUCCEEDED),  # never ran
    ]
    with pytest.raises(IllegalTransitionError, match="pending to succeeded"):
        store.apply(batch)
    assert states(store, run.id) == {"a": "pending", "b": "pending"}
    assert event_count(store) == before

    with pytest.raises(IllegalTransitionError):
        store.apply(Batch(at=1.0, runs=[RunChange(run.id, R.PENDING, R.SUCCEEDED)]))
    assert store.get_run(run.id).state is R.PENDING


def test_a_stale_compare_and_set_rolls_back_the_whole_batch(store: SqlStore) -> None:
    run = make_run(store, ["a", "b", "c"])
    other = make_run(store, ["x"])
    store.apply(Batch(at=1.0, steps=[StepChange(run.id, "b", S.PENDING, S.READY)]))
    before = event_count(store)

    batch = Batch(at=2.0)
    batch.runs.append(RunChange(run.id, R.PENDING, R.RUNNING, {"started_at": 2.0}))
    batch.steps += [
        StepChange(run.id, "a", S.PENDING, S.READY),
        StepChange(run.id, "a", S.READY, S.RUNNING, {"attempts": 1}, 1),
        StepChange(other.id, "x", S.PENDING, S.READY),
        StepChange(run.id, "b", S.PENDING, S.READY),  # someone already moved b
        StepChange(run.id, "c", S.PENDING, S.READY),
    ]
    batch.attempt_starts.append(AttemptStart(run.id, "a", 1, 2.0, None, None, "me"))
    with pytest.raises(StaleWriteError, match=r"step 'b' .* no longer pending \(it is ready now\)"):
        store.apply(batch)

    assert states(store, run.id) == {"a": "pending", "b": "ready", "c": "pending"}
    assert states(store, other.id) == {"x": "pending"}
    assert store.get_run(run.id).state is R.PENDING
    assert store.get_attempts(run.id) == []
    assert event_count(store) == before


def test_a_stale_run_change_rolls_back_the_steps_too(store: SqlStore) -> None:
    run = make_run(store, ["a"])
    store.apply(Batch(at=1.0, runs=[RunChange(run.id, R.PENDING, R.RUNNING)]))
    batch = Batch(at=2.0)
    batch.steps.append(StepChange(run.id, "a", S.PENDING, S.READY))
    batch.runs.append(RunChange(run.id, R.PENDING, R.RUNNING))
    with pytest.raises(StaleWriteError, match="no longer pending"):
        store.apply(batch)
    assert states(store, run.id) == {"a": "pending"}


def test_hops_that_do_not_follow_on_are_refused(store: SqlStore) -> None:
    run = make_run(store, ["a"])
    batch = Batch(at=1.0)
    batch.steps += [
        StepChange(run.id, "a", S.PENDING, S.READY),
        StepChange(run.id, "a", S.RUNNING, S.SUCCEEDED),
    ]
    with pytest.raises(StaleWriteError, match="already moved it to ready"):
        store.apply(batch)
    assert states(store, run.id) == {"a": "pending"}


def test_unknown_fields_are_a_bug_not_a_silent_drop(store: SqlStore) -> None:
    run = make_run(store, ["a"])
    with pytest.raises(ValueError, match="colour"):
        store.apply(
            Batch(at=1.0, steps=[StepChange(run.id, "a", S.PENDING, S.READY, {"colour": 1})])
        )
    assert states(store, run.id) == {"a": "pending"}


def test_an_empty_batch_is_a_no_op(store: SqlStore) -> None:
    make_run(store, ["a"])
    store.apply(Batch(at=1.0))
    assert event_count(store) == 1


def test_a_retry_after_cancel_does_not_inherit_the_cancel_request(store: SqlStore) -> None:
    run = make_run(store, ["a"])
    store.apply(Batch(at=1.0, runs=[RunChange(run.id, R.PENDING, R.RUNNING)]))
    store.request_cancel(run.id)
    assert store.get_run_control(run.id).cancel_requested
    store.apply(Batch(at=2.0, runs=[RunChange(run.id, R.RUNNING, R.CANCELLED)]))
    store.apply(Batch(at=3.0, runs=[RunChange(run.id, R.CANCELLED, R.RUNNING)]))
    assert not store.get_run_control(run.id).cancel_requested


# ---- attempts ---------------------------------------------------------------------------------


def test_attempts_start_then_update(store: SqlStore) -> None:
    run = make_run(store, ["late", "early"])
    batch = Batch(at=10.0)
    for step in ("early", "late"):
        batch.steps += [
            StepChange(run.id, step, S.PENDING, S.READY),
            StepChange(run.id, step, S.READY, S.RUNNING, {"attempts": 1, "started_at": 10.0}, 1),
        ]
        batch.attempt_starts.append(
            AttemptStart(run.id, step, 1, 10.0, f"/logs/{step}.out", f"/logs/{step}.err", "me")
        )
    batch.attempt_updates.append(
        AttemptUpdate(run.id, "late", 1, {"pid": 4242, "pgid": 4242, "proc_start": 2**40})
    )
    store.apply(batch)

    finish = Batch(at=11.0)
    finish.steps.append(StepChange(run.id, "late", S.RUNNING, S.FAILED, {"finished_at": 11.0}, 1))
    finish.attempt_updates.append(
        AttemptUpdate(
            run.id,
            "late",
            1,
            {
                "state": "failed",
                "finished_at": 11.0,
                "exit_code": 3,
                "failure_class": FailureClass.EXECUTION,
                "error": "exit 3",
            },
        )
    )
    store.apply(finish)

    attempts = store.get_attempts(run.id)
    assert [(a.step_id, a.number) for a in attempts] == [("late", 1), ("early", 1)]
    late = attempts[0]
    assert (late.state, late.exit_code, late.error, late.finished_at) == (
        "failed",
        3,
        "exit 3",
        11.0,
    )
    assert late.failure_class is FailureClass.EXECUTION
    assert (late.pid, late.pgid, late.proc_start, late.owner) == (4242, 4242, 2**40, "me")
    assert late.stdout_path == "/logs/late.out"
    early = store.get_attempts(run.id, "early")
    assert [(a.state, a.finished_at, a.pid) for a in early] == [("running", None, None)]
    assert store.get_attempts(run.id, "nope") == []


def test_updating_an_attempt_that_was_never_started_writes_nothing(store: SqlStore) -> None:
    run = make_run(store, ["a"])
    batch = Batch(at=1.0)
    batch.steps.append(StepChange(run.id, "a", S.PENDING, S.READY))
    batch.attempt_updates.append(AttemptUpdate(run.id, "a", 7, {"state": "lost"}))
    with pytest.raises(NotFoundError, match="a#7"):
        store.apply(batch)
    assert states(store, run.id) == {"a": "pending"}


# ---- ownership and control --------------------------------------------------------------------


def test_claim_steal_busy_release(store: SqlStore) -> None:
    run = make_run(store, ["a"])
    store.claim_run(run.id, "host:1:100")
    assert store.get_run_control(run.id).owner == "host:1:100"
    assert store.get_run(run.id).heartbeat_at is not None
    store.claim_run(run.id, "host:1:100")  # claiming again is fine

    with pytest.raises(RunBusyError, match="host:1:100"):
        store.claim_run(run.id, "host:2:200")
    with pytest.raises(RunBusyError):
        store.claim_run(run.id, "host:2:200", steal_from="host:9:900")  # not the holder
    store.claim_run(run.id, "host:2:200", steal_from="host:1:100")  # the holder is dead
    assert store.get_run_control(run.id).owner == "host:2:200"

    with pytest.raises(RunBusyError):
        store.heartbeat(run.id, "host:1:100", 50.0)  # the old owner must stop
    store.heartbeat(run.id, "host:2:200", 50.0)
    assert store.get_run(run.id).heartbeat_at == 50.0

    store.release_run(run.id, "host:1:100")  # not the owner: no effect
    assert store.get_run_control(run.id).owner == "host:2:200"
    store.release_run(run.id, "host:2:200")
    assert store.get_run_control(run.id).owner is None
    store.claim_run(run.id, "host:3:300")

    with pytest.raises(NotFoundError):
        store.claim_run("nope", "host:3:300")
    with pytest.raises(NotFoundError):
        store.heartbeat("nope", "host:3:300", 1.0)


def test_request_cancel_is_durable_and_leaves_an_event(store: SqlStore) -> None:
    run = make_run(store, ["a"])
    assert store.get_run_control(run.id) == store.get_run_control(run.id)
    assert not store.get_run_control(run.id).cancel_requested
    store.request_cancel(run.id)
    control = store.get_run_control(run.id)
    assert (control.state, control.cancel_requested) == (R.PENDING, True)
    assert store.read_events(run_id=run.id)[-1].kind == "run.cancel_requested"
    with pytest.raises(NotFoundError):
        store.request_cancel("nope")


# ---- events and the audit chain ----------------------------------------------------------------


def _walk(store: SqlStore, run_id: str, steps: list[str], at: float) -> None:
    for step in steps:
        batch = Batch(at=at)
        batch.steps += [
            StepChange(run_id, step, S.PENDING, S.READY),
            StepChange(run_id, step, S.READY, S.RUNNING, {"attempts": 1}, 1),
        ]
        store.apply(batch)
        done = Batch(at=at + 0.5)
        done.steps.append(
            StepChange(
                run_id, step, S.RUNNING, S.SUCCEEDED, {"outputs": {"ü": [1, "x"]}}, 1, {"n": 1}
            )
        )
        store.apply(done)


def test_read_events_pages_and_filters(store: SqlStore) -> None:
    one = make_run(store, ["a", "b"])
    two = make_run(store, ["a"])
    _walk(store, one.id, ["a", "b"], 1.0)
    _walk(store, two.id, ["a"], 2.0)
    everything = store.read_events()
    assert [e.seq for e in everything] == list(range(1, 12))
    assert [e.seq for e in store.read_events(after_seq=3, limit=4)] == [4, 5, 6, 7]
    mine = store.read_events(run_id=two.id)
    assert {e.run_id for e in mine} == {two.id}
    assert len(mine) == 4
    assert store.read_events(after_seq=11) == []
    assert all(e.prev_hash == p.hash for p, e in itertools.pairwise(everything))


def test_the_chain_verifies_and_names_an_edited_event(store: SqlStore) -> None:
    run = make_run(store, ["a", "b"])
    _walk(store, run.id, ["a", "b"], 1.0)
    report = verify_chain(store)
    assert report.intact
    assert report.events == 7

    target = store.read_events()[3]
    behind_its_back(
        store.url, "UPDATE events SET details = :d WHERE seq = :s", d='{"n":2}', s=target.seq
    )
    report = verify_chain(store)
    assert not report.intact
    assert report.first_bad_seq == target.seq
    assert "changed" in (report.problem or "")


def test_threads_applying_at_once_lose_nothing_and_keep_the_chain(store: SqlStore) -> None:
    """apply() keeps a connection of its own for one thread at a time; threads that apply
    meanwhile use the pool. Every transition of every thread lands, in one unbroken chain."""
    import threading

    runs = [make_run(store, [f"s{n}" for n in range(12)]) for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(runs))

    def walk(run_id: str) -> None:
        try:
            start.wait()
            for n in range(12):
                batch = Batch(at=10.0 + n)
                batch.steps.append(StepChange(run_id, f"s{n}", S.PENDING, S.READY))
                store.apply(batch)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=walk, args=(run.id,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for run in runs:
        assert set(states(store, run.id).values()) == {"ready"}
        assert store.get_run(run.id).step_counts == {"ready": 12}
    report = verify_chain(store)
    assert report.intact
    assert report.events == len(runs) * (1 + 12)


def test_ticks_go_on_after_postgresql_drops_every_connection(postgres_server: str) -> None:
    """A server restart or an idle timeout drops connections; the store notices at the next
    transaction and reconnects (a run lasting weeks must not fail on its next tick)."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = postgres_database(postgres_server)
    database = make_url(url).database
    with open_store(url) as store:
        run = make_run(store, ["a", "b"])
        first = Batch(at=5.0)
        first.steps.append(StepChange(run.id, "a", S.PENDING, S.READY))
        store.apply(first)
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
        second = Batch(at=6.0)
        second.steps.append(StepChange(run.id, "b", S.PENDING, S.READY))
        store.apply(second)
        assert states(store, run.id) == {"a": "ready", "b": "ready"}


def test_the_chain_names_a_deleted_event(store: SqlStore) -> None:
    run = make_run(store, ["a", "b"])
    _walk(store, run.id, ["a", "b"], 1.0)
    behind_its_back(store.url, "DELETE FROM events WHERE seq = 4")
    report = verify_chain(store)
    assert report.first_bad_seq == 5
    assert "missing" in (report.problem or "")


def test_writers_continue_the_chain_after_reopening(store_url: str) -> None:
    with open_store(store_url) as first:
        make_run(first, ["a"])
    with open_store(store_url) as second:
        run = make_run(second, ["a"])
        _walk(second, run.id, ["a"], 3.0)
        assert verify_chain(second).intact
        assert [e.seq for e in second.read_events()] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("run_id", "step_id", "attempt", "kind", "details"),
    [
        ("r", "s", 1, "step", {}),
        (None, None, None, "note", {"b": [1, 2.5, None, True], "a": {"z": "ü", "y": '"q"\n'}}),
        ("r\\u", "shard['x\"]", 12, "step", {"é": "\u2028", "n": 1e100}),
    ],
)
def test_the_hashed_text_is_canonical_json(
    run_id: str | None,
    step_id: str | None,
    attempt: int | None,
    kind: str,
    details: dict[str, object],
) -> None:
    """link_hash spells the array out by hand for speed; it must be the encoder's text."""
    import hashlib

    at = 1_795_506_432.016_017_3
    text = canonical_json(
        ["f" * 64, 42, run_id, step_id, attempt, kind, "pending", S.READY, round(at, 6), details]
    )
    expected = hashlib.sha256(text.encode()).hexdigest()
    assert (
        event_hash("f" * 64, 42, run_id, step_id, attempt, kind, "pending", "ready", at, details)
        == expected
    )
    assert (
        link_hash(
            "f" * 64,
            42,
            run_id=run_id,
            step_id=step_id,
            attempt=attempt,
            kind=kind,
            from_state=S.PENDING,
            to_state="ready",
            at_json=time_json(at),
            details_json=canonical_json(details),
        )
        == expected
    )
    assert json.loads(canonical_json(details)) == details


# ---- opening and migrating ---------------------------------------------------------------------


def _schema_differences(url: str) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    from agenthq.store.tables import metadata

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))
    finally:
        engine.dispose()


def test_a_new_database_built_from_tables_py_matches_tables_py(store: SqlStore) -> None:
    assert _schema_differences(store.url) == []


def test_running_every_alembic_migration_builds_the_same_schema_as_a_new_database(
    store_url: str,
) -> None:
    """New databases skip Alembic (create_all + stamp); this keeps the two paths identical,
    on every backend."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from agenthq.store import migrations

    if store_url.startswith("sqlite:///"):
        Path(store_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            settings = migrations.config()
            settings.attributes["connection"] = conn
            command.upgrade(settings, "head")
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).fetchall()
            head = conn.execute(text("SELECT id, seq, hash FROM chain_head")).fetchall()
    finally:
        engine.dispose()
    assert _schema_differences(store_url) == []
    assert [tuple(r) for r in version] == [(HEAD_REVISION,)]
    assert [tuple(r) for r in head] == [(1, 0, GENESIS)]
    with open_store(store_url) as reopened:
        assert reopened.list_runs() == []


def test_head_revision_constant_matches_the_migrations() -> None:
    from agenthq.store import migrations

    assert migrations.head_revision() == HEAD_REVISION


def test_reopening_a_current_database_does_not_import_alembic(store_url: str) -> None:
    open_store(store_url).close()
    code = (
        "import sys; from agenthq.store import open_store\n"
        f"open_store({store_url!r}).close()\n"
        "print('alembic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "False"


def test_a_database_from_a_newer_agenthq_is_refused(store: SqlStore, store_url: str) -> None:
    store.close()
    behind_its_back(store_url, "UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="upgrade agenthq"):
        open_store(store_url)


def test_a_writer_that_never_gets_the_lock_is_told_so_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN IMMEDIATE goes to the driver directly; its "database is locked" must still reach
    people as a StoreError naming the database, not as a driver traceback."""
    from agenthq.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "locked.db"
    with open_store(f"sqlite:///{path}") as store:
        make_run(store, run_id="before")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match=r"locked\.db failed: database is locked"):
                make_run(store, run_id="blocked")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert [r.id for r in store.list_runs()] == ["before"]
        make_run(store, run_id="after")  # the store is still usable once the lock is free
        assert {r.id for r in store.list_runs()} == {"before", "after"}


def test_sqlite_files_use_wal(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL"),
        ("mysql://u:secret@h/db", "cannot store runs in 'mysql'"),
    ],
)
def test_unusable_urls_are_one_sentence(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        open_store(url)
    assert "secret" not in str(info.value)


def test_a_database_that_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(StoreError, match="cannot open the database"):
        open_store(f"sqlite:///{tmp_path / 'taken'}")
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot create the directory"):
        open_store(f"sqlite:///{tmp_path / 'file' / 'sub' / 'a.db'}")
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the database"):
        open_store(f"sqlite:///{tmp_path / 'junk.db'}")


# ---- several processes, one SQLite file -----------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from agenthq.states import StepState as S
    from agenthq.store import open_store
    from agenthq.store.api import AttemptStart, AttemptUpdate, Batch, StepChange

    url, run_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open_store(url) as store:
        for i in range(count):
            step = f"s{i}"
            start = Batch(at=time.time())
            start.steps += [
                StepChange(run_id, step, S.PENDING, S.READY),
                StepChange(run_id, step, S.READY, S.RUNNING, {"attempts": 1}, 1),
            ]
            start.attempt_starts.append(AttemptStart(run_id, step, 1, start.at, None, None, "w"))
            store.apply(start)
            done = Batch(at=time.time())
            done.steps.append(StepChange(run_id, step, S.RUNNING, S.SUCCEEDED, {"outputs": {"i": i}}, 1))
            done.attempt_updates.append(AttemptUpdate(run_id, step, 1, {"state": "succeeded"}))
            store.apply(done)
    print("done")
    """
)

READER = textwrap.dedent(
    """
    import os, sys
    from agenthq.store import open_store

    url, stop = sys.argv[1], sys.argv[2]
    reads = errors = 0
    with open_store(url) as store:
        while not os.path.exists(stop):
            try:
                seqs = [e.seq for e in store.read_events(limit=100_000)]
                if seqs != list(range(1, len(seqs) + 1)):
                    print("gap seen by a reader", flush=True)
                    errors += 1
                store.list_runs()
                reads += 1
            except Exception as exc:
                print(type(exc).__name__, exc, flush=True)
                errors += 1
    print(f"reads {reads} errors {errors}")
    """
)


@pytest.mark.slow
def test_processes_share_one_database(store: SqlStore, store_url: str, tmp_path: Path) -> None:
    steps_per_run = 100  # two batches per step: 200 batches per writer
    run_ids = [make_run(store, [f"s{i}" for i in range(steps_per_run)]).id for _ in range(3)]
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, store_url, str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, store_url, run_id, str(steps_per_run)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for run_id in run_ids
    ]
    try:
        for writer in writers:
            out, err = writer.communicate(timeout=90)
            assert writer.returncode == 0, err
            assert "locked" not in err
            assert out.strip() == "done"
    finally:
        stop.write_text("")
        out, err = reader.communicate(timeout=30)
    assert reader.returncode == 0, err
    assert out.strip().startswith("reads "), out
    assert out.strip().endswith(" errors 0"), out

    for run_id in run_ids:
        assert set(states(store, run_id).values()) == {"succeeded"}
        moves = [(e.step_id, e.to_state) for e in store.read_events(run_id=run_id, limit=10_000)]
        assert len(moves) == 1 + 3 * steps_per_run
        for i in range(steps_per_run):
            assert [to for step, to in moves if step == f"s{i}"] == [
                "ready",
                "running",
                "succeeded",
            ]
    report = verify_chain(store)
    assert report.intact
    assert report.events == 3 * (1 + 3 * steps_per_run)


@pytest.mark.slow
def test_processes_opening_a_new_database_at_once_migrate_it_once(store_url: str) -> None:
    code = (
        "import sys; from agenthq.store import open_store\n"
        "with open_store(sys.argv[1]) as s: print(len(s.list_runs()))"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, store_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert out.strip() == "0"
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).fetchall()
            head = conn.execute(text("SELECT seq, hash FROM chain_head")).fetchall()
    finally:
        engine.dispose()
    assert [tuple(r) for r in version] == [(HEAD_REVISION,)]
    assert [tuple(r) for r in head] == [(0, GENESIS)]


def test_a_revision_0001_database_with_runs_is_upgraded_in_place(tmp_path: Path) -> None:
    """Users upgrading agenthq keep their runs: 0001 → head adds the gate tables and the
    attempts' cost columns without touching what is there."""
    from alembic import command
    from sqlalchemy import create_engine

    from agenthq.store import migrations

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            settings = migrations.config()
            settings.attributes["connection"] = conn
            command.upgrade(settings, "0001")
    finally:
        engine.dispose()
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute(
            "INSERT INTO runs (id, plan, state, created_at, params, spec, workspace, max_workers,"
            " cancel_requested) VALUES ('r1', 'p', 'succeeded', 1.0, '{}', '{}', '/w', 1, 0)"
        )
    db.close()
    with open_store(url) as upgraded:
        (run,) = upgraded.list_runs()
        assert run.id == "r1"
        assert upgraded.list_approvals() == []
        assert upgraded.list_agents() == []
    assert _schema_differences(url) == []


def test_event_lines_are_exactly_the_api_json_of_each_event(store: SqlStore) -> None:
    """The live stream sends EventLine.json; it must equal events/serialize.event_json."""
    from agenthq.events.serialize import event_json

    run = make_run(store, steps=("a", "b"))
    batch = Batch(at=1795512842.258095)
    batch.steps.append(
        StepChange(run.id, "a", StepState.PENDING, StepState.READY, details={"ü": [1, 2.5, None]})
    )
    batch.events.append(NewEvent("note", run.id, "a", 1, {"text": 'quote " and \\ back'}))
    store.apply(batch)
    records = store.read_events(run_id=run.id)
    lines = store.read_event_lines(run_id=run.id)
    assert [line.seq for line in lines] == [r.seq for r in records]
    for record, line in zip(records, lines, strict=True):
        assert json.loads(line.json) == event_json(record)
        assert line.kind == record.kind
        assert line.run_id == record.run_id


def test_a_driver_error_on_the_hot_path_is_a_store_error_and_writes_nothing(
    tmp_path: Path,
) -> None:
    # The per-tick statements run on the DBAPI cursor directly (store/compiled.py); a failure
    # there must still roll the tick back and reach people as a StoreError, not a traceback.
    path = tmp_path / "agenthq.db"
    with open_store(f"sqlite:///{path}") as store:
        run = make_run(store, ["a"])
        raw = sqlite3.connect(path)
        raw.execute(
            "CREATE TRIGGER no_events BEFORE INSERT ON events BEGIN "
            "SELECT RAISE(ABORT, 'events are frozen'); END"
        )
        raw.commit()
        batch = Batch(at=5.0)
        batch.steps.append(StepChange(run.id, "a", S.PENDING, S.READY))
        with pytest.raises(StoreError, match="events are frozen"):
            store.apply(batch)
        assert store.get_steps(run.id)[0].state is S.PENDING  # the step update rolled back
        raw.execute("DROP TRIGGER no_events")
        raw.commit()
        raw.close()
        store.apply(batch)  # and the store works on
        assert store.get_steps(run.id)[0].state is S.READY
