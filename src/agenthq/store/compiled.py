"""Hot-path statements handed to the database driver as compiled SQL.

The scheduler commits every tick, and building, compiling and type-processing Core statements
cost more than SQLite spent running them; these helpers compile each statement once per
process and run it on the transaction's own DBAPI cursor, with plain parameters. Even
SQLAlchemy's `exec_driver_sql` cost three times what SQLite took for these small statements
(result objects, event dispatch): about a quarter of a chain's run phase. Only for columns of
strings, numbers and JSON text, which need no type processing; driver errors are raised as
SQLAlchemy's, exactly as `exec_driver_sql` would raise them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase


def executemany(
    conn: Connection, key: Hashable, build: Callable[[], UpdateBase], rows: list[dict[str, Any]]
) -> int:
    """Run the statement `build` makes once per row, handing the rows straight to the
    driver's executemany.

    SQLAlchemy's own executemany spends as long preparing parameters as SQLite spends
    executing them; the hot-path columns are strings and numbers, which need no type
    processing, so the compiled SQL and plain parameters are passed to the driver instead.
    The SQL is compiled once per (dialect, statement key, columns) for the process: compiling
    cost more than executing on every scheduler commit.
    """
    sql, order = _compiled(conn, key, build, tuple(rows[0]))
    params: list[Any] = rows
    if order is not None:
        pick = itemgetter(*order)
        params = [pick(row) for row in rows] if len(order) > 1 else [(pick(r),) for r in rows]
    cursor = _executed(conn, sql, params, many=True)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


_Compiled = tuple[str, tuple[str, ...] | None]  # SQL text, parameter order when positional
_COMPILED_SQL: dict[tuple[Hashable, ...], _Compiled] = {}


def _compiled(
    conn: Connection, key: Hashable, build: Callable[[], Any], columns: tuple[str, ...]
) -> _Compiled:
    dialect = conn.dialect
    cache_key = (dialect.name, dialect.driver, dialect.paramstyle, key, columns)
    entry = _COMPILED_SQL.get(cache_key)
    if entry is None:
        compiled = build().compile(dialect=dialect, column_keys=list(columns))
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        entry = _COMPILED_SQL[cache_key] = (compiled.string, order)
    return entry


def execute_one(
    conn: Connection, key: Hashable, build: Callable[[], Any], params: dict[str, Any]
) -> None:
    """One execution of a per-tick write through the same compiled-SQL cache as
    `executemany`: building and compiling Core statements cost more than running them."""
    _executed(conn, *_bound(conn, key, build, params), many=False).close()


def fetch_one(
    conn: Connection, key: Hashable, build: Callable[[], Any], params: dict[str, Any]
) -> Any:
    """The first row of a per-tick query (None when there is none), the same way. The cursor
    is closed at once: an open SQLite statement would hold back WAL checkpoints."""
    cursor = _executed(conn, *_bound(conn, key, build, params), many=False)
    try:
        return cursor.fetchone()
    finally:
        cursor.close()


def fetch_all(
    conn: Connection, key: Hashable, build: Callable[[], Any], params: dict[str, Any]
) -> list[Any]:
    """Every row of a query whose columns need no type processing (strings, numbers, JSON
    text), the same way: SQLAlchemy's result rows cost twice what the driver's tuples do, and
    a run's start reads every step row (5000 for W3)."""
    cursor = _executed(conn, *_bound(conn, key, build, params), many=False)
    try:
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _bound(
    conn: Connection, key: Hashable, build: Callable[[], Any], params: dict[str, Any]
) -> tuple[str, Any]:
    sql, order = _compiled(conn, key, build, tuple(params))
    return sql, (tuple(params[name] for name in order) if order is not None else params)


def _executed(conn: Connection, sql: str, params: Any, *, many: bool) -> Any:
    """A DBAPI cursor that ran `sql`, inside `conn`'s transaction."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    connection = conn.connection.dbapi_connection
    assert connection is not None
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
    except dbapi_error as exc:
        cursor.close()
        raise DBAPIError.instance(
            sql, params, exc, dbapi_error, dialect=conn.dialect, ismulti=many
        ) from exc
    return cursor
