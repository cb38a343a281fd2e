"""Cron ticks as moments across daylight-saving changes (Europe/Berlin: spring forward on
2026-03-29 02:00 → 03:00, fall back on 2026-10-25 03:00 → 02:00)."""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

from agenthq.engine.cron import iso, next_tick, ticks_between

BERLIN = "Europe/Berlin"


def at(text: str, tz: str = BERLIN) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def ticks(cron: str, start: str, n: int, tz: str = BERLIN) -> list[str]:
    moment, out = at(start, tz), []
    for _ in range(n):
        moment = next_tick(cron, tz, moment)
        out.append(iso(moment, tz))
    return out


def test_daily_ticks_keep_local_time_across_both_changes() -> None:
    assert ticks("0 9 * * *", "2026-03-28T12:00", 2) == [
        "2026-03-29T09:00:00+02:00",
        "2026-03-30T09:00:00+02:00",
    ]
    assert ticks("0 9 * * *", "2026-10-24T12:00", 2) == [
        "2026-10-25T09:00:00+01:00",
        "2026-10-26T09:00:00+01:00",
    ]


def test_a_wall_time_skipped_by_spring_forward_runs_once_after_the_jump() -> None:
    assert ticks("30 2 * * *", "2026-03-28T12:00", 2) == [
        "2026-03-29T03:30:00+02:00",  # 02:30 did not exist that night
        "2026-03-30T02:30:00+02:00",
    ]


def test_a_wall_time_repeated_by_fall_back_runs_once() -> None:
    assert ticks("30 2 * * *", "2026-10-24T12:00", 2) == [
        "2026-10-25T02:30:00+02:00",  # the first 02:30; the second one (+01:00) is not a tick
        "2026-10-26T02:30:00+01:00",
    ]


def test_hourly_never_runs_twice_in_one_real_hour() -> None:
    start = at("2026-10-25T00:00")
    found = ticks_between("0 * * * *", BERLIN, start, start + 6 * 3600)
    gaps = [b - a for a, b in itertools.pairwise(found)]
    assert min(gaps) >= 3600
    spring = at("2026-03-29T00:00")
    found = ticks_between("0 * * * *", BERLIN, spring, spring + 4 * 3600)
    assert len(found) == len(set(found))
    assert [iso(t, BERLIN)[11:16] for t in found] == ["01:00", "03:00", "04:00", "05:00"]


def test_utc_and_ticks_between_keep_only_the_newest() -> None:
    start = at("2026-01-01T00:00", "UTC")
    assert iso(next_tick("*/15 * * * *", "UTC", start), "UTC") == "2026-01-01T00:15:00+00:00"
    found = ticks_between("* * * * *", "UTC", start, start + 3600, limit=10)
    assert len(found) == 10
    assert found[-1] == start + 3600
