"""Payment plans on a real store: installments reminded, paid in order, a missed one breaks.

Dates worked out by hand from the French calendar of 2026 and the default policy
(installment reminders at D − 5 and D, 09:00 Paris, moved to the next business day):
  installment 1 due Wed 15 April: pre-due Fri 10 April, due Wed 15 April; its deadline
  expires at the end of 15 April (00:00 on the 16th).
  installment 2 due Sat 16 May: pre-due Mon 11 May; the due reminder moves to Mon 18 May
  and so does the last day to pay: the deadline expires at 00:00 on Tue 19 May.
"""

from __future__ import annotations

import json
from datetime import datetime
from email import message_from_bytes
from email.policy import default as default_policy
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from adapters.orm import (
    EvidenceRecord,
    InvoiceRow,
    MessageRow,
    PaymentPlanRow,
    PlanInstallment,
    PlannedStep,
    RejectedEvent,
)
from adapters.store import transaction
from tests import support
from tests.support import ingest, invoice_issued, make_test_app, payment

PARIS = ZoneInfo("Europe/Paris")
LADDER = ("pre_due", "due", "notice", "reminder_1", "reminder_2", "reminder_3", "formal_notice", "escalation")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    yield application
    application.dispose()


def run_until(app, limit: str) -> None:
    """Advance from one planned step to the next, up to ``limit`` (Paris time)."""
    end = at(limit)
    support.run_until(app, end)
    app.clock.set(max(end, app.clock.now()))


def plan_event(
    *installments: tuple[str, str], numbers=("F-1",), event_id="plan-1", at_text="2026-03-10T10:00:00+01:00"
) -> dict:
    return {
        "event_id": event_id,
        "type": "payment_plan.agreed",
        "occurred_at": at_text,
        "debtor_id": "D-1",
        "invoice_numbers": list(numbers),
        "installments": [{"due_date": d, "amount": a} for d, a in installments],
    }


TWO = (("2026-04-15", "500.00"), ("2026-05-16", "700.00"))


def agree(app, *installments, **kwargs) -> None:
    app.clock.set(at("2026-03-10 10:00"))
    assert ingest(app, plan_event(*(installments or TWO), **kwargs)) == ["accepted"]


def pay(app, when: str, number: str, amount: str) -> None:
    app.clock.set(at(when))
    assert ingest(app, payment(number, amount, when[:10])) == ["accepted"]


def messages(app) -> list[tuple[str, str, str, str]]:
    with transaction(app.sessions) as session:
        rows = session.execute(select(MessageRow).order_by(MessageRow.id)).scalars().all()
    return [(r.created_at.astimezone(PARIS).isoformat(), r.step, r.channel, r.body_text) for r in rows]


def evidence(app, kind: str) -> list[dict]:
    with transaction(app.sessions) as session:
        rows = (
            session.execute(
                select(EvidenceRecord).where(EvidenceRecord.kind == kind).order_by(EvidenceRecord.seq)
            )
            .scalars()
            .all()
        )
    return [json.loads(r.payload) | {"at": r.at.astimezone(PARIS).isoformat()} for r in rows]


def steps(app) -> dict[str, PlannedStep]:
    with transaction(app.sessions) as session:
        return {s.step: s for s in session.execute(select(PlannedStep)).scalars()}


