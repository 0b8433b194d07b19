"""The send path on a real store: one message per currency, nothing for a balance too small."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from adapters.orm import MessageRow, PlannedStep
from adapters.store import transaction
from tests.support import advance, ingest, invoice_issued, make_test_app, payment

PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    yield application
    application.dispose()


def in_usd(event: dict) -> dict:
    event["invoice"]["currency"] = "USD"
    return event


def test_given_a_euro_and_a_dollar_invoice_the_same_day_then_each_currency_has_its_own_email(app):
    ingest(
        app,
        invoice_issued("F-EUR", "2026-04-01", "1000.00"),
        in_usd(invoice_issued("F-USD", "2026-04-01", "300.00")),
    )
    advance(app, at("2026-03-27 09:00"))  # D-5 of both, Friday 27 March
    with transaction(app.sessions) as session:
        rows = session.execute(select(MessageRow).order_by(MessageRow.id)).scalars().all()
        sent = sorted((r.channel, r.amounts["currency"], r.amounts["balance"], r.subject) for r in rows)
    # never 1 300: each e-mail states the balance of its own currency
    assert [(c, cur, bal) for c, cur, bal, _ in sent] == [
        ("email", "EUR", "1000.00"),
        ("email", "USD", "300.00"),
    ]
    assert "F-EUR" in sent[0][3] and "F-USD" not in sent[0][3]
    assert "F-USD" in sent[1][3] and "F-EUR" not in sent[1][3]


def test_given_four_cents_left_after_a_payment_then_the_due_reminder_is_skipped_with_the_reason(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "1000.00"))
    advance(app, at("2026-03-27 09:00"))  # the pre-due reminder, on the whole balance
    ingest(app, payment("F-1", "999.96", "2026-03-30"))  # 1000.00 - 999.96 = 0.04 left
    advance(app, at("2026-04-01 09:00"))  # the due reminder's instant
    with transaction(app.sessions) as session:
        steps = [s for s in session.execute(select(PlannedStep).where(PlannedStep.step == "due")).scalars()]
        subjects = [r.step for r in session.execute(select(MessageRow)).scalars()]
    assert subjects == ["pre_due"]
    assert [(s.status, s.reason) for s in steps] == [
        ("skipped", "balance 0.04 EUR below the minimum of 5.00")
    ]
