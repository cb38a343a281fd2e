"""The hash chain of the event log: each event's hash covers its content and its predecessor's.

The hashed text is canonical JSON — the array `[prev_hash, seq, run_id, step_id, attempt, kind,
from_state, to_state, at, details]`, keys sorted, no whitespace, non-ASCII kept, anything JSON
cannot hold written as its string, `at` rounded to the microsecond it is stored with — so that
`agenthq audit verify` recomputes, from the values read back out of the database, exactly the
hash the writer computed. The store keeps `details` in that same form. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import Any

GENESIS = "0" * 64

# Built once: json.dumps with options builds a new encoder per call, and one commit may hash
# tens of thousands of events.
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def canonical_json(value: Any) -> str:
    """The one JSON form of event details, stored and hashed alike."""
    if not value and isinstance(value, Mapping):
        return "{}"
    return _ENCODER.encode(value)


def stored_time(at: float) -> float:
    """Timestamps of events are kept to the microsecond, so writer and verifier agree."""
    return round(at, 6)


def event_hash(  # noqa: PLR0917 -- the verifier passes an event's columns in order
    prev_hash: str,
    seq: int,
    run_id: str | None,
    step_id: str | None,
    attempt: int | None,
    kind: str,
    from_state: str | None,
    to_state: str | None,
    at: float,
    details: Mapping[str, Any],
) -> str:
    """SHA-256 (hex) of an event's content chained to `prev_hash`."""
    return link_hash(
        prev_hash,
        seq,
        run_id=run_id,
        step_id=step_id,
        attempt=attempt,
        kind=kind,
        from_state=from_state,
        to_state=to_state,
        at_json=time_json(at),
        details_json=canonical_json(details),
    )


def time_json(at: float) -> str:
    """The JSON of a stored timestamp; a batch's events share one, encoded once."""
    value = stored_time(at)
    return repr(value) if math.isfinite(value) else _ENCODER.encode(value)


def link_hash(
    prev_hash: str,
    seq: int,
    *,
    run_id: str | None,
    step_id: str | None,
    attempt: int | None,
    kind: str,
    from_state: str | None,
    to_state: str | None,
    at_json: str,
    details_json: str,
) -> str:
    """The hash over the canonical array, for a writer that already holds the JSON of `at`
    (one per batch) and of `details` (it stores that same text).

    The array is spelled out by hand — the very text the JSON encoder gives for these scalars,
    which a test holds together — because building it through an encoder costs more per event
    than the SHA-256 itself.
    """
    q = encode_basestring
    text = (
        f"[{q(prev_hash)},{int(seq)},"
        f"{'null' if run_id is None else q(run_id)},"
        f"{'null' if step_id is None else q(step_id)},"
        f"{'null' if attempt is None else int(attempt)},{q(kind)},"
        f"{'null' if from_state is None else q(from_state)},"
        f"{'null' if to_state is None else q(to_state)},"
        f"{at_json},{details_json}]"
    )
    return hashlib.sha256(text.encode()).hexdigest()
