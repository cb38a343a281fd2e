"""The spawner helper with real processes: a run's shell steps start from it, its death costs
no step more than a `lost` attempt, a step cancelled while it is being started is stopped, and
the helper ends with the last run that used it. (Every outcome of a step — outputs, failures,
timeouts, masking — is tested through both ways of spawning in test_shell_executor.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import agenthq
from agenthq.agents.registry import agents_from_table
from agenthq.engine.doctor import check_spawner
from agenthq.engine.gating import GateConfig
from agenthq.engine.runner import Runner, RunOptions
from agenthq.executors import spawn_helper
from agenthq.executors import spawner as spawner_module
from agenthq.executors.base import Outcome
from agenthq.executors.procs import group_alive, process_start_ticks
from agenthq.executors.shell import ShellExecutor, install_fast_child_watcher
from agenthq.executors.spawner import current_spawner, spawning
from agenthq.gates.policy import Policy
from agenthq.states import FailureClass
from tests.integration.test_shell_executor import gone, invocation, ready_spawner


def test_a_runs_shell_steps_start_from_the_helper(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHQ_")}
    plan = (
        agenthq.Plan("parents")
        .step("first", run="sleep 0.3")  # the helper starts meanwhile
        .step("second", run="sh parent.sh", needs=["first"])  # exec'd by the helper itself
    )
    (tmp_path / "parent.sh").write_text(
        "echo $PPID > ppid.txt; cat /proc/$PPID/cmdline > parent.txt\n"
    )
    gates = GateConfig(policy=Policy(allow=("sh parent.sh",)))
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as store:
        runner = Runner(store, home=tmp_path, environ=environ, gates=gates)
        run = runner.run(plan, workspace=tmp_path)
    assert run.state == "succeeded"
    parent = (tmp_path / "parent.txt").read_bytes().split(b"\0")
    assert parent[1:3] == [b"-I", b"-S"]
    assert parent[3].endswith(b"spawn_helper.py")
    assert gone(int((tmp_path / "ppid.txt").read_text()))  # and it ended with the run


async def helper_started() -> dict[str, bool]:
    """A step (Python, run in the engine's loop) that says whether the loop's helper exists."""
    lease = spawner_module._leases.get(asyncio.get_running_loop())
    return {"started": lease is not None and lease.spawner is not None}


@pytest.mark.parametrize(
    ("later", "starts_helper"),
    [
        ({"run": "true"}, True),
        ({"agent": "claude", "prompt": "tidy up"}, True),  # a coding agent's CLI is a process
        ({"uses": "agenthq.builtin:noop"}, False),
    ],
    ids=["shell", "prompt", "python"],
)
def test_a_run_starts_the_helper_before_its_first_step_if_a_step_may_spawn(
    tmp_path: Path, later: dict[str, str], starts_helper: bool
) -> None:
    environ = {"PATH": "/usr/bin:/bin"}  # no `claude` here: that step fails, which is fine
    plan = (
        agenthq.Plan("early")
        .step("probe", uses="tests.integration.test_spawner:helper_started")
        .step("later", needs=["probe"], **later)  # type: ignore[arg-type]
    )
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as store:
        agents = agents_from_table({"claude": {"kind": "cli", "tool": "claude"}}, "agenthq.toml")
        gates = GateConfig(policy=Policy(allow=("claude *",)))  # no person to ask here
        runner = Runner(store, home=tmp_path, environ=environ, agents=agents, gates=gates)
        run = runner.run(plan, workspace=tmp_path, options=RunOptions(no_wait=True))
        (probe,) = (s for s in store.get_steps(run.id) if s.step_id == "probe")
    # Before any other step was dispatched, the helper was already on its way up (or, for a
    # plan with nothing to spawn, never started).
    assert probe.state == "succeeded"
    assert probe.outputs == {"started": starts_helper}


def test_every_step_the_helper_starts_is_recorded_with_its_start_time(tmp_path: Path) -> None:
    """The pair (pid, start time) is how recovery tells a step's process from a stranger that
    got its pid. The helper reads the start time before it can reap the process; read by the
    engine afterwards, most of these steps had already ended and it recorded none."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHQ_")}
    plan = agenthq.Plan("quick").step("first", run="sleep 0.3")  # the helper starts meanwhile
    for i in range(16):
        plan = plan.step(f"t{i}", run="true", needs=["first"])
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as store:
        runner = Runner(store, home=tmp_path, environ=environ)
        run = runner.run(plan, workspace=tmp_path)
        attempts = [a for a in store.get_attempts(run.id) if a.step_id != "first"]
    assert run.state == "succeeded"
    assert len(attempts) == 16
    assert all(a.pid and a.proc_start for a in attempts), [
        (a.step_id, a.pid, a.proc_start) for a in attempts
    ]
    booted_ticks = time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK")
    assert all(0 < (a.proc_start or 0) <= booted_ticks for a in attempts)


