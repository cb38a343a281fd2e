"""Callables the engine tests run as `uses:` steps; they record what ran, in order."""

from __future__ import annotations

import asyncio
from typing import Any

ORDER: list[str] = []
FAILURES: dict[str, int] = {}


def record(ctx: Any) -> dict[str, str]:
    ORDER.append(ctx.step_id)
    return {"step": ctx.step_id}


async def record_async(ctx: Any, pause: float = 0.0) -> dict[str, str]:
    if pause:
        await asyncio.sleep(pause)
    ORDER.append(ctx.step_id)
    return {"step": ctx.step_id}


def fail_first(ctx: Any, times: int = 1) -> dict[str, int]:
    """Fail the first `times` attempts of this step, then succeed."""
    if ctx.attempt <= times:
        raise RuntimeError(f"planned failure {ctx.attempt}")
    return {"attempt": ctx.attempt}


def always_fail(message: str = "nope") -> None:
    raise ValueError(message)
