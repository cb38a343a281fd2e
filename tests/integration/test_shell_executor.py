"""ShellExecutor with real processes and real log files: outputs, failures, timeouts that kill
whole process trees, cancellation, masking of streamed output, and the process identity helpers
the engine uses to find its orphans after a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agenthq.executors.base import Invocation, Outcome, no_mask
from agenthq.executors.environment import step_environment
from agenthq.executors.masking import build_masker
from agenthq.executors.procs import (
    group_alive,
    is_same_process,
    kill_group,
    process_start_ticks,
)
from agenthq.executors.shell import ShellExecutor, install_fast_child_watcher
from agenthq.executors.spawner import Spawner, spawning
from agenthq.executors.spawner import ready_spawner as spawner_ready
from agenthq.states import FailureClass

SECRET = "s3cr3t-Value-42"


def invocation(tmp_path: Path, command: str, **overrides: Any) -> Invocation:
    fields: dict[str, Any] = {
        "run_id": "run-1",
        "step_id": "step",
        "attempt": 1,
        "workspace": tmp_path,
        "cwd": tmp_path,
        "stdout_path": tmp_path / "logs" / "step.1.out",
        "stderr_path": tmp_path / "logs" / "step.1.err",
        "env": step_environment(os.environ, {}),
        "command": command,
        "kill_grace": 1.0,
    }
    fields.update(overrides)
    return Invocation(**fields)


VIA = ("engine", "helper")  # who spawns: this process, or the spawner helper (spawner.py)


async def ready_spawner() -> Spawner:
    """Start the running loop's helper and wait until it takes requests."""
    async with asyncio.timeout(10):
        spawner = await spawner_ready()
    assert spawner is not None, "the spawner helper did not start"
    return spawner


async def run_via(
    via: str, inv: Invocation, on_started: Callable[[int, int, int | None], None] | None = None
) -> Outcome:
    install_fast_child_watcher()
    callback = on_started or (lambda pid, pgid, start: None)
    if via == "engine":
        return await ShellExecutor().run(inv, callback)
    async with spawning():
        spawner = await ready_spawner()
        outcome = await ShellExecutor().run(inv, callback)
        if inv.mask is no_mask and outcome.failure_class is not FailureClass.INFRASTRUCTURE:
            assert spawner.started == 1  # it did start the step (masked steps never use it)
        return outcome


def run(
    inv: Invocation,
    on_started: Callable[[int, int, int | None], None] | None = None,
    via: str = "engine",
) -> Outcome:
    return asyncio.run(run_via(via, inv, on_started))


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


# ---- results ---------------------------------------------------------------------------------


@pytest.mark.parametrize("via", VIA)
def test_json_stdout_becomes_the_outputs(via: str, tmp_path: Path) -> None:
    outcome = run(invocation(tmp_path, """echo '  {"version": "1.2", "n": [1, 2]}'"""), via=via)
    assert outcome.succeeded
    assert outcome.exit_code == 0
    assert outcome.outputs == {"version": "1.2", "n": [1, 2]}


@pytest.mark.parametrize(
    "command",
    ["echo hello", "echo '[1, 2]'", """echo '{"a": 1}'; echo '{"b": 2}'""", "echo '{broken'"],
)
@pytest.mark.parametrize("via", VIA)
def test_other_stdout_gives_no_outputs(via: str, tmp_path: Path, command: str) -> None:
    outcome = run(invocation(tmp_path, command), via=via)
    assert outcome.succeeded
    assert outcome.outputs == {}


@pytest.mark.parametrize("via", VIA)
def test_usage_lines_are_reported_apart_from_the_outputs(via: str, tmp_path: Path) -> None:
    command = (
        """echo '{"agenthq": {"cost_usd": 0.25}}'; echo '{"agenthq": {"cost_usd": 0.5}}';"""
        """ echo '{"ok": true}'"""
    )
    outcome = run(invocation(tmp_path, command), via=via)
    assert outcome.usage == {"cost_usd": 0.75}
    assert outcome.outputs == {"ok": True}


