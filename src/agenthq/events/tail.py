"""Following the event table from a durable cursor, reading only the kinds a reader acts on.

Alert rules and triggers each keep a cursor (the last seq they handled). A busy run writes
thousands of step events a second that most readers never look at; fetching just the wanted
kinds lets the database skip them instead of this process decoding them.

Events commit in seq order (writers serialise on the chain head), so once no wanted event is
left after the cursor, the cursor may move to the head read *before* looking: nothing wanted
can still appear below it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from agenthq.store.api import EventRecord, Store

PAGE = 1000


def follow(
    store: Store,
    cursor: str,
    kinds: Sequence[str],
    clock: Callable[[], float],
    to_states: Sequence[str] | None = None,
) -> Iterator[list[EventRecord]]:
    """Batches of the wanted events (of `kinds`, and ending in `to_states` when given) after
    the cursor, oldest first. The cursor moves past a batch only when the caller asks for the
    next one — after it acted on this one — so a crash re-reads at most one batch. Events
    written while the caller acts (an alert's own event) are followed too; it stops when
    nothing new is left. No kinds: the cursor just moves to the head."""
    after = store.get_cursor(cursor)
    while True:
        head = store.last_event_seq()
        batch = (
            store.read_events(after_seq=after, limit=PAGE, kinds=kinds, to_states=to_states)
            if kinds
            else []
        )
        if batch:
            yield batch
        if len(batch) == PAGE:  # there may be more wanted events below the head
            moved_to = batch[-1].seq
        else:
            moved_to = max(head, batch[-1].seq if batch else after)
        if moved_to == after:
            return
        after = moved_to
        store.set_cursor(cursor, after, clock())
