"""The schema, as SQLAlchemy Core metadata. migrations/versions/ creates exactly this.

Portable types only, because the same schema runs on SQLite and PostgreSQL: JSON is kept as
Text (canonical JSON, see chain.py), timestamps as epoch seconds in a Float, enums as their
string values. `chain_head` holds the last event's seq and hash in one row; every transaction
that appends events reads and updates it, so event writers serialise on that row and the
chain stays exact under concurrency.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("plan", String(), nullable=False),
    Column("state", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("params", Text, nullable=False),
    Column("spec", Text, nullable=False),
    Column("plan_path", Text),
    Column("workspace", Text, nullable=False),
    Column("max_workers", Integer, nullable=False),
    Column("owner", String()),
    Column("heartbeat_at", Float),
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    # A person asked the run to start nothing new (revision 0005); the executing process moves
    # it to `paused` and back, so the pause survives restarts of either side.
    Column("pause_requested", Boolean, nullable=False, server_default=false()),
    # state → number of steps, kept by every write that moves a step (revision 0003): a run
    # list must not count a million step rows.
    Column("step_counts", Text, nullable=False, server_default="{}"),
    # What started the run, when not a person (revision 0006): {"kind": rollback | schedule |
    # after | on, ...}; origin_run is the run it follows from, for "what did this one start".
    Column("origin", Text),
    Column("origin_run", String(64)),
    Index("ix_runs_created_at", "created_at"),
    Index("ix_runs_origin_run", "origin_run"),
)

steps = Table(
    "steps",
    metadata,
    Column("run_id", String(64), nullable=False),
    Column("step_id", String(), nullable=False),
    Column("position", Integer, nullable=False),  # order of NewRun.step_ids (topological)
    Column("state", String(32), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("failure_class", String(32)),
    Column("outputs", Text, nullable=False),
    Column("retries_used", Text, nullable=False),
    Column("next_at", Float),
    Column("reason", Text),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("updated_at", Float, nullable=False),
    Column("agent", String()),  # the agent named by the plan, if any (revision 0003)
    PrimaryKeyConstraint("run_id", "step_id", name="pk_steps"),
    ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_steps_run_id"),
    Index("ix_steps_run_id_position", "run_id", "position"),
    # Counting a run's steps by state (every run list) reads this index alone (revision 0003).
    Index("ix_steps_run_id_state", "run_id", "state"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("run_id", String(64), nullable=False),
    Column("step_id", String(), nullable=False),
    Column("number", Integer, nullable=False),
    Column("state", String(32), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("exit_code", Integer),
    Column("failure_class", String(32)),
    Column("error", Text),
    Column("stdout_path", Text),
    Column("stderr_path", Text),
    Column("pid", Integer),
    Column("pgid", Integer),
    Column("proc_start", BigInteger),
    Column("owner", String()),
    Column("cost_usd", Float),  # what the attempt reported spending (`{"agenthq": {...}}` lines)
    Column("usage", Text),  # everything it reported, canonical JSON
    # A coding agent's conversation id, so a retry resumes it (revision 0004).
    Column("session_id", String()),
    PrimaryKeyConstraint("run_id", "step_id", "number", name="pk_attempts"),
    ForeignKeyConstraint(
        ["run_id", "step_id"],
        ["steps.run_id", "steps.step_id"],
        name="fk_attempts_step",
    ),
)

events = Table(
    "events",
    metadata,
    # Assigned by the writer from chain_head, never by the database: the hash covers it.
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("run_id", String(64)),
    Column("step_id", String()),
    Column("attempt", Integer),
    Column("kind", String(64), nullable=False),
    Column("from_state", String(32)),
    Column("to_state", String(32)),
    Column("at", Float, nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_events_run_id_seq", "run_id", "seq"),
)

chain_head = Table(
    "chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

CHAIN_HEAD_ID = 1

# ---- safety gates (revision 0002) --------------------------------------------------------------

gate_results = Table(
    "gate_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("step_id", String(), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("gate", String(32), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("score", Float),
    Column("details", Text, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_gate_results_run_id_step_id", "run_id", "step_id"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("step_id", String(), nullable=False),
    Column("attempt", Integer, nullable=False),  # the attempt it would start
    Column("kind", String(16), nullable=False),  # gate | budget
    Column("state", String(16), nullable=False),  # pending | approved | rejected
    Column("requested_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("warn_at", Float),
    Column("escalate_at", Float),
    Column("escalate_to", String()),
    Column("warned", Boolean, nullable=False, server_default=false()),
    Column("escalated", Boolean, nullable=False, server_default=false()),
    Column("on_timeout", String(16), nullable=False),
    Column("command", Text),
    Column("score", Float),
    Column("reasons", Text, nullable=False),  # JSON list of strings
    Column("request", Text, nullable=False),  # JSON: the gate results, or the budget's figures
    Column("decided_at", Float),
    Column("decided_by", String()),
    Column("note", Text),
    Column("extend_usd", Float),
    Index("ix_approvals_state", "state"),
    Index("ix_approvals_run_id_step_id", "run_id", "step_id"),
)

agents = Table(
    "agents",
    metadata,
    Column("name", String(), primary_key=True),
    Column("state", String(32), nullable=False),  # ok | quarantined
    Column("reason", Text),
    Column("run_id", String(64)),
    Column("step_id", String()),
    Column("since", Float),
    Column("changed_by", String()),
    Column("note", Text),
    Column("updated_at", Float, nullable=False),
)

breakers = Table(
    "breakers",
    metadata,
    Column("key", String(), primary_key=True),  # agent:NAME or gate:NAME
    Column("state", String(16), nullable=False),  # closed | open | half_open
    Column("failures", Integer, nullable=False),
    Column("opened_at", Float),
    Column("cooldown_s", Float, nullable=False),
    Column("trips", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# ---- agents, messages, alerts, worktrees (revision 0004) --------------------------------------

# What the last health check of each agent found; the agents table above keeps quarantine.
agent_health = Table(
    "agent_health",
    metadata,
    Column("name", String(), primary_key=True),
    Column("health", String(16), nullable=False),  # healthy | unhealthy | offline
    Column("detail", Text),  # the failing check's last line, for `agenthq agents`
    Column("failures", Integer, nullable=False, server_default="0"),  # consecutive
    Column("checked_at", Float, nullable=False),
    Column("next_at", Float),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sender", String(), nullable=False),
    Column("recipient", String(), nullable=False),
    Column("subject", Text),
    Column("body", Text, nullable=False),
    Column("dedupe_key", String()),
    Column("run_id", String(64)),
    Column("step_id", String()),
    Column("created_at", Float, nullable=False),
    Column("read_at", Float),
    Index("ux_messages_dedupe_key", "dedupe_key", unique=True),
    Index("ix_messages_recipient_read_at", "recipient", "read_at"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(64), nullable=False),
    Column("severity", String(16), nullable=False),  # low | medium | high | critical
    Column("subject", String(), nullable=False),  # what it is about: a run, an agent, a step
    Column("message", Text, nullable=False),
    Column("details", Text, nullable=False),  # JSON
    Column("state", String(16), nullable=False),  # open | acknowledged | resolved
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("count", Integer, nullable=False),
    Column("acked_by", String()),
    Column("acked_at", Float),
    Column("note", Text),
    Column("resolved_at", Float),
    Column("run_id", String(64)),
    Index("ix_alerts_rule_subject_state", "rule", "subject", "state"),
    Index("ix_alerts_state", "state"),
)

# Where a reader of the event table stopped (the alert evaluator), so a restart neither misses
# nor repeats events.
automations = Table(
    "automations",
    metadata,
    Column("id", String(), primary_key=True),
    Column("kind", String(16), nullable=False),  # schedule | after | on
    Column("plan", String(), nullable=False),
    Column("plan_path", Text, nullable=False),
    Column("workspace", Text, nullable=False),
    Column("settings", Text, nullable=False),  # cron, tz, catch_up … or the condition
    Column("params", Text, nullable=False),
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("next_at", Float),  # schedules: the next tick
    Column("created_at", Float, nullable=False),
)

# One row per schedule tick or matching event, whatever came of it; the key (the tick's time,
# or the event's seq) is unique, so a restart can neither repeat nor lose a trigger.
automation_fires = Table(
    "automation_fires",
    metadata,
    Column("automation", String(), nullable=False),
    Column("key", String(), nullable=False),
    Column("outcome", String(32), nullable=False),  # started | skipped_* | failed
    Column("run_id", String(64)),
    Column("at", Float, nullable=False),
    Column("details", Text, nullable=False),
    PrimaryKeyConstraint("automation", "key"),
    Index("ix_automation_fires_at", "automation", "at"),
)

# Attempts handed to `agenthq worker` processes (revision 0007): queued → claimed (a worker
# holds a lease it renews) → done | lost | cancelled. Every change is fenced on the state and,
# once claimed, on the worker: a worker whose lease expired cannot report over a newer try.
work_items = Table(
    "work_items",
    metadata,
    Column("run_id", String(64), nullable=False),
    Column("step_id", String(), nullable=False),
    Column("number", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("needs", Text, nullable=False),  # capabilities, ",a,b," (empty: any worker)
    Column("payload", Text, nullable=False),  # what to run, JSON
    Column("worker", String()),
    Column("lease_expires_at", Float),
    Column("created_at", Float, nullable=False),
    Column("claimed_at", Float),
    Column("finished_at", Float),
    Column("outcome", Text),  # JSON: failure_class, exit_code, error, outputs, usage
    PrimaryKeyConstraint("run_id", "step_id", "number", name="pk_work_items"),
    Index("ix_work_items_state", "state", "created_at"),
    Index("ix_work_items_run", "run_id", "state"),
)

log_chunks = Table(
    "log_chunks",
    metadata,
    Column("run_id", String(64), nullable=False),
    Column("step_id", String(), nullable=False),
    Column("number", Integer, nullable=False),
    Column("stream", String(8), nullable=False),  # stdout | stderr
    Column("seq", Integer, nullable=False),
    Column("data", Text, nullable=False),
    PrimaryKeyConstraint("run_id", "step_id", "number", "stream", "seq", name="pk_log_chunks"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("name", String(), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)

worktrees = Table(
    "worktrees",
    metadata,
    Column("run_id", String(64), nullable=False),
    Column("step_id", String(), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("path", Text, nullable=False),
    Column("branch", String(), nullable=False),
    Column("base", String(), nullable=False),  # the commit the branch started from
    Column("repo", Text, nullable=False),  # the checkout it merges back into
    # active | merged | review | conflict | kept | removed
    Column("state", String(16), nullable=False),
    Column("merge", String(16), nullable=False),  # auto | review
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("run_id", "step_id", "attempt", name="pk_worktrees"),
)

# One row per finished attempt: what was known when it was dispatched and how it ended — the
# failure model's training data (ml/features.py derives the history features from it).
telemetry = Table(
    "telemetry",
    metadata,
    # A rowid key: rows arrive in time order, so inserts append to the table and to the one
    # index, the cheapest a commit of the scheduler can pay. An attempt ends once (its end is
    # a compare-and-set in the same transaction), so no uniqueness key is needed.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("step_id", String(), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("plan", String(), nullable=False),
    Column("step", String(), nullable=False),  # the id in the plan (`shard` for `shard[2]`)
    Column("agent", String()),
    Column("kind", String(16), nullable=False),  # shell | python | agent
    Column("family", String()),  # the command's first word(s): `git push`, `pytest`
    Column("risk_score", Float),
    Column("risk_reasons", Text, nullable=False),  # JSON list of strings
    Column("predicted_failure", Float),  # the model's answer at dispatch, when one was used
    Column("fan_in", Integer, nullable=False),
    Column("parallelism", Integer, nullable=False),  # running at once as it starts (api.py)
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=False),
    Column("outcome", String(16), nullable=False),  # succeeded | failed | cancelled
    Column("failure_class", String(32)),
    Column("cost_usd", Float),
    Index("ix_telemetry_started", "started_at"),
)
