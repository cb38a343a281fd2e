"""The server's event hub on a real store: without subscribers it only follows the head of
the event table (the read cache keys on it); with one, every event reaches it once; a failing
database does not end it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from agenthq.server import feed
from agenthq.server.feed import EventHub
from agenthq.store.api import Batch, NewEvent, Store


def write(store: Store, count: int, run_id: str | None = None) -> None:
    events = [NewEvent("note", run_id=run_id, details={"n": i}) for i in range(count)]
    store.apply(Batch(at=1000.0, events=events))


async def settle(hub: EventHub, seq: int) -> None:
    for _ in range(200):
        if hub.last_seq >= seq:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the hub stayed at {hub.last_seq}, not {seq}")


def test_the_hub_follows_the_head_alone_and_hands_events_to_subscribers(store: Store) -> None:
    write(store, 3)  # before the hub starts: clients read these from the store themselves

    async def scenario() -> None:
        hub = EventHub(store, poll_interval=0.01)
        task = asyncio.create_task(hub.run())
        try:
            await settle(hub, store.last_event_seq())
            assert (hub.seen, hub.delivered) == (0, 0)
            write(store, 5)
            await settle(hub, store.last_event_seq())
            assert (hub.seen, hub.delivered) == (5, 0)  # counted, nobody to hand them to
            sub = hub.subscribe(None)
            write(store, 4)
            await settle(hub, store.last_event_seq())
            got = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
            assert [e.kind for e in got] == ["note"] * 4
            assert [e.seq for e in got] == sorted({e.seq for e in got})
            assert (hub.seen, hub.delivered) == (9, 4)
            hub.unsubscribe(sub)
        finally:
            task.cancel()

    asyncio.run(scenario())


def test_the_hub_outlives_a_failing_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agenthq.store import open_store

    path = tmp_path / "agenthq.db"
    monkeypatch.setattr(feed, "RETRY_SECONDS", 0.05)
    with open_store(f"sqlite:///{path}") as store:
        write(store, 2)

        async def scenario() -> None:
            hub = EventHub(store, poll_interval=0.01)
            task = asyncio.create_task(hub.run())
            try:
                await settle(hub, store.last_event_seq())
                broken = sqlite3.connect(path)  # the table goes away under the hub
                broken.execute("ALTER TABLE events RENAME TO events_elsewhere")
                broken.commit()
                await asyncio.sleep(0.2)
                assert not task.done()  # it failed, said so, and kept trying
                broken.execute("ALTER TABLE events_elsewhere RENAME TO events")
                broken.commit()
                broken.close()
                write(store, 3)
                await settle(hub, store.last_event_seq())
                assert hub.seen == 3
            finally:
                task.cancel()

        asyncio.run(scenario())
