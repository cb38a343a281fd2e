"""Small callables for `uses:` that every installation has (`uses: agenthq.builtin:echo`)."""

from __future__ import annotations

import asyncio
from typing import Any


def echo(text: str, ctx: Any = None) -> dict[str, str]:
    """Print `text` to the step's log and expose it as `outputs.text`."""
    if ctx is not None:
        ctx.log(text)
    return {"text": text}


async def noop() -> None:
    """Return at once: the unit of the engine's overhead benchmarks."""


async def sleep(seconds: float = 0.05) -> dict[str, float]:
    """Wait without a process; for demos and benchmarks of concurrency."""
    await asyncio.sleep(float(seconds))
    return {"slept": float(seconds)}


def fail(message: str = "failed on purpose") -> None:
    """Raise, so plans can demonstrate retries and trigger rules."""
    raise RuntimeError(message)