def test_installments_are_reminded_on_business_days_with_their_amount(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
    agree(app)
    run_until(app, "2026-04-15 12:00")
    pay(app, "2026-04-15 12:00", "F-1", "500.00")  # after the due reminder of the morning
    run_until(app, "2026-05-16 12:00")
    sent = messages(app)
    assert [(when, step, channel) for when, step, channel, _ in sent] == [
        ("2026-04-10T09:00:00+02:00", "installment_1_pre_due", "email"),
        ("2026-04-15T09:00:00+02:00", "installment_1_due", "email"),
        ("2026-05-11T09:00:00+02:00", "installment_2_pre_due", "email"),
    ]
    first, due, second = (body for *_, body in sent)
    assert "Échéance n° 1 sur 2, au 15 avril 2026 : 500,00 €" in first
    assert "Reste à régler sur l'ensemble du plan : 1 200,00 €" in first
    assert "Montant à régler : 500,00 €" in due
    assert "Échéance n° 2 sur 2, au 16 mai 2026 : 700,00 €" in second
    assert "Reste à régler sur l'ensemble du plan : 700,00 €" in second
    # the e-mail actually written to the outbox carries the same text
    emails = sorted((app.settings.outbox_dir / "email").glob("*.eml"))
    assert len(emails) == 3
    parsed = [message_from_bytes(p.read_bytes(), policy=default_policy) for p in emails]
    subjects = {str(m["Subject"]) for m in parsed}
    assert "Échéance n° 1 de votre plan de paiement à régler aujourd'hui" in subjects
    texts = [m.get_body(("plain",)).get_content() for m in parsed]
    assert any("700,00 €" in t for t in texts)
    # the ladder stayed quiet: every ordinary step was cancelled when the plan was agreed
    planned = steps(app)
    assert {planned[name].status for name in LADDER if name in planned} == {"cancelled"}
    # installment 1 was paid on its day: its deadline did nothing
    assert planned["installment_1_deadline"].status == "done"
    assert planned["installment_1_deadline"].reason == "installment 1 paid"
    assert evidence(app, "deadline.expired") == []


def test_paying_every_installment_on_time_completes_the_plan(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
    agree(app)
    run_until(app, "2026-04-14 12:00")
    pay(app, "2026-04-14 12:00", "F-1", "500.00")
    run_until(app, "2026-05-15 12:00")
    pay(app, "2026-05-15 12:00", "F-1", "700.00")
    run_until(app, "2026-07-31 00:00")
    # installment 1's due reminder is skipped (paid the day before); installment 2's, due
    # Monday 18 May, was cancelled with the plan when the last payment completed it
    assert [step for _, step, _, _ in messages(app)] == ["installment_1_pre_due", "installment_2_pre_due"]
    assert evidence(app, "deadline.expired") == []
    with transaction(app.sessions) as session:
        plan = session.execute(select(PaymentPlanRow)).scalar_one()
        invoice = session.execute(select(InvoiceRow)).scalar_one()
    assert (plan.status, plan.reason) == ("completed", "every installment paid")
    assert invoice.status == "settled" and not invoice.in_payment_plan
    assert [e["reason"] for e in evidence(app, "payment_plan.completed")] == ["every installment paid"]
    planned = steps(app)
    assert (planned["installment_1_due"].status, planned["installment_1_due"].reason) == (
        "skipped",
        "installment 1 paid",
    )
    for name in ("installment_2_due", "installment_2_deadline"):
        assert (planned[name].status, planned[name].reason) == ("cancelled", "payment plan completed")


def test_a_missed_installment_breaks_the_plan_and_dunning_resumes(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
    agree(app)
    run_until(app, "2026-04-14 12:00")
    pay(app, "2026-04-14 12:00", "F-1", "500.00")
    run_until(app, "2026-05-19 12:00")
    (expired,) = evidence(app, "deadline.expired")
    assert expired["action"] == "deadline.expired"
    assert expired["step"] == "installment_2_deadline"
    assert expired["at"] == "2026-05-19T00:00:00+02:00"  # after Monday 18, the last day to pay
    assert expired["invoice_numbers"] == ["F-1"]
    assert expired["installment"] == 2 and expired["amount_due"] == "700.00"
    with transaction(app.sessions) as session:
        plan = session.execute(select(PaymentPlanRow)).scalar_one()
        invoice = session.execute(select(InvoiceRow)).scalar_one()
    assert plan.status == "broken" and plan.reason == "installment 2 unpaid (700.00 of 700.00)"
    assert not invoice.in_payment_plan and invoice.status == "open"
    # the due reminder of installment 2 went out on Monday 18 May; dunning resumes on the
    # remaining 700.00 at the notice (never a pre-due for an overdue invoice), planned the
    # day of the break, Tuesday 19, and held back 3 days after Monday's message (contact
    # pressure): 18 + 3 = Thursday 21 May, a business day, at 09:00
    assert [(when, step) for when, step, _, _ in messages(app)][-1] == (
        "2026-05-18T09:00:00+02:00",
        "installment_2_due",
    )
    assert (steps(app)["notice"].status, steps(app)["notice"].due_at) == ("planned", at("2026-05-21 09:00"))
    run_until(app, "2026-05-21 12:00")
    sent = messages(app)
    assert [(when, step) for when, step, _, _ in sent][-2:] == [
        ("2026-05-18T09:00:00+02:00", "installment_2_due"),
        ("2026-05-21T09:00:00+02:00", "notice"),
    ]
    assert "700,00 €" in sent[-1][3]
    planned = steps(app)
    assert planned["notice"].status == "done"
    assert planned["reminder_1"].status == "planned"
    assert planned["reminder_1"].due_at >= at("2026-05-19 00:00")
    assert planned["pre_due"].status == "cancelled" and planned["due"].status == "cancelled"


def test_missing_the_first_installment_cancels_the_later_ones(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
    agree(app)
    run_until(app, "2026-04-16 12:00")
    (expired,) = evidence(app, "deadline.expired")
    assert expired["step"] == "installment_1_deadline"
    assert expired["at"] == "2026-04-16T00:00:00+02:00"
    planned = steps(app)
    for name in ("installment_2_pre_due", "installment_2_due", "installment_2_deadline"):
        assert (planned[name].status, planned[name].reason) == ("cancelled", "payment plan broken")
    # the whole 1 200,00 € is chased again, from the notice planned the day of the break,
    # Thursday 16 April, held back 3 days after the installment's due reminder of Wednesday
    # 15 (contact pressure): 15 + 3 = Saturday 18, so Monday 20 April at 09:00
    assert (planned["notice"].status, planned["notice"].due_at) == ("planned", at("2026-04-20 09:00"))
    run_until(app, "2026-06-30 00:00")
    assert ("2026-04-20T09:00:00+02:00", "notice") in [(when, step) for when, step, _, _ in messages(app)]
    assert not any(step.startswith("installment_2") for _, step, _, _ in messages(app))


def test_a_payment_pays_the_oldest_installments_first(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
    agree(app)
    pay(app, "2026-03-20 12:00", "F-1", "300.00")
    run_until(app, "2026-04-15 12:00")
    sent = messages(app)
    assert [step for _, step, _, _ in sent] == ["installment_1_pre_due", "installment_1_due"]
    assert (
        "Échéance n° 1 sur 2, au 15 avril 2026 : 200,00 € (sur 500,00 €, dont 300,00 € déjà réglés)"
    ) in sent[-1][3]
    assert "Montant à régler : 200,00 €" in sent[-1][3]
    pay(app, "2026-04-15 12:00", "F-1", "900.00")  # the rest of 1 and all of 2
    with transaction(app.sessions) as session:
        paid = session.execute(
            select(PlanInstallment.seq, PlanInstallment.paid, PlanInstallment.status).order_by(
                PlanInstallment.seq
            )
        ).all()
        plan = session.execute(select(PaymentPlanRow)).scalar_one()
    assert [tuple(r) for r in paid] == [(1, 500, "paid"), (2, 700, "paid")]
    assert plan.status == "completed"
    run_until(app, "2026-07-31 00:00")
    assert len(messages(app)) == 2 and evidence(app, "deadline.expired") == []


def test_a_plan_over_two_invoices_survives_the_settlement_of_the_first(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "500.00"), invoice_issued("F-2", "2026-04-01", "700.00"))
    agree(app, numbers=("F-1", "F-2"))
    run_until(app, "2026-04-14 12:00")
    pay(app, "2026-04-14 12:00", "F-1", "500.00")  # settles F-1, which carries the steps
    run_until(app, "2026-05-18 12:00")
    sent = messages(app)
    assert [step for _, step, _, _ in sent] == [
        "installment_1_pre_due",
        "installment_2_pre_due",
        "installment_2_due",
    ]
    assert "Factures couvertes par le plan : F-1, F-2." in sent[-1][3]
    pay(app, "2026-05-18 12:00", "F-2", "700.00")
    run_until(app, "2026-07-31 00:00")
    with transaction(app.sessions) as session:
        plan = session.execute(select(PaymentPlanRow)).scalar_one()
    assert plan.status == "completed"
    assert evidence(app, "deadline.expired") == []


def test_an_installment_reminder_is_never_merged_with_a_ladder_step(app):
    ingest(
        app, invoice_issued("F-1", "2026-04-01", "1200.00"), invoice_issued("F-2", "2026-04-15", "300.00")
    )  # due the day of installment 1
    agree(app)
    run_until(app, "2026-04-15 12:00")
    sent = [(when[:10], step) for when, step, _, _ in messages(app)]
    # one e-mail per debtor and day: the installment goes first, F-2's step moves to the
    # next business day (its pre-due fell with installment 1's too)
    assert sent == [
        ("2026-04-10", "installment_1_pre_due"),
        ("2026-04-13", "pre_due"),
        ("2026-04-15", "installment_1_due"),
    ]
    with transaction(app.sessions) as session:
        due_f2 = session.execute(
            select(PlannedStep)
            .join(InvoiceRow, InvoiceRow.id == PlannedStep.invoice_id)
            .where(InvoiceRow.number == "F-2", PlannedStep.step == "due")
        ).scalar_one()
    assert (due_f2.status, due_f2.due_at) == ("planned", at("2026-04-16 09:00"))
    pre_due_f2 = next(body for _, step, _, body in messages(app) if step == "pre_due")
    assert "F-1" not in pre_due_f2  # an invoice in a plan is not listed as overdue


def test_a_plan_whose_total_differs_from_the_balance_is_rejected(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
    app.clock.set(at("2026-03-10 10:00"))
    bad = plan_event(("2026-04-15", "500.00"), ("2026-05-15", "600.00"))
    assert ingest(app, bad) == ["installments: total 1100.00 differs from the open balance 1200.00"]
    with transaction(app.sessions) as session:
        assert session.execute(select(func.count()).select_from(PaymentPlanRow)).scalar() == 0
        assert session.execute(select(RejectedEvent.event_id)).scalar_one() == "plan-1"
        invoice = session.execute(select(InvoiceRow)).scalar_one()
    assert not invoice.in_payment_plan
    assert steps(app)["pre_due"].status == "planned"


def test_an_invoice_cannot_be_in_two_active_plans(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
    agree(app)
    again = plan_event(("2026-06-15", "1200.00"), event_id="plan-2")
    assert ingest(app, again) == ["invoice_numbers: F-1 is already in an active payment plan"]
