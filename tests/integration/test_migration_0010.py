"""Migration 0010 adds the debtors' salts and the time of erasure to a store at 0009; it
can be undone."""

from __future__ import annotations

from sqlalchemy import inspect

from adapters.store import _alembic_config, make_engine


def test_0010_adds_the_salts_and_erased_at_and_can_be_undone(database_url):
    from alembic import command

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    command.upgrade(config, "0009")
    with engine.connect() as connection:
        assert "debtor_salts" not in inspect(connection).get_table_names()
    command.upgrade(config, "0010")
    with engine.connect() as connection:
        found = inspect(connection)
        assert {c["name"] for c in found.get_columns("debtor_salts")} == {"debtor_id", "salt", "created_at"}
        assert "erased_at" in {c["name"] for c in found.get_columns("debtors")}
    command.downgrade(config, "0009")
    with engine.connect() as connection:
        found = inspect(connection)
        assert "debtor_salts" not in found.get_table_names()
        assert "erased_at" not in {c["name"] for c in found.get_columns("debtors")}
    engine.dispose()
