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

from handlers import cases, evidence, holding, holds, insolvency, plans, signals
from handlers import events as ev
from handlers.debtors import (
    debtor_by_id,
    on_debtor_updated,
    on_delivery_status,
    on_insolvency_closed,
    on_insolvency_converted,
    on_insolvency_opened,
    on_insolvency_plan_adopted,
    upsert_debtor,
)
from handlers.events import Parked
from handlers.factoring import follow_factoring
from handlers.planning import (
    LADDER_EVENTS,
    cancel_pending,
    cancel_pending_soon,
    end_of_day,
    plan_invoice,
    resume_invoice,
    schedule_again,
)
from handlers.policy import FORMAL_NOTICE, Policy, PolicySet
from handlers.records import DebtorRecord, InvoiceRecord, PaymentRecord
from handlers.store import NewInvoice, StepFilter, Store

log = structlog.get_logger("relance.accounting")


PLAN_PAYMENT = "plan_payment"
WRITTEN_OFF = "written_off"  # the invoice's status once the creditor gives the claim up


# ---- lookups -------------------------------------------------------------------------


def _debtor_of(store: Store, invoice: InvoiceRecord) -> DebtorRecord:
    debtor = store.debtor(invoice.debtor_id)
    if debtor is None:  # the foreign key forbids it
        raise LookupError(f"invoice {invoice.number}: debtor {invoice.debtor_id} is not stored")
    return debtor


def _policy_of(store: Store, invoice: InvoiceRecord, policies: PolicySet) -> Policy:
    """The policy that governs ``invoice`` (segment of its debtor, overrides)."""
    return policies.for_debtor(_debtor_of(store, invoice), invoice.number)


def _resume(store: Store, invoice: InvoiceRecord, policies: PolicySet, now: datetime) -> None:
    debtor = _debtor_of(store, invoice)
    if holds.frozen_by_insolvency(invoice, debtor):  # declared, never chased (L622-21)
        return
    if holds.held(debtor):  # its release resumes it (handlers.holding)
        return
    resume_invoice(store, invoice, debtor, policies.for_debtor(debtor, invoice.number), now)


def invoice_by_number(store: Store, number: str, *, lock: bool = True) -> InvoiceRecord:
    found = store.invoice(number, lock=lock)
    if found is None:
        raise Parked(f"invoice:{number}")
    return found


# ---- one function per event type; each returns the parked keys it releases --------


def _same_debtor(invoice: InvoiceRecord, data: ev.Invoice, event_id: str) -> None:
    """An invoice never moves to another debtor: a debtor changing the amount of another's
    invoice by naming its number is the attack this refuses."""
    if invoice.debtor_id != data.debtor_id:
        raise ev.EventRejected(
            f"invoice.debtor_id: invoice {invoice.number} belongs to debtor {invoice.debtor_id}, "
            f"not {data.debtor_id}",
            event_id,
        )


def on_invoice_issued(store: Store, event: ev.InvoiceIssued, now: datetime, policies: PolicySet) -> list[str]:
    existing = store.invoice(event.invoice.number)
    if existing is not None:  # checked before the debtor is written
        _same_debtor(existing, event.invoice, event.event_id)
    debtor = upsert_debtor(store, event.debtor, now, policies)
    if existing is not None:
        _update_invoice(store, existing, event.invoice, now, policies)
        return []
    data = event.invoice
    new = NewInvoice(
        number=data.number,
        debtor_id=debtor.id,
        issue_date=data.issue_date,
        due_date=data.due_date,
        currency=data.currency,
        amount_due=data.amount_due,
        late_penalty_rate=data.late_penalty_rate,
        payment_url=data.payment_url,
        delivered_on=data.delivered_on,
        factored_by=data.factored_by,
    )
    invoice = store.add_invoice(new, now)
    plan_invoice(store, invoice, debtor, policies.for_debtor(debtor, invoice.number), now)
    follow_factoring(store, invoice, None, now, policies)
    insolvency.judge_new_claim(store, invoice, debtor, now)
    holding.hold_new_invoice(store, invoice, debtor)
    return [f"debtor:{debtor.id}", f"invoice:{data.number}"]


