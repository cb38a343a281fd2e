"""Start, execute, resume, cancel and retry runs: the only engine API the CLI and server use.

A Runner owns nothing but a store handle and settings; each `execute` claims the run in the
store (one executing process per run), recovers what a crashed owner left behind, and drives
a Scheduler until the run finishes or is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets as token_source
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agenthq.agents.health import HealthMonitor
from agenthq.agents.registry import Agent, Registry
from agenthq.engine import recovery, rollback
from agenthq.engine.agent_board import AgentBoard
from agenthq.engine.agent_calls import agents_used, check_agents
from agenthq.engine.dispatch import Dispatcher
from agenthq.engine.foresight import pending_predictions
from agenthq.engine.gating import GateConfig, GatePipeline
from agenthq.engine.limits import Limits
from agenthq.engine.ownership import current_owner, owner_alive
from agenthq.engine.remote import RemoteBoard
from agenthq.engine.scheduler import Governance, Observer, Scheduler, SchedulerOptions
from agenthq.engine.workspaces import Workspaces
from agenthq.errors import ConfigError, NotFoundError, RunBusyError, StateError
from agenthq.executors.base import Executor
from agenthq.executors.chaos import Monkey, chaos_from
from agenthq.executors.environment import step_environment, store_location
from agenthq.executors.masking import build_masker, looks_secret
from agenthq.executors.python import PythonExecutor
from agenthq.executors.shell import ShellExecutor, install_fast_child_watcher
from agenthq.executors.spawner import spawning
from agenthq.gates.breaker import Breaker, BreakerPhase
from agenthq.graph import PlanGraph, compile_plan
from agenthq.ml.predictor import FailurePredictor, open_predictor
from agenthq.spec.agents import AgentSpec, WorkspaceMode
from agenthq.spec.builder import Plan
from agenthq.spec.load import LoadedPlan
from agenthq.spec.models import OnFailure, OnTimeout, PlanSpec
from agenthq.spec.params import resolve_params
from agenthq.states import RunState, StepState
from agenthq.store.api import (
    AgentState,
    ApprovalDecision,
    ApprovalKind,
    ApprovalRecord,
    ApprovalState,
    AttemptUpdate,
    Batch,
    BreakerRecord,
    NewRun,
    RunChange,
    RunNote,
    RunRecord,
    StepChange,
    StepRecord,
    Store,
)

S = StepState
_RESETTABLE = frozenset({S.FAILED, S.CANCELLED, S.BLOCKED, S.SKIPPED})


@dataclass(frozen=True)
class RunOptions:
    max_workers: int | None = None
    agent_limits: Mapping[str, int] = field(default_factory=dict)
    no_wait: bool = False  # return `awaiting_approval` instead of waiting for a person
    on_workers: bool = False  # steps run on `agenthq worker` processes (engine/remote.py)


def new_run_id(now: float) -> str:
    """Sortable by time, unique enough for one team: `20261122-030512-a3f9c1`."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + "-" + token_source.token_hex(3)


