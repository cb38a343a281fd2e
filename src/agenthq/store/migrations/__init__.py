"""Bringing a database's schema to head with Alembic, configured in code (no alembic.ini).

Imported only when the cheap revision check in agenthq.store finds the schema missing or
behind, so ordinary commands never pay for importing Alembic.
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
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    settings = config()
    current = current_revision(connection)
    if current is not None:
        try:
            known = ScriptDirectory.from_config(settings).get_revision(current)
        except CommandError:
            known = None
        if known is None:
            raise newer_schema(shown_url, current)
    settings.attributes["connection"] = connection
    command.upgrade(settings, "head")


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
