"""Verify the hash chain of the event log: any edited, deleted or reordered event is found.

Each event stores the hash of its predecessor and a hash over its own content and that
predecessor hash (see store/chain.py). Recomputing the chain from the first event names the
first event whose stored values no longer match — the place a person should look.
"""

from __future__ import annotations

from dataclasses import dataclass

from agenthq.store.api import Store
from agenthq.store.chain import GENESIS, event_hash

PAGE = 5000


@dataclass(frozen=True)
class AuditReport:
    events: int
    first_bad_seq: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_bad_seq is None


def verify_chain(store: Store) -> AuditReport:
    previous_hash = GENESIS
    expected_seq = None
    count = 0
    after = 0
    while True:
        page = store.read_events(after_seq=after, limit=PAGE)
        if not page:
            return AuditReport(count)
        for event in page:
            if expected_seq is not None and event.seq != expected_seq:
                return AuditReport(
                    count, event.seq, f"events {expected_seq}…{event.seq - 1} are missing"
                )
            if event.prev_hash != previous_hash:
                return AuditReport(count, event.seq, "its link to the previous event is broken")
            recomputed = event_hash(
                event.prev_hash,
                event.seq,
                event.run_id,
                event.step_id,
                event.attempt,
                event.kind,
                event.from_state,
                event.to_state,
                event.at,
                event.details,
            )
            if recomputed != event.hash:
                return AuditReport(count, event.seq, "its content was changed after it was written")
            previous_hash = event.hash
            expected_seq = event.seq + 1
            count += 1
        after = page[-1].seq
