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
HEAD_REVISION = "0008"

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
    if backend in ("postgresql", "postgres"):
        from agenthq.store.postgres import postgres_engine

        return postgres_engine(parsed)
    if backend != "sqlite":
        raise StoreError(
            f"agenthq cannot store runs in {backend!r} databases ({shown}); use a sqlite:/// "
            "or postgresql+psycopg:// URL"
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
        if conn.dialect.name == "postgresql":
            # Processes opening a new database at once queue here (SQLite's BEGIN IMMEDIATE
            # does the same); the next one then finds the schema at head and does nothing.
            from sqlalchemy import text

            conn.execute(text("SELECT pg_advisory_xact_lock(5318008)"))
            if migrations.current_revision(conn) == HEAD_REVISION:
                return
        migrations.upgrade(conn, shown)


MIN_POSTGRES = 13  # SKIP LOCKED, generated identity, and the JSON we store: 9.5+; tested 18


def check_database(url: str) -> str | None:
    """What is wrong with a database URL, in one sentence — None when agenthq can use it as
    it is. Reads only: it never creates or migrates anything."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"{url!r} is not a database URL; use sqlite:///PATH or postgresql+psycopg://…"
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        from pathlib import Path

        if parsed.database and not Path(parsed.database).exists():
            return f"{shown}: the file does not exist yet; `agenthq db upgrade` creates it"
    try:
        engine = _engine(backend, parsed, shown)
    except StoreError as exc:
        return str(exc)
    from agenthq.store import migrations

    try:
        with engine.connect() as conn:
            if backend in ("postgresql", "postgres"):
                version = conn.dialect.server_version_info or (0,)
                major = int(version[0])
                if major < MIN_POSTGRES:
                    return f"{shown} runs PostgreSQL {major}; agenthq needs {MIN_POSTGRES} or newer"
            current = migrations.current_revision(conn)
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"cannot connect to {shown}: {reason}"
    finally:
        engine.dispose()
    if current is None:
        return f"{shown} has no agenthq schema; `agenthq db upgrade` creates it"
    if current != HEAD_REVISION:
        if current.isdigit() and HEAD_REVISION.isdigit() and int(current) > int(HEAD_REVISION):
            return f"{shown} is at schema {current}, newer than this agenthq ({HEAD_REVISION}); upgrade agenthq"
        return (
            f"{shown} is at schema {current}, not {HEAD_REVISION}; `agenthq db upgrade` migrates it"
        )
    return None
