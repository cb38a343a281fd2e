"""Cron ticks as moments, correct across daylight-saving changes.

A cron line means wall-clock time where the schedule lives ("02:30 in Berlin"), so ticks are
found on the local wall clock with croniter (naive datetimes: no offset arithmetic to go
wrong) and only then turned into moments with zoneinfo. The two DST cases, the way cron
itself handles them:

- spring forward: a wall time that does not exist that day (02:30 when clocks jump from 02:00
  to 03:00) is read with the offset from before the jump, so it runs once, at 03:30;
- fall back: a wall time that happens twice (02:30 when clocks go from 03:00 back to 02:00)
  runs once, at its first occurrence.

So a daily schedule runs exactly once every day, and an hourly one never runs twice in one
real hour. Pure functions: the tests drive them with any moment they like.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter


def moment(wall: datetime, zone: ZoneInfo) -> float:
    """The epoch seconds of a naive local wall time (fold=0: the first occurrence, or the
    offset before a gap)."""
    return wall.replace(tzinfo=zone, fold=0).timestamp()


def next_tick(cron: str, tz: str, after: float) -> float:
    """The first tick strictly after the moment `after`."""
    zone = ZoneInfo(tz)
    wall = datetime.fromtimestamp(after, zone).replace(tzinfo=None)
    ticks = croniter(cron, wall)
    for _ in range(10_000):  # a gap can map a wall time to a moment already passed
        candidate = moment(ticks.get_next(datetime), zone)
        if candidate > after:
            return candidate
    raise ValueError(f"cron {cron!r} has no tick after {after}")  # pragma: no cover


def ticks_between(cron: str, tz: str, after: float, until: float, limit: int = 1000) -> list[float]:
    """Ticks in (after, until], at most `limit` of them (the newest kept)."""
    found: list[float] = []
    current = after
    while True:
        tick = next_tick(cron, tz, current)
        if tick > until:
            return found
        found.append(tick)
        if len(found) > limit:
            found.pop(0)
        current = tick


def iso(epoch: float, tz: str = "UTC") -> str:
    """`2026-03-29T03:30:00+02:00`: a tick as people in its zone read it."""
    zone = UTC if tz == "UTC" else ZoneInfo(tz)
    return datetime.fromtimestamp(epoch, zone).isoformat(timespec="seconds")
