"""Live events for many clients from one reader of the event table.

The hub tails the store (`read_events(after_seq=…)`) and fans each new event out to every
subscriber's queue. A client first subscribes, then reads its backlog from the store, then
takes live events from its queue, skipping any seq it already sent: subscribing before the
backlog read means nothing committed in between is missed, and the seq check means nothing is
sent twice. Events are committed in seq order (writers serialise on the chain head), so a
reader that has seen seq N has seen everything before it.

Events travel as `EventLine`s — the API's JSON, built from the stored columns without
decoding the details — so a busy run's thousands of events a second cost the server little.

A client that falls too far behind is dropped rather than silently skipped: its stream ends
and it reconnects with Last-Event-ID, reading what it missed from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from agenthq.errors import StoreError
from agenthq.store.api import EventLine, Store

log = logging.getLogger("agenthq.server")
PAGE = 1000
RETRY_SECONDS = 1.0
QUEUE_LIMIT = 200_000  # a client this far behind reconnects and reads the store


class LaggingError(Exception):
    """The subscriber's queue overflowed; it must reconnect and catch up from the store."""


@dataclass(eq=False)
class Subscription:
    run_id: str | None
    queue: asyncio.Queue[EventLine] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    lagging: bool = False


class EventHub:
    def __init__(self, store: Store, *, poll_interval: float = 0.05) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self.last_seq = 0
        self.delivered = 0  # events handed to subscribers, for /metrics
        self.seen = 0  # events read from the store
        self.subscribers: set[Subscription] = set()
        self._started = time.monotonic()

    async def run(self) -> None:
        """Tail the event table until cancelled. A store that fails (a locked or unreachable
        database) is retried: the hub is what live streams and the read cache depend on."""
        self.last_seq = self.store.last_event_seq()  # clients read older events themselves
        failing = False
        while True:
            try:
                full = await self._poll()
            except StoreError as exc:
                if not failing:
                    log.warning("event hub: %s; retrying", exc)
                failing = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            failing = False
            await asyncio.sleep(0 if full else self.poll_interval)

    async def _poll(self) -> bool:
        """Move to the table's head; True when a full page was read and more may be waiting."""
        if not self.subscribers:
            # Nobody to hand events to: only the position moves (the read cache keys on it),
            # one row read on the loop. A thread here would hold the GIL while the
            # requests wait for it — on a busy machine, for tens of milliseconds.
            head = self.store.last_event_seq()
            self.seen += max(0, head - self.last_seq)
            self.last_seq = max(self.last_seq, head)
            return False
        # Off the event loop: a page of events is parsed JSON, and requests must not wait.
        page = await asyncio.to_thread(
            self.store.read_event_lines, after_seq=self.last_seq, limit=PAGE
        )
        for event in page:
            self._publish(event)
        return len(page) == PAGE

    def subscribe(self, run_id: str | None) -> Subscription:
        sub = Subscription(run_id)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    async def stream(
        self, run_id: str | None, after_seq: int, *, heartbeat: float = 15.0
    ) -> AsyncIterator[list[EventLine]]:
        """Backlog then live events after `after_seq`, in batches of what is ready (one write
        per batch, not per event); an empty batch now and then as a heartbeat."""
        sub = self.subscribe(run_id)
        try:
            last = after_seq
            while True:
                page = self.store.read_event_lines(after_seq=last, run_id=run_id, limit=PAGE)
                if page:
                    last = page[-1].seq
                    yield page
                if len(page) < PAGE:
                    break
            while True:
                if sub.lagging:
                    raise LaggingError
                try:
                    first = await asyncio.wait_for(sub.queue.get(), timeout=heartbeat)
                except TimeoutError:
                    yield []
                    continue
                batch = [first]
                while not sub.queue.empty() and len(batch) < PAGE:  # take what is there
                    batch.append(sub.queue.get_nowait())
                fresh = [e for e in batch if e.seq > last]
                if fresh:
                    last = fresh[-1].seq
                    yield fresh
        finally:
            self.unsubscribe(sub)

    def rate(self) -> float:
        """Events per second read since the hub started."""
        return self.seen / max(1e-9, time.monotonic() - self._started)

    def _publish(self, event: EventLine) -> None:
        self.last_seq = max(self.last_seq, event.seq)
        self.seen += 1
        for sub in list(self.subscribers):
            if sub.run_id is not None and event.run_id != sub.run_id:
                continue
            try:
                sub.queue.put_nowait(event)
                self.delivered += 1
            except asyncio.QueueFull:
                sub.lagging = True


async def cancel_quietly(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
