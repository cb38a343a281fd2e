"""Open the store named by a database URL, its schema brought to head on the way.

This package's import stays light (no SQLAlchemy, no Alembic) because every module that only
needs the records in api.py imports it. Opening checks the schema revision with one plain query
and imports Alembic only when that differs from HEAD_REVISION — so a command like
`agenthq status` never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agenthq.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL

    from agenthq.store.sql import SqlStore

# The newest revision in migrations/versions/; a test checks it against Alembic's head.
HEAD_REVISION = "0006"

__all__ = ["HEAD_REVISION", "open_store"]


def open_store(url: str) -> SqlStore:
    """A Store for `url` (`sqlite:///path/to/agenthq.db`); StoreError when it cannot be used."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from agenthq.store.sql import SqlStore

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"{url!r} is not a database URL; use one like sqlite:///.agenthq/agenthq.db"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    engine = _engine(parsed.get_backend_name(), parsed, shown)
    try:
        _migrate(engine, shown)
    except DBAPIError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the database at {shown}: {exc.orig}") from None
    except BaseException:
        engine.dispose()
        raise
    return SqlStore(engine, url)


def _engine(backend: str, parsed: URL, shown: str) -> Engine:
    if backend != "sqlite":
        raise StoreError(
            f"agenthq cannot store runs in {backend!r} databases ({shown}); use a sqlite:/// URL"
        )
    from agenthq.store.sqlite import sqlite_engine

    try:
        return sqlite_engine(parsed)
    except OSError as exc:
        raise StoreError(f"cannot create the directory for the database {shown}: {exc}") from None


def _migrate(engine: Engine, shown: str) -> None:
    from agenthq.store import migrations
    from agenthq.store.sql import WRITE_OPTION

    with engine.connect() as conn:
        current = migrations.current_revision(conn)
    if current == HEAD_REVISION:
        return
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        migrations.upgrade(conn, shown)
