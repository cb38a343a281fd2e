"""Turning a step that may start into a running attempt, and its end into a Finished result.

The scheduler decides *that* a step starts; this module decides *how*: it renders the step's
templates, picks the executor, names the log files, and wraps the executor call in a task
that always reports back — success, failure, or cancellation — so no attempt is ever left
without an end.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agenthq.agents.registry import Agent
from agenthq.engine import remote
from agenthq.engine.agent_calls import AgentUseError, agent_call, merge_mode, workspace_mode
from agenthq.engine.context import StepResults, needs_rendering, template_context
from agenthq.engine.gating import GatePipeline
from agenthq.engine.outputs import OutputCaptureError, capture_outputs
from agenthq.engine.workspaces import Checkout, WorkspaceError, Workspaces
from agenthq.executors.base import Executor, Invocation, Masker, Outcome
from agenthq.executors.chaos import ChaosExecutor, Monkey
from agenthq.executors.masking import mask_structure
from agenthq.gates.base import GateResult, StepFacts
from agenthq.gates.base import Outcome as GateOutcome
from agenthq.graph import PlanGraph, StepNode
from agenthq.records import record
from agenthq.spec import templating
from agenthq.spec.agents import WorkspaceMode
from agenthq.spec.callables import CallableError, resolve_callable
from agenthq.states import FailureClass, StepState
from agenthq.store.api import AttemptStart, AttemptUpdate, Batch, NewEvent

Lookup = Callable[[str], tuple[StepState, Mapping[str, Any]]]
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.\[\]-]")


@record
class Finished:
    """One attempt's end, as the scheduler records it."""

    step_id: str
    attempt: int
    outcome: Outcome
    outputs: Mapping[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    gates: tuple[GateResult, ...] = ()  # the after-gates' answers

    def attempt_update(self, now: float) -> AttemptUpdate:
        if self.cancelled:
            state = "cancelled"
        else:
            state = "succeeded" if self.outcome.succeeded else "failed"
        fields: dict[str, Any] = {
            "state": state,
            "finished_at": now,
            "exit_code": self.outcome.exit_code,
            "failure_class": self.outcome.failure_class,
            "error": self.outcome.error,
        }
        if self.outcome.usage:
            fields["usage"] = dict(self.outcome.usage)
            fields["cost_usd"] = self.outcome.usage.get("cost_usd")
        if self.outcome.session_id:
            fields["session_id"] = self.outcome.session_id
        if self.outcome.ran_on:
            fields["owner"] = self.outcome.ran_on  # the attempt row says which worker ran it
        return AttemptUpdate(
            "",  # filled by the dispatcher's run id below
            self.step_id,
            self.attempt,
            fields,
        )


@dataclass
class Prepared:
    """A rendered attempt that has not started: what the before-gates judge."""

    node: StepNode
    attempt: int
    invocation: Invocation | None
    executor: Executor | None
    log_paths: tuple[Path, Path]  # stdout, stderr: named once, recorded with the attempt
    failure: Outcome | None = None  # rendering failed: the attempt starts and fails at once
    agent: Agent | None = None

    @property
    def command(self) -> str | None:
        """What the gates judge: the shell command, or the coding agent's command line."""
        if self.invocation is None:
            return None
        call = self.invocation.agent
        if call is not None and call.kind == "cli":
            import shlex

            from agenthq.executors.agent_cli import command_for

            try:
                return shlex.join(command_for(call))
            except ValueError:
                return None
        return self.invocation.command


class Dispatcher:
    def __init__(
        self,
        *,
        run_id: str,
        graph: PlanGraph,
        workspace: Path,
        log_dir: Path,
        base_env: Mapping[str, str],
        masker: Masker,
        executors: Mapping[str, Executor],
        kill_grace: float,
        owner: str,
        gating: GatePipeline | None = None,
        workspaces: Workspaces | None = None,
        sessions: Callable[[str], str | None] | None = None,
        inbox: Callable[[str], list[Mapping[str, Any]]] | None = None,
        chaos: Monkey | None = None,
        remote: remote.RemoteBoard | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.inbox = inbox
        self.chaos = chaos
        self.remote = remote  # steps go to `agenthq worker` processes (engine/remote.py)
        self.secrets = list(secrets)
        self.run_id = run_id
        self.workspaces = workspaces
        self._earlier_session = sessions or (lambda step_id: None)
        self.sessions: dict[str, str] = {}  # step → the coding agent's last conversation
        self.graph = graph
        self.workspace = workspace.resolve()
        self.log_dir = log_dir
        self.base_env = dict(base_env)
        self.masker = masker
        self.executors = executors
        self.kill_grace = kill_grace
        self.owner = owner
        self.gating = gating
        self.pending: list[Prepared] = []
        self.updates: list[AttemptUpdate] = []  # pids of started processes, for the next batch
        self._templated = {n.id: needs_rendering(n) for n in graph.nodes.values()}
        self._log_dir_made = False

    @property
    def has_pending(self) -> bool:
        return bool(self.pending)

    def context_for(
        self, node: StepNode, lookup: Lookup, agent: str | None = None
    ) -> dict[str, Any]:
        agent = agent or node.agent
        reader = self.inbox
        inbox = (lambda: reader(agent)) if reader is not None and agent is not None else None
        return template_context(self.graph, node, StepResults(self.graph, lookup), inbox)

    def prepare(self, node: StepNode, attempt: int, batch: Batch, lookup: Lookup) -> None:
        """Render and enqueue in one go (a step without before-gates)."""
        self.enqueue(self.render(node, attempt, lookup), batch)

    def render(
        self, node: StepNode, attempt: int, lookup: Lookup, agent: Agent | None = None
    ) -> Prepared:
        """Everything the attempt will run, rendered; nothing recorded yet."""
        stdout_path, stderr_path = self._log_paths(node.id, attempt)
        try:
            invocation, executor = self._invocation(
                node, attempt, stdout_path, stderr_path, lookup, agent=agent
            )
        except (templating.TemplateError, CallableError, _CwdError, AgentUseError) as exc:
            failure = Outcome(
                FailureClass.INFRASTRUCTURE
                if isinstance(exc, (_CwdError, AgentUseError))
                else FailureClass.EXECUTION,
                error=self.masker(str(exc)),
            )
            return Prepared(node, attempt, None, None, (stdout_path, stderr_path), failure, agent)
        return Prepared(
            node, attempt, invocation, executor, (stdout_path, stderr_path), agent=agent
        )

    def enqueue(self, prepared: Prepared, batch: Batch) -> None:
        """Record the attempt as started in `batch`; the process starts after the commit."""
        stdout_path, stderr_path = prepared.log_paths
        batch.attempt_starts.append(
            AttemptStart(
                self.run_id,
                prepared.node.id,
                prepared.attempt,
                batch.at,
                str(stdout_path),
                str(stderr_path),
                self.owner,
            )
        )
        invocation = prepared.invocation
        if self.remote is not None and invocation is not None and invocation.agent is None:
            node = prepared.node
            payload = remote.payload_of(
                invocation, node.spec.uses, self.graph.plan_dir, self.secrets
            )
            batch.work_items.append(
                remote.work_item(invocation, list(node.spec.requires), payload, batch.at)
            )
        self.pending.append(prepared)

    def start_pending(
        self, tasks: dict[str, asyncio.Task[None]], on_finished: Callable[[Finished], None]
    ) -> None:
        prepared, self.pending = self.pending, []
        for item in prepared:
            if item.failure is not None:
                on_finished(Finished(item.node.id, item.attempt, item.failure))
                continue
            assert item.invocation is not None
            assert item.executor is not None
            tasks[item.node.id] = asyncio.create_task(
                self._run(
                    item.node,
                    item.attempt,
                    item.invocation,
                    item.executor,
                    on_finished,
                    agent=item.agent,
                ),
                name=f"{self.run_id}:{item.node.id}#{item.attempt}",
            )

    def drop_pending(self) -> None:
        self.pending.clear()

    def take_events(self) -> list[NewEvent]:
        """Notes of injected faults (AGENTHQ_CHAOS), for the next batch."""
        return self.chaos.take_events() if self.chaos is not None else []

    def take_updates(self) -> list[AttemptUpdate]:
        updates, self.updates = self.updates, []
        return updates

    def finished_update(self, result: Finished, now: float) -> AttemptUpdate:
        update = result.attempt_update(now)
        return AttemptUpdate(self.run_id, update.step_id, update.number, update.fields)

    # ---- internals ------------------------------------------------------------------------

    async def _run(
        self,
        node: StepNode,
        attempt: int,
        invocation: Invocation,
        executor: Executor,
        on_finished: Callable[[Finished], None],
        *,
        agent: Agent | None = None,
    ) -> None:
        def started(pid: int, pgid: int, start_ticks: int | None) -> None:
            fields = {"pid": pid, "pgid": pgid, "proc_start": start_ticks}
            self.updates.append(AttemptUpdate(self.run_id, node.id, attempt, fields))

        before_tree: str | None = None
        checkout: Checkout | None = None
        try:
            mode = workspace_mode(node, agent)
            if mode is WorkspaceMode.WORKTREE and self.workspaces is not None:
                checkout = await asyncio.to_thread(
                    self.workspaces.open, node, attempt, invocation.cwd, merge_mode(node, agent)
                )
                invocation = replace(invocation, cwd=checkout.cwd)
            if self.gating is not None and self.gating.wants_snapshot(node):
                before_tree = await asyncio.to_thread(self.gating.snapshot, invocation.cwd)
            outcome = await executor.run(invocation, started)
        except WorkspaceError as exc:
            outcome = Outcome(FailureClass.INFRASTRUCTURE, error=self.masker(str(exc)))
        except asyncio.CancelledError:
            if checkout is not None and self.workspaces is not None:
                self.workspaces.keep(checkout)
            on_finished(
                Finished(node.id, attempt, Outcome(None, error="cancelled"), cancelled=True)
            )
            return
        except Exception as exc:  # an executor bug must not leave the attempt without an end
            outcome = Outcome(
                FailureClass.INFRASTRUCTURE, error=f"executor error: {type(exc).__name__}: {exc}"
            )
        outputs: dict[str, Any] = dict(outcome.outputs)
        if outcome.succeeded and node.spec.outputs:
            try:
                outputs.update(
                    capture_outputs(
                        node.spec.outputs,
                        cwd=invocation.cwd,
                        workspace=self.workspace,
                        stdout_path=invocation.stdout_path,
                    )
                )
            except OutputCaptureError as exc:
                outcome = Outcome(
                    FailureClass.EXECUTION, exit_code=outcome.exit_code, error=str(exc)
                )
        gates: tuple[GateResult, ...] = ()
        if self.gating is not None and self.gating.after_applies(
            node, invocation.stdout_path, invocation.stderr_path, outcome.wrote_logs
        ):
            facts = StepFacts(
                run_id=self.run_id,
                step_id=node.id,
                attempt=attempt,
                workspace=invocation.cwd,
                command=invocation.command,
                agent=agent.name if agent is not None else node.agent,
                writes=node.writes,
                stdout_path=invocation.stdout_path,
                stderr_path=invocation.stderr_path,
                usage=outcome.usage,
            )
            try:
                gates = tuple(await asyncio.to_thread(self.gating.after, node, facts, before_tree))
            except asyncio.CancelledError:
                on_finished(
                    Finished(node.id, attempt, Outcome(None, error="cancelled"), cancelled=True)
                )
                return
            stopping = [g for g in gates if g.outcome in (GateOutcome.REFUSE, GateOutcome.ASK)]
            if stopping and outcome.failure_class is None:
                outcome = Outcome(
                    FailureClass.GATE,
                    exit_code=outcome.exit_code,
                    error=self.masker("; ".join(f"{g.gate}: {g.reason}" for g in stopping)),
                    usage=outcome.usage,
                    session_id=outcome.session_id,
                )
        if outcome.session_id:
            self.sessions[node.id] = outcome.session_id
        if checkout is not None and self.workspaces is not None:
            try:
                outcome, extra = await asyncio.to_thread(self.workspaces.close, checkout, outcome)
            except asyncio.CancelledError:
                self.workspaces.keep(checkout)
                on_finished(
                    Finished(node.id, attempt, Outcome(None, error="cancelled"), cancelled=True)
                )
                return
            outputs.update(extra)
        on_finished(
            Finished(node.id, attempt, outcome, mask_structure(outputs, self.masker), gates=gates)
        )

    def _invocation(
        self,
        node: StepNode,
        attempt: int,
        stdout_path: Path,
        stderr_path: Path,
        lookup: Lookup,
        *,
        agent: Agent | None,
    ) -> tuple[Invocation, Executor]:
        spec = node.spec
        agent_name = agent.name if agent is not None else node.agent
        context = self.context_for(node, lookup, agent_name) if self._templated[node.id] else None

        def text(value: str) -> str:
            return templating.render(value, context) if context is not None else value

        cwd = self._cwd(node, text(spec.cwd) if spec.cwd else None)
        env = dict(self.base_env)
        if agent is not None:
            env.update(agent.spec.env)
        for key, value in spec.env.items():
            env[key] = text(value)
        env["AGENTHQ_RUN_ID"] = self.run_id
        env["AGENTHQ_STEP_ID"] = node.id
        env["AGENTHQ_ATTEMPT"] = str(attempt)
        if agent_name is not None:
            env["AGENTHQ_AGENT"] = agent_name
        common: dict[str, Any] = {
            "run_id": self.run_id,
            "step_id": node.id,
            "attempt": attempt,
            "workspace": self.workspace,
            "cwd": cwd,
            "stdout_path": stdout_path,
            "stderr_path": stderr_path,
            "env": env,
            "timeout": node.timeout,
            "kill_grace": self.kill_grace,
            "mask": self.masker,
        }
        if spec.run is not None:
            return Invocation(command=text(spec.run), **common), self._executor("shell")
        if spec.prompt is not None:
            session = self._session(node.id, attempt)
            call = agent_call(node, agent, text(spec.prompt), session, env)
            return Invocation(agent=call, **common), self._executor(call.kind)
        uses = spec.uses or (agent.spec.uses if agent is not None else None)
        if uses is None:
            raise AgentUseError(
                f"step {node.id} names agent {agent_name!r} but has no `run`, `uses` or `prompt`, "
                "and that agent has no callable of its own"
            )
        target = resolve_callable(uses, self.graph.plan_dir)
        arguments = (
            templating.render_value(spec.with_, context) if context is not None else spec.with_
        )
        return Invocation(target=target, arguments=arguments, **common), self._executor("python")

    def _session(self, step_id: str, attempt: int) -> str | None:
        """The conversation a retry continues: this process's memory, else the store's."""
        if attempt == 1:
            return None
        return self.sessions.get(step_id) or self._earlier_session(step_id)

    def _executor(self, kind: str) -> Executor:
        """The executor of a kind (under AGENTHQ_CHAOS, wrapped to inject faults)."""
        if self.remote is not None and kind in ("shell", "python"):
            return remote.RemoteExecutor(self.remote)
        executor = self.executors.get(kind)
        if executor is None:  # imported on first use: plans without agents never load them
            if kind == "cli":
                from agenthq.executors.agent_cli import CliAgentExecutor

                executor = CliAgentExecutor()
            else:
                from agenthq.executors.llm import LlmExecutor

                executor = LlmExecutor()
            self.executors = {**self.executors, kind: executor}
        if self.chaos is not None:
            return ChaosExecutor(executor, self.chaos)
        return executor

    def _cwd(self, node: StepNode, rendered: str | None) -> Path:
        if rendered is None:
            return self.workspace
        path = (self.workspace / rendered).resolve()
        if not node.spec.allow_outside_workspace and not path.is_relative_to(self.workspace):
            raise _CwdError(
                f"cwd {rendered!r} is outside the workspace {self.workspace}; "
                "set `allow_outside_workspace: true` on the step if that is intended"
            )
        if not path.is_dir():
            raise _CwdError(f"cwd {rendered!r} does not exist or is not a directory")
        return path

    def _log_paths(self, step_id: str, attempt: int) -> tuple[Path, Path]:
        if not self._log_dir_made:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._log_dir_made = True
        stem = _UNSAFE_FILENAME.sub("_", step_id)
        return self.log_dir / f"{stem}.{attempt}.out", self.log_dir / f"{stem}.{attempt}.err"


class _CwdError(Exception):
    """A step's working directory is missing or outside the workspace."""
