"""Migration 0011 makes an existing store creditor ``default``: every row keeps its data, the
evidence chain still verifies, and another creditor can then use the same invoice numbers
and debtor ids. Tested on a store populated by the service itself, taken back to 0010."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, inspect, select, text

from adapters.orm import DebtorRow, EvidenceRecord, InvoiceRow, MessageRow, PlannedStep
from adapters.store import _alembic_config, schema_is_current, transaction
from relance.reports import verify_chains
from tests.integration.test_creditors import creditors_file, of
from tests.integration.test_flow import at
from tests.support import advance, ingest, invoice_issued, make_test_app, payment

TABLES = ("debtors", "invoices", "planned_steps", "messages", "inbox_events", "evidence", "payments")


def counts(app) -> dict[str, int]:
    with app.engine.connect() as connection:
        return {t: connection.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in TABLES}


def test_a_populated_store_at_0010_becomes_creditor_default_and_still_verifies(database_url, tmp_path):
    from alembic import command

    app = make_test_app(
        database_url, tmp_path, at("2026-03-02 10:00"), creditors_file=creditors_file(tmp_path)
    )
    ingest(app, invoice_issued("F-1", "2026-04-01"), invoice_issued("F-2", "2026-04-02", "800.00"))
    advance(app, at("2026-03-27 09:00"))  # pre-due reminders: messages and evidence
    ingest(app, payment("F-1", "1200.00", "2026-03-30"))
    before = counts(app)
    assert before["messages"] >= 1 and before["evidence"] >= 5 and before["payments"] == 1
    config = _alembic_config(app.engine)

    command.downgrade(config, "0010")  # one creditor: it can go back
    with app.engine.connect() as connection:
        assert "creditor_id" not in {c["name"] for c in inspect(connection).get_columns("invoices")}
    assert counts(app) == before

    command.upgrade(config, "head")
    assert schema_is_current(app.engine) and counts(app) == before
    with transaction(app.sessions) as uow:
        uow.scope(None)
        for row in (DebtorRow, InvoiceRow, PlannedStep, MessageRow, EvidenceRecord):
            creditors = uow.execute(select(row.creditor_id, func.count()).group_by(row.creditor_id)).all()
            assert [c for c, _ in creditors] == ["default"], row.__tablename__
        kept = {r.number: (r.amount_due, r.status) for r in uow.execute(select(InvoiceRow)).scalars()}
    assert kept == {"F-1": (Decimal("1200.00"), "settled"), "F-2": (Decimal("800.00"), "open")}
    assert {name: check.ok for name, check in verify_chains(app).items()} == {"default": True}

    # another creditor's F-2 and D-1 are its own; the migrated ones go on as before
    assert ingest(app, of("atelier", invoice_issued("F-2", "2026-04-02", "50.00"))) == ["accepted"]
    ingest(app, payment("F-2", "800.00", "2026-03-31"))
    with transaction(app.sessions) as uow:
        uow.scope(None)
        rows = uow.execute(
            select(InvoiceRow.creditor_id, InvoiceRow.status).where(InvoiceRow.number == "F-2")
        )
        assert dict(rows.all()) == {"default": "settled", "atelier": "open"}
    assert all(check.ok for check in verify_chains(app).values())
    app.dispose()


def test_0011_cannot_be_undone_once_a_second_creditor_has_rows(database_url, tmp_path):
    import pytest
    from alembic import command

    app = make_test_app(
        database_url, tmp_path, at("2026-03-02 10:00"), creditors_file=creditors_file(tmp_path)
    )
    ingest(app, of("atelier", invoice_issued("F-1", "2026-04-01")))
    with pytest.raises(
        RuntimeError, match="cannot undo 0011: debtors holds rows of creditors other than default"
    ):
        command.downgrade(_alembic_config(app.engine), "0010")
    assert schema_is_current(app.engine)
    app.dispose()
