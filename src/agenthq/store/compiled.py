"""Hot-path statements handed to the database driver as compiled SQL.

The scheduler commits every tick, and building, compiling and type-processing Core statements
cost more than SQLite spent running them; these helpers compile each statement once per
process and pass plain parameters straight to the driver. Only for columns of strings,
numbers and JSON text, which need no type processing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection
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
    return int(conn.exec_driver_sql(sql, params).rowcount)


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
) -> Any:
    """One execution of a per-tick statement through the same compiled-SQL cache as
    `executemany`: building and compiling Core statements cost more than running them."""
    sql, order = _compiled(conn, key, build, tuple(params))
    bound: Any = tuple(params[name] for name in order) if order is not None else params
    return conn.exec_driver_sql(sql, bound)