def test_the_start_time_told_by_the_boot_clock_is_the_one_proc_shows() -> None:
    """Recovery compares the helper's start time with /proc's: one tick apart would make a
    step's own process look like a stranger. The helper reads the boot clock around each
    spawn and reads /proc only when the two readings straddle a tick."""
    children = []
    try:
        for _ in range(60):
            before = spawn_helper._boot_ns()
            child = subprocess.Popen(["sleep", "5"], start_new_session=True)
            after = spawn_helper._boot_ns()
            children.append((child, before, after))
        for child, before, after in children:
            told = spawn_helper._started_ticks(child.pid, before, after)
            assert told == process_start_ticks(child.pid) is not None
            # Readings a tick apart cannot tell: /proc answers, and for a live child only.
            straddling = spawn_helper._started_ticks(
                child.pid, after - spawn_helper._TICK_NS, after
            )
            assert straddling == told
    finally:
        for child, _, _ in children:
            child.kill()
            child.wait()
    reaped, before, after = children[0]
    assert spawn_helper._started_ticks(reaped.pid, after - spawn_helper._TICK_NS, after) is None


def test_with_the_spawner_switched_off_the_engine_starts_its_steps(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHQ_")}
    plan = (
        agenthq.Plan("parents")
        .step("first", run="sleep 0.3")
        .step("second", run="sh parent.sh", needs=["first"])
    )
    (tmp_path / "parent.sh").write_text("echo $PPID > ppid.txt\n")
    gates = GateConfig(policy=Policy(allow=("sh parent.sh",)))
    with agenthq.open_store(f"sqlite:///{tmp_path / 'agenthq.db'}") as store:
        runner = Runner(store, home=tmp_path, environ=environ, gates=gates, spawner=False)
        assert runner.run(plan, workspace=tmp_path).state == "succeeded"
    assert int((tmp_path / "ppid.txt").read_text()) == os.getpid()


def test_the_helper_dying_mid_step_loses_only_that_attempts_exit_status(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "finished"

    async def main() -> tuple[Outcome, Outcome]:
        install_fast_child_watcher()
        async with spawning():
            spawner = await ready_spawner()
            pids: list[int] = []
            step = asyncio.create_task(
                ShellExecutor().run(
                    invocation(tmp_path, f"sleep 0.5; touch {marker}"),
                    lambda pid, _, __: pids.append(pid),
                )
            )
            while not pids:
                await asyncio.sleep(0.01)
            os.kill(spawner.process.pid, signal.SIGKILL)
            lost = await step
            assert spawner.gone
            assert current_spawner() is None  # from now on, steps start in this process
            after = await ShellExecutor().run(
                invocation(tmp_path, "/bin/true", step_id="after"), lambda pid, _, __: None
            )
            assert spawner.started == 1
            return lost, after

    started_at = time.monotonic()
    lost, after = asyncio.run(main())
    assert lost.failure_class == FailureClass.LOST
    assert "spawner stopped unexpectedly" in (lost.error or "")
    assert marker.exists()  # the step ran to its end: nothing killed it
    assert time.monotonic() - started_at >= 0.5
    assert after.succeeded
    assert "process spawner stopped unexpectedly" in caplog.text  # said once, to the person


def test_a_step_cancelled_while_the_helper_starts_it_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "step.pid"
    command = f"echo $$ > {pid_file}; exec sleep 30"

    async def main() -> int:
        install_fast_child_watcher()
        async with spawning():
            spawner = await ready_spawner()
            task = asyncio.create_task(
                ShellExecutor().run(invocation(tmp_path, command, kill_grace=0.2), lambda *_: None)
            )
            await asyncio.sleep(0)  # the request is sent; the helper has not answered yet
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            else:
                raise AssertionError("the cancellation was swallowed")
            return spawner.started

    assert asyncio.run(main()) == 1
    if pid_file.exists() and pid_file.read_text().strip():
        pid = int(pid_file.read_text())
        assert gone(pid)
        assert not group_alive(pid)


def test_the_helper_ends_with_its_last_user(tmp_path: Path) -> None:
    async def main() -> None:
        install_fast_child_watcher()
        async with spawning():
            async with spawning():  # a second run in the same loop shares the helper
                spawner = await ready_spawner()
            assert spawner.process.poll() is None
            assert current_spawner() is spawner
            outcome = await ShellExecutor().run(invocation(tmp_path, "/bin/true"), lambda *_: None)
            assert outcome.succeeded
        assert spawner.process.poll() == 0
        assert spawner.gone
        assert current_spawner() is None  # no lease: steps start in this process

    asyncio.run(main())


def test_a_busy_loop_sees_the_helper_ready_once_it_said_so(tmp_path: Path) -> None:
    """A run's setup holds the event loop while the helper boots; the first steps must not
    start in-process because the loop had no turn yet to read the helper's "ready"."""

    async def main() -> None:
        spawner = spawner_module.Spawner(asyncio.get_running_loop())
        try:
            assert not spawner.ready  # booting: a step now would start in-process
            # Block as setup does, until the helper has written its "ready" line.
            assert select.select([spawner.process.stdout], [], [], 10)[0]
            assert spawner.ready  # with no turn of the event loop in between
            request = spawner.spawn(
                ["/bin/true"],
                shell=None,
                cwd=tmp_path,
                env={"PATH": "/usr/bin:/bin"},
                stdout=tmp_path / "out.log",
                stderr=tmp_path / "err.log",
            )
            assert (await request.started).pid > 0
            assert await request.exited == 0
        finally:
            await spawner.aclose()

    asyncio.run(main())


def test_a_helper_that_cannot_start_leaves_steps_to_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(spawner_module, "HELPER", tmp_path / "missing_helper.py")

    async def main() -> list[bool]:
        install_fast_child_watcher()
        results = []
        async with spawning():
            for n in range(3):
                outcome = await ShellExecutor().run(
                    invocation(tmp_path, "/bin/true", step_id=f"s{n}"), lambda *_: None
                )
                results.append(outcome.succeeded)
                await asyncio.sleep(0.3)  # long enough for the helper to have failed
            assert current_spawner() is None
        return results

    assert asyncio.run(main()) == [True, True, True]
    assert caplog.text.count("process spawner stopped unexpectedly") == 1


def test_doctor_checks_the_helper_and_says_when_it_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (working,) = check_spawner()
    assert working.level == "ok"
    (off,) = check_spawner(enabled=False)
    assert off.level == "ok"
    assert off.message.startswith("switched off")
    monkeypatch.setattr(spawner_module, "HELPER", tmp_path / "missing_helper.py")
    started_at = time.monotonic()
    (broken,) = check_spawner(timeout=8)
    assert broken.level == "degraded"
    assert "did not start" in broken.message
    assert "engine's own process" in broken.message
    assert time.monotonic() - started_at < 5  # it noticed the helper was gone; no waiting it out


def test_big_and_undecodable_environments_reach_the_step_intact(tmp_path: Path) -> None:
    # 300 KB is more than a pipe holds: the request is written in parts as the helper reads.
    # (One variable may hold at most 128 KB: the kernel's limit, with or without the helper.)
    env = {
        **invocation(tmp_path, "true").env,
        **{f"BIG{n}": "x" * 100_000 for n in range(3)},
        "RAW": "caf\udce9",  # the byte 0xE9, not UTF-8: os.environ keeps it as a surrogate
    }
    command = "printenv BIG2 | wc -c; printenv RAW | od -An -tx1"

    async def main() -> int:
        install_fast_child_watcher()
        async with spawning():
            spawner = await ready_spawner()
            outcomes = await asyncio.gather(
                *(
                    ShellExecutor().run(
                        invocation(
                            tmp_path,
                            command,
                            env=env,
                            step_id=f"s{n}",
                            stdout_path=tmp_path / f"s{n}.out",
                            stderr_path=tmp_path / f"s{n}.err",
                        ),
                        lambda *_: None,
                    )
                    for n in range(4)
                )
            )
            assert [o.error for o in outcomes] == [None] * 4
            return spawner.started

    assert asyncio.run(main()) == 4
    for n in range(4):
        count, raw = (tmp_path / f"s{n}.out").read_text().splitlines()
        assert int(count) == 100_001
        assert raw.split() == ["63", "61", "66", "e9", "0a"]


def test_each_step_gets_exactly_its_environment_when_only_differences_are_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first request, the helper is sent what changed since the environment it
    keeps: a changed, a removed and an added variable, then the first again (the helper must
    undo the last step's differences: its own environment is the step's, see
    `spawn_helper.Environment`), then an environment with little in common (sent whole and
    kept), then the first again (whole again)."""
    base = invocation(tmp_path, "env").env
    first = {**base, "KEEP": "1", "GONE": "soon"}
    changed = {**first, "KEEP": "2"}
    trimmed = {k: v for k, v in first.items() if k != "GONE"} | {"NEW": "x=y"}
    other = {"PATH": base["PATH"], **{f"V{n}": str(n) for n in range(40)}}
    envs = [first, changed, trimmed, first, other, first]
    sent: list[dict[str, Any]] = []
    send = spawner_module.Spawner._send

    def spy(self: spawner_module.Spawner, data: bytes) -> None:
        sent.append(json.loads(data))
        send(self, data)

    monkeypatch.setattr(spawner_module.Spawner, "_send", spy)

    async def main() -> None:
        install_fast_child_watcher()
        async with spawning():
            await ready_spawner()
            for n, env in enumerate(envs):
                inv = invocation(
                    tmp_path,
                    "env -0",
                    env=env,
                    step_id=f"s{n}",
                    stdout_path=tmp_path / f"s{n}.out",
                    stderr_path=tmp_path / f"s{n}.err",
                )
                assert (await ShellExecutor().run(inv, lambda *_: None)).succeeded

    asyncio.run(main())
    for n, env in enumerate(envs):
        printed = (tmp_path / f"s{n}.out").read_text().split("\0")
        seen = dict(line.split("=", 1) for line in printed if line)
        ids = {"AGENTHQ_RUN_ID": "run-1", "AGENTHQ_STEP_ID": f"s{n}", "AGENTHQ_ATTEMPT": "1"}
        assert seen == {**env, **ids, "PWD": str(tmp_path)}, n
    assert ["env" in request for request in sent] == [True, False, False, False, True, True]
    assert sent[2]["unset"] == ["GONE"]
    assert sent[2]["set"] == {"AGENTHQ_STEP_ID": "s2", "NEW": "x=y"}
    assert sent[3]["set"] == {"AGENTHQ_STEP_ID": "s3"}
    assert sent[3]["unset"] == []


def test_the_engine_creates_a_steps_log_files_before_it_asks_the_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper starts steps one after another; creating files there held up every step
    queued behind it (shell._create_logs). The helper still opens them, and appends."""
    existed: list[tuple[bool, bool]] = []
    spawn = spawner_module.Spawner.spawn

    def spy(self: spawner_module.Spawner, argv: Any, **kwargs: Any) -> spawner_module.Request:
        existed.append((kwargs["stdout"].exists(), kwargs["stderr"].exists()))
        return spawn(self, argv, **kwargs)

    monkeypatch.setattr(spawner_module.Spawner, "spawn", spy)
    (tmp_path / "logs").mkdir()

    async def main() -> Outcome:
        install_fast_child_watcher()
        async with spawning():
            await ready_spawner()
            return await ShellExecutor().run(
                invocation(tmp_path, "echo out; echo err >&2"), lambda *_: None
            )

    assert asyncio.run(main()).succeeded
    assert existed == [(True, True)]
    assert (tmp_path / "logs" / "step.1.out").read_text() == "out\n"
    assert (tmp_path / "logs" / "step.1.err").read_text() == "err\n"
