"""Migration 0006 adds invoices.policy_key to a store at 0005, keeping its invoices."""

from __future__ import annotations

from sqlalchemy import inspect, text

from adapters.store import _alembic_config, make_engine, schema_is_current


def _columns(engine) -> set[str]:
    with engine.connect() as connection:
        return {c["name"] for c in inspect(connection).get_columns("invoices")}


def test_an_invoice_stored_before_0006_is_kept_with_no_policy_key_and_0006_can_be_undone(database_url):
    from alembic import command

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    command.upgrade(config, "0005")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO debtors (id, name, kind, language, timezone, country, address, opt_out,"
                " email_bounced, updated_at) VALUES ('D-1', 'ACME', 'business', 'fr', 'Europe/Paris',"
                " 'FR', '{}', false, false, '2026-03-02T09:00:00+00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO invoices (number, debtor_id, issue_date, due_date, currency, amount_due,"
                " paid, credited, status, disputed, ever_disputed, in_payment_plan, created_at,"
                " updated_at) VALUES ('F-1', 'D-1', '2026-03-02', '2026-04-01', 'EUR', 120000,"
                " 0, 0, 'open', false, false, false, '2026-03-02T09:00:00+00:00',"
                " '2026-03-02T09:00:00+00:00')"
            )
        )
    assert "policy_key" not in _columns(engine)

    command.upgrade(config, "head")
    assert schema_is_current(engine)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT number, policy_key FROM invoices")).one()
    assert tuple(row) == ("F-1", None)  # not known: the start-up pass checks it

    command.downgrade(config, "0005")
    assert "policy_key" not in _columns(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT number FROM invoices")).scalar_one() == "F-1"
    engine.dispose()
