"""Migration 0017 adds the imported bank statement entries to a store at 0013; it can be undone."""

from __future__ import annotations

from sqlalchemy import inspect

from adapters.store import _alembic_config, make_engine


def test_0017_adds_the_bank_entries_and_can_be_undone(database_url):
    from alembic import command

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    command.upgrade(config, "0013")
    with engine.connect() as connection:
        assert "bank_entries" not in inspect(connection).get_table_names()
    command.upgrade(config, "0017")
    with engine.connect() as connection:
        found = inspect(connection)
        columns = {c["name"] for c in found.get_columns("bank_entries")}
        assert {"creditor_id", "entry_key", "amount", "value_date", "status", "reason"} <= columns
        assert {"candidates", "allocations", "end_to_end_id", "matched_by"} <= columns
        unique = {tuple(u["column_names"]) for u in found.get_unique_constraints("bank_entries")}
        assert ("creditor_id", "entry_key") in unique
    command.downgrade(config, "0013")
    with engine.connect() as connection:
        assert "bank_entries" not in inspect(connection).get_table_names()
    engine.dispose()
