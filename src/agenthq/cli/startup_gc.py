"""The garbage collector while the `agenthq` process sets a command up.

Setting up `agenthq run` imports some 350 modules and builds the plan, its graph, the store
and the runner: tens of thousands of objects, every one of them alive until the process ends.
CPython's collector runs after every 700 allocations whether or not anything died, so it
walked those objects again and again while they were made, and then in every full collection
of the run: 50-60 ms of W1's 0.8-1.1 s and 270-320 ms of W3's 2.6-3.0 s, finding nothing.

So the `agenthq` command (`cli.main.command`, never an in-process caller of `main()`) arms
`setting_up()`. Inside that block the collector is off; at its end everything alive is frozen
(`gc.freeze()`: kept out of every later collection, as CPython's documentation suggests for
objects that live as long as the process) and the collector is on again — for the rest of
the process, which may run a plan for weeks and makes garbage like any other program. The
blocks are bounded (setting up, never running), so no command can leave the collector off.

Not armed — tests and programs that call `main()` themselves — the block changes nothing: a
freeze there would also keep alive whatever garbage that process had not yet collected.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_armed = False


def arm() -> None:
    """Called once by the `agenthq` command itself, before it sets anything up."""
    global _armed
    _armed = True


@contextlib.contextmanager
def setting_up() -> Iterator[None]:
    """Build long-lived things with the collector off, then freeze them and switch it on
    again. Nested blocks leave all of that to the outermost one."""
    if not _armed or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
