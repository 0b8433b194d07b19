"""Put and lift a person's hold on an invoice or a debtor (``invoice.held``, ``debtor.held``).

Whether something is held is ruled in ``handlers.holds``; here are the hold's effects on the
schedule. A hold pauses the messages the way a dispute does: its pending steps are cancelled
when it is put, and its release re-plans the steps not yet taken from that day on
(``planning.resume_invoice``, as after a rejected dispute), so the steps missed while held
are not sent in a burst. It has no legal effect: the invoice is not marked disputed, its
penalties run on, its legal route is unchanged (docs/policy.md, "Holds").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from handlers import holds
from handlers.planning import cancel_pending, end_of_day, resume_invoice, schedule_again
from handlers.policy import Policy
from handlers.records import DebtorRecord, InvoiceRecord
from handlers.store import StepFilter, Store

PolicyFor = Callable[[DebtorRecord, str], Policy]  # the policy of (debtor, invoice number)


def hold_invoice(
    store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, reason: str, until: date | None, now: datetime
) -> None:
    """``invoice.held``: a later hold replaces an earlier one (its reason and last day)."""
    invoice.hold_reason, invoice.held_until, invoice.updated_at = reason, until, now
    _pause(store, invoice, debtor, "invoice held", holds.HOLD_EXPIRED, until)


def hold_debtor(store: Store, debtor: DebtorRecord, reason: str, until: date | None, now: datetime) -> None:
    """``debtor.held``: every open invoice now, and every one issued while held
    (``hold_new_invoice``)."""
    debtor.hold_reason, debtor.held_until, debtor.updated_at = reason, until, now
    for invoice in store.open_invoices(debtor.id, lock=True):
        _pause(store, invoice, debtor, "debtor held", holds.DEBTOR_HOLD_EXPIRED, until)


def hold_new_invoice(store: Store, invoice: InvoiceRecord, debtor: DebtorRecord) -> None:
    """An invoice issued to a held debtor is held from the start: its ladder waits."""
    if holds.held(debtor):
        _pause(store, invoice, debtor, "debtor held", holds.DEBTOR_HOLD_EXPIRED, debtor.held_until)


def _pause(
    store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, reason: str, expiry: str, until: date | None
) -> None:
    cancel_pending(store, invoice.id, reason)
    if until is None:  # held until released: an end planned by an earlier hold goes
        store.cancel_pending(invoice.id, reason, StepFilter(names=(expiry,)))
    else:  # released at the end of its last day, in the debtor's time zone
        schedule_again(store, invoice, expiry, "deadline.expired", end_of_day(until, debtor.timezone))


def release_invoice(
    store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, policy: Policy, now: datetime
) -> bool:
    """``invoice.released`` or the end of its last day: True when dunning resumed."""
    invoice.hold_reason, invoice.held_until, invoice.updated_at = None, None, now
    store.cancel_pending(invoice.id, "hold released", StepFilter(names=(holds.HOLD_EXPIRED,)))
    return resume_after_hold(store, invoice, debtor, policy, now)


def release_debtor(store: Store, debtor: DebtorRecord, policy_for: PolicyFor, now: datetime) -> list[str]:
    """``debtor.released`` or the end of its last day: the numbers of the invoices resumed."""
    debtor.hold_reason, debtor.held_until, debtor.updated_at = None, None, now
    resumed = []
    for invoice in store.open_invoices(debtor.id, lock=True):
        store.cancel_pending(invoice.id, "hold released", StepFilter(names=(holds.DEBTOR_HOLD_EXPIRED,)))
        if resume_after_hold(store, invoice, debtor, policy_for(debtor, invoice.number), now):
            resumed.append(invoice.number)
    return resumed


def resume_after_hold(
    store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, policy: Policy, now: datetime
) -> bool:
    """Resume an invoice a hold no longer pauses, as after a rejected dispute, unless
    something else still does (a dispute, a promise, a plan, the other hold, insolvency)."""
    if not holds.may_resume(invoice, debtor) or invoice.in_payment_plan:
        return False
    resume_invoice(store, invoice, debtor, policy, now)
    return True


def expire_invoice_hold(
    store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, policy: Policy, now: datetime, today: date
) -> str | None:
    """The ``hold_expired`` deadline: release the invoice if its hold's last day is past;
    else why not (the step's reason)."""
    if not holds.hold_ended(invoice, today):
        return "invoice no longer held until that day"
    release_invoice(store, invoice, debtor, policy, now)
    return None


def expire_debtor_hold(
    store: Store, debtor: DebtorRecord, policy_for: PolicyFor, now: datetime, today: date
) -> str | None:
    """The ``debtor_hold_expired`` deadline (one per invoice held: the first releases the
    debtor, the others find it released); else why not (the step's reason)."""
    if not holds.hold_ended(debtor, today):
        return "debtor no longer held until that day"
    release_debtor(store, debtor, policy_for, now)
    return None
