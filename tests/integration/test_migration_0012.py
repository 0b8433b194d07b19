"""Migration 0012 adds the holds of invoices and debtors and the reversals of payments to a
store at 0011; it can be undone."""

from __future__ import annotations

from sqlalchemy import inspect

from adapters.store import _alembic_config, make_engine

HOLD_COLUMNS = {"hold_reason", "held_until"}
PAYMENT_COLUMNS = {"payment_id", "reversed_on"}
UNIQUE_PAYMENT_ID = "uq_payments_creditor_invoice_payment"


def _indexes(engine, table: str) -> dict[str, tuple[bool, list[str]]]:
    with engine.connect() as connection:
        return {
            i["name"]: (bool(i["unique"]), i["column_names"]) for i in inspect(connection).get_indexes(table)
        }


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
    assert _columns(engine, "payments") >= PAYMENT_COLUMNS
    assert _indexes(engine, "payments")[UNIQUE_PAYMENT_ID] == (
        True,
        ["creditor_id", "invoice_id", "payment_id"],
    )
    command.downgrade(config, "0011")
    assert not HOLD_COLUMNS & _columns(engine, "invoices")
    assert not HOLD_COLUMNS & _columns(engine, "debtors")
    assert not PAYMENT_COLUMNS & _columns(engine, "payments")
    assert UNIQUE_PAYMENT_ID not in _indexes(engine, "payments")
    assert "creditor_id" in _columns(engine, "invoices")  # 0011 left as it was
    engine.dispose()
