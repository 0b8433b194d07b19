"""Apply ``invoice.status_changed``: a status of the e-invoicing lifecycle, with the effect
the table of ``handlers.lifecycle`` gives its code (docs/import.md).

Each effect goes through the machinery of the event it stands for: 207 through the dispute,
208/209 and 211 through the holds (handlers/holding.py), 212 through the payments, 225/226
through factoring, 213/501 and 210 like a cancellation. The effects act on an open invoice;
on an invoice no longer open a status is evidence only. Every status is evidence: one
``invoice.status_changed`` record, in the invoice's dossier.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import structlog

from handlers import accounting, cases, evidence, holding, holds, lifecycle
from handlers import events as ev
from handlers.calendar import is_business_day
from handlers.factoring import follow_factoring
from handlers.planning import cancel_pending
from handlers.policy import PolicySet
from handlers.records import InvoiceRecord
from handlers.store import StepFilter, Store

log = structlog.get_logger("relance.statuses")

STATUS_CHANGED = "invoice.status_changed"
NEVER_ISSUED, REFUSED = "never_issued", "refused"  # the invoice's final status of 213/501, 210


Changed = ev.InvoiceStatusChanged


@dataclass(frozen=True)
class _Cashed:
    """What ``accounting`` records of a 212: a payment named by a stable id."""

    event_id: str
    invoice_number: str
    amount: Decimal
    payment_id: str


def apply_status(
    store: Store, event: ev.InvoiceStatusChanged, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = accounting.invoice_by_number(store, event.invoice_number)
    status = lifecycle.status_of(event.status_code)
    if invoice.status != "open":
        outcome = f"invoice is {invoice.status}: evidence only"
        if status.effect == "cashed":  # money for an invoice rejected, refused or cancelled
            log.warning("invoice.cashed_when_not_open", invoice_number=invoice.number, status=invoice.status)
    else:
        outcome = _EFFECTS[status.effect](store, invoice, event, now, policies)
    _record(store, invoice, event, status, outcome, now)
    return []


def _record(
    store: Store,
    invoice: InvoiceRecord,
    event: ev.InvoiceStatusChanged,
    status: lifecycle.Status,
    outcome: str,
    now: datetime,
) -> None:
    facts = {
        "invoice_number": invoice.number,
        "debtor_id": invoice.debtor_id,
        "event_id": event.event_id,
        "status_code": status.code,
        "label": status.label,
        "effect": status.effect,
        "at": event.at.isoformat(),
        "reason_code": event.reason_code,
        "amount": str(event.amount) if event.amount is not None else None,
        "outcome": outcome,
    }
    evidence.append(
        store,
        STATUS_CHANGED,
        now,
        {"action": STATUS_CHANGED, "invoice_numbers": [invoice.number], **facts},
        debtor_id=invoice.debtor_id,
        invoice_numbers=[invoice.number],
    )
    log.info(STATUS_CHANGED, **facts)


# ---- the effects; each returns what it did, for the evidence record ------------------


def _evidence_only(
    store: Store, invoice: InvoiceRecord, event: Changed, now: datetime, policies: PolicySet
) -> str:
    return "evidence only"


def _never_issued(
    store: Store, invoice: InvoiceRecord, event: Changed, now: datetime, policies: PolicySet
) -> str:
    """213 Rejetée, 501 Irrecevable: the invoice never reached the buyer as an invoice, so
    there is no claim to chase: everything stops, the prescription warning too."""
    return _close(store, invoice, event, now, policies, NEVER_ISSUED, "deemed never issued")


def _refused(store: Store, invoice: InvoiceRecord, event: Changed, now: datetime, policies: PolicySet) -> str:
    """210 Refusée: the buyer refused the invoice; it is not chased and no case holds it."""
    return _close(store, invoice, event, now, policies, REFUSED, "refused by the buyer")


def _close(
    store: Store,
    invoice: InvoiceRecord,
    event: ev.InvoiceStatusChanged,
    now: datetime,
    policies: PolicySet,
    final: str,
    what: str,
) -> str:
    if invoice.in_payment_plan:
        raise ev.EventRejected(
            f"status_code: invoice {invoice.number} is in an active payment plan; "
            f"status {event.status_code} needs a person's decision",
            event.event_id,
        )
    cause = f"invoice {what} (status {event.status_code})"
    before = accounting._level_before(store, invoice, policies)
    accounting._warn_if_formal_notice_sent(store, invoice, event, now)
    invoice.status, invoice.updated_at = final, now
    store.cancel_pending(invoice.id, cause, StepFilter())
    cases.follow_invoice(store, invoice, now, cause)
    accounting._level_after(store, invoice, policies, before, now, cause)
    return f"{what}: dunning stopped"


def _dispute(store: Store, invoice: InvoiceRecord, event: Changed, now: datetime, policies: PolicySet) -> str:
    """207 En litige: as ``invoice.disputed``; ``dispute.resolved`` ends it."""
    invoice.disputed, invoice.ever_disputed, invoice.updated_at = True, True, now
    cancel_pending(store, invoice.id, f"invoice disputed (status {event.status_code})")
    return "disputed: dunning paused until the dispute is resolved"


def _suspend(store: Store, invoice: InvoiceRecord, event: Changed, now: datetime, policies: PolicySet) -> str:
    """208 Suspendue: a hold without end, lifted by 209 Complétée."""
    if holds.held(invoice) and invoice.hold_reason != lifecycle.SUSPENDED_HOLD:
        return f"already held ({invoice.hold_reason}): that hold stands"
    debtor = accounting._debtor_of(store, invoice)
    holding.hold_invoice(store, invoice, debtor, lifecycle.SUSPENDED_HOLD, None, now)
    return "held until status 209"


def _complete(
    store: Store, invoice: InvoiceRecord, event: Changed, now: datetime, policies: PolicySet
) -> str:
    """209 Complétée: the buyer has what it asked for; the hold of a 208 is lifted."""
    if invoice.hold_reason != lifecycle.SUSPENDED_HOLD:
        return "not suspended: evidence only"
    debtor = accounting._debtor_of(store, invoice)
    policy = policies.for_debtor(debtor, invoice.number)
    resumed = holding.release_invoice(store, invoice, debtor, policy, now)
    return "hold of status 208 released" + ("" if resumed else " (something else still pauses it)")


def _payment_sent(
    store: Store, invoice: InvoiceRecord, event: Changed, now: datetime, policies: PolicySet
) -> str:
    """211 Paiement transmis: the buyer says it paid; dunning waits a few business days for
    the funds (policy ``[lifecycle]``), then resumes unless a payment settled the invoice."""
    if holds.held(invoice) and not lifecycle.is_status_hold(invoice.hold_reason):
        return f"already held ({invoice.hold_reason}): that hold stands"
    debtor = accounting._debtor_of(store, invoice)
    policy = policies.for_debtor(debtor, invoice.number)
    days = policy.lifecycle.payment_transmitted_hold_business_days
    until = business_days_after(event.at.date(), days, policy.country)
    holding.hold_invoice(store, invoice, debtor, lifecycle.PAYMENT_SENT_HOLD, until, now)
    return f"held until {until.isoformat()} for the funds"


def business_days_after(day: date, count: int, country: str) -> date:
    """The ``count``-th business day after ``day`` (``day`` itself not counted)."""
    found = 0
    while found < count:
        day += timedelta(days=1)
        found += is_business_day(day, country)
    return day


def _cashed(store: Store, invoice: InvoiceRecord, event: Changed, now: datetime, policies: PolicySet) -> str:
    """212 Encaissée: a payment of its amount, or of the whole balance when it has none.
    Its payment id comes from the status itself, so the same status sent again under
    another event id is not counted twice."""
    amount = event.amount if event.amount is not None else invoice.balance
    if amount <= 0:
        return "nothing owed: evidence only"
    payment_id = cashed_payment_id(event)
    if store.payment(invoice.id, payment_id=payment_id) is not None:
        return f"payment {payment_id} already recorded: evidence only"
    cashed = _Cashed(event.event_id, invoice.number, amount, payment_id)
    accounting._record_money(store, cashed, "payment", None, event.at.date(), now, policies)
    return f"payment of {amount} recorded as {payment_id}"


def cashed_payment_id(event: ev.InvoiceStatusChanged) -> str:
    """``status-212-`` and 16 hex digits of the SHA-256 of the invoice, instant and amount."""
    text = f"{event.invoice_number}|{event.at.isoformat()}|{event.amount if event.amount is not None else ''}"
    return "status-212-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _approve_part(
    store: Store, invoice: InvoiceRecord, event: Changed, now: datetime, policies: PolicySet
) -> str:
    """206 Approuvée partiellement: only the approved amount is owed and chased (penalties
    run on it); the rest is the buyer's refusal."""
    approved = event.amount
    assert approved is not None  # the contract requires it for 206
    if approved > invoice.amount_due:
        raise ev.EventRejected(
            f"amount: {approved} approved is more than invoice {invoice.number}'s {invoice.amount_due}",
            event.event_id,
        )
    before, invoice.amount_due, invoice.updated_at = invoice.amount_due, approved, now
    accounting._settle_if_paid(store, invoice, now, policies)
    cases.follow_invoice(store, invoice, now, f"invoice partly approved (status {event.status_code})")
    return f"amount chased {before} -> {approved}"


def _factored(
    store: Store, invoice: InvoiceRecord, event: Changed, now: datetime, policies: PolicySet
) -> str:
    """225, 226 Affacturée: the factor collects in its own name; dunning stops."""
    if invoice.factored_by is not None:
        return f"already factored ({invoice.factored_by}): evidence only"
    invoice.factored_by, invoice.updated_at = f"factor (status {event.status_code})", now
    follow_factoring(store, invoice, None, now, policies)
    return "factored: dunning stopped"


_EFFECTS = {
    "evidence": _evidence_only,
    "never_issued": _never_issued,
    "refused": _refused,
    "dispute": _dispute,
    "suspend": _suspend,
    "complete": _complete,
    "payment_sent": _payment_sent,
    "cashed": _cashed,
    "approve_part": _approve_part,
    "factored": _factored,
}
