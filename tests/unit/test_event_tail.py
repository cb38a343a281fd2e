"""Following the event table from a cursor (events/tail.py), on SQLite and PostgreSQL: only
the wanted kinds are read, the cursor jumps over the rest, a page boundary loses nothing, and
events written while a batch is handled are followed too."""

from __future__ import annotations

import inspect
import re

from agenthq.events import alerts, tail
from agenthq.states import StepState
from agenthq.store.api import Batch, NewEvent, StepChange, Store
from tests.conftest import make_run


def write(store: Store, *kinds: str, at: float = 1000.0) -> None:
    store.apply(
        Batch(at=at, events=[NewEvent(kind, details={"n": i}) for i, kind in enumerate(kinds)])
    )


def test_last_event_seq_and_kinds_filter(store: Store) -> None:
    assert store.last_event_seq() == 0
    write(store, "note", "breaker.open", "note", "agent.quarantined", "note")
    head = store.last_event_seq()
    assert head == store.read_events()[-1].seq  # the newest event's, from the chain head
    write(store, "note", "note")
    assert store.last_event_seq() == head + 2  # consecutive: differences count events
    wanted = store.read_events(kinds=("breaker.open", "agent.quarantined"))
    assert [e.kind for e in wanted] == ["breaker.open", "agent.quarantined"]
    assert store.read_events(kinds=()) == []


def test_follow_reads_only_wanted_kinds_and_moves_the_cursor_to_the_head(store: Store) -> None:
    write(store, "note", "breaker.open", "note", "note")
    batches = [
        [e.kind for e in b] for b in tail.follow(store, "test", ("breaker.open",), lambda: 1.0)
    ]
    assert batches == [["breaker.open"]]
    head = store.last_event_seq()
    assert store.get_cursor("test") == head  # past the notes nobody wanted
    assert list(tail.follow(store, "test", ("breaker.open",), lambda: 2.0)) == []
    write(store, "note")
    assert list(tail.follow(store, "test", (), lambda: 3.0)) == []  # no kinds: just move on
    assert store.get_cursor("test") == store.last_event_seq()


def test_follow_crosses_a_full_page_without_skipping(store: Store) -> None:
    # More wanted events than one page, with unwanted ones after them: the cursor must not
    # jump to the head while wanted events below it are still unread.
    write(store, *(["agent.overloaded"] * (tail.PAGE + 7)), "note", "note")
    seen = [
        e.seq for b in tail.follow(store, "page", ("agent.overloaded",), lambda: 1.0) for e in b
    ]
    assert len(seen) == tail.PAGE + 7
    assert seen == sorted(set(seen))
    assert store.get_cursor("page") == store.last_event_seq()


def test_events_written_while_a_batch_is_handled_are_followed(store: Store) -> None:
    write(store, "breaker.open")
    handled = []
    for batch in tail.follow(store, "live", ("breaker.open",), lambda: 1.0):
        handled.extend(e.kind for e in batch)
        if len(handled) == 1:
            write(store, "note", "breaker.open")  # e.g. what acting on the first one wrote
    assert handled == ["breaker.open", "breaker.open"]
    assert store.get_cursor("live") == store.last_event_seq()


def test_the_alert_rules_read_every_kind_they_answer() -> None:
    source = inspect.getsource(alerts._event_rule)
    answered = set(re.findall(r'event\.kind == "([^"]+)"', source))
    assert answered == set(alerts.EVENT_RULE_KINDS)


def test_follow_can_ask_for_end_states_too(store: Store) -> None:
    run = make_run(store, ("a", "b"))
    for step, end in (("a", StepState.SUCCEEDED), ("b", StepState.FAILED)):
        for before, after in (
            (StepState.PENDING, StepState.READY),
            (StepState.READY, StepState.RUNNING),
            (StepState.RUNNING, end),
        ):
            store.apply(Batch(at=1000.0, steps=[StepChange(run.id, step, before, after, {})]))
    batches = list(tail.follow(store, "ends", ("step",), lambda: 1.0, ("failed",)))
    assert [(e.step_id, e.to_state) for b in batches for e in b] == [("b", "failed")]
    assert store.get_cursor("ends") == store.last_event_seq()