def _update_invoice(
    store: Store, invoice: InvoiceRecord, data: ev.Invoice, now: datetime, policies: PolicySet
) -> None:
    if invoice.status != "open":
        return
    invoice.amount_due, invoice.due_date, invoice.currency = data.amount_due, data.due_date, data.currency
    invoice.issue_date, invoice.late_penalty_rate = data.issue_date, data.late_penalty_rate
    invoice.payment_url, invoice.delivered_on, invoice.updated_at = (data.payment_url, data.delivered_on, now)
    factor, invoice.factored_by = invoice.factored_by, data.factored_by
    _settle_if_paid(store, invoice, now, policies)
    if invoice.status != "open":
        return
    follow_factoring(store, invoice, factor, now, policies)
    if insolvency.freeze(store, invoice, _debtor_of(store, invoice), now):
        return  # its delivery now dates it before the judgment: declared, not chased
    if not holds.paused(invoice):
        _resume(store, invoice, policies, now)


def on_invoice_updated(
    store: Store, event: ev.InvoiceUpdated, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(store, event.invoice.number)
    _same_debtor(invoice, event.invoice, event.event_id)
    _update_invoice(store, invoice, event.invoice, now, policies)
    return []


def on_invoice_cancelled(
    store: Store, event: ev.InvoiceCancelled, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(store, event.invoice_number)
    before = _level_before(store, invoice, policies)
    if invoice.status == "open":
        _warn_if_formal_notice_sent(store, invoice, event, now)
    invoice.status, invoice.updated_at = "cancelled", now
    cancel_pending(store, invoice.id, "invoice cancelled")
    cases.follow_invoice(store, invoice, now, "invoice cancelled")
    _level_after(store, invoice, policies, before, now, "invoice cancelled")
    return []


CANCELLED_AFTER_FORMAL_NOTICE = "invoice.cancelled_after_formal_notice"


def _warn_if_formal_notice_sent(
    store: Store, invoice: InvoiceRecord, event: ev.InvoiceCancelled | ev.InvoiceStatusChanged, now: datetime
) -> None:
    """A formal notice claimed this invoice: the debtor was put on notice of a claim now
    cancelled. Nothing is undone, but a person should tell the debtor (and any partner)."""
    sent = [
        s for s in store.steps_of(invoice.id, LADDER_EVENTS) if s.step == FORMAL_NOTICE and s.status == "done"
    ]
    if not sent:
        return
    facts = {
        "invoice_number": invoice.number,
        "debtor_id": invoice.debtor_id,
        "event_id": event.event_id,
        "formal_notice_at": sent[0].due_at.isoformat(),
        "balance": str(invoice.balance),
        "currency": invoice.currency,
    }
    evidence.append(
        store,
        CANCELLED_AFTER_FORMAL_NOTICE,
        now,
        {"action": CANCELLED_AFTER_FORMAL_NOTICE, **facts},
        debtor_id=invoice.debtor_id,
        invoice_numbers=[invoice.number],
    )
    log.warning(CANCELLED_AFTER_FORMAL_NOTICE, **facts)


def on_invoice_written_off(
    store: Store, event: ev.InvoiceWrittenOff, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(store, event.invoice_number)
    if invoice.status != "open":
        raise ev.EventRejected(
            f"invoice_number: invoice {invoice.number} is {invoice.status}, not open", event.event_id
        )
    if invoice.in_payment_plan:
        raise ev.EventRejected(
            f"invoice_number: invoice {invoice.number} is in an active payment plan", event.event_id
        )
    before = _level_before(store, invoice, policies)
    invoice.status, invoice.updated_at = WRITTEN_OFF, now
    # everything stops, the prescription warning too: a claim given up is not watched
    store.cancel_pending(invoice.id, "invoice written off", StepFilter())
    cases.follow_invoice(store, invoice, now, "invoice written off")
    _level_after(store, invoice, policies, before, now, "invoice written off")
    return []


def _settle_if_paid(store: Store, invoice: InvoiceRecord, now: datetime, policies: PolicySet) -> None:
    if invoice.status == "open" and invoice.balance <= 0:
        before = _level_before(store, invoice, policies)
        invoice.status = "settled"
        cancel_pending_soon(store, invoice.id, "invoice settled")
        log.info("invoice.settled", invoice_number=invoice.number, debtor_id=invoice.debtor_id)
        signals.invoice_settled(store, invoice, now)
        _level_after(store, invoice, policies, before, now, "invoice settled")


def _level_before(store: Store, invoice: InvoiceRecord, policies: PolicySet) -> signals.Level | None:
    """The debtor's level while ``invoice`` is still open, if anyone subscribes to levels."""
    if invoice.status != "open" or not signals.watching_levels(store):
        return None
    return signals.level_of(store, _debtor_of(store, invoice), policies)


def _level_after(
    store: Store,
    invoice: InvoiceRecord,
    policies: PolicySet,
    before: signals.Level | None,
    now: datetime,
    cause: str,
) -> None:
    if before is not None:
        signals.level_changed(store, _debtor_of(store, invoice), policies, before, now, cause)


def _record_money(
    store: Store,
    event: Any,
    kind: str,
    reference: str | None,
    on_day: Any,
    now: datetime,
    policies: PolicySet,
) -> list[str]:
    invoice = invoice_by_number(store, event.invoice_number)
    payment_id = getattr(event, "payment_id", None)
    if payment_id is not None and (known := store.payment(invoice.id, payment_id=payment_id)) is not None:
        raise ev.EventRejected(
            f"payment_id: invoice {invoice.number} already has payment {payment_id!r} "
            f"(event {known.event_id})",
            event.event_id,
        )
    # a payment under an agreed plan pays the agreed balance: imputed on principal (1343-1)
    stored_kind = PLAN_PAYMENT if kind == "payment" and invoice.in_payment_plan else kind
    store.add_payment(
        event_id=event.event_id,
        invoice_id=invoice.id,
        kind=stored_kind,
        reference=reference,
        amount=event.amount,
        on_day=on_day,
        payment_id=payment_id,
    )
    if kind == "payment":
        invoice.paid += event.amount
    else:
        invoice.credited += event.amount
    invoice.updated_at = now
    _settle_if_paid(store, invoice, now, policies)
    cases.money_recorded(store, invoice, now, kind, policies)
    if invoice.in_payment_plan:  # pays the plan's oldest unpaid installments first
        plans.apply_money(store, invoice, event.amount, now, _policy_of(store, invoice, policies))
    return []


def on_payment_received(
    store: Store, event: ev.PaymentReceived, now: datetime, policies: PolicySet
) -> list[str]:
    return _record_money(store, event, "payment", None, event.paid_on, now, policies)


def on_credit_note_issued(
    store: Store, event: ev.CreditNoteIssued, now: datetime, policies: PolicySet
) -> list[str]:
    return _record_money(
        store, event, "credit_note", event.credit_note_number, event.occurred_at.date(), now, policies
    )


def on_payment_reversed(
    store: Store, event: ev.PaymentReversed, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(store, event.invoice_number)
    row = store.payment(invoice.id, payment_id=event.payment_id)
    if row is None:
        raise ev.EventRejected(
            f"payment_id: invoice {invoice.number} has no payment {event.payment_id!r}", event.event_id
        )
    _check_reversible(invoice, row, f"payment_id: payment {event.payment_id!r}", event.event_id)
    row.reversed_on = event.reversed_on
    invoice.paid -= row.amount
    _money_taken_back(store, invoice, now, policies, "payment reversed")
    return []


def on_credit_note_cancelled(
    store: Store, event: ev.CreditNoteCancelled, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(store, event.invoice_number)
    number = event.credit_note_number
    row = store.payment(invoice.id, credit_note=number)
    if row is None:
        raise ev.EventRejected(
            f"credit_note_number: invoice {invoice.number} has no credit note {number!r}", event.event_id
        )
    _check_reversible(invoice, row, f"credit_note_number: credit note {number!r}", event.event_id)
    row.reversed_on = event.occurred_at.date()
    invoice.credited -= row.amount
    _money_taken_back(store, invoice, now, policies, "credit note cancelled")
    return []


def _check_reversible(invoice: InvoiceRecord, row: PaymentRecord, what: str, event_id: str) -> None:
    if row.reversed_on is not None:
        raise ev.EventRejected(f"{what} of invoice {invoice.number} is already reversed", event_id)
    if row.kind == PLAN_PAYMENT or invoice.in_payment_plan:
        # the plan's installments were paid from it: undoing that is a person's decision
        raise ev.EventRejected(
            f"{what} of invoice {invoice.number}: the invoice is or was paid under a payment plan; "
            "a reversal there is not supported",
            event_id,
        )


def _money_taken_back(
    store: Store, invoice: InvoiceRecord, now: datetime, policies: PolicySet, cause: str
) -> None:
    """The balance is owed again, as if the money never came (C. civ. 1342 ff.: a payment
    taken back did not pay): a settled invoice reopens and dunning resumes where it stopped,
    as after a rejected dispute (nothing sent is sent again, no burst)."""
    invoice.updated_at = now
    if invoice.status == "settled" and invoice.balance > 0:
        invoice.status = "open"
        log.info("invoice.reopened", invoice_number=invoice.number, debtor_id=invoice.debtor_id, cause=cause)
        if not holds.paused(invoice):
            _resume(store, invoice, policies, now)
    cases.follow_invoice(store, invoice, now, cause)


def on_invoice_disputed(
    store: Store, event: ev.InvoiceDisputed, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(store, event.invoice_number)
    invoice.disputed, invoice.ever_disputed, invoice.updated_at = True, True, now
    cancel_pending(store, invoice.id, "invoice disputed")
    return []


def on_dispute_resolved(
    store: Store, event: ev.DisputeResolved, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(store, event.invoice_number)
    invoice.disputed, invoice.updated_at = False, now
    if event.outcome == "upheld":
        before = _level_before(store, invoice, policies)
        invoice.status = "closed"
        cancel_pending(store, invoice.id, "dispute upheld")
        cases.follow_invoice(store, invoice, now, "dispute upheld")
        _level_after(store, invoice, policies, before, now, "dispute upheld")
    elif invoice.status == "open" and not holds.paused(invoice):
        _resume(store, invoice, policies, now)
    return []


def on_promise_to_pay(store: Store, event: ev.PromiseToPay, now: datetime, policies: PolicySet) -> list[str]:
    invoice = invoice_by_number(store, event.invoice_number)
    debtor = _debtor_of(store, invoice)
    invoice.paused_until, invoice.updated_at = event.promised_date, now
    cancel_pending(store, invoice.id, "promise to pay")
    # a promise may follow one that expired: its end is planned anew, else it never ends
    schedule_again(
        store,
        invoice,
        "promise_expired",
        "deadline.expired",
        end_of_day(event.promised_date, debtor.timezone),
    )
    return []


def on_payment_plan_agreed(
    store: Store, event: ev.PaymentPlanAgreed, now: datetime, policies: PolicySet
) -> list[str]:
    invoices = [invoice_by_number(store, n) for n in dict.fromkeys(event.invoice_numbers)]
    open_balance = sum((i.balance for i in invoices if i.status == "open"), Decimal("0.00"))
    planned = sum((i.amount for i in event.installments), Decimal("0.00"))
    if planned != open_balance:
        raise ev.EventRejected(
            f"installments: total {planned} differs from the open balance {open_balance}", event.event_id
        )
    _check_plan_invoices(store, event, invoices)
    for invoice in invoices:
        invoice.in_payment_plan, invoice.updated_at = True, now
        cancel_pending(store, invoice.id, "payment plan agreed")
    debtor = debtor_by_id(store, event.debtor_id)
    plans.agree(store, event, invoices, debtor, policies.for_debtor(debtor, invoices[0].number), now)
    return []


def _check_plan_invoices(store: Store, event: ev.PaymentPlanAgreed, invoices: list[InvoiceRecord]) -> None:
    for invoice in invoices:
        if invoice.debtor_id != event.debtor_id:
            raise ev.EventRejected(
                f"invoice_numbers: {invoice.number} is owed by another debtor than {event.debtor_id}",
                event.event_id,
            )
        if plans.active_plan_of(store, invoice.id) is not None:
            raise ev.EventRejected(
                f"invoice_numbers: {invoice.number} is already in an active payment plan", event.event_id
            )
    currencies = sorted({i.currency for i in invoices if i.status == "open"})
    if len(currencies) > 1:
        raise ev.EventRejected(
            f"invoice_numbers: one plan cannot mix currencies ({', '.join(currencies)})", event.event_id
        )


def on_invoice_held(store: Store, event: ev.InvoiceHeld, now: datetime, policies: PolicySet) -> list[str]:
    invoice = invoice_by_number(store, event.invoice_number)
    holding.hold_invoice(store, invoice, _debtor_of(store, invoice), event.reason, event.until, now)
    return []


def on_invoice_released(
    store: Store, event: ev.InvoiceReleased, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(store, event.invoice_number)
    if not holds.held(invoice):
        raise ev.EventRejected(f"invoice_number: invoice {invoice.number} is not held", event.event_id)
    debtor = _debtor_of(store, invoice)
    holding.release_invoice(store, invoice, debtor, policies.for_debtor(debtor, invoice.number), now)
    return []


def on_debtor_held(store: Store, event: ev.DebtorHeld, now: datetime, policies: PolicySet) -> list[str]:
    holding.hold_debtor(
        store, debtor_by_id(store, event.debtor_id, lock=True), event.reason, event.until, now
    )
    return []


def on_debtor_released(
    store: Store, event: ev.DebtorReleased, now: datetime, policies: PolicySet
) -> list[str]:
    debtor = debtor_by_id(store, event.debtor_id, lock=True)
    if not holds.held(debtor):
        raise ev.EventRejected(f"debtor_id: debtor {debtor.id} is not held", event.event_id)
    holding.release_debtor(store, debtor, policies.for_debtor, now)
    return []


def on_invoice_status_changed(
    store: Store, event: ev.InvoiceStatusChanged, now: datetime, policies: PolicySet
) -> list[str]:
    from handlers.statuses import apply_status  # built on this module's appliers

    return apply_status(store, event, now, policies)


Applier = Callable[[Store, Any, datetime, PolicySet], list[str]]
APPLY: dict[str, Applier] = {
    "invoice.issued": on_invoice_issued,
    "invoice.updated": on_invoice_updated,
    "invoice.cancelled": on_invoice_cancelled,
    "invoice.written_off": on_invoice_written_off,
    "payment.received": on_payment_received,
    "credit_note.issued": on_credit_note_issued,
    "payment.reversed": on_payment_reversed,
    "credit_note.cancelled": on_credit_note_cancelled,
    "invoice.disputed": on_invoice_disputed,
    "dispute.resolved": on_dispute_resolved,
    "promise_to_pay.recorded": on_promise_to_pay,
    "payment_plan.agreed": on_payment_plan_agreed,
    "invoice.held": on_invoice_held,
    "invoice.released": on_invoice_released,
    "invoice.status_changed": on_invoice_status_changed,
    "debtor.held": on_debtor_held,
    "debtor.released": on_debtor_released,
    "debtor.updated": on_debtor_updated,
    "debtor.insolvency_opened": on_insolvency_opened,
    "debtor.insolvency_converted": on_insolvency_converted,
    "debtor.insolvency_plan_adopted": on_insolvency_plan_adopted,
    "debtor.insolvency_closed": on_insolvency_closed,
    "delivery.status": on_delivery_status,
}
