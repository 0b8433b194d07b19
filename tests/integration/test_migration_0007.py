"""Migration 0007 adds the merchant flag, the insolvency stage and administrator, and the
factor of an invoice to a store at 0006, keeping its rows; it can be undone."""

from __future__ import annotations

from sqlalchemy import inspect, text

from adapters.store import _alembic_config, make_engine, schema_is_current

NEW_DEBTOR_COLUMNS = {"merchant", "insolvency_stage", "insolvency_administrator", "insolvency_closed_on"}


def _columns(engine, table: str) -> set[str]:
    with engine.connect() as connection:
        return {c["name"] for c in inspect(connection).get_columns(table)}


def test_rows_stored_before_0007_are_kept_with_nothing_said_and_0007_can_be_undone(database_url):
    from alembic import command

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    command.upgrade(config, "0006")
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
    assert not NEW_DEBTOR_COLUMNS & _columns(engine, "debtors")

    command.upgrade(config, "head")
    assert schema_is_current(engine)
    with engine.connect() as connection:
        debtor = connection.execute(
            text("SELECT id, merchant, insolvency_stage, insolvency_administrator FROM debtors")
        ).one()
        invoice = connection.execute(text("SELECT number, factored_by FROM invoices")).one()
    assert tuple(debtor) == ("D-1", None, None, None)  # not said: no merchant route, no procedure
    assert tuple(invoice) == ("F-1", None)

    command.downgrade(config, "0006")
    assert not NEW_DEBTOR_COLUMNS & _columns(engine, "debtors")
    assert "factored_by" not in _columns(engine, "invoices")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT number FROM invoices")).scalar_one() == "F-1"
    engine.dispose()