class Runner:
    def __init__(
        self,
        store: Store,
        *,
        home: Path,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        scheduler_options: SchedulerOptions | None = None,
        executors: Mapping[str, Executor] | None = None,
        gates: GateConfig | None = None,
        agents: Mapping[str, AgentSpec] | None = None,
        spawner: bool = True,
    ) -> None:
        self.store = store
        self.spawner = spawner  # shell steps may start from the spawner helper process
        self.agent_specs = dict(agents or {})  # agenthq.toml's [agents.NAME]
        self.gate_config = gates if gates is not None else GateConfig()
        self.home = Path(home)
        self.environ = dict(os.environ if environ is None else environ)
        self.clock = clock
        self.scheduler_options = scheduler_options or SchedulerOptions()
        default: dict[str, Executor] = {"shell": ShellExecutor(), "python": PythonExecutor()}
        self.executors: dict[str, Executor] = dict(executors or default)
        chaos = chaos_from(self.environ)  # AGENTHQ_CHAOS: fault injection, see executors/chaos.py
        self.chaos = Monkey(chaos) if chaos is not None else None
        self.owner = current_owner()
        self._predictor: FailurePredictor | None = None
        self._predictor_stamp: float | None = None
        # The plan compiled by the last start(), for the execute() that usually follows it in
        # the same process: compiling W3's 5000 steps again from the stored spec took 0.1 s.
        self._started: tuple[str, PlanGraph] | None = None

    # ---- starting -------------------------------------------------------------------------

    def start(
        self,
        plan: LoadedPlan | PlanSpec | Plan,
        *,
        params: Mapping[str, Any] | None = None,
        workspace: str | Path | None = None,
        max_workers: int | None = None,
        origin: Mapping[str, Any] | None = None,
        notes: Sequence[RunNote] = (),
    ) -> RunRecord:
        """Validate and compile the plan, then record a new pending run (and `notes` on other
        runs, in the same transaction). Nothing is written when any of that fails."""
        new, graph = self._compiled_run(
            plan, params=params, workspace=workspace, max_workers=max_workers, origin=origin
        )
        record = self.store.create_run(new, notes=notes)
        self._started = (record.id, graph)
        return record

    def new_run(
        self,
        plan: LoadedPlan | PlanSpec | Plan,
        *,
        params: Mapping[str, Any] | None = None,
        workspace: str | Path | None = None,
        max_workers: int | None = None,
        origin: Mapping[str, Any] | None = None,
    ) -> NewRun:
        """The validated, compiled run, not yet recorded (a schedule records it together with
        its tick)."""
        return self._compiled_run(
            plan, params=params, workspace=workspace, max_workers=max_workers, origin=origin
        )[0]

    def _compiled_run(
        self,
        plan: LoadedPlan | PlanSpec | Plan,
        *,
        params: Mapping[str, Any] | None,
        workspace: str | Path | None,
        max_workers: int | None,
        origin: Mapping[str, Any] | None,
    ) -> tuple[NewRun, PlanGraph]:
        """new_run(), and the graph it compiled on the way."""
        if isinstance(plan, Plan):
            plan = plan.spec()
        loaded = plan if isinstance(plan, LoadedPlan) else LoadedPlan(plan, None, None)
        spec = loaded.spec
        values = resolve_params(spec, params or {})
        plan_dir = loaded.path.parent.resolve() if loaded.path is not None else None
        graph = compile_plan(spec, params=values, source=loaded.source, plan_dir=plan_dir)
        self._secret_values(spec)  # refuse now, not mid-run, when a declared secret is missing
        self._check_approval_timeouts(spec)
        check_agents(graph, self.registry(spec), self.environ)
        now = self.clock()
        workers = max_workers or spec.concurrency.max_workers or os.cpu_count() or 2
        new = NewRun(
            id=new_run_id(now),
            plan=spec.name,
            params=values,
            spec=spec.model_dump(mode="json", by_alias=True, exclude_defaults=True),
            plan_path=str(loaded.path.resolve()) if loaded.path is not None else None,
            workspace=str(Path(workspace or os.getcwd()).resolve()),
            max_workers=workers,
            created_at=now,
            step_ids=list(graph.nodes),
            step_agents={k: n.agent for k, n in graph.nodes.items() if n.agent},
            origin=origin,
        )
        return new, graph

    def run(self, plan: LoadedPlan | PlanSpec | Plan, **kwargs: Any) -> RunRecord:
        """Start and execute in one call (the Python SDK's entry point)."""
        observer = kwargs.pop("observer", None)
        options = kwargs.pop("options", None)
        record = self.start(plan, **kwargs)
        return self.execute(record.id, observer=observer, options=options)

    # ---- executing ------------------------------------------------------------------------

    def execute(
        self, run_id: str, *, observer: Observer | None = None, options: RunOptions | None = None
    ) -> RunRecord:
        """Drive the run to its end in this process; Ctrl-C or SIGTERM cancels it cleanly."""
        return asyncio.run(
            self.execute_async(run_id, observer=observer, options=options, handle_signals=True)
        )

    async def execute_async(
        self,
        run_id: str,
        *,
        observer: Observer | None = None,
        options: RunOptions | None = None,
        handle_signals: bool = False,
    ) -> RunRecord:
        install_fast_child_watcher()
        options = options or RunOptions()
        run = self.store.get_run(run_id)
        if run.state.finished:
            raise StateError(
                f"run {run_id} already {run.state}; `agenthq retry {run_id}` gives failed steps new attempts"
            )
        self._claim(run)
        try:
            graph = self._graph_of_claimed(run)
            # The helper boots on the other core while the run is set up (see spawning()).
            async with spawning(enabled=self.spawner, prestart=_starts_processes(graph)):
                scheduler = await self._drive(run, graph, options, observer, handle_signals)
        finally:
            self.store.release_run(run_id, self.owner)
        final = self.store.get_run(run_id)
        if observer is not None:
            observer.on_progress(scheduler.progress(final.state))
        if final.state.finished:
            await self._after_finish(final, graph.spec, options, observer)
        return final

    async def _drive(
        self,
        run: RunRecord,
        graph: PlanGraph,
        options: RunOptions,
        observer: Observer | None,
        handle_signals: bool,
    ) -> Scheduler:
        """Recover, set up and run the scheduler to its end; the scheduler, for its progress."""
        untouched = self._recover(run, graph)
        registry = self.registry(graph.spec)
        used = agents_used(graph, registry)
        monitor = HealthMonitor(self.store, used, self.environ)
        if monitor:  # the first answers before anything is placed on these agents
            await monitor.check_due()
        scheduler = self._scheduler(
            run, graph, options, observer, registry=registry, used=used, steps=untouched
        )
        health_task = asyncio.create_task(monitor.run()) if monitor else None
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, scheduler.request_cancel)
        try:
            await scheduler.execute()
        finally:
            if health_task is not None:
                health_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await health_task
            if scheduler.dispatcher.workspaces is not None:
                await asyncio.to_thread(scheduler.dispatcher.workspaces.finish_run)
            if handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        return scheduler

    async def _after_finish(
        self, run: RunRecord, spec: PlanSpec, options: RunOptions, observer: Observer | None
    ) -> None:
        """A rollback tells the run it undid how it went; a failed run with
        `on_failure: rollback` rolls back now, in this process."""
        origin = run.origin or {}
        if origin.get("kind") == rollback.ORIGIN and isinstance(origin.get("run"), str):
            undone = origin["run"]
            if run.state is RunState.SUCCEEDED:
                note = RunNote(undone, "run.rolled_back", {"rollback_run": run.id})
            else:
                failed = [s.step_id for s in self.store.get_steps(run.id) if s.state is S.FAILED]
                note = RunNote(
                    undone,
                    "run.rollback_failed",
                    {"rollback_run": run.id, "state": run.state.value, "failed": failed},
                )
            self.store.add_notes([note], self.clock())
            return
        if run.state is RunState.FAILED and spec.on_failure is OnFailure.ROLLBACK:
            try:
                started = self.rollback(run.id)
            except StateError:
                return  # nothing declared a compensation: nothing to undo
            await self.execute_async(started.id, options=options, observer=observer)

    def can_roll_back(self, run_id: str) -> bool:
        """Whether `rollback` would start one (for a button; it has the last word)."""
        try:
            self._rollback_plan(run_id)
        except StateError:
            return False
        return True

    def _rollback_plan(self, run_id: str) -> tuple[RunRecord, PlanSpec, dict[str, Any]]:
        """The run and the plan that undoes it; StateError saying why there is none."""
        run = self.store.get_run(run_id)
        if not run.state.finished:
            raise StateError(
                f"run {run_id} is {run.state}; cancel it (`agenthq cancel {run_id}`) or let it "
                "finish before rolling it back"
            )
        if (run.origin or {}).get("kind") == rollback.ORIGIN:
            raise StateError(f"run {run_id} is itself a rollback; roll back the original run")
        earlier = self.store.list_runs(origin_run=run_id, limit=1000)
        earlier = [r for r in earlier if (r.origin or {}).get("kind") == rollback.ORIGIN]
        busy = [r.id for r in earlier if not r.state.finished]
        if busy:
            raise StateError(f"run {run_id} is already being rolled back by run {busy[0]}")
        done = rollback.compensated([self.store.get_steps(r.id) for r in earlier])
        graph = self._graph(run)
        spec, params = rollback.rollback_spec(run, graph, self.store.get_steps(run_id), done)
        return run, spec, params

    def rollback(self, run_id: str) -> RunRecord:
        """Record the rollback run of a finished run (not executed yet): the compensations
        of its succeeded steps not undone by an earlier rollback, newest first."""
        run, spec, params = self._rollback_plan(run_id)
        plan_path = Path(run.plan_path) if run.plan_path else None
        new = self.new_run(
            LoadedPlan(spec, None, plan_path),
            params=params,
            workspace=run.workspace,
            origin={"kind": rollback.ORIGIN, "run": run_id},
        )
        note = RunNote(
            run_id,
            "run.rollback_started",
            {
                "rollback_run": new.id,
                "steps": [s.description.removeprefix("undo ") for s in spec.steps],
            },
        )
        return self.store.create_run(new, notes=[note])

    def resume(
        self, run_id: str, *, observer: Observer | None = None, options: RunOptions | None = None
    ) -> RunRecord:
        return self.execute(run_id, observer=observer, options=options)

    def _claim(self, run: RunRecord) -> None:
        now = self.clock()
        if run.owner and run.owner != self.owner and owner_alive(run.owner, run.heartbeat_at, now):
            raise RunBusyError(f"run {run.id} is being executed by process {run.owner}")
        self.store.claim_run(run.id, self.owner, steal_from=run.owner)

    def graph_of(self, run_id: str) -> PlanGraph:
        """The compiled plan of a stored run (for drawing it)."""
        return self._graph(self.store.get_run(run_id))

    def _graph_of_claimed(self, run: RunRecord) -> PlanGraph:
        """The graph start() compiled, when this process just started the run (the stored
        spec is that same plan) from the directory the stored run names; otherwise compiled
        from the stored spec. (A plan reached through a symlink is validated from the link's
        directory but run from its target's: then it is compiled again, as before.)"""
        started, self._started = self._started, None
        if started is not None and started[0] == run.id:
            graph = started[1]
            if graph.plan_dir == _plan_dir(run):
                return graph
        return self._graph(run)

    def _graph(self, run: RunRecord) -> PlanGraph:
        spec = PlanSpec.model_validate(run.spec)
        return compile_plan(spec, params=run.params, plan_dir=_plan_dir(run), check_callables=False)

    def _recover(self, run: RunRecord, graph: PlanGraph) -> list[StepRecord] | None:
        """Make interrupted attempts `lost` and decide their retries. The step rows it read
        when there was nothing to recover (the scheduler starts from them: reading W3's 5000
        rows took 70 ms), None when it changed them."""
        steps = self.store.get_steps(run.id)
        if not any(s.state in (S.RUNNING, S.QUEUED, S.LOST) for s in steps):
            return steps
        # Work handed to workers by the dead executor is fenced off first: a worker that
        # finishes it now is told it no longer holds it, and the step is retried as `lost`.
        self.store.abandon_work(run.id)
        attempts = self.store.get_attempts(run.id)
        recovery.kill_orphans(attempts, grace=min(graph.spec.defaults.kill_grace, 5.0))
        lost = recovery.mark_lost(run.id, steps, attempts, self.clock())
        if lost:
            self.store.apply(lost)
        decided = recovery.decide_lost(
            run.id, graph, self.store.get_steps(run.id), self.clock(), self.scheduler_options.rng
        )
        if decided:
            self.store.apply(decided)
        return None

    def registry(self, spec: PlanSpec) -> Registry:
        """The agents a run of `spec` may use: built-in, agenthq.toml's, the plan's own."""
        return Registry.build(self.agent_specs, spec.agents, spec.name)

    def _scheduler(
        self,
        run: RunRecord,
        graph: PlanGraph,
        options: RunOptions,
        observer: Observer | None,
        *,
        registry: Registry,
        used: list[Agent],
        steps: list[StepRecord] | None = None,
    ) -> Scheduler:
        spec = graph.spec
        secret_values = self._secret_values(spec)
        env_values = [(k, v) for s in spec.steps for k, v in s.env.items()] + list(
            spec.defaults.env.items()
        )
        env_values += [(k, v) for a in used for k, v in a.spec.env.items()]
        secret_values += [v for k, v in env_values if looks_secret(k, v)]
        secret_values += [
            self.environ[a.spec.api_key_secret]
            for a in used
            if a.spec.api_key_secret and self.environ.get(a.spec.api_key_secret)
        ]
        masker = build_masker(secret_values)
        governance = self._governance(run, graph)
        governance.gating.prepare()
        base_env = step_environment(self.environ, spec.defaults.env)
        base_env["AGENTHQ_HOME"] = str(self.home)
        store_url = getattr(self.store, "url", None)
        if isinstance(store_url, str):
            base_env["AGENTHQ_DB_URL"] = store_location(store_url)
        worktrees = any(a.spec.workspace is WorkspaceMode.WORKTREE for a in used) or any(
            n.spec.workspace is WorkspaceMode.WORKTREE for n in graph.nodes.values()
        )
        dispatcher = Dispatcher(
            run_id=run.id,
            graph=graph,
            workspace=Path(run.workspace),
            log_dir=self.home / "logs" / run.id,
            base_env=base_env,
            masker=masker,
            executors=self.executors,
            chaos=self.chaos,
            remote=RemoteBoard(self.store, run.id, clock=self.clock)
            if options.on_workers
            else None,
            secrets=secret_values,
            kill_grace=spec.defaults.kill_grace,
            owner=self.owner,
            gating=governance.gating,
            workspaces=(
                Workspaces(
                    self.store,
                    run_id=run.id,
                    workspace=Path(run.workspace),
                    root=self.home / "worktrees",
                )
                if worktrees
                else None
            ),
            sessions=lambda step_id: _last_session(self.store, run.id, step_id),
            inbox=lambda agent: _unread(self.store, agent),
        )
        limits = Limits(
            options.max_workers or run.max_workers,
            {**spec.concurrency.agents, **options.agent_limits},
            graph.conflicts,
        )
        return Scheduler(
            store=self.store,
            graph=graph,
            run=run,  # as read before the claim, which changed only its owner
            steps=steps if steps is not None else self.store.get_steps(run.id),
            dispatcher=dispatcher,
            limits=limits,
            clock=self.clock,
            owner=self.owner,
            options=replace(self.scheduler_options, no_wait=options.no_wait),
            observer=observer,
            governance=governance,
            board=AgentBoard(self.store, registry, run.id) if used or _has_agents(graph) else None,
        )

    def _check_approval_timeouts(self, spec: PlanSpec) -> None:
        """A plan cannot grant itself approval by silence: only the project config can."""
        if self.gate_config.approve_on_timeout:
            return
        specs = [("defaults", spec.defaults.approval)] + [(s.id, s.approval) for s in spec.steps]
        for where, approval in specs:
            if approval is not None and approval.on_timeout is OnTimeout.APPROVE:
                raise ConfigError(
                    f"plan {spec.name!r} ({where}) sets approval on_timeout: approve, which "
                    "agenthq.toml does not allow; set [approvals] allow_approve_on_timeout = true "
                    "there, or use on_timeout: reject"
                )

    def predictor(self) -> FailurePredictor | None:
        """The failure model for the risk gate, when one beats the baseline and is fresh
        (`[model]` of agenthq.toml). Read again when `agenthq model train` replaced it."""
        meta_file = self.home / "models" / "failure.json"
        try:
            stamp = meta_file.stat().st_mtime
        except FileNotFoundError:
            stamp = None
        if stamp != self._predictor_stamp:
            self._predictor_stamp = stamp
            self._predictor = None
            if stamp is not None:
                self._predictor, _ = open_predictor(
                    self.home / "models", self.gate_config.model, self.store.list_telemetry
                )
        if self._predictor is not None:
            usable, _ = self._predictor.model.meta.usable(
                self.clock(), self.gate_config.model.max_age_days
            )
            if not usable:  # it grew too old while this process ran
                return None
        return self._predictor

    def predict_pending(self, run_id: str) -> dict[str, float] | None:
        """Each unfinished step's predicted failure probability (engine/foresight.py), or
        None when no model is in use."""
        predictor = self.predictor()
        if predictor is None:
            return None
        run = self.store.get_run(run_id)
        scores = {
            a.step_id: a.score
            for a in self.store.list_approvals(run_id=run_id)
            if a.score is not None
        }
        return pending_predictions(
            predictor, run, self.graph_of(run_id), self.store.get_steps(run_id), scores
        )

    def _governance(self, run: RunRecord, graph: PlanGraph) -> Governance:
        """The gates' memory for this run, read back from the store (so it survives restarts)."""
        stored = self.store.get_breakers()
        gate_breakers = {k: _breaker(r) for k, r in stored.items() if k.startswith("gate:")}
        governance = Governance(
            gating=GatePipeline(
                self.gate_config,
                graph,
                Path(run.workspace),
                home=Path(self.environ.get("HOME") or Path.home()),
                gate_breakers=gate_breakers,
                predictor=self.predictor,
            ),
            quarantined={
                a.name: a.reason or "quarantined"
                for a in self.store.list_agents()
                if a.state is AgentState.QUARANTINED
            },
            breakers={k: _breaker(r) for k, r in stored.items() if k.startswith("agent:")},
            spent=self.store.run_spending(run.id),
        )
        for record in self.store.list_approvals(run_id=run.id, state=ApprovalState.APPROVED):
            if record.kind is ApprovalKind.BUDGET and record.extend_usd:
                if record.request.get("scope") == "step":
                    extra = governance.extra_step_usd
                    extra[record.step_id] = extra.get(record.step_id, 0.0) + record.extend_usd
                else:
                    governance.extra_run_usd += record.extend_usd
        return governance

    # ---- people ---------------------------------------------------------------------------

    def decide(
        self,
        run_id: str,
        step_id: str | None,
        *,
        approve: bool,
        by: str,
        note: str | None = None,
        extend_usd: float | None = None,
        max_score: float | None = None,
    ) -> list[ApprovalRecord]:
        """Answer the run's pending approvals: one step's, or (step_id None) every one whose
        risk score is at most `max_score`. A running scheduler picks the answers up within its
        poll interval; otherwise `resume` does."""
        pending = self.store.list_approvals(run_id=run_id)
        if step_id is not None:
            chosen = [a for a in pending if a.step_id == step_id]
            if not chosen:
                waiting = ", ".join(sorted({a.step_id for a in pending})) or "none"
                raise StateError(
                    f"step {step_id!r} of run {run_id} is not waiting for approval "
                    f"(waiting: {waiting})"
                )
        else:
            chosen = [
                a
                for a in pending
                if max_score is None or (a.score if a.score is not None else 0.0) <= max_score
            ]
        if extend_usd is not None and extend_usd <= 0:
            raise ConfigError(f"--extend must be a positive amount of dollars, got {extend_usd:g}")
        decided: list[ApprovalRecord] = []
        state = ApprovalState.APPROVED if approve else ApprovalState.REJECTED
        for approval in chosen:
            budget = approval.kind is ApprovalKind.BUDGET
            if approve and budget and extend_usd is None and step_id is None:
                continue  # a batch approval never grants money implicitly
            decided.append(
                self.store.decide_approval(
                    ApprovalDecision(
                        approval.id,
                        state,
                        by,
                        self.clock(),
                        note,
                        extend_usd if approval.kind is ApprovalKind.BUDGET else None,
                    )
                )
            )
        return decided

    def _secret_values(self, spec: PlanSpec) -> list[str]:
        missing = [name for name in spec.secrets if name not in self.environ]
        if missing:
            raise ConfigError(
                f"plan {spec.name!r} declares secrets that are not set in the environment: "
                f"{', '.join(missing)}. Export them before running"
            )
        return [self.environ[name] for name in spec.secrets]

    # ---- control from any process ---------------------------------------------------------

    def recover(self, run_id: str) -> int:
        """Make a run nobody executes consistent now: stop what it left running on this host,
        mark interrupted attempts `lost` and decide their retries (`agenthq resume` goes on).
        How many steps were in flight."""
        run = self.store.get_run(run_id)
        if run.state.finished:
            return 0
        self._claim(run)
        try:
            in_flight = sum(
                1 for s in self.store.get_steps(run_id) if s.state in (S.RUNNING, S.QUEUED)
            )
            self._recover(run, self._graph(run))
        finally:
            self.store.release_run(run_id, self.owner)
        return in_flight

    def pause(self, run_id: str) -> RunRecord:
        """Start nothing new in this run (running steps finish). Durable: the executing
        process pauses at its next poll, and a process that takes the run over later too."""
        run = self.store.get_run(run_id)
        if run.state.finished:
            raise StateError(f"run {run_id} already {run.state}; there is nothing to pause")
        self.store.request_pause(run_id, True)
        return self.store.get_run(run_id)

    def lift_pause(self, run_id: str) -> str | None:
        """Clear a pause; the live process that now continues the run, if one executes it."""
        if self.store.get_run_control(run_id).pause_requested:
            self.store.request_pause(run_id, False)
        run = self.store.get_run(run_id)
        if (
            run.owner
            and run.owner != self.owner
            and owner_alive(run.owner, run.heartbeat_at, self.clock())
        ):
            return run.owner
        return None

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run. A live owner is asked through the store (it stops its processes within
        a second); a run with no live owner is cancelled here and now."""
        run = self.store.get_run(run_id)
        if run.state.finished:
            raise StateError(f"run {run_id} already {run.state}")
        now = self.clock()
        if run.owner and owner_alive(run.owner, run.heartbeat_at, now) and run.owner != self.owner:
            self.store.request_cancel(run_id)
            return self.store.get_run(run_id)
        self.store.claim_run(run_id, self.owner, steal_from=run.owner)
        try:
            attempts = self.store.get_attempts(run_id)
            recovery.kill_orphans(attempts, grace=2.0)
            batch = Batch(at=now)
            for attempt in attempts:
                if attempt.finished_at is None:
                    fields = {"state": "cancelled", "finished_at": now, "error": "run cancelled"}
                    batch.attempt_updates.append(
                        AttemptUpdate(run_id, attempt.step_id, attempt.number, fields)
                    )
            for step in self.store.get_steps(run_id):
                if not step.state.finished:
                    batch.steps.append(
                        StepChange(
                            run_id,
                            step.step_id,
                            step.state,
                            S.CANCELLED,
                            {"finished_at": now, "reason": "run cancelled"},
                        )
                    )
            for approval in self.store.list_approvals(run_id=run_id):
                batch.approval_decisions.append(
                    ApprovalDecision(
                        approval.id, ApprovalState.REJECTED, "agenthq", now, "run cancelled"
                    )
                )
            batch.runs.append(
                RunChange(
                    run_id, run.state, RunState.CANCELLED, {"finished_at": now, "owner": None}
                )
            )
            self.store.apply(batch)
        finally:
            self.store.release_run(run_id, self.owner)
        return self.store.get_run(run_id)

    def retry(self, run_id: str, from_step: str | None = None) -> RunRecord:
        """Give failed, cancelled and blocked steps — and what depends on them — new attempts.

        With `from_step`, that step and everything downstream of it run again, succeeded or
        not. Succeeded steps elsewhere are kept. The run becomes `running` without an owner;
        `execute` continues it.
        """
        run = self.store.get_run(run_id)
        if not run.state.finished:
            raise StateError(
                f"run {run_id} is {run.state}; cancel it or let it finish before retrying"
            )
        graph = self._graph(run)
        steps = {s.step_id: s for s in self.store.get_steps(run_id)}
        if from_step is not None:
            roots = list(graph.groups.get(from_step, ())) or (
                [from_step] if from_step in graph.nodes else []
            )
            if not roots:
                raise NotFoundError(f"run {run_id} has no step {from_step!r}")
            targets = _downstream(graph, roots)
        else:
            roots = [k for k, s in steps.items() if s.state in (S.FAILED, S.CANCELLED, S.BLOCKED)]
            targets = {k for k in _downstream(graph, roots) if steps[k].state in _RESETTABLE}
        if not targets:
            raise StateError(f"run {run_id} has no failed, cancelled or blocked steps to retry")
        now = self.clock()
        batch = Batch(at=now)
        for step_id in (k for k in graph.nodes if k in targets):  # topological order
            step = steps[step_id]
            if step.state is S.PENDING:
                continue
            fields: dict[str, Any] = {
                "failure_class": None,
                "retries_used": {},
                "next_at": None,
                "finished_at": None,
                "outputs": {},
                "reason": "retry requested",
            }
            batch.steps.append(StepChange(run_id, step_id, step.state, S.PENDING, fields))
        batch.runs.append(
            RunChange(
                run_id,
                run.state,
                RunState.RUNNING,
                {"finished_at": None},
                {"retry": sorted(targets)},
            )
        )
        self.store.apply(batch)
        return self.store.get_run(run_id)


def _breaker(record: BreakerRecord) -> Breaker:
    return Breaker(
        key=record.key,
        phase=BreakerPhase(record.state),
        failures=record.failures,
        opened_at=record.opened_at,
        cooldown_s=record.cooldown_s,
        trips=record.trips,
    )


def _downstream(graph: PlanGraph, roots: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(graph.children.get(current, ()))
    return seen


def _last_session(store: Store, run_id: str, step_id: str) -> str | None:
    """The coding agent's conversation of the step's latest attempt that had one."""
    for attempt in reversed(store.get_attempts(run_id, step_id)):
        if attempt.session_id:
            return attempt.session_id
    return None


def _plan_dir(run: RunRecord) -> str | None:
    """Where a stored run's `uses:` callables are imported from: its plan file's directory."""
    return str(Path(run.plan_path).parent) if run.plan_path else None


def _starts_processes(graph: PlanGraph) -> bool:
    """Whether a step may start a process through the spawner."""
    return any(n.starts_process for n in graph.nodes.values())


def _has_agents(graph: PlanGraph) -> bool:
    return any(n.agent is not None or n.capability is not None for n in graph.nodes.values())


def _unread(store: Store, agent: str) -> list[Mapping[str, Any]]:
    """`inbox` in templates: the agent's unread messages (reading them marks nothing)."""
    return [
        {"id": m.id, "sender": m.sender, "subject": m.subject, "body": m.body, "at": m.created_at}
        for m in store.inbox(agent, unread=True, limit=100)
    ]
