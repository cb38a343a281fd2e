"""The Store, in SQLAlchemy Core, for every database we support.

Nothing here depends on the dialect: what differs (SQLite's pragmas and BEGIN IMMEDIATE) is
set up on the engine by sqlite.py before it reaches SqlStore. Write transactions are asked for
with the `WRITE_OPTION` execution option, so a dialect that must lock up front can.

`apply` is the hot path — a 5,000-step plan makes ~20,000 step transitions — so it checks every
hop in Python, collapses the hops of one step into one compare-and-set UPDATE, and writes rows
with executemany grouped by the set of columns they change.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, NamedTuple, Self

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.dml import UpdateBase

from agenthq.errors import NotFoundError, RunBusyError, StaleWriteError, StoreError
from agenthq.states import (
    FailureClass,
    RunState,
    StepState,
    check_run_transition,
    check_step_transition,
)
from agenthq.store import agents as agent_rows
from agenthq.store import alerts as alert_rows
from agenthq.store import automations as automation_rows
from agenthq.store import governance
from agenthq.store import messages as message_rows
from agenthq.store import telemetry as telemetry_rows
from agenthq.store import work as work_rows
from agenthq.store import worktrees as worktree_rows
from agenthq.store.api import (
    AgentActivity,
    AgentHealth,
    AgentRecord,
    AlertFacts,
    AlertRecord,
    ApprovalDecision,
    ApprovalRecord,
    ApprovalState,
    AttemptRecord,
    AttemptStart,
    AttemptUpdate,
    AutomationRecord,
    Batch,
    BreakerRecord,
    Claim,
    EventLine,
    EventRecord,
    FireRecord,
    GateRecord,
    MessageRecord,
    NewAlert,
    NewMessage,
    NewRun,
    RunChange,
    RunControl,
    RunNote,
    RunRecord,
    StepChange,
    StepRecord,
    StoreStats,
    TelemetryRow,
    WorkStatus,
    WorktreeRecord,
)
from agenthq.store.chain import canonical_json, link_hash, stored_time, time_json
from agenthq.store.compiled import execute_one, executemany, fetch_all, fetch_one
from agenthq.store.tables import CHAIN_HEAD_ID, attempts, chain_head, events, runs, steps, telemetry

WRITE_OPTION = "agenthq_write"  # execution option: this transaction writes (see sqlite.py)

STEP_FIELDS = frozenset(
    {
        "attempts",
        "failure_class",
        "outputs",
        "retries_used",
        "next_at",
        "reason",
        "started_at",
        "finished_at",
        "agent",  # the agent picked for a step that asked for a capability
    }
)
RUN_FIELDS = frozenset({"started_at", "finished_at", "owner", "heartbeat_at", "cancel_requested"})
ATTEMPT_FIELDS = frozenset(
    {
        "state",
        "finished_at",
        "exit_code",
        "failure_class",
        "error",
        "pid",
        "pgid",
        "proc_start",
        "cost_usd",
        "usage",
        "session_id",
        "owner",  # a worker that ran it (engine/remote.py)
    }
)
_JSON_FIELDS = frozenset({"outputs", "retries_used", "usage"})
_AMBIGUOUS_SHOWN = 5


class _Draft(NamedTuple):
    """An event before the chain gives it a seq and hashes."""

    run_id: str | None
    step_id: str | None
    attempt: int | None
    kind: str
    from_state: str | None
    to_state: str | None
    details_json: str


class _StaleStepsError(Exception):
    """Some compare-and-set UPDATE matched no row; raised inside the transaction to roll it
    back, then explained from a fresh read."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


@dataclass
class _StepWrite:
    """All hops of one step in a batch, written as one compare-and-set UPDATE."""

    run_id: str
    step_id: str
    from_state: str
    to_state: str
    fields: dict[str, Any]


