"""What only SQLite needs: connection pragmas and taking the write lock up front.

WAL lets readers run while one process writes; `synchronous=NORMAL` keeps every commit across
a process crash. pysqlite's own transaction handling is switched off so that we emit BEGIN
ourselves: `BEGIN IMMEDIATE` for write transactions, so a second writing process waits on
`busy_timeout` at BEGIN instead of failing with "database is locked" when it upgrades a read
lock later; plain (deferred) `BEGIN` for reads, which never wait for writers.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from agenthq.store.sql import WRITE_OPTION

BUSY_TIMEOUT_MS = 30_000


def sqlite_engine(url: URL) -> Engine:
    """An engine whose every connection has our pragmas and whose transactions BEGIN as asked."""
    _make_parent_directory(url)
    engine = create_engine(url)
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def _make_parent_directory(url: URL) -> None:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, see _on_begin
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    """WAL is a property of the file: set it once. Switching needs a moment of exclusive
    access, which the busy handler does not always wait for, so a fresh file opened by several
    processes at once retries briefly."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _on_begin(connection: Connection) -> None:
    """Straight to the driver: `exec_driver_sql` cost a third of a whole transaction's
    overhead (result objects, event dispatch) for a statement that returns nothing, on every
    scheduler tick and every read. Its errors ("database is locked" once busy_timeout ran
    out) are raised as SQLAlchemy's, exactly as `exec_driver_sql` would raise them."""
    writing = connection.get_execution_options().get(WRITE_OPTION, False)
    statement = "BEGIN IMMEDIATE" if writing else "BEGIN"
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        driver.execute(statement)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(statement, (), exc, sqlite3.Error) from exc
