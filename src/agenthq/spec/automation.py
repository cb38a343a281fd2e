"""What starts a plan without a person: a schedule, another plan's end, a matching event.

The plan file says it (`schedule:`, `after:`, `on:`); `agenthq schedule add` and
`agenthq triggers add` register it with the store, and `agenthq serve` acts on it. Every
value is checked here, when the plan is loaded: a cron expression croniter cannot read, a
time zone zoneinfo does not know, or a condition that is not a valid sandboxed expression is
a plan error with its file and line, not a surprise at 2 a.m.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from agenthq.spec.durations import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class CatchUp(StrEnum):
    """What a schedule does about ticks it missed while no server ran."""

    SKIP = "skip"  # forget them; the next run is the next tick
    ONCE = "once"  # one run for all of them, as soon as the server is back


def check_cron(value: str) -> str:
    from croniter import croniter

    if not isinstance(value, str) or not croniter.is_valid(value):
        raise ValueError(
            f"cron {value!r} is not a cron expression; write five fields, "
            "minute hour day-of-month month day-of-week, e.g. '0 2 * * *' (02:00 daily)"
        )
    if len(value.split()) != 5:
        raise ValueError(f"cron {value!r}: use exactly five fields (no seconds, no year)")
    return value


def check_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"time zone {value!r} is unknown; use an IANA name such as UTC, Europe/Berlin "
            "or America/New_York"
        ) from None
    return value


class ScheduleSpec(_Frozen):
    cron: Annotated[str, BeforeValidator(check_cron)]
    tz: Annotated[str, BeforeValidator(check_zone)] = "UTC"
    catch_up: CatchUp = CatchUp.SKIP
    max_active_runs: int = Field(default=1, ge=1, le=1000)
    params: dict[str, Any] = Field(default_factory=dict)


class AfterStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    FINISHED = "finished"  # succeeded, failed or cancelled


class AfterSpec(_Frozen):
    """Start this plan when a run of `plan` ends with `status`."""

    plan: str
    status: AfterStatus = AfterStatus.SUCCEEDED
    params: dict[str, Any] = Field(default_factory=dict)


EVENT_KINDS = ("step.succeeded", "step.failed", "run.succeeded", "run.failed")


class OnSpec(_Frozen):
    """Start this plan when an event matches: a step or run of `plan` reached a state, and
    `when` (a sandboxed expression over the event) holds."""

    event: str = "step.succeeded"
    plan: str | None = None  # any plan when unset
    step: str | None = None  # a step id (or a `foreach` base id); any step when unset
    when: str | None = None  # e.g. "outputs.lines_changed >= 50"
    cooldown: Duration = 0.0  # after starting a run, ignore matches for this long
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("event")
    @classmethod
    def _known_event(cls, value: str) -> str:
        if value not in EVENT_KINDS:
            raise ValueError(f"event {value!r}: use one of {', '.join(EVENT_KINDS)}")
        return value

    @field_validator("when")
    @classmethod
    def _valid_condition(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from agenthq.spec import templating

        try:
            templating.check_expression(value)
        except templating.TemplateError as exc:
            raise ValueError(f"`when` {value!r} is not a valid expression: {exc}") from None
        return value

    @field_validator("cooldown")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("`cooldown` must not be negative")
        return value
