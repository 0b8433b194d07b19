"""``adapters.sql_lists``: a column among a list of values, on SQLite and PostgreSQL.

The rows found are those of ``IN`` / ``NOT IN``, an empty list included; on PostgreSQL the
statement's text is the same whatever the number of values (one array parameter), so
psycopg parses it once and may prepare it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.dialects import postgresql

from adapters.sql_lists import not_one_of, one_of

ROWS = [(1, "planned"), (2, "claimed"), (3, "done"), (4, "cancelled"), (5, None)]


@pytest.fixture
def table(database_url):
    engine = create_engine(database_url)
    metadata = MetaData()
    steps = Table(
        "list_steps", metadata, Column("id", Integer, primary_key=True), Column("status", String(10))
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(steps), [{"id": i, "status": s} for i, s in ROWS])
    yield engine, steps
    engine.dispose()


@pytest.mark.parametrize(
    "values", [["planned", "claimed"], ["done"], [], ["nothing"], ["planned", "claimed", "done", "cancelled"]]
)
def test_one_of_and_not_one_of_find_the_rows_in_and_not_in_find(table, values):
    engine, steps = table
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as connection:

        def ids(condition, **params):
            return (
                connection.execute(select(steps.c.id).where(condition).order_by(steps.c.id), params)
                .scalars()
                .all()
            )

        among = ids(one_of(steps.c.status, "values", postgres), values=values)
        outside = ids(not_one_of(steps.c.status, "values", postgres), values=values)
        assert among == ids(steps.c.status.in_(values))
        assert outside == ids(steps.c.status.not_in(values))
    # worked out: the row of each status named; a NULL status is neither among nor outside
    # the values, but outside an empty list (there is nothing it could equal)
    assert among == [i for i, s in ROWS if s in values]
    assert outside == [i for i, s in ROWS if s not in values and (s is not None or not values)]


def test_on_postgresql_the_text_does_not_depend_on_the_number_of_values():
    steps = Table(
        "list_steps", MetaData(), Column("id", Integer, primary_key=True), Column("status", String(10))
    )
    statement = select(steps.c.id).where(one_of(steps.c.status, "values", True))
    dialect = postgresql.psycopg.dialect()
    few = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    text = str(few)
    assert "= ANY (%(values)s::VARCHAR(10)[])" in text
    assert "POSTCOMPILE" not in text and "IN (" not in text
