"""Migration 0018 adds the tasks table and the debtor's phone to a store at 0017; it can be undone."""

from __future__ import annotations

from sqlalchemy import inspect

from adapters.store import _alembic_config, make_engine


def test_0018_adds_tasks_and_the_phone_and_can_be_undone(database_url):
    """Given a store at 0017, when upgraded to 0018 then downgraded, then the tasks table
    and debtors.phone appear, then go."""
    from alembic import command

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    command.upgrade(config, "0017")
    with engine.connect() as connection:
        assert "tasks" not in inspect(connection).get_table_names()
    command.upgrade(config, "0018")
    with engine.connect() as connection:
        found = inspect(connection)
        columns = {c["name"] for c in found.get_columns("tasks")}
        assert {"creditor_id", "task_key", "debtor_id", "kind", "step", "phone", "invoice_numbers"} <= columns
        assert {
            "amounts",
            "due_on",
            "status",
            "outcome",
            "note",
            "promised_date",
            "done_by",
            "done_at",
        } <= columns
        assert "phone" in {c["name"] for c in found.get_columns("debtors")}
    command.downgrade(config, "0017")
    with engine.connect() as connection:
        found = inspect(connection)
        assert "tasks" not in found.get_table_names()
        assert "phone" not in {c["name"] for c in found.get_columns("debtors")}
    engine.dispose()
