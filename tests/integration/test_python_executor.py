"""PythonExecutor with real callables and real log files: where each kind of function runs,
`ctx`, what a return value becomes, and how exceptions and timeouts end an attempt."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agenthq import builtin
from agenthq.executors.base import Invocation, Outcome
from agenthq.executors.masking import build_masker
from agenthq.executors.python import PythonExecutor, StepContext
from agenthq.states import FailureClass

SECRET = "py-s3cret-token"


def invocation(tmp_path: Path, target: Callable[..., Any], **overrides: Any) -> Invocation:
    fields: dict[str, Any] = {
        "run_id": "run-1",
        "step_id": "step",
        "attempt": 3,
        "workspace": tmp_path,
        "cwd": tmp_path / "sub",
        "stdout_path": tmp_path / "logs" / "step.3.out",
        "stderr_path": tmp_path / "logs" / "step.3.err",
        "env": {"CI": "1"},
        "target": target,
    }
    fields.update(overrides)
    return Invocation(**fields)


def run(inv: Invocation) -> Outcome:
    return asyncio.run(PythonExecutor().run(inv, lambda pid, pgid, start: None))


# ---- callables used by the tests -------------------------------------------------------------

threads: list[int] = []


def sync_add(a: int, b: int) -> dict[str, int]:
    threads.append(threading.get_ident())
    return {"sum": a + b}


async def async_add(a: int, b: int) -> dict[str, int]:
    threads.append(threading.get_ident())
    await asyncio.sleep(0)
    return {"sum": a + b}


def with_ctx(ctx: StepContext, word: str) -> dict[str, Any]:
    ctx.log(f"hello {word} {SECRET}")
    ctx.log("second line\n")
    return {
        "run": ctx.run_id,
        "step": ctx.step_id,
        "attempt": ctx.attempt,
        "cwd": str(ctx.cwd),
        "workspace": str(ctx.workspace),
        "ci": ctx.env["CI"],
    }


def boom(message: str) -> None:
    raise RuntimeError(message)


async def async_boom() -> None:
    await asyncio.sleep(0)
    raise ValueError("bad value")


def slow_sync(seconds: float) -> None:
    time.sleep(seconds)


async def slow_async(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def raises_timeout_error() -> None:
    raise TimeoutError("the remote API timed out")


def returns(value: Any) -> Any:
    return value


def exits() -> None:
    sys.exit(2)


# ---- where things run ------------------------------------------------------------------------


def test_sync_function_runs_in_a_thread(tmp_path: Path) -> None:
    threads.clear()
    outcome = run(invocation(tmp_path, sync_add, arguments={"a": 2, "b": 3}))
    assert outcome.succeeded
    assert outcome.outputs == {"sum": 5}
    assert threads != [threading.get_ident()]


def test_async_function_runs_on_the_loop_and_opens_no_file(tmp_path: Path) -> None:
    threads.clear()
    outcome = run(invocation(tmp_path, async_add, arguments={"a": 2, "b": 3}))
    assert outcome.outputs == {"sum": 5}
    assert threads == [threading.get_ident()]
    assert not (tmp_path / "logs").exists()
    assert outcome.wrote_logs is False  # without ctx it could not: the after-gates skip it


def test_noop_builtin(tmp_path: Path) -> None:
    outcome = run(invocation(tmp_path, builtin.noop))
    assert outcome.succeeded
    assert outcome.outputs == {}


# ---- ctx ------------------------------------------------------------------------------------


def test_ctx_is_passed_and_logs_masked_lines(tmp_path: Path) -> None:
    outcome = run(
        invocation(tmp_path, with_ctx, arguments={"word": "world"}, mask=build_masker([SECRET]))
    )
    assert outcome.outputs == {
        "run": "run-1",
        "step": "step",
        "attempt": 3,
        "cwd": str(tmp_path / "sub"),
        "workspace": str(tmp_path),
        "ci": "1",
    }
    log = (tmp_path / "logs" / "step.3.out").read_text()
    assert log == "hello world ***\nsecond line\n"
    assert outcome.wrote_logs is None  # a step with ctx may log: its files are looked at


def test_functions_without_ctx_do_not_get_it(tmp_path: Path) -> None:
    outcome = run(invocation(tmp_path, builtin.echo, arguments={"text": "hi"}))
    assert outcome.outputs == {"text": "hi"}
    assert (tmp_path / "logs" / "step.3.out").read_text() == "hi\n"  # echo takes ctx=None


# ---- return values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "outputs"),
    [
        (None, {}),
        ({"a": [1, "x"]}, {"a": [1, "x"]}),
        (5, {"result": 5}),
        ("text", {"result": "text"}),
        ([1, 2], {"result": [1, 2]}),
    ],
)
def test_return_values_become_outputs(tmp_path: Path, value: Any, outputs: Any) -> None:
    outcome = run(invocation(tmp_path, returns, arguments={"value": value}))
    assert outcome.succeeded
    assert outcome.outputs == outputs


def test_a_value_that_is_not_json_fails_naming_the_key(tmp_path: Path) -> None:
    outcome = run(invocation(tmp_path, returns, arguments={"value": {"ok": 1, "when": object()}}))
    assert outcome.failure_class == FailureClass.EXECUTION
    assert "'when'" in (outcome.error or "")
    assert "JSON" in (outcome.error or "")


def test_a_non_string_key_fails(tmp_path: Path) -> None:
    outcome = run(invocation(tmp_path, returns, arguments={"value": {1: "x"}}))
    assert outcome.failure_class == FailureClass.EXECUTION


# ---- failures --------------------------------------------------------------------------------


def test_an_exception_fails_and_its_traceback_goes_to_stderr(tmp_path: Path) -> None:
    outcome = run(
        invocation(
            tmp_path, boom, arguments={"message": f"no {SECRET}"}, mask=build_masker([SECRET])
        )
    )
    assert outcome.failure_class == FailureClass.EXECUTION
    assert outcome.error == "RuntimeError: no ***"
    err = (tmp_path / "logs" / "step.3.err").read_text()
    assert err.startswith("Traceback")
    assert "in boom" in err
    assert "RuntimeError: no ***" in err
    assert SECRET not in err
    assert "executors/python.py" not in err  # the engine's frames are noise to the user


def test_an_async_exception(tmp_path: Path) -> None:
    outcome = run(invocation(tmp_path, async_boom))
    assert outcome.error == "ValueError: bad value"
    assert "in async_boom" in (tmp_path / "logs" / "step.3.err").read_text()


def test_wrong_arguments_fail_the_step(tmp_path: Path) -> None:
    outcome = run(invocation(tmp_path, sync_add, arguments={"a": 1}))
    assert outcome.failure_class == FailureClass.EXECUTION
    assert "TypeError" in (outcome.error or "")


def test_sys_exit_fails_the_step_not_the_engine(tmp_path: Path) -> None:
    outcome = run(invocation(tmp_path, exits))
    assert outcome.failure_class == FailureClass.EXECUTION
    assert outcome.error == "SystemExit: 2"


def test_a_timeout_error_raised_by_the_step_is_not_a_timeout(tmp_path: Path) -> None:
    outcome = run(invocation(tmp_path, raises_timeout_error, timeout=5))
    assert outcome.failure_class == FailureClass.EXECUTION
    assert outcome.error == "TimeoutError: the remote API timed out"


# ---- timeouts and cancellation ---------------------------------------------------------------


def test_async_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = run(invocation(tmp_path, slow_async, arguments={"seconds": 10}, timeout=0.2))
    assert outcome.failure_class == FailureClass.TIMEOUT
    assert outcome.error == "timed out after 0.2s"
    assert time.monotonic() - started < 2


def test_sync_timeout_returns_at_once_and_says_the_thread_goes_on(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = run(invocation(tmp_path, slow_sync, arguments={"seconds": 1.5}, timeout=0.2))
    assert outcome.failure_class == FailureClass.TIMEOUT
    assert "cannot be stopped" in (outcome.error or "")
    assert time.monotonic() - started < 1.2  # asyncio.run did not wait for the thread


def test_cancellation_is_reraised(tmp_path: Path) -> None:
    async def main() -> None:
        task = asyncio.create_task(
            PythonExecutor().run(
                invocation(tmp_path, slow_async, arguments={"seconds": 10}), lambda p, g, s: None
            )
        )
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_many_instant_steps_are_cheap(tmp_path: Path) -> None:
    async def main() -> float:
        executor = PythonExecutor()
        inv = invocation(tmp_path, builtin.noop)
        started = time.perf_counter()
        for _ in range(5000):
            await executor.run(inv, lambda p, g, s: None)
        return time.perf_counter() - started

    assert asyncio.run(main()) < 1.0  # ~10 µs each; a thread or a file per call would show
