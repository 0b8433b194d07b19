"""Set-based writes: many new rows of one table in one statement.

``insert_rows`` writes plain rows (dicts of column values, every row the same keys) that
no mapped object stands for: with ``COPY ... FROM STDIN`` on PostgreSQL, with one
``executemany`` elsewhere (SQLite's is a loop in C). The column types' conversions
(``adapters.types``: UTC datetimes, money in cents, JSON) are applied as an ``INSERT``
would apply them. The unit of work writes planned steps and evidence records this way
(``adapters.uow``): per row, a mapped object and its flush cost ten times as much.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert
from sqlalchemy.exc import DBAPIError

_Processors = list[tuple[str, Callable[[Any], Any] | None]]
_processors_cache: dict[tuple[str, str, tuple[str, ...]], _Processors] = {}


def insert_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table`` within ``connection``'s transaction."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), list(rows))
        return
    processors = _processors(connection, table, tuple(rows[0]))
    columns = ", ".join(connection.dialect.identifier_preparer.quote(name) for name, _ in processors)
    statement = f"COPY {table.name} ({columns}) FROM STDIN"
    driver = connection.connection.driver_connection
    if driver is None:
        raise RuntimeError("the connection was closed")
    dbapi = connection.dialect.loaded_dbapi
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[name] if bind is None else bind(row[name]) for name, bind in processors])
    except dbapi.Error as exc:  # as SQLAlchemy raises them: IntegrityError, OperationalError...
        raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc


def _processors(connection: Connection, table: Table, names: tuple[str, ...]) -> _Processors:
    """Each named column with its type's bind conversion (None: the value as it is)."""
    key = (connection.dialect.name, table.name, names)
    found = _processors_cache.get(key)
    if found is None:
        dialect = connection.dialect
        found = [(name, table.c[name].type._cached_bind_processor(dialect)) for name in names]
        _processors_cache[key] = found
    return found