@pytest.mark.parametrize("via", VIA)
def test_exit_code_and_last_stderr_line_make_the_error(via: str, tmp_path: Path) -> None:
    command = "echo working; echo 'warning: first' >&2; echo 'fatal: no such ref' >&2; exit 3"
    outcome = run(invocation(tmp_path, command), via=via)
    assert outcome.failure_class == FailureClass.EXECUTION
    assert outcome.exit_code == 3
    assert outcome.error == "exit code 3: fatal: no such ref"
    assert outcome.outputs == {}
    logs = tmp_path / "logs"
    assert (logs / "step.1.out").read_text() == "working\n"
    assert (logs / "step.1.err").read_text() == "warning: first\nfatal: no such ref\n"


@pytest.mark.parametrize("via", VIA)
def test_a_process_killed_by_a_signal_says_so(via: str, tmp_path: Path) -> None:
    outcome = run(invocation(tmp_path, "kill -KILL $$"), via=via)
    assert outcome.failure_class == FailureClass.EXECUTION
    assert outcome.exit_code == -signal.SIGKILL
    assert outcome.error is not None
    assert "SIGKILL" in outcome.error


@pytest.mark.parametrize("via", VIA)
def test_missing_cwd_is_an_infrastructure_failure(via: str, tmp_path: Path) -> None:
    started: list[int] = []
    outcome = run(
        invocation(tmp_path, "true", cwd=tmp_path / "nowhere"),
        lambda pid, _, __: started.append(pid),
        via=via,
    )
    assert outcome.failure_class == FailureClass.INFRASTRUCTURE
    assert "nowhere" in (outcome.error or "")
    assert started == []
    outcome = run(invocation(tmp_path, "/bin/true", cwd=tmp_path / "nowhere"), via=via)
    assert outcome.failure_class == FailureClass.INFRASTRUCTURE


@pytest.mark.parametrize("via", VIA)
def test_a_command_not_found_is_the_steps_failure(via: str, tmp_path: Path) -> None:
    outcome = run(invocation(tmp_path, "no-such-program-xyz --flag"), via=via)
    assert outcome.failure_class == FailureClass.EXECUTION
    assert outcome.exit_code == 127
    assert "not found" in (outcome.error or "")


