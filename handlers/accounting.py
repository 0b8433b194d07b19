"""Apply accepted accounting events (docs/events.md): each event's effect on invoices,
debtors, payments and planned steps.

``handlers.inbox`` records each event and calls its applier here, in the caller's
transaction, with its inbox row and evidence record. An applier that needs an invoice or
debtor not known yet raises ``Parked``; one that finds the event invalid raises
``EventRejected``; each returns the parked keys its event may release. The events about
debtors themselves are applied in handlers/debtors.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.orm import DebtorRow, InvoiceRow, PaymentRow
from handlers import cases, holds, plans
from handlers import events as ev
from handlers.batching import cache, fast_batch
from handlers.debtors import (
    debtor_by_id,
    on_debtor_updated,
    on_delivery_status,
    on_insolvency_opened,
    upsert_debtor,
)
from handlers.events import Parked
from handlers.planning import (
    cancel_pending,
    end_of_day,
    plan_invoice,
    resume_invoice,
    schedule,
)
from handlers.policy import Policy, PolicySet

log = structlog.get_logger("relance.accounting")


PLAN_PAYMENT = "plan_payment"


# ---- lookups -------------------------------------------------------------------------


def _policy_of(session: Session, invoice: InvoiceRow, policies: PolicySet) -> Policy:
    """The policy that governs ``invoice`` (segment of its debtor, overrides)."""
    return policies.for_debtor(session.get_one(DebtorRow, invoice.debtor_id), invoice.number)


def _resume(session: Session, invoice: InvoiceRow, policies: PolicySet, now: datetime) -> None:
    debtor = session.get_one(DebtorRow, invoice.debtor_id)
    resume_invoice(session, invoice, debtor, policies.for_debtor(debtor, invoice.number), now)


def invoice_by_number(session: Session, number: str, *, lock: bool = True) -> InvoiceRow:
    found = _find_invoice(session, number, lock=lock)
    if found is None:
        raise Parked(f"invoice:{number}")
    return found


def _find_invoice(session: Session, number: str, *, lock: bool = True) -> InvoiceRow | None:
    batch = fast_batch(session)
    if batch is not None and number in batch.invoices:  # looked up and locked for the batch
        return batch.invoices[number]
    query = select(InvoiceRow).where(InvoiceRow.number == number)
    return session.execute(query.with_for_update() if lock else query).scalar_one_or_none()


# ---- one function per event type; each returns the parked keys it releases --------


def on_invoice_issued(
    session: Session, event: ev.InvoiceIssued, now: datetime, policies: PolicySet
) -> list[str]:
    debtor = upsert_debtor(session, event.debtor, now, policies)
    existing = _find_invoice(session, event.invoice.number)
    if existing is not None:
        _update_invoice(session, existing, event.invoice, now, policies)
        return []
    data = event.invoice
    invoice = InvoiceRow(
        number=data.number,
        debtor_id=debtor.id,
        issue_date=data.issue_date,
        due_date=data.due_date,
        currency=data.currency,
        amount_due=data.amount_due,
        paid=Decimal("0.00"),
        credited=Decimal("0.00"),
        late_penalty_rate=data.late_penalty_rate,
        payment_url=data.payment_url,
        delivered_on=data.delivered_on,
        status="open",
        disputed=False,
        ever_disputed=False,
        in_payment_plan=False,
        created_at=now,
        updated_at=now,
    )
    batch = fast_batch(session)
    # the steps planned below need the invoice's id: drawn ahead for the batch, or got from
    # a flush. Drawn ahead, the invoice is inserted with the next flush, and its planned
    # steps after it in the same flush: the unit of work orders the tables of mappers with
    # no relationship() between them by class name (DebtorRow, InvoiceRow, PlannedStep);
    # the foreign keys would refuse another order (tests/integration/test_ingest_batch.py)
    drawn = batch.invoice_id() if batch is not None and not session.in_nested_transaction() else None
    if drawn is not None:
        invoice.id = drawn
    session.add(invoice)
    if drawn is None:
        session.flush()
    if batch is not None:
        cache(session, batch.invoices, data.number, invoice)
    plan_invoice(session, invoice, debtor, policies.for_debtor(debtor, invoice.number), now)
    return [f"debtor:{debtor.id}", f"invoice:{data.number}"]


def _update_invoice(
    session: Session, invoice: InvoiceRow, data: ev.Invoice, now: datetime, policies: PolicySet
) -> None:
    if invoice.status != "open":
        return
    invoice.amount_due, invoice.due_date, invoice.currency = data.amount_due, data.due_date, data.currency
    invoice.issue_date, invoice.late_penalty_rate = data.issue_date, data.late_penalty_rate
    invoice.payment_url, invoice.delivered_on, invoice.updated_at = (data.payment_url, data.delivered_on, now)
    _settle_if_paid(session, invoice, now)
    if invoice.status == "open" and not holds.paused(invoice):
        _resume(session, invoice, policies, now)


def on_invoice_updated(
    session: Session, event: ev.InvoiceUpdated, now: datetime, policies: PolicySet
) -> list[str]:
    _update_invoice(session, invoice_by_number(session, event.invoice.number), event.invoice, now, policies)
    return []


def on_invoice_cancelled(
    session: Session, event: ev.InvoiceCancelled, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(session, event.invoice_number)
    invoice.status, invoice.updated_at = "cancelled", now
    cancel_pending(session, invoice.id, "invoice cancelled")
    cases.follow_invoice(session, invoice, now, "invoice cancelled")
    return []


def _settle_if_paid(session: Session, invoice: InvoiceRow, now: datetime) -> None:
    if invoice.status == "open" and invoice.balance <= 0:
        invoice.status = "settled"
        cancel_pending(session, invoice.id, "invoice settled")
        log.info("invoice.settled", invoice_number=invoice.number, debtor_id=invoice.debtor_id)


def _record_money(
    session: Session,
    event: Any,
    kind: str,
    reference: str | None,
    on_day: Any,
    now: datetime,
    policies: PolicySet,
) -> list[str]:
    invoice = invoice_by_number(session, event.invoice_number)
    # a payment under an agreed plan pays the agreed balance: imputed on principal (1343-1)
    stored_kind = PLAN_PAYMENT if kind == "payment" and invoice.in_payment_plan else kind
    session.add(
        PaymentRow(
            event_id=event.event_id,
            invoice_id=invoice.id,
            kind=stored_kind,
            reference=reference,
            amount=event.amount,
            on_day=on_day,
        )
    )
    if kind == "payment":
        invoice.paid += event.amount
    else:
        invoice.credited += event.amount
    invoice.updated_at = now
    _settle_if_paid(session, invoice, now)
    cases.money_recorded(session, invoice, now, kind, policies)
    if invoice.in_payment_plan:  # pays the plan's oldest unpaid installments first
        plans.apply_money(session, invoice, event.amount, now, _policy_of(session, invoice, policies))
    return []


def on_payment_received(
    session: Session, event: ev.PaymentReceived, now: datetime, policies: PolicySet
) -> list[str]:
    return _record_money(session, event, "payment", None, event.paid_on, now, policies)


def on_credit_note_issued(
    session: Session, event: ev.CreditNoteIssued, now: datetime, policies: PolicySet
) -> list[str]:
    return _record_money(
        session, event, "credit_note", event.credit_note_number, event.occurred_at.date(), now, policies
    )


def on_invoice_disputed(
    session: Session, event: ev.InvoiceDisputed, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(session, event.invoice_number)
    invoice.disputed, invoice.ever_disputed, invoice.updated_at = True, True, now
    cancel_pending(session, invoice.id, "invoice disputed")
    return []


def on_dispute_resolved(
    session: Session, event: ev.DisputeResolved, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(session, event.invoice_number)
    invoice.disputed, invoice.updated_at = False, now
    if event.outcome == "upheld":
        invoice.status = "closed"
        cancel_pending(session, invoice.id, "dispute upheld")
        cases.follow_invoice(session, invoice, now, "dispute upheld")
    elif invoice.status == "open" and not holds.paused(invoice):
        _resume(session, invoice, policies, now)
    return []


def on_promise_to_pay(
    session: Session, event: ev.PromiseToPay, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(session, event.invoice_number)
    debtor = session.get_one(DebtorRow, invoice.debtor_id)
    invoice.paused_until, invoice.updated_at = event.promised_date, now
    cancel_pending(session, invoice.id, "promise to pay")
    schedule(
        session,
        invoice,
        "promise_expired",
        "deadline.expired",
        end_of_day(event.promised_date, debtor.timezone),
    )
    return []


def on_payment_plan_agreed(
    session: Session, event: ev.PaymentPlanAgreed, now: datetime, policies: PolicySet
) -> list[str]:
    invoices = [invoice_by_number(session, n) for n in dict.fromkeys(event.invoice_numbers)]
    open_balance = sum((i.balance for i in invoices if i.status == "open"), Decimal("0.00"))
    planned = sum((i.amount for i in event.installments), Decimal("0.00"))
    if planned != open_balance:
        raise ev.EventRejected(
            f"installments: total {planned} differs from the open balance {open_balance}", event.event_id
        )
    _check_plan_invoices(session, event, invoices)
    for invoice in invoices:
        invoice.in_payment_plan, invoice.updated_at = True, now
        cancel_pending(session, invoice.id, "payment plan agreed")
    debtor = debtor_by_id(session, event.debtor_id)
    plans.agree(session, event, invoices, debtor, policies.for_debtor(debtor, invoices[0].number), now)
    return []


def _check_plan_invoices(session: Session, event: ev.PaymentPlanAgreed, invoices: list[InvoiceRow]) -> None:
    for invoice in invoices:
        if invoice.debtor_id != event.debtor_id:
            raise ev.EventRejected(
                f"invoice_numbers: {invoice.number} is owed by another debtor than {event.debtor_id}",
                event.event_id,
            )
        if plans.active_plan_of(session, invoice.id) is not None:
            raise ev.EventRejected(
                f"invoice_numbers: {invoice.number} is already in an active payment plan", event.event_id
            )
    currencies = sorted({i.currency for i in invoices if i.status == "open"})
    if len(currencies) > 1:
        raise ev.EventRejected(
            f"invoice_numbers: one plan cannot mix currencies ({', '.join(currencies)})", event.event_id
        )


Applier = Callable[[Session, Any, datetime, PolicySet], list[str]]
APPLY: dict[str, Applier] = {
    "invoice.issued": on_invoice_issued,
    "invoice.updated": on_invoice_updated,
    "invoice.cancelled": on_invoice_cancelled,
    "payment.received": on_payment_received,
    "credit_note.issued": on_credit_note_issued,
    "invoice.disputed": on_invoice_disputed,
    "dispute.resolved": on_dispute_resolved,
    "promise_to_pay.recorded": on_promise_to_pay,
    "payment_plan.agreed": on_payment_plan_agreed,
    "debtor.updated": on_debtor_updated,
    "debtor.insolvency_opened": on_insolvency_opened,
    "delivery.status": on_delivery_status,
}
