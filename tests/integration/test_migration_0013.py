"""Migration 0013 adds the signals outbox to a store at 0011; it can be undone."""

from __future__ import annotations

from sqlalchemy import inspect

from adapters.store import _alembic_config, make_engine


def test_0013_adds_the_signals_outbox_and_can_be_undone(database_url):
    from alembic import command

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    command.upgrade(config, "0012")
    with engine.connect() as connection:
        assert "signals" not in inspect(connection).get_table_names()
    command.upgrade(config, "0013")
    with engine.connect() as connection:
        found = inspect(connection)
        columns = {c["name"] for c in found.get_columns("signals")}
        assert {"creditor_id", "subscriber", "signal_type", "idempotency_key", "payload"} <= columns
        assert {"status", "attempts", "lease_until", "last_error", "response_code", "delivered_at"} <= columns
        assert "ix_signals_pending" in {i["name"] for i in found.get_indexes("signals")}
    command.downgrade(config, "0012")
    with engine.connect() as connection:
        assert "signals" not in inspect(connection).get_table_names()
    engine.dispose()