class SqlStore:
    """The Store protocol over a SQLAlchemy engine; use as a context manager or call close()."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.url = url
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._shown = make_url(url).render_as_string(hide_password=True)
        self._sane_multi_rowcount = engine.dialect.supports_sane_multi_rowcount
        self._listeners: dict[tuple[str, int], Any] = {}  # (channel, thread) → LISTEN connection
        # apply()'s own connection (see _ticking), and who is using it. SQLite only: a file's
        # connection never drops, while a server's may, and the pool checks those first.
        self._keeps_tick_connection = engine.dialect.name == "sqlite"
        self._tick_connection: Connection | None = None
        self._tick_lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for listener in self._listeners.values():
            listener.close()
        self._listeners.clear()
        with self._tick_lock:
            self._drop_tick_connection()
        self._engine.dispose()

    # ---- transactions ---------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise self._unusable(exc) from exc

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        try:
            with self._writer.begin() as conn:
                yield conn
        except DBAPIError as exc:
            raise self._unusable(exc) from exc

    @contextmanager
    def _ticking(self) -> Iterator[Connection]:
        """`_writing` for apply(), on SQLite on a connection kept for it between calls.

        A scheduler commits every tick, and checking a connection out of SQLAlchemy's pool and
        back in cost about a quarter of the transaction's own overhead, every tick. Only one
        thread uses the kept connection at a time; another thread applying meanwhile takes
        one from the pool as before. A connection that failed is dropped, not reused.
        PostgreSQL's connections always come from the pool, which pings them first: a server
        restart or an idle timeout drops them, and a run lasting weeks must not fail its next
        tick on that.
        """
        if not self._keeps_tick_connection or not self._tick_lock.acquire(blocking=False):
            with self._writing() as conn:
                yield conn
            return
        try:
            kept = self._tick_connection
            if kept is None or kept.closed or kept.invalidated:
                kept = self._tick_connection = self._writer.connect()
            try:
                with kept.begin():
                    yield kept
            except DBAPIError as exc:
                self._drop_tick_connection()
                raise self._unusable(exc) from exc
        finally:
            self._tick_lock.release()

    def _drop_tick_connection(self) -> None:
        conn, self._tick_connection = self._tick_connection, None
        if conn is not None:
            with suppress(DBAPIError):
                conn.close()

    def _unusable(self, exc: DBAPIError) -> StoreError:
        return StoreError(f"the database at {self._shown} failed: {exc.orig}")

    # ---- runs -----------------------------------------------------------------------------

    def create_run(self, run: NewRun, *, notes: Sequence[RunNote] = ()) -> RunRecord:
        with self._writing() as conn:
            record = self._insert_run(conn, run)
            self._append_notes(conn, notes, run.created_at)
            return record

    def add_notes(self, notes: Sequence[RunNote], at: float) -> None:
        with self._writing() as conn:
            self._append_notes(conn, notes, at)

    def _append_notes(self, conn: Connection, notes: Sequence[RunNote], at: float) -> None:
        if notes:
            drafts = [
                _Draft(n.run_id, None, None, n.kind, None, None, canonical_json(dict(n.details)))
                for n in notes
            ]
            self._append_events(conn, drafts, at)

    def _insert_run(self, conn: Connection, run: NewRun) -> RunRecord:
        """The run, its pending steps and its `run.created` event, in the caller's
        transaction."""
        at = run.created_at
        step_rows = [
            {
                "run_id": run.id,
                "step_id": step_id,
                "position": position,
                "state": StepState.PENDING.value,
                "attempts": 0,
                "outputs": "{}",
                "retries_used": "{}",
                "updated_at": at,
                "agent": run.step_agents.get(step_id),
            }
            for position, step_id in enumerate(run.step_ids)
        ]
        details: dict[str, Any] = {"plan": run.plan, "steps": len(step_rows)}
        if run.origin:
            details["origin"] = dict(run.origin)
        created = _Draft(
            run.id, None, None, "run.created", None, RunState.PENDING.value, canonical_json(details)
        )
        try:
            with conn.begin_nested():
                conn.execute(insert(runs), _new_run_row(run))
        except IntegrityError:
            raise StoreError(f"a run with id {run.id!r} already exists") from None
        if step_rows:
            executemany(conn, ("insert", "steps"), lambda: insert(steps), step_rows)
        self._append_events(conn, [created], at)
        counts = {StepState.PENDING.value: len(step_rows)} if step_rows else {}
        return RunRecord(
            id=run.id,
            plan=run.plan,
            state=RunState.PENDING,
            created_at=run.created_at,
            started_at=None,
            finished_at=None,
            params=dict(run.params),
            spec=dict(run.spec),
            plan_path=run.plan_path,
            workspace=run.workspace,
            max_workers=run.max_workers,
            owner=None,
            heartbeat_at=None,
            cancel_requested=False,
            step_counts=counts,
            origin=dict(run.origin) if run.origin else None,
        )

    def get_run(self, run_id: str) -> RunRecord:
        with self._reading() as conn:
            row = conn.execute(_RUN_SELECT.where(runs.c.id == run_id)).first()
            if row is None:
                raise _no_run(run_id)
            counts = _step_counts(conn, [run_id])
        return _run_record(row, counts.get(run_id, {}))

    def get_run_control(self, run_id: str) -> RunControl:
        query = select(
            runs.c.state, runs.c.cancel_requested, runs.c.owner, runs.c.pause_requested
        ).where(runs.c.id == run_id)
        with self._reading() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise _no_run(run_id)
        return RunControl(RunState(row[0]), bool(row[1]), row[2], bool(row[3]))

    def resolve_run_id(self, text: str) -> str:
        with self._reading() as conn:
            if text == "last":
                newest = conn.execute(
                    select(runs.c.id).order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(1)
                ).scalar()
                if newest is not None:
                    return str(newest)
            exact = conn.execute(select(runs.c.id).where(runs.c.id == text)).scalar()
            if exact is not None:
                return str(exact)
            if text == "last":
                raise NotFoundError("there are no runs yet; start one with `agenthq run PLAN`")
            matches = (
                conn.execute(
                    select(runs.c.id)
                    .where(runs.c.id.startswith(text, autoescape=True))
                    .order_by(runs.c.created_at.desc(), runs.c.id.desc())
                    .limit(_AMBIGUOUS_SHOWN + 1)
                )
                .scalars()
                .all()
            )
        if len(matches) == 1 and text:
            return str(matches[0])
        if len(matches) > 1 and text:
            shown = ", ".join(matches[:_AMBIGUOUS_SHOWN])
            more = " …" if len(matches) > _AMBIGUOUS_SHOWN else ""
            raise NotFoundError(
                f"run id {text!r} is ambiguous: it could be {shown}{more}; give more characters"
            )
        raise _no_run(text)

    def list_runs(
        self,
        *,
        state: RunState | None = None,
        plan: str | None = None,
        limit: int = 50,
        offset: int = 0,
        origin_run: str | None = None,
    ) -> list[RunRecord]:
        query = _RUN_LIST_SELECT
        if origin_run is not None:
            query = query.where(runs.c.origin_run == origin_run)
        if state is not None:
            query = query.where(runs.c.state == str(state))
        if plan is not None:
            query = query.where(runs.c.plan == plan)
        query = (
            query.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit).offset(offset)
        )
        with self._reading() as conn:
            rows = conn.execute(query).all()
        return [_run_record(row) for row in rows]

    # ---- steps and attempts -----------------------------------------------------------------

    def get_steps(self, run_id: str) -> list[StepRecord]:
        with self._reading() as conn:
            rows = fetch_all(conn, ("select", "steps of a run"), _steps_of_run, {"k_run": run_id})
            if not rows:
                _require_run(conn, run_id)
        return [_step_record(row) for row in rows]

    def get_attempts(self, run_id: str, step_id: str | None = None) -> list[AttemptRecord]:
        query = _ATTEMPT_SELECT.join(
            steps, and_(steps.c.run_id == attempts.c.run_id, steps.c.step_id == attempts.c.step_id)
        ).where(attempts.c.run_id == run_id)
        if step_id is not None:
            query = query.where(attempts.c.step_id == step_id)
        query = query.order_by(steps.c.position, attempts.c.number)
        with self._reading() as conn:
            rows = conn.execute(query).all()
            if not rows:
                _require_run(conn, run_id)
        return [_attempt_record(row) for row in rows]

    # ---- the batch --------------------------------------------------------------------------

    def apply(self, batch: Batch) -> None:
        if not batch:
            return
        # Everything that can be refused without the database is refused before the
        # transaction starts: nothing is locked or written for an illegal batch.
        writes = _collapse(batch.steps)
        for change in batch.runs:
            check_run_transition(change.from_state, change.to_state)
            _check_fields("run", change.fields, RUN_FIELDS)
        for item in batch.attempt_updates:
            _check_fields("attempt", item.fields, ATTEMPT_FIELDS)
        drafts = _drafts(batch)
        try:
            with self._ticking() as conn:
                self._update_steps(conn, writes, batch.at)
                _update_step_counts(conn, writes)
                for change in batch.runs:
                    self._update_run(conn, change)
                if batch.attempt_starts:
                    rows = [_attempt_row(a) for a in batch.attempt_starts]
                    executemany(conn, ("insert", "attempts"), lambda: insert(attempts), rows)
                self._update_attempts(conn, batch.attempt_updates)
                if batch.step_notes:
                    _note_waiting(conn, batch.step_notes)
                if batch.work_items:
                    work_rows.insert_items(conn, batch.work_items)
                    _notify(conn, "work")
                if batch.telemetry:
                    rows = [telemetry_rows.row_of(t) for t in batch.telemetry]
                    executemany(conn, ("insert", "telemetry"), lambda: insert(telemetry), rows)
                notes = governance.write(conn, batch)
                if notes:
                    closing = len(drafts) - _closing_runs(batch)
                    drafts = [*drafts[:closing], *map(_note_draft, notes), *drafts[closing:]]
                self._append_events(conn, drafts, batch.at)
        except _StaleStepsError as stale:
            # Rolled back by now, so the rows read back are as the other writer left them.
            with self._reading() as conn:
                raise _stale_step(conn, stale.rows) from None

    # ---- safety gates ----------------------------------------------------------------------

    def get_gate_results(self, run_id: str, step_id: str | None = None) -> list[GateRecord]:
        with self._reading() as conn:
            return governance.gate_records(conn, run_id, step_id)

    def list_approvals(
        self,
        *,
        run_id: str | None = None,
        state: ApprovalState | None = ApprovalState.PENDING,
        ids: Sequence[int] | None = None,
        limit: int = 500,
        requested_from: float | None = None,
    ) -> list[ApprovalRecord]:
        with self._reading() as conn:
            return governance.list_approvals(
                conn,
                run_id=run_id,
                state=state,
                ids=ids,
                limit=limit,
                requested_from=requested_from,
            )

    def decide_approval(self, decision: ApprovalDecision) -> ApprovalRecord:
        with self._writing() as conn:
            note = governance.decide(conn, decision)
            self._append_events(conn, [_note_draft(note)], decision.at)
            (record,) = governance.list_approvals(
                conn, run_id=None, state=None, ids=[decision.approval_id], limit=1
            )
        return record

    def list_agents(self) -> list[AgentRecord]:
        with self._reading() as conn:
            return governance.agent_records(conn)

    def release_agent(self, name: str, *, by: str, note: str | None, at: float) -> AgentRecord:
        with self._writing() as conn:
            record, event = governance.release(conn, name, by=by, note=note, at=at)
            self._append_events(conn, [_note_draft(event)], at)
        return record

    def stats(self) -> StoreStats:
        with self._reading() as conn:
            return governance.stats(conn)

    def get_breakers(self) -> dict[str, BreakerRecord]:
        with self._reading() as conn:
            return governance.breaker_records(conn)

    def agent_activity(
        self, since: float, *, exclude_run: str | None = None, risk_window: int = 50
    ) -> dict[str, AgentActivity]:
        with self._reading() as conn:
            return agent_rows.activity(conn, since, exclude_run, risk_window)

    def agent_health(self) -> dict[str, AgentHealth]:
        with self._reading() as conn:
            return agent_rows.health_records(conn)

    def record_agent_health(self, health: AgentHealth) -> None:
        with self._writing() as conn:
            event = agent_rows.record_health(conn, health)
            if event is not None:
                run_id, step_id, attempt, kind, details = event
                note: governance.EventDraft = (run_id, step_id, attempt, kind, dict(details))
                self._append_events(conn, [_note_draft(note)], health.checked_at)

    def spent_since(self, since: float) -> float:
        with self._reading() as conn:
            return governance.spent_since(conn, since)

    def run_spending(self, run_id: str) -> dict[str, float]:
        with self._reading() as conn:
            return governance.run_spending(conn, run_id)

    # ---- automations (store/automations.py) --------------------------------------------------

    def save_automation(self, automation: AutomationRecord) -> None:
        with self._writing() as conn:
            automation_rows.save(conn, automation)

    def list_automations(self, kind: str | None = None) -> list[AutomationRecord]:
        with self._reading() as conn:
            return automation_rows.listing(conn, kind)

    def get_automation(self, automation_id: str) -> AutomationRecord:
        with self._reading() as conn:
            found = automation_rows.listing(conn, None, automation_id)
        if not found:
            raise NotFoundError(
                f"no schedule or trigger {automation_id!r}; `agenthq schedule list` and "
                "`agenthq triggers list` show them"
            )
        return found[0]

    def set_automation(
        self, automation_id: str, *, paused: bool | None = None, next_at: float | None = None
    ) -> AutomationRecord:
        self.get_automation(automation_id)
        with self._writing() as conn:
            automation_rows.update_fields(conn, automation_id, paused=paused, next_at=next_at)
        return self.get_automation(automation_id)

    def remove_automation(self, automation_id: str) -> None:
        self.get_automation(automation_id)
        with self._writing() as conn:
            automation_rows.remove(conn, automation_id)

    def fire_automation(
        self, fire: FireRecord, *, run: NewRun | None = None, next_at: float | None = None
    ) -> bool:
        with self._writing() as conn:
            if not automation_rows.claim(conn, fire):
                if next_at is not None:
                    automation_rows.update_fields(conn, fire.automation, next_at=next_at)
                return False
            if run is not None:
                self._insert_run(conn, run)
            if next_at is not None:
                automation_rows.update_fields(conn, fire.automation, next_at=next_at)
        return True

    def list_fires(
        self, automation: str | None = None, limit: int = 50, *, outcome: str | None = None
    ) -> list[FireRecord]:
        with self._reading() as conn:
            return automation_rows.fires(conn, automation, limit, outcome)

    def active_runs(self, automation: str) -> list[str]:
        unfinished = [s.value for s in RunState if not s.finished]
        with self._reading() as conn:
            return automation_rows.active_runs(conn, automation, unfinished)

    # ---- telemetry (store/telemetry.py) ------------------------------------------------------

    def list_telemetry(
        self,
        *,
        started_from: float | None = None,
        started_before: float | None = None,
        finished_after: float | None = None,
        agent: str | None = None,
        limit: int | None = None,
    ) -> list[TelemetryRow]:
        with self._reading() as conn:
            return telemetry_rows.read_rows(
                conn,
                started_from=started_from,
                started_before=started_before,
                finished_after=finished_after,
                agent=agent,
                limit=limit,
            )

    # ---- work for workers (store/work.py) ---------------------------------------------------

    def claim_work(
        self, worker: str, capabilities: Sequence[str], limit: int, lease_s: float, now: float
    ) -> list[Claim]:
        with self._writing() as conn:
            return work_rows.claim(conn, worker, capabilities, limit, until=now + lease_s, now=now)

    def renew_work(
        self, worker: str, keys: Sequence[tuple[str, str, int]], until: float
    ) -> set[tuple[str, str, int]]:
        if not keys:
            return set()
        with self._writing() as conn:
            return work_rows.renew(conn, worker, keys, until)

    def finish_work(
        self, worker: str, key: tuple[str, str, int], outcome: Mapping[str, Any], now: float
    ) -> bool:
        with self._writing() as conn:
            accepted = work_rows.finish(conn, worker, key, outcome, now)
            if accepted:
                _notify(conn, "results")
            return accepted

    def work_status(self, run_id: str, *, due_before: float | None = None) -> list[WorkStatus]:
        with self._reading() as conn:
            return work_rows.status(conn, run_id, due_before)

    def collect_work(self, keys: Sequence[tuple[str, str, int]]) -> None:
        if keys:
            with self._writing() as conn:
                work_rows.collect(conn, keys)

    def settle_work(
        self, key: tuple[str, str, int], state: str, *, expired_before: float | None = None
    ) -> bool:
        with self._writing() as conn:
            return work_rows.settle(conn, key, state, expired_before)

    def wait_for_signal(self, channel: str, timeout: float) -> bool:
        if self._engine.dialect.name != "postgresql":
            time.sleep(timeout)
            return False
        listener, new = self._listener(channel)
        if new:
            # A signal sent while this connection was being opened reached only the caller's
            # other connections (one per thread): look now rather than sleep through it.
            return True
        return any(True for _ in listener.notifies(timeout=timeout, stop_after=1))

    def _listener(self, channel: str) -> tuple[Any, bool]:
        """One autocommit psycopg connection per channel and thread, LISTENing; and whether
        it was opened just now."""
        import threading

        key = (channel, threading.get_ident())
        found = self._listeners.get(key)
        new = found is None or found.closed
        if new:
            import psycopg

            conninfo = self._engine.url.set(drivername="postgresql").render_as_string(
                hide_password=False
            )
            found = psycopg.connect(conninfo, autocommit=True)
            found.execute(f"LISTEN agenthq_{channel}")
            self._listeners[key] = found
        return found, new

    def abandon_work(self, run_id: str) -> int:
        with self._writing() as conn:
            return work_rows.abandon(conn, run_id)

    def append_log(self, key: tuple[str, str, int], stream: str, seq: int, data: str) -> None:
        with self._writing() as conn:
            work_rows.append_log(conn, key, stream, seq, data)

    def read_log(self, key: tuple[str, str, int], stream: str) -> str | None:
        with self._reading() as conn:
            return work_rows.read_log(conn, key, stream)

    # ---- worktrees (store/worktrees.py) -----------------------------------------------------

    def record_worktree(self, worktree: WorktreeRecord) -> None:
        with self._writing() as conn:
            worktree_rows.record(conn, worktree)

    def update_worktree(
        self, run_id: str, step_id: str, attempt: int, state: str, at: float
    ) -> None:
        with self._writing() as conn:
            worktree_rows.set_state(conn, (run_id, step_id, attempt), state, at)

    def list_worktrees(
        self, *, run_id: str | None = None, states: Sequence[str] | None = None
    ) -> list[WorktreeRecord]:
        with self._reading() as conn:
            return worktree_rows.listing(conn, run_id, states)

    # ---- message bus (store/messages.py) ---------------------------------------------------

    def send_message(self, message: NewMessage) -> tuple[int, bool]:
        if message.dedupe_key is not None:
            with self._reading() as conn:
                known = message_rows.existing(conn, message.dedupe_key)
            if known is not None:
                return known, False
        try:
            with self._writing() as conn:
                new_id, event = message_rows.insert_message(conn, message)
                run_id, step_id, attempt, kind, details = event
                note: governance.EventDraft = (run_id, step_id, attempt, kind, dict(details))
                self._append_events(conn, [_note_draft(note)], message.at)
        except StoreError as exc:
            if message.dedupe_key is None or not isinstance(exc.__cause__, IntegrityError):
                raise
            with self._reading() as conn:  # another sender won the race with this key
                winner = message_rows.existing(conn, message.dedupe_key)
            if winner is None:
                raise
            return winner, False
        return new_id, True

    def inbox(self, agent: str, *, unread: bool = True, limit: int = 500) -> list[MessageRecord]:
        with self._reading() as conn:
            return message_rows.inbox(conn, agent, unread=unread, limit=limit)

    def mark_read(
        self, *, ids: Sequence[int] | None = None, agent: str | None = None, at: float
    ) -> int:
        with self._writing() as conn:
            return message_rows.mark_read(conn, ids=ids, agent=agent, at=at)

    def conversation(self, a: str, b: str, *, limit: int = 500) -> list[MessageRecord]:
        with self._reading() as conn:
            return message_rows.conversation(conn, a, b, limit)

    def prune_messages(self, read_before: float) -> int:
        with self._writing() as conn:
            return message_rows.prune(conn, read_before)

    # ---- alerts (store/alerts.py) -----------------------------------------------------------

    def raise_alert(self, alert: NewAlert) -> tuple[AlertRecord, bool]:
        with self._writing() as conn:
            record, new, event = alert_rows.raise_alert(conn, alert)
            if event is not None:
                self._append_events(conn, [_note_draft(event)], alert.at)
        return record, new

    def change_alert(
        self, alert_id: int, to: str, *, by: str, note: str | None, at: float
    ) -> AlertRecord:
        with self._writing() as conn:
            record, event = alert_rows.change(conn, alert_id, to, by=by, note=note, at=at)
            self._append_events(conn, [_note_draft(event)], at)
        return record

    def list_alerts(
        self,
        *,
        ids: Sequence[int] | None = None,
        states: Sequence[str] | None = None,
        rule: str | None = None,
        severities: Sequence[str] | None = None,
        limit: int = 500,
    ) -> list[AlertRecord]:
        with self._reading() as conn:
            return alert_rows.listing(
                conn, ids=ids, states=states, rule=rule, severities=severities, limit=limit
            )

    def get_cursor(self, name: str) -> int:
        with self._reading() as conn:
            return alert_rows.get_cursor(conn, name)

    def set_cursor(self, name: str, seq: int, at: float) -> None:
        with self._writing() as conn:
            alert_rows.set_cursor(conn, name, seq, at)

    def alert_facts(self, since: float) -> AlertFacts:
        with self._reading() as conn:
            return AlertFacts(
                running_runs=alert_rows.running_runs(conn),
                failures_by_agent=alert_rows.failures_by_agent(conn, since),
                waiting_by_agent=alert_rows.waiting_by_agent(conn),
            )

    def _update_steps(self, conn: Connection, writes: list[_StepWrite], at: float) -> None:
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for write in writes:
            names = tuple(sorted(write.fields))
            params = {
                "k_run_id": write.run_id,
                "k_step_id": write.step_id,
                "k_from": write.from_state,
                "v_state": write.to_state,
                "v_updated_at": at,
            }
            for name in names:
                params["v_" + name] = _column_value(name, write.fields[name])
            groups.setdefault(names, []).append(params)
        for names, rows in groups.items():
            build = functools.partial(_step_update, names)
            if self._execute_counted(conn, ("update", "steps", names), build, rows) != len(rows):
                raise _StaleStepsError(rows)

    def _update_run(self, conn: Connection, change: RunChange) -> None:
        values = {name: _column_value(name, value) for name, value in change.fields.items()}
        values["state"] = str(change.to_state)
        if RunState(change.to_state).finished and "cancel_requested" not in values:
            values["cancel_requested"] = False  # the request is answered; a retry starts clean
        result = conn.execute(
            update(runs)
            .where(runs.c.id == change.run_id, runs.c.state == str(change.from_state))
            .values(values)
        )
        if result.rowcount != 1:
            current = conn.execute(select(runs.c.state).where(runs.c.id == change.run_id)).scalar()
            if current is None:
                raise _no_run(change.run_id)
            raise StaleWriteError(
                f"run {change.run_id} is no longer {change.from_state} (it is {current} now): "
                "someone else changed it first, so the whole batch was rolled back"
            )

    def _update_attempts(self, conn: Connection, updates: list[AttemptUpdate]) -> None:
        merged: dict[tuple[str, str, int], dict[str, Any]] = {}
        for item in updates:
            merged.setdefault((item.run_id, item.step_id, item.number), {}).update(item.fields)
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for (run_id, step_id, number), fields in merged.items():
            names = tuple(sorted(fields))
            params = {"k_run_id": run_id, "k_step_id": step_id, "k_number": number}
            for name in names:
                params["v_" + name] = _column_value(name, fields[name])
            groups.setdefault(names, []).append(params)
        for names, rows in groups.items():
            if not names:
                continue
            build = functools.partial(_attempt_update, names)
            if self._execute_counted(conn, ("update", "attempts", names), build, rows) != len(rows):
                missing = [
                    f"{row['k_step_id']}#{row['k_number']} of run {row['k_run_id']}"
                    for row in rows
                    if not _attempt_exists(conn, row)
                ]
                raise NotFoundError(f"no such attempt: {', '.join(missing)}")

    def _execute_counted(
        self,
        conn: Connection,
        key: Hashable,
        build: Callable[[], UpdateBase],
        rows: list[dict[str, Any]],
    ) -> int:
        """Rows matched by an executemany; one statement per row where the driver cannot
        count an executemany."""
        if self._sane_multi_rowcount or len(rows) == 1:
            return executemany(conn, key, build, rows)
        statement = build()
        return sum(int(conn.execute(statement, row).rowcount) for row in rows)

    def _append_events(self, conn: Connection, drafts: Sequence[_Draft], at: float) -> None:
        """Chain the drafts onto the head, inside the caller's transaction. Reading the head
        FOR UPDATE (a no-op on SQLite, which already holds the write lock) makes concurrent
        writers queue here, so seq numbers and hashes never fork."""
        if not drafts:
            return
        head = fetch_one(
            conn,
            ("select", "chain_head"),
            lambda: (
                select(chain_head.c.seq, chain_head.c.hash)
                .where(chain_head.c.id == bindparam("k_id"))
                .with_for_update()
            ),
            {"k_id": CHAIN_HEAD_ID},
        )
        if head is None:
            raise StoreError(
                f"the database at {self._shown} has no event chain head; it was not created by agenthq"
            )
        seq, previous = int(head[0]), str(head[1])
        when, when_json = stored_time(at), time_json(at)
        rows = []
        for draft in drafts:
            seq += 1
            digest = link_hash(
                previous,
                seq,
                run_id=draft.run_id,
                step_id=draft.step_id,
                attempt=draft.attempt,
                kind=draft.kind,
                from_state=draft.from_state,
                to_state=draft.to_state,
                at_json=when_json,
                details_json=draft.details_json,
            )
            rows.append(
                {
                    "seq": seq,
                    "run_id": draft.run_id,
                    "step_id": draft.step_id,
                    "attempt": draft.attempt,
                    "kind": draft.kind,
                    "from_state": draft.from_state,
                    "to_state": draft.to_state,
                    "at": when,
                    "details": draft.details_json,
                    "prev_hash": previous,
                    "hash": digest,
                }
            )
            previous = digest
        executemany(conn, ("insert", "events"), lambda: insert(events), rows)
        execute_one(
            conn,
            ("update", "chain_head"),
            lambda: (
                update(chain_head)
                .where(chain_head.c.id == bindparam("k_id"))
                .values(seq=bindparam("v_seq"), hash=bindparam("v_hash"))
            ),
            {"k_id": CHAIN_HEAD_ID, "v_seq": seq, "v_hash": previous},
        )

    # ---- ownership and control ----------------------------------------------------------------

    def claim_run(self, run_id: str, owner: str, *, steal_from: str | None = None) -> None:
        allowed = [runs.c.owner.is_(None), runs.c.owner == owner]
        if steal_from is not None:
            allowed.append(runs.c.owner == steal_from)
        statement = (
            update(runs)
            .where(runs.c.id == run_id, or_(*allowed))
            .values(owner=owner, heartbeat_at=time.time())
        )
        with self._writing() as conn:
            if conn.execute(statement).rowcount == 1:
                return
            holder = _holder(conn, run_id)
        raise RunBusyError(f"run {run_id} is being executed by process {holder}")

    def heartbeat(self, run_id: str, owner: str, at: float) -> None:
        """Raises RunBusyError when `owner` no longer holds the run: another process took it
        over, believing this one dead, and this one must stop."""
        statement = (
            update(runs).where(runs.c.id == run_id, runs.c.owner == owner).values(heartbeat_at=at)
        )
        with self._writing() as conn:
            if conn.execute(statement).rowcount == 1:
                return
            holder = _holder(conn, run_id)
        raise RunBusyError(f"run {run_id} is now executed by process {holder}, not {owner}")

    def release_run(self, run_id: str, owner: str) -> None:
        statement = (
            update(runs).where(runs.c.id == run_id, runs.c.owner == owner).values(owner=None)
        )
        with self._writing() as conn:
            conn.execute(statement)

    def request_pause(self, run_id: str, paused: bool) -> None:
        kind = "run.pause_requested" if paused else "run.resume_requested"
        draft = _Draft(run_id, None, None, kind, None, None, "{}")
        with self._writing() as conn:
            result = conn.execute(
                update(runs).where(runs.c.id == run_id).values(pause_requested=paused)
            )
            if result.rowcount != 1:
                raise _no_run(run_id)
            self._append_events(conn, [draft], time.time())

    def request_cancel(self, run_id: str) -> None:
        draft = _Draft(run_id, None, None, "run.cancel_requested", None, None, "{}")
        with self._writing() as conn:
            result = conn.execute(
                update(runs).where(runs.c.id == run_id).values(cancel_requested=True)
            )
            if result.rowcount != 1:
                raise _no_run(run_id)
            self._append_events(conn, [draft], time.time())

    # ---- events -----------------------------------------------------------------------------

    def read_events(
        self,
        *,
        after_seq: int = 0,
        run_id: str | None = None,
        limit: int = 1000,
        kinds: Sequence[str] | None = None,
        to_states: Sequence[str] | None = None,
    ) -> list[EventRecord]:
        rows = self._event_rows(after_seq, run_id, limit, kinds, to_states)
        return [_event_record(row) for row in rows]

    def read_event_lines(
        self, *, after_seq: int = 0, run_id: str | None = None, limit: int = 1000
    ) -> list[EventLine]:
        return [_event_line(row) for row in self._event_rows(after_seq, run_id, limit)]

    def last_event_seq(self) -> int:
        with self._reading() as conn:
            return int(conn.execute(select(chain_head.c.seq)).scalar() or 0)

    def _event_rows(
        self,
        after_seq: int,
        run_id: str | None,
        limit: int,
        kinds: Sequence[str] | None = None,
        to_states: Sequence[str] | None = None,
    ) -> Sequence[Any]:
        query = _EVENT_SELECT.where(events.c.seq > after_seq)
        if run_id is not None:
            query = query.where(events.c.run_id == run_id)
        if kinds is not None:
            query = query.where(events.c.kind.in_(list(kinds)))
        if to_states is not None:
            query = query.where(events.c.to_state.in_(list(to_states)))
        query = query.order_by(events.c.seq).limit(limit)
        with self._reading() as conn:
            return conn.execute(query).all()


def _step_update(names: tuple[str, ...]) -> UpdateBase:
    """Compare-and-set of one step: only from the state the scheduler last saw."""
    return (
        update(steps)
        .where(
            steps.c.run_id == bindparam("k_run_id"),
            steps.c.step_id == bindparam("k_step_id"),
            steps.c.state == bindparam("k_from"),
        )
        .values({name: bindparam("v_" + name) for name in (*names, "state", "updated_at")})
    )


def _attempt_update(names: tuple[str, ...]) -> UpdateBase:
    return (
        update(attempts)
        .where(
            attempts.c.run_id == bindparam("k_run_id"),
            attempts.c.step_id == bindparam("k_step_id"),
            attempts.c.number == bindparam("k_number"),
        )
        .values({name: bindparam("v_" + name) for name in names})
    )


# ---- building a batch's writes (pure) ------------------------------------------------------


def _collapse(changes: Iterable[StepChange]) -> list[_StepWrite]:
    """Check every hop, and fold each step's hops into one write: from its first state to its
    last, fields merged in order. The same step's hops must follow on from each other — if one
    starts where the previous did not end, the batch was built from a stale view."""
    writes: dict[tuple[str, str], _StepWrite] = {}
    for change in changes:
        check_step_transition(change.from_state, change.to_state)
        if not change.fields.keys() <= STEP_FIELDS:
            _check_fields("step", change.fields, STEP_FIELDS)
        key = (change.run_id, change.step_id)
        write = writes.get(key)
        if write is None:
            writes[key] = _StepWrite(
                change.run_id,
                change.step_id,
                str(change.from_state),
                str(change.to_state),
                dict(change.fields),
            )
            continue
        if change.from_state != write.to_state:
            raise StaleWriteError(
                f"step {change.step_id!r} of run {change.run_id} is expected {change.from_state} "
                f"but this batch already moved it to {write.to_state}; nothing was written"
            )
        write.to_state = str(change.to_state)
        write.fields.update(change.fields)
    return list(writes.values())


def _drafts(batch: Batch) -> list[_Draft]:
    """One event per change, in the order a tick makes them: a run that (re)starts before the
    steps it runs, the steps, notes, then how the run ended or paused."""
    opening = 0
    while opening < len(batch.runs) and batch.runs[opening].to_state == RunState.RUNNING:
        opening += 1
    drafts = [_run_draft(change) for change in batch.runs[:opening]]
    drafts.extend(
        _Draft(
            change.run_id,
            change.step_id,
            change.attempt,
            "step",
            str(change.from_state),
            str(change.to_state),
            canonical_json(change.details),
        )
        for change in batch.steps
    )
    drafts.extend(
        _Draft(e.run_id, e.step_id, e.attempt, e.kind, None, None, canonical_json(e.details))
        for e in batch.events
    )
    drafts.extend(_run_draft(change) for change in batch.runs[opening:])
    return drafts


def _note_waiting(conn: Connection, notes: Sequence[tuple[str, str, str | None]]) -> None:
    """Why ready steps wait; only rows still ready are touched (no state changes here)."""
    conn.execute(
        update(steps)
        .where(
            steps.c.run_id == bindparam("r"),
            steps.c.step_id == bindparam("s"),
            steps.c.state == StepState.READY.value,
        )
        .values(reason=bindparam("why")),
        [{"r": r, "s": s, "why": why} for r, s, why in notes],
    )


def _closing_runs(batch: Batch) -> int:
    """How many of `_drafts`' last entries are run changes that end or pause the run."""
    opening = 0
    while opening < len(batch.runs) and batch.runs[opening].to_state == RunState.RUNNING:
        opening += 1
    return len(batch.runs) - opening


