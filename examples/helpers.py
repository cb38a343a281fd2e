"""Callables for the example plans (`uses: helpers:flaky`): importable because they sit
beside the plan files."""

from __future__ import annotations

from typing import Any


def flaky(ctx: Any, fail_times: int = 2) -> dict[str, int]:
    """Fail the first `fail_times` attempts, then succeed: shows retries with backoff."""
    if ctx.attempt <= fail_times:
        raise RuntimeError(
            f"attempt {ctx.attempt} failed (this step succeeds on attempt {fail_times + 1})"
        )
    return {"succeeded_on_attempt": ctx.attempt}
