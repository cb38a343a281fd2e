"""Bringing a database's schema to head with Alembic, configured in code (no alembic.ini).

Imported only when the cheap revision check in agenthq.store finds the schema missing or
behind, so ordinary commands never pay for importing Alembic. A brand-new, empty database
skips Alembic altogether: it gets tables.metadata with create_all and is stamped at head —
Alembic's own recipe for "building an up to date database from scratch", minus the import
(a third of a second on the first run). tests/unit/test_migrations.py proves both paths
build the same schema.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from agenthq.errors import StoreError

SCRIPT_LOCATION = "agenthq.store:migrations"


def config() -> Any:
    from alembic.config import Config

    settings = Config()
    settings.set_main_option("script_location", SCRIPT_LOCATION)
    return settings


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(config()).get_current_head()
    if head is None:
        raise StoreError("agenthq is installed without its schema migrations; reinstall it")
    return str(head)


def upgrade(connection: Connection, shown_url: str) -> None:
    """Migrate to head inside the caller's write transaction; refuse a database whose
    revision this agenthq does not know (written by a newer version)."""
    current = current_revision(connection)
    if current is None and _is_empty(connection):
        create_at_head(connection)
        return
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    settings = config()
    if current is not None:
        try:
            known = ScriptDirectory.from_config(settings).get_revision(current)
        except CommandError:
            known = None
        if known is None:
            raise newer_schema(shown_url, current)
    settings.attributes["connection"] = connection
    command.upgrade(settings, "head")


def create_at_head(connection: Connection) -> None:
    """Build the head schema from tables.metadata and stamp it, without running Alembic."""
    from agenthq.store import HEAD_REVISION
    from agenthq.store.chain import GENESIS
    from agenthq.store.tables import CHAIN_HEAD_ID, chain_head, metadata

    metadata.create_all(connection)
    connection.execute(chain_head.insert().values(id=CHAIN_HEAD_ID, seq=0, hash=GENESIS))
    connection.execute(
        text(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
    )
    connection.execute(
        text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": HEAD_REVISION}
    )


def _is_empty(connection: Connection) -> bool:
    from sqlalchemy import inspect

    return not inspect(connection).get_table_names()


def current_revision(connection: Connection) -> str | None:
    """The schema revision recorded in the database, or None for a database without one.

    A savepoint keeps a failed lookup (no table yet) from spoiling the caller's transaction
    on databases that abort a transaction on any error.
    """
    from sqlalchemy.exc import DBAPIError

    try:
        with connection.begin_nested():
            value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None
    return None if value is None else str(value)


def newer_schema(shown_url: str, revision: str) -> StoreError:
    return StoreError(
        f"the database at {shown_url} has schema revision {revision!r}, written by a newer "
        "agenthq; upgrade agenthq to use it"
    )
