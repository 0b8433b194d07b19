"""The store keeps money exact and times aware on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, StatementError

from adapters.orm import DebtorRow, InvoiceRow, MessageItem, PlannedStep
from adapters.store import make_engine, migrate, schema_is_current
from adapters.store import transaction as tx


def _debtor(session, now):
    session.add(
        DebtorRow(
            id="D-1",
            name="ACME",
            kind="business",
            email=None,
            language="fr",
            timezone="Europe/Paris",
            country="FR",
            address={},
            opt_out=False,
            email_bounced=False,
            updated_at=now,
        )
    )


def _invoice(number: str, amount: Decimal, now: datetime) -> InvoiceRow:
    return InvoiceRow(
        number=number,
        debtor_id="D-1",
        issue_date=date(2026, 1, 1),
        due_date=date(2026, 1, 31),
        currency="EUR",
        amount_due=amount,
        paid=Decimal("0.00"),
        credited=Decimal("0.00"),
        status="open",
        disputed=False,
        ever_disputed=False,
        in_payment_plan=False,
        created_at=now,
        updated_at=now,
    )


def test_migrate_brings_the_schema_to_the_current_revision(database_url):
    engine = make_engine(database_url)
    assert not schema_is_current(engine)
    migrate(engine)
    assert schema_is_current(engine)
    migrate(engine)  # a second run changes nothing
    assert schema_is_current(engine)


def test_money_round_trips_exactly_and_sums_without_drift(sessions):
    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    large = Decimal("98765432109.87")
    with tx(sessions) as session:
        _debtor(session, now)
        session.add(_invoice("BIG", large, now))
        for index in range(100):
            session.add(_invoice(f"C-{index}", Decimal("0.10"), now))
    with tx(sessions) as session:
        assert (
            session.execute(select(InvoiceRow.amount_due).where(InvoiceRow.number == "BIG")).scalar_one()
            == large
        )
        total = sum(
            session.execute(select(InvoiceRow.amount_due).where(InvoiceRow.number.like("C-%"))).scalars()
        )
        assert total == Decimal("10.00")
        summed = session.execute(select(func.sum(InvoiceRow.amount_due))).scalar_one()
        assert summed == large + Decimal("10.00")  # SUM over integer cents: exact


def test_more_than_two_decimals_is_refused_rather_than_rounded(sessions):
    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    with pytest.raises(StatementError, match="more than two decimals"), tx(sessions) as session:
        _debtor(session, now)
        session.add(_invoice("X", Decimal("1.005"), now))


def test_datetimes_come_back_aware_in_utc_and_naive_ones_are_refused(sessions):
    paris = timezone(timedelta(hours=2))
    instant = datetime(2026, 7, 1, 9, 0, tzinfo=paris)
    with tx(sessions) as session:
        _debtor(session, instant)
    with tx(sessions) as session:
        stored = session.get(DebtorRow, ("default", "D-1")).updated_at
    assert stored == instant and stored.utcoffset() == timedelta(0)
    assert stored.hour == 7
    with pytest.raises(StatementError, match="naive datetime"), tx(sessions) as session:
        session.get(DebtorRow, ("default", "D-1")).updated_at = datetime(2026, 7, 1, 9)


def test_an_invoice_step_and_channel_can_be_recorded_only_once(sessions):
    from adapters.orm import MessageRow

    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    with tx(sessions) as session:
        _debtor(session, now)
        invoice = _invoice("F-1", Decimal("10.00"), now)
        session.add(invoice)
        session.flush()
        message = MessageRow(
            message_id="<a@x>",
            debtor_id="D-1",
            channel="email",
            step="due",
            local_day=date(2026, 3, 1),
            recipient="a@x",
            subject="s",
            body_text="b",
            content=b"b",
            content_sha256="0" * 64,
            amounts={},
            status="pending",
            attempts=0,
            created_at=now,
        )
        session.add(message)
        session.flush()
        session.add(MessageItem(message_pk=message.id, invoice_id=invoice.id, step="due", channel="email"))
    with pytest.raises(IntegrityError), tx(sessions) as session:
        session.add(MessageItem(message_pk=1, invoice_id=1, step="due", channel="email"))


def test_due_steps_are_found_through_the_status_and_due_index(sessions, database_url):
    engine = sessions.kw["bind"]
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM planned_steps "
                "WHERE status='planned' AND due_at <= '2026-01-01' ORDER BY due_at"
            ).all()
            text = " ".join(str(row) for row in plan)
        else:
            connection.exec_driver_sql("SET enable_seqscan = off")
            plan = connection.exec_driver_sql(
                "EXPLAIN SELECT id FROM planned_steps WHERE status='planned' "
                "AND due_at <= now() ORDER BY due_at"
            ).all()
            text = " ".join(str(row) for row in plan)
    assert "ix_planned_steps_due" in text
    assert PlannedStep.__table__.indexes
