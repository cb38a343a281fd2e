"""Alembic's environment, run only programmatically by agenthq.store.migrations.upgrade.

The caller hands over a connection that already holds the write transaction (and, on SQLite,
the write lock), so Alembic joins it instead of managing its own: two processes opening a new
database at once migrate it once, the second finding it already at head.
"""

from __future__ import annotations

from alembic import context

from agenthq.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "agenthq migrations run through agenthq.store.open_store, not the alembic command"
    )
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
