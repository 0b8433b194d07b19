"""Lifecycle statuses through the ``accounting_event`` actor on the Redis broker, a real
Dramatiq worker and the PostgreSQL store: parked before their invoice, applied once it
comes, a 212 sent twice counted once, a 213 leaving nothing planned."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from adapters.orm import EvidenceRecord, InvoiceRow, PaymentRow, PlannedStep
from adapters.publisher import QUEUE
from adapters.store import transaction
from handlers.messages import AccountingEventReceived
from tests.brokered import brokered, on_redis
from tests.support import invoice_issued

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def running(postgres_url, redis_url, redis_namespace, tmp_path):
    settings = on_redis(tmp_path, postgres_url, redis_url, redis_namespace)
    with brokered(settings, threads=2) as (app, broker):
        assert type(broker).__name__ == "RedisBroker"
        yield app, broker


def status(code: str, number: str, event_id: str, **extra: str) -> dict:
    at = "2026-03-10T10:00:00+01:00"
    return {
        "event_id": event_id,
        "type": "invoice.status_changed",
        "occurred_at": at,
        "invoice_number": number,
        "status_code": code,
        "at": at,
    } | extra


def send(app, broker, *events: dict) -> None:
    """One event after the other, each through the broker and the worker."""
    for event in events:
        app.publisher.publish([AccountingEventReceived(json.dumps(event), "platform")])
        broker.join(QUEUE, timeout=20_000)


def test_statuses_through_the_broker_park_apply_and_count_a_payment_once(running):
    """Given a 212 of 500.00 sent before its invoice, when the invoice follows and the
    platform sends the same 212 again under another id, then one payment of 500.00 stands
    (1200.00 - 500.00 = 700.00 owed); a 213 leaves the other invoice never issued."""
    app, broker = running
    cashed = status("212", "F-1", "cdv-1", amount="500.00")
    send(app, broker, cashed, invoice_issued("F-1", "2026-04-01"), cashed | {"event_id": "cdv-2"})
    send(
        app,
        broker,
        invoice_issued("F-2", "2026-04-10"),
        status("213", "F-2", "cdv-3", reason_code="SIRET_ERR"),
    )
    with transaction(app.sessions) as session:
        invoices = {i.number: i for i in session.execute(select(InvoiceRow)).scalars()}
        payments = session.execute(select(PaymentRow)).scalars().all()
        planned = session.execute(
            select(PlannedStep.step).where(
                PlannedStep.invoice_id == invoices["F-2"].id, PlannedStep.status == "planned"
            )
        ).all()
        records = session.execute(
            select(EvidenceRecord)
            .where(EvidenceRecord.kind == "invoice.status_changed")
            .order_by(EvidenceRecord.seq)
        ).scalars()
        outcomes = [(r.invoice_numbers, json.loads(r.payload)["status_code"]) for r in records]
    assert (invoices["F-1"].paid, invoices["F-1"].amount_due - invoices["F-1"].paid) == (
        Decimal("500.00"),
        Decimal("700.00"),
    )
    assert [(p.amount, p.payment_id[:11]) for p in payments] == [(Decimal("500.00"), "status-212-")]
    assert invoices["F-2"].status == "never_issued" and planned == []
    assert outcomes == [(["F-1"], "212"), (["F-1"], "212"), (["F-2"], "213")]


def test_a_suspension_and_a_payment_sent_hold_the_invoice_on_postgresql(running):
    """208 on F-1 holds it without end; 209 lifts it; 211 on Tuesday 10 March 2026 holds it
    five business days, 11, 12, 13, 16, 17 March: until 17 March, its end planned."""
    app, broker = running
    send(app, broker, invoice_issued("F-1", "2026-04-01"), status("208", "F-1", "cdv-1"))
    with transaction(app.sessions) as session:
        held = session.execute(select(InvoiceRow)).scalar_one()
        assert (held.hold_reason, held.held_until) == ("status 208", None)
    send(app, broker, status("209", "F-1", "cdv-2"), status("211", "F-1", "cdv-3"))
    with transaction(app.sessions) as session:
        held = session.execute(select(InvoiceRow)).scalar_one()
        ends = session.execute(
            select(PlannedStep.due_at).where(
                PlannedStep.step == "hold_expired", PlannedStep.status == "planned"
            )
        ).all()
    assert (held.hold_reason, held.held_until.isoformat()) == ("status 211", "2026-03-17")
    assert len(ends) == 1
