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


def fresh_copy(source: str, target: str, ctx: Any = None) -> dict[str, str]:
    """Replace `target` with a copy of `source`, both inside the workspace: a clean scratch
    checkout for demos and for agents that must not touch the original."""
    import shutil
    from pathlib import Path

    workspace = Path(ctx.workspace if ctx is not None else Path.cwd()).resolve()
    cwd = Path(ctx.cwd if ctx is not None else workspace)
    src, dst = (cwd / source).resolve(), (cwd / target).resolve()
    for name, path in (("source", src), ("target", dst)):
        if not path.is_relative_to(workspace) or path == workspace:
            raise ValueError(f"{name} {path} must be a directory inside the workspace {workspace}")
    if not src.is_dir():
        raise ValueError(f"source {source!r} is not a directory")
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)
    return {"path": str(dst.relative_to(workspace))}
