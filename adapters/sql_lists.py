"""A column among a list of values, as each database runs it best.

SQLAlchemy renders ``column.in_(values)`` as ``IN (...)`` with one parameter per value,
expanded at each execution: the statement's text depends on how many values it is given,
so neither SQLAlchemy's compiled form nor psycopg's parsing of the text is reused, and the
expansion itself is Python work per value. On PostgreSQL ``column = ANY(:values)`` takes one
array parameter instead: the text is the same for any number of values (``relance ingest``
reads ahead 500 event ids, debtors and invoices at a time, and a payment's statements ask
for a few statuses). Elsewhere (SQLite) the expanding ``IN`` stays.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def one_of(column: Any, name: str, postgres: bool) -> ColumnElement[bool]:
    """``column`` among the values of the parameter ``name`` (a list given at execution)."""
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def not_one_of(column: Any, name: str, postgres: bool) -> ColumnElement[bool]:
    """``column`` among none of the values of the parameter ``name``."""
    if postgres:
        return ~(column == any_(bindparam(name, type_=ARRAY(column.type))))
    return column.not_in(bindparam(name, expanding=True))