@pytest.mark.parametrize("via", VIA)
def test_plain_commands_run_directly_with_the_right_pwd(via: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    outcome = run(invocation(tmp_path, "printenv PWD", cwd=work), via=via)
    assert outcome.succeeded
    assert (tmp_path / "logs" / "step.1.out").read_text() == f"{work}\n"


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize(
    ("key", "expected"),
    [("BASH_FUNC_printenv%%", "from the function"), ("NOT_BASH_FUNC_printenv%%", None)],
)
def test_an_exported_bash_function_still_shadows_a_plain_command(
    via: str, key: str, expected: str | None, tmp_path: Path
) -> None:
    """A plain command is exec'd without bash only when bash would do the same: not when the
    environment exports a function of that name (only a key that starts with BASH_FUNC_ is one)."""
    env = {**step_environment(os.environ, {}), key: "() {  echo from the function\n}"}
    outcome = run(invocation(tmp_path, "printenv PWD", env=env), via=via)
    assert outcome.succeeded
    printed = (tmp_path / "logs" / "step.1.out").read_text().strip()
    assert printed == (expected or str(tmp_path))


@pytest.mark.parametrize("via", VIA)
def test_log_directory_is_created(via: str, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "er" / "a.out"
    outcome = run(
        invocation(tmp_path, "echo hi", stdout_path=out, stderr_path=out.with_suffix(".err")),
        via=via,
    )
    assert outcome.succeeded
    assert out.read_text() == "hi\n"


@pytest.mark.parametrize("via", VIA)
def test_step_environment_hides_agenthq_settings(via: str, tmp_path: Path) -> None:
    parent = {**os.environ, "AGENTHQ_DB_URL": "sqlite:////x.db", "AGENTHQ_HOME": "/h", "KEEP": "1"}
    env = step_environment(parent, {"CI": "yes"})
    outcome = run(
        invocation(tmp_path, "env > env.txt", env=env, step_id="envstep", attempt=2), via=via
    )
    assert outcome.succeeded
    seen = (tmp_path / "env.txt").read_text().splitlines()
    assert not [line for line in seen if line.startswith(("AGENTHQ_DB_URL=", "AGENTHQ_HOME="))]
    assert {"KEEP=1", "CI=yes", "AGENTHQ_STEP_ID=envstep", "AGENTHQ_ATTEMPT=2"} <= set(seen)
    assert "AGENTHQ_RUN_ID=run-1" in seen


@pytest.mark.parametrize("via", VIA)
def test_on_started_gets_the_pid_that_leads_its_own_group_and_its_start_time(
    via: str, tmp_path: Path
) -> None:
    seen: list[tuple[int, int, int, int | None, int | None]] = []

    def started(pid: int, pgid: int, start_ticks: int | None) -> None:
        seen.append((pid, pgid, os.getpgid(pid), start_ticks, process_start_ticks(pid)))

    outcome = run(invocation(tmp_path, "echo $$; sleep 0.2"), started, via=via)
    assert outcome.succeeded
    [(pid, pgid, actual, start_ticks, actual_start)] = seen
    assert pid == pgid == actual != os.getpgid(0)
    assert start_ticks is not None
    assert start_ticks == actual_start
    assert (tmp_path / "logs" / "step.1.out").read_text() == f"{pid}\n"


# ---- timeouts and cancellation ---------------------------------------------------------------

STUBBORN = "bash -c 'trap \"\" TERM; echo $$ > child.pid; while true; do sleep 0.1; done' & wait"


@pytest.mark.parametrize("secrets", [[], [SECRET]])
@pytest.mark.parametrize("via", VIA)
def test_timeout_kills_a_tree_whose_child_ignores_sigterm(
    via: str, tmp_path: Path, secrets: list[str]
) -> None:
    started_at = time.monotonic()
    outcome = run(
        invocation(tmp_path, STUBBORN, timeout=1.0, kill_grace=0.5, mask=build_masker(secrets)),
        via=via,
    )
    elapsed = time.monotonic() - started_at
    assert outcome.failure_class == FailureClass.TIMEOUT
    assert outcome.error == "timed out after 1s (process group killed)"
    assert 1.4 <= elapsed < 4.0  # timeout + grace, and then no waiting for anything else
    child = int((tmp_path / "child.pid").read_text())
    assert gone(child)


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("secrets", [[], [SECRET]])
def test_cancellation_kills_the_group_and_is_reraised(
    via: str, tmp_path: Path, secrets: list[str]
) -> None:
    pgids: list[int] = []

    async def main() -> None:
        task = asyncio.create_task(
            run_via(
                via,
                invocation(tmp_path, STUBBORN, kill_grace=0.3, mask=build_masker(secrets)),
                lambda _, pgid, __: pgids.append(pgid),
            )
        )
        while not (tmp_path / "child.pid").exists():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    child = int((tmp_path / "child.pid").read_text())
    assert gone(child)
    assert not group_alive(pgids[0])


@pytest.mark.parametrize("via", VIA)
def test_a_background_process_holding_the_pipes_does_not_hang_the_step(
    via: str, tmp_path: Path
) -> None:
    # `setsid` takes the sleeper out of the step's group, so killing the group cannot reach it
    # and it keeps the output pipes open.
    command = "setsid sh -c 'echo $$ > bg.pid; exec sleep 30' & echo launched"
    started_at = time.monotonic()
    try:
        outcome = run(invocation(tmp_path, command, mask=build_masker([SECRET])), via=via)
    finally:
        background = int(wait_for_file(tmp_path / "bg.pid"))
        os.kill(background, signal.SIGKILL)
    assert outcome.succeeded
    assert time.monotonic() - started_at < 5.0
    assert (tmp_path / "logs" / "step.1.out").read_text() == "launched\n"


@pytest.mark.parametrize("via", VIA)
def test_a_second_attempt_appends_and_reports_only_its_own_output(via: str, tmp_path: Path) -> None:
    first = run(invocation(tmp_path, """echo '{"n": 1}'; echo one >&2; exit 1"""), via=via)
    assert first.error == "exit code 1: one"
    second = run(invocation(tmp_path, """echo '{"n": 2}'; echo two >&2; exit 2"""), via=via)
    assert second.error == "exit code 2: two"
    third = run(invocation(tmp_path, """echo '{"n": 3}'"""), via=via)
    assert third.outputs == {"n": 3}
    out = (tmp_path / "logs" / "step.1.out").read_text()
    assert out == '{"n": 1}\n{"n": 2}\n{"n": 3}\n'


@pytest.mark.parametrize("via", VIA)
def test_the_outcome_says_whether_this_attempt_wrote_to_its_logs(via: str, tmp_path: Path) -> None:
    """The after-gates read a step's logs only when they grew (engine/dispatch.py)."""
    assert run(invocation(tmp_path, "echo out"), via=via).wrote_logs is True
    assert run(invocation(tmp_path, "echo err >&2; exit 3"), via=via).wrote_logs is True
    quiet = run(invocation(tmp_path, "true"), via=via)  # the same files, already written to
    assert quiet.succeeded
    assert quiet.wrote_logs is False
    assert run(invocation(tmp_path, "exit 4"), via=via).wrote_logs is False


@pytest.mark.parametrize("via", VIA)
def test_log_files_that_cannot_be_created_say_so(via: str, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    out = tmp_path / "file" / "step.out"
    outcome = run(
        invocation(tmp_path, "/bin/true", stdout_path=out, stderr_path=out.with_suffix(".err")),
        via=via,
    )
    assert outcome.failure_class == FailureClass.INFRASTRUCTURE
    assert (outcome.error or "").startswith("could not open the step's log files: ")


@pytest.mark.parametrize("via", VIA)
def test_steps_start_with_the_signals_python_ignores_restored(via: str, tmp_path: Path) -> None:
    # Python ignores SIGPIPE and SIGXFSZ; a step inheriting that would loop on EPIPE
    # (`yes | head`). Nothing else may be ignored that was not ignored when the tests started
    # (`make` spawns with glibc's posix_spawn, which leaves glibc's internal signals ignored).
    own = int(_sig_ignored(Path("/proc/self/status").read_text()), 16)
    python_ignores = (1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))
    for command in ("grep SigIgn /proc/self/status", "grep SigIgn /proc/self/status; true"):
        outcome = run(invocation(tmp_path, command), via=via)
        assert outcome.succeeded
    lines = (tmp_path / "logs" / "step.1.out").read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        ignored = int(_sig_ignored(line), 16)
        assert ignored & python_ignores == 0
        assert ignored & ~own == 0


def _sig_ignored(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("SigIgn:")).split()[1]


# ---- masking ---------------------------------------------------------------------------------


@pytest.mark.parametrize("via", VIA)
def test_secrets_never_reach_the_logs_or_the_error(via: str, tmp_path: Path) -> None:
    command = (
        f"echo 'token is {SECRET} and {SECRET}'; "
        f"echo 'stderr {SECRET}' >&2; "
        f'echo \'{{"t": "{SECRET}"}}\' > out.json; exit 4'
    )
    outcome = run(invocation(tmp_path, command, mask=build_masker([SECRET])), via=via)
    assert outcome.exit_code == 4
    assert outcome.error == "exit code 4: stderr ***"
    out = (tmp_path / "logs" / "step.1.out").read_text()
    err = (tmp_path / "logs" / "step.1.err").read_text()
    assert out == "token is *** and ***\n"
    assert err == "stderr ***\n"


def test_masked_output_is_written_as_it_is_produced(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "step.1.out"
    seen_while_running: list[str] = []

    async def main() -> Outcome:
        install_fast_child_watcher()
        inv = invocation(
            tmp_path, f"echo first {SECRET}; sleep 2; echo second", mask=build_masker([SECRET])
        )
        task = asyncio.create_task(ShellExecutor().run(inv, lambda pid, pgid, start: None))
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and not seen_while_running:
            await asyncio.sleep(0.05)
            if log.exists() and log.read_text():
                seen_while_running.append(log.read_text())
        assert not task.done()
        return await task

    outcome = asyncio.run(main())
    assert outcome.succeeded
    assert seen_while_running == ["first ***\n"]
    assert log.read_text() == "first ***\nsecond\n"


@pytest.mark.parametrize("via", VIA)
def test_a_huge_line_without_newline_is_masked_everywhere(via: str, tmp_path: Path) -> None:
    # 300 KB in one line, secrets at irregular places (some across any fixed-size cut).
    script = (
        "import sys\n"
        f"parts = [('x' * (997 * i % 7919)) + {SECRET!r} for i in range(100)]\n"
        "sys.stdout.write(''.join(parts)); sys.stdout.flush()\n"
    )
    (tmp_path / "emit.py").write_text(script)
    outcome = run(
        invocation(tmp_path, f"{sys.executable} emit.py", mask=build_masker([SECRET])), via=via
    )
    assert outcome.succeeded
    text = (tmp_path / "logs" / "step.1.out").read_text()
    assert SECRET not in text
    assert text.count("***") == 100
    assert len(text) == sum(997 * i % 7919 for i in range(100)) + 300


@pytest.mark.parametrize("via", VIA)
def test_outputs_are_masked_when_masking(via: str, tmp_path: Path) -> None:
    outcome = run(
        invocation(tmp_path, f"""echo '{{"t": "{SECRET}"}}'""", mask=build_masker([SECRET])),
        via=via,
    )
    assert outcome.outputs == {"t": "***"}


# ---- the child watcher ----------------------------------------------------------------------


def test_the_watcher_works_from_loops_in_several_threads(tmp_path: Path) -> None:
    install_fast_child_watcher()
    install_fast_child_watcher()  # idempotent
    results: list[bool] = []

    def worker(index: int) -> None:
        async def main() -> None:
            for n in range(10):
                inv = invocation(
                    tmp_path,
                    "/bin/true",
                    stdout_path=tmp_path / f"t{index}.{n}.out",
                    stderr_path=tmp_path / f"t{index}.{n}.err",
                )
                outcome = await ShellExecutor().run(inv, lambda pid, pgid, start: None)
                results.append(outcome.succeeded)

        asyncio.run(main())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [True] * 30


# ---- process identity ------------------------------------------------------------------------


def test_start_ticks_of_this_process() -> None:
    ticks = process_start_ticks(os.getpid())
    assert isinstance(ticks, int)
    assert ticks > 0
    assert is_same_process(os.getpid(), ticks)
    assert not is_same_process(os.getpid(), ticks + 1)  # a reused pid has another start time


def test_a_dead_pid_is_not_the_same_process() -> None:
    child = subprocess.Popen(["sleep", "5"])
    ticks = process_start_ticks(child.pid)
    assert ticks is not None
    assert is_same_process(child.pid, ticks)
    child.kill()
    child.wait()
    assert process_start_ticks(child.pid) is None
    assert not is_same_process(child.pid, ticks)
    assert process_start_ticks(0) is None
    assert process_start_ticks(-5) is None


def test_a_zombie_is_not_alive(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])
    ticks = process_start_ticks(child.pid)
    assert ticks is not None
    deadline = time.monotonic() + 5
    while not gone(child.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not is_same_process(child.pid, ticks)  # exited, not yet reaped
    child.wait()


def test_a_command_name_with_spaces_and_parentheses(tmp_path: Path) -> None:
    odd = tmp_path / "a) (b c"
    odd.symlink_to("/bin/sleep")
    child = subprocess.Popen([str(odd), "5"])
    try:
        wait_until = time.monotonic() + 5
        while ") (" not in Path(f"/proc/{child.pid}/stat").read_text():
            assert time.monotonic() < wait_until
            time.sleep(0.01)
        ticks = process_start_ticks(child.pid)
        own = process_start_ticks(os.getpid())
        assert ticks is not None
        assert own is not None
        assert ticks >= own
        assert is_same_process(child.pid, ticks)
    finally:
        child.kill()
        child.wait()


def test_kill_group_escalates_to_sigkill() -> None:
    child = subprocess.Popen(
        ["bash", "-c", "trap '' TERM; while true; do sleep 0.1; done"], start_new_session=True
    )
    try:
        time.sleep(0.2)
        started_at = time.monotonic()
        kill_group(child.pid, grace=0.3)
        assert child.wait(timeout=5) == -signal.SIGKILL
        assert 0.3 <= time.monotonic() - started_at < 3
        assert not group_alive(child.pid)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
