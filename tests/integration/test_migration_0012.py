"""Migration 0012 adds the holds of invoices and debtors to a store at 0011; it can be undone."""

from __future__ import annotations

from sqlalchemy import inspect

from adapters.store import _alembic_config, make_engine

HOLD_COLUMNS = {"hold_reason", "held_until"}


def _columns(engine, table: str) -> set[str]:
    with engine.connect() as connection:
        return {c["name"] for c in inspect(connection).get_columns(table)}


def test_0012_adds_the_hold_columns_and_can_be_undone(database_url):
    from alembic import command

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    command.upgrade(config, "0011")
    assert not HOLD_COLUMNS & _columns(engine, "invoices")
    command.upgrade(config, "0012")
    assert _columns(engine, "invoices") >= HOLD_COLUMNS
    assert _columns(engine, "debtors") >= HOLD_COLUMNS
    command.downgrade(config, "0011")
    assert not HOLD_COLUMNS & _columns(engine, "invoices")
    assert not HOLD_COLUMNS & _columns(engine, "debtors")
    assert "creditor_id" in _columns(engine, "invoices")  # 0011 left as it was
    engine.dispose()