def _note_draft(note: governance.EventDraft) -> _Draft:
    run_id, step_id, attempt, kind, details = note
    return _Draft(run_id, step_id, attempt, kind, None, None, canonical_json(details))


def _run_draft(change: RunChange) -> _Draft:
    return _Draft(
        change.run_id,
        None,
        None,
        "run",
        str(change.from_state),
        str(change.to_state),
        canonical_json(change.details),
    )


def _check_fields(what: str, fields: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"a {what} has no field(s) {', '.join(sorted(unknown))}")


def _column_value(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        return _dumps(value if value is not None else {})
    if isinstance(value, Enum):
        return value.value
    return value


_ORDERED = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def _dumps(value: Any) -> str:
    """JSON columns other than event details keep their key order, as the user wrote it."""
    return _ORDERED.encode(value)


def _new_run_row(run: NewRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "plan": run.plan,
        "state": RunState.PENDING.value,
        "created_at": run.created_at,
        "params": _dumps(dict(run.params)),
        "spec": _dumps(dict(run.spec)),
        "plan_path": run.plan_path,
        "workspace": run.workspace,
        "max_workers": run.max_workers,
        "cancel_requested": False,
        "step_counts": _dumps({StepState.PENDING.value: len(run.step_ids)} if run.step_ids else {}),
        "origin": _dumps(dict(run.origin)) if run.origin else None,
        "origin_run": run.origin.get("run") if run.origin else None,
        "owner": run.owner,
    }


def _attempt_row(start: AttemptStart) -> dict[str, Any]:
    return {
        "run_id": start.run_id,
        "step_id": start.step_id,
        "number": start.number,
        "state": "running",
        "started_at": start.started_at,
        "stdout_path": start.stdout_path,
        "stderr_path": start.stderr_path,
        "owner": start.owner,
    }


# ---- reading rows into records ---------------------------------------------------------------

_RUN_SELECT: Select[Any] = select(
    runs.c.id,
    runs.c.plan,
    runs.c.state,
    runs.c.created_at,
    runs.c.started_at,
    runs.c.finished_at,
    runs.c.params,
    runs.c.spec,
    runs.c.plan_path,
    runs.c.workspace,
    runs.c.max_workers,
    runs.c.owner,
    runs.c.heartbeat_at,
    runs.c.cancel_requested,
    runs.c.step_counts,
    runs.c.origin,
)
# Lists leave out the plan spec: a 5,000-step plan is half a megabyte of JSON per run, and no
# list needs it (get_run has it).
_RUN_LIST_SELECT: Select[Any] = select(
    *(
        literal_column("'{}'").label("spec") if c.name == "spec" else c
        for c in _RUN_SELECT.selected_columns
    )
)
_STEP_SELECT: Select[Any] = select(
    steps.c.run_id,
    steps.c.step_id,
    steps.c.state,
    steps.c.attempts,
    steps.c.failure_class,
    steps.c.outputs,
    steps.c.retries_used,
    steps.c.next_at,
    steps.c.reason,
    steps.c.started_at,
    steps.c.finished_at,
    steps.c.updated_at,
)


def _steps_of_run() -> Select[Any]:
    return _STEP_SELECT.where(steps.c.run_id == bindparam("k_run")).order_by(steps.c.position)


_ATTEMPT_SELECT: Select[Any] = select(
    attempts.c.run_id,
    attempts.c.step_id,
    attempts.c.number,
    attempts.c.state,
    attempts.c.started_at,
    attempts.c.finished_at,
    attempts.c.exit_code,
    attempts.c.failure_class,
    attempts.c.error,
    attempts.c.stdout_path,
    attempts.c.stderr_path,
    attempts.c.pid,
    attempts.c.pgid,
    attempts.c.proc_start,
    attempts.c.owner,
    attempts.c.cost_usd,
    attempts.c.usage,
    attempts.c.session_id,
)
_EVENT_SELECT: Select[Any] = select(
    events.c.seq,
    events.c.run_id,
    events.c.step_id,
    events.c.attempt,
    events.c.kind,
    events.c.from_state,
    events.c.to_state,
    events.c.at,
    events.c.details,
    events.c.prev_hash,
    events.c.hash,
)


def _notify(conn: Connection, channel: str) -> None:
    """Wake the listeners of `channel` when this transaction commits (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY agenthq_{channel}")


def _run_record(row: Sequence[Any], counts: Mapping[str, int] | None = None) -> RunRecord:
    return RunRecord(
        id=row[0],
        plan=row[1],
        state=RunState(row[2]),
        created_at=row[3],
        started_at=row[4],
        finished_at=row[5],
        params=json.loads(row[6]),
        spec=json.loads(row[7]),
        plan_path=row[8],
        workspace=row[9],
        max_workers=row[10],
        owner=row[11],
        heartbeat_at=row[12],
        cancel_requested=bool(row[13]),
        step_counts=json.loads(row[14]) if counts is None else counts,
        origin=json.loads(row[15]) if row[15] else None,
    )


_STEP_STATES = {state.value: state for state in StepState}


def _step_record(row: Sequence[Any]) -> StepRecord:
    """One step row as a record; a run's start reads them all (5000 for W3), so the common
    values skip the general paths: the states by dict, an empty JSON object without a parse."""
    return StepRecord(
        run_id=row[0],
        step_id=row[1],
        state=_STEP_STATES.get(row[2]) or StepState(row[2]),
        attempts=row[3],
        failure_class=FailureClass(row[4]) if row[4] is not None else None,
        outputs=_json_object(row[5]),
        retries_used=_json_object(row[6]),
        next_at=row[7],
        reason=row[8],
        started_at=row[9],
        finished_at=row[10],
        updated_at=row[11],
    )


def _json_object(text: str) -> dict[str, Any]:
    return {} if text == "{}" else json.loads(text)


def _attempt_record(row: Sequence[Any]) -> AttemptRecord:
    return AttemptRecord(
        run_id=row[0],
        step_id=row[1],
        number=row[2],
        state=row[3],
        started_at=row[4],
        finished_at=row[5],
        exit_code=row[6],
        failure_class=FailureClass(row[7]) if row[7] is not None else None,
        error=row[8],
        stdout_path=row[9],
        stderr_path=row[10],
        pid=row[11],
        pgid=row[12],
        proc_start=row[13],
        owner=row[14],
        cost_usd=row[15],
        usage=json.loads(row[16]) if row[16] else {},
        session_id=row[17],
    )


_LINE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _event_line(row: Sequence[Any]) -> EventLine:
    """The event's API JSON with its stored details text spliced in (it is canonical JSON)."""
    seq, run_id, step_id, attempt, kind, from_state, to_state, at, details, _, digest = row
    text = (
        f'{{"seq":{int(seq)},"run_id":{_LINE(run_id)},"step_id":{_LINE(step_id)},'
        f'"attempt":{_LINE(attempt)},"kind":{_LINE(kind)},"from":{_LINE(from_state)},'
        f'"to":{_LINE(to_state)},"at":{_LINE(at)},"details":{details},"hash":{_LINE(digest)}}}'
    )
    return EventLine(int(seq), run_id, str(kind), text)


def _event_record(row: Sequence[Any]) -> EventRecord:
    return EventRecord(
        seq=row[0],
        run_id=row[1],
        step_id=row[2],
        attempt=row[3],
        kind=row[4],
        from_state=row[5],
        to_state=row[6],
        at=row[7],
        details=json.loads(row[8]),
        prev_hash=row[9],
        hash=row[10],
    )


def _holder(conn: Connection, run_id: str) -> str | None:
    """Who owns the run, after a compare-and-set on its owner found someone else there."""
    row = conn.execute(select(runs.c.id, runs.c.owner).where(runs.c.id == run_id)).first()
    if row is None:
        raise _no_run(run_id)
    return row[1]  # type: ignore[no-any-return]


def _update_step_counts(conn: Connection, writes: Sequence[_StepWrite]) -> None:
    """Keep runs.step_counts in step with the step rows this transaction moves."""
    deltas: dict[str, dict[str, int]] = {}
    for write in writes:
        if write.from_state == write.to_state:
            continue
        delta = deltas.setdefault(write.run_id, {})
        delta[write.from_state] = delta.get(write.from_state, 0) - 1
        delta[write.to_state] = delta.get(write.to_state, 0) + 1
    for run_id, delta in deltas.items():
        row = fetch_one(
            conn,
            ("select", "runs.step_counts"),
            lambda: select(runs.c.step_counts).where(runs.c.id == bindparam("k_id")),
            {"k_id": run_id},
        )
        counts: dict[str, int] = json.loads(row[0]) if row and row[0] else {}
        for state, change in delta.items():
            counts[state] = counts.get(state, 0) + change
        counts = {k: v for k, v in counts.items() if v}
        execute_one(
            conn,
            ("update", "runs.step_counts"),
            lambda: (
                update(runs)
                .where(runs.c.id == bindparam("k_id"))
                .values(step_counts=bindparam("v_counts"))
            ),
            {"k_id": run_id, "v_counts": _dumps(counts)},
        )


def _step_counts(conn: Connection, run_ids: list[str]) -> dict[str, dict[str, int]]:
    """State → count for each run, in one GROUP BY for the whole page."""
    if not run_ids:
        return {}
    query = (
        select(steps.c.run_id, steps.c.state, func.count())
        .where(steps.c.run_id.in_(run_ids))
        .group_by(steps.c.run_id, steps.c.state)
    )
    counts: dict[str, dict[str, int]] = {}
    for run_id, state, count in conn.execute(query):
        counts.setdefault(run_id, {})[state] = int(count)
    return counts


# ---- errors people read ------------------------------------------------------------------------


def _no_run(run_id: str) -> NotFoundError:
    return NotFoundError(f"no run {run_id!r}; `agenthq runs` lists them")


def _require_run(conn: Connection, run_id: str) -> None:
    if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
        raise _no_run(run_id)


def _stale_step(conn: Connection, rows: list[dict[str, Any]]) -> StaleWriteError:
    """Name the first step whose row is not in the state the batch expected (read after the
    rollback, so rows this batch had updated show their old state again)."""
    current: dict[tuple[str, str], str] = {}
    for run_id in {row["k_run_id"] for row in rows}:
        query = select(steps.c.step_id, steps.c.state).where(steps.c.run_id == run_id)
        current.update(((run_id, step_id), state) for step_id, state in conn.execute(query))
    for row in rows:
        found = current.get((row["k_run_id"], row["k_step_id"]))
        if found == row["k_from"]:
            continue
        now = f"it is {found} now" if found is not None else "the run has no such step"
        return StaleWriteError(
            f"step {row['k_step_id']!r} of run {row['k_run_id']} is no longer {row['k_from']} "
            f"({now}): someone else changed it first, so the whole batch was rolled back"
        )
    return StaleWriteError("a step changed under this batch, so the whole batch was rolled back")


def _attempt_exists(conn: Connection, row: Mapping[str, Any]) -> bool:
    query = select(attempts.c.number).where(
        attempts.c.run_id == row["k_run_id"],
        attempts.c.step_id == row["k_step_id"],
        attempts.c.number == row["k_number"],
    )
    return conn.execute(query).first() is not None
