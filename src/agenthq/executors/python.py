"""Running a step's `uses:` callable inside the engine's process.

`async def` callables run on the engine's event loop; plain functions run in a thread of their
own so a slow one never stalls the scheduler. Thousands of instant async steps are the engine's
overhead benchmark, so the async path does no more than call, await and wrap the result: no
thread, no file opened unless the step logs or fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import os
import threading
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agenthq.executors.base import Invocation, Masker, Outcome, StartedCallback, no_mask
from agenthq.states import FailureClass

_CACHE_LIMIT = 4096
_calls: dict[Any, tuple[bool, bool]] = {}
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a callable may know about the attempt it runs in (its `ctx` parameter)."""

    run_id: str
    step_id: str
    attempt: int
    workspace: Path
    cwd: Path
    env: Mapping[str, str]
    stdout_path: Path = field(repr=False)
    mask: Masker = field(default=no_mask, repr=False, compare=False)

    @classmethod
    def of(cls, invocation: Invocation) -> StepContext:
        return cls(
            invocation.run_id,
            invocation.step_id,
            invocation.attempt,
            invocation.workspace,
            invocation.cwd,
            invocation.env,
            invocation.stdout_path,
            invocation.mask,
        )

    def log(self, text: str) -> None:
        """Append a line to the step's stdout log, masked, at once (`agenthq logs -f` sees it).

        Opened per call: logging is rare next to the cost of a step, and a thread left running
        after a timeout can still log safely.
        """
        line = self.mask(str(text))
        if not line.endswith("\n"):
            line += "\n"
        _append(self.stdout_path, line)


class PythonExecutor:
    """Calls `invocation.target`; see `executors.base` for the contract it keeps."""

    async def run(self, invocation: Invocation, on_started: StartedCallback) -> Outcome:
        target = invocation.target
        if target is None:
            return Outcome(FailureClass.INFRASTRUCTURE, error="python step without a callable")
        is_async, takes_ctx = _call_info(target)
        kwargs = dict(invocation.arguments)
        if takes_ctx:
            kwargs["ctx"] = StepContext.of(invocation)
        timeout = invocation.timeout
        try:
            if is_async:
                result = await _bounded(target(**kwargs), timeout)
            else:
                result = await _bounded(_in_thread(target, kwargs), timeout)
            if inspect.isawaitable(result):  # a plain function that handed back a coroutine
                result = await _bounded(result, timeout)
        except _ExpiredError:
            return _timed_out(timeout or 0.0, in_thread=not is_async)
        except (Exception, SystemExit) as exc:  # sys.exit() in a step fails the step only
            return _raised(exc, invocation)
        # Without `ctx` a callable has no way to write its logs: the after-gates need not look.
        return _returned(result, invocation.mask, wrote_logs=None if takes_ctx else False)


class _ExpiredError(Exception):
    """The step's own timeout ran out (not a TimeoutError raised by the step)."""


async def _bounded(awaitable: Awaitable[Any], timeout: float | None) -> Any:
    if timeout is None:
        return await awaitable
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            return await awaitable
    except TimeoutError:
        if scope.expired():
            raise _ExpiredError from None
        raise


def _call_info(target: Callable[..., Any]) -> tuple[bool, bool]:
    """(is a coroutine function, takes `ctx`), remembered: `inspect.signature` is slow."""
    try:
        return _calls[target]
    except KeyError:
        pass
    except TypeError:  # unhashable callable object
        return _inspect(target)
    info = _inspect(target)
    if len(_calls) < _CACHE_LIMIT:
        _calls[target] = info
    return info


def _inspect(target: Callable[..., Any]) -> tuple[bool, bool]:
    is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - an object with `async def __call__`
    )
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):  # some builtins have no signature
        return is_async, False
    ctx = parameters.get("ctx")
    return is_async, ctx is not None and ctx.kind in _NAMED


def _in_thread(target: Callable[..., Any], kwargs: dict[str, Any]) -> asyncio.Future[Any]:
    """Run `target` in a daemon thread.

    Not the loop's default executor: a function that ignores its timeout keeps running, and
    the executor's shutdown (at the end of `asyncio.run`) would wait for it forever.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def deliver(error: BaseException | None, value: Any) -> None:
        if future.done():  # timed out or cancelled meanwhile: nobody wants the result
            return
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    def work() -> None:
        error: BaseException | None = None
        value: Any = None
        try:
            value = context.run(target, **kwargs)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed before the function ended
            loop.call_soon_threadsafe(deliver, error, value)

    name = getattr(target, "__qualname__", "callable")
    threading.Thread(target=work, name=f"agenthq-step:{name}", daemon=True).start()
    return future


def _timed_out(timeout: float, *, in_thread: bool) -> Outcome:
    error = f"timed out after {timeout:g}s"
    if in_thread:
        error += (
            " (a Python function running in a thread cannot be stopped: "
            "it goes on in the background until it returns)"
        )
    return Outcome(FailureClass.TIMEOUT, error=error)


def _raised(exc: BaseException, invocation: Invocation) -> Outcome:
    """EXECUTION failure; the traceback, without this module's frames, goes to stderr."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))
    with contextlib.suppress(OSError):
        _append(invocation.stderr_path, invocation.mask(text))
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Outcome(FailureClass.EXECUTION, error=invocation.mask(message))


def _returned(result: Any, mask: Masker, *, wrote_logs: bool | None) -> Outcome:
    """A mapping is the outputs, None is none, anything else is `{"result": value}`."""
    if result is None:
        return Outcome(None, wrote_logs=wrote_logs)
    outputs = dict(result) if isinstance(result, Mapping) else {"result": result}
    for key, value in outputs.items():
        if not isinstance(key, str):
            return Outcome(
                FailureClass.EXECUTION,
                error=f"output key {key!r} is not a string",
                wrote_logs=wrote_logs,
            )
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            return Outcome(
                FailureClass.EXECUTION,
                error=mask(f"output {key!r} is not JSON-serialisable: {exc}"),
                wrote_logs=wrote_logs,
            )
    return Outcome(None, outputs=outputs, wrote_logs=wrote_logs)


def _append(path: Path, text: str) -> None:
    data = text.encode("utf-8", "replace")
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
