"""Whether an invoice may be chased, escalated or listed today: every hold rule, in one place.

Pure functions of an invoice's and its debtor's state (any objects with the attributes of
the protocols below: store rows or snapshot values) and the day. Reminders, escalation,
payment plans and event handling all ask here; none decides on its own.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Protocol


class InvoiceState(Protocol):
    """What the hold rules read of an invoice (read-only: rows and snapshots both fit)."""

    @property
    def number(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def balance(self) -> Decimal: ...
    @property
    def issue_date(self) -> date: ...
    @property
    def delivered_on(self) -> date | None: ...
    @property
    def factored_by(self) -> str | None: ...
    @property
    def disputed(self) -> bool: ...
    @property
    def in_payment_plan(self) -> bool: ...
    @property
    def paused_until(self) -> date | None: ...
    @property
    def hold_reason(self) -> str | None: ...
    @property
    def held_until(self) -> date | None: ...


class DebtorState(Protocol):
    """What the hold rules read of a debtor."""

    @property
    def opt_out(self) -> bool: ...
    @property
    def insolvency_judgment_date(self) -> date | None: ...
    @property
    def insolvency_procedure(self) -> str | None: ...
    @property
    def hold_reason(self) -> str | None: ...
    @property
    def held_until(self) -> date | None: ...


def settled(invoice: InvoiceState) -> bool:
    """Nothing is owed on it any more: paid, credited, cancelled or written off."""
    return invoice.status != "open" or invoice.balance <= 0


class Origin(Protocol):
    """What says when a claim was born: the delivery or service, else the invoice."""

    @property
    def issue_date(self) -> date: ...
    @property
    def delivered_on(self) -> date | None: ...


def claim_origin(invoice: Origin) -> date:
    """The day the claim was born: the completion of the delivery or service
    (``delivered_on``); without it, the issue date stands in (``origin_presumed``)."""
    return invoice.delivered_on or invoice.issue_date


def origin_presumed(invoice: Origin) -> bool:
    """Whether the claim's origin is only presumed from its issue date (no delivery date)."""
    return invoice.delivered_on is None


def born_before(invoice: Origin, judgment: date | None) -> bool:
    """Whether the claim was born before an opening judgment (C. com. L622-24), rather than
    after it (L622-17): what counts is the delivery or service, not the invoice date."""
    return judgment is not None and claim_origin(invoice) < judgment


def frozen_by_insolvency(invoice: InvoiceState, debtor: DebtorState) -> bool:
    """A claim born before the opening judgment may only be declared (C. com. L622-21),
    whatever the procedure's later stage: its chasing never resumes on its own."""
    return born_before(invoice, debtor.insolvency_judgment_date)


def factored(invoice: InvoiceState) -> bool:
    """Assigned to a factor, who collects it in its own name (subrogation, C. civ. 1346 ff.)."""
    return invoice.factored_by is not None


def factored_hold(invoice: InvoiceState) -> str:
    """The reason a factored invoice is neither chased nor escalated by the seller."""
    return f"invoice factored: collected by {invoice.factored_by}"


def below_minimum(invoice: InvoiceState, minimum: Decimal) -> bool:
    """A balance too small to chase (the policy's ``minimum_balance`` for its currency)."""
    return Decimal(0) < invoice.balance < minimum


# the deadlines that end a person's hold with a last day (``handlers.holding``)
HOLD_EXPIRED = "hold_expired"
DEBTOR_HOLD_EXPIRED = "debtor_hold_expired"


class Holdable(Protocol):
    """An invoice or a debtor a person may hold (``invoice.held``, ``debtor.held``)."""

    @property
    def hold_reason(self) -> str | None: ...
    @property
    def held_until(self) -> date | None: ...


def held(what: Holdable) -> bool:
    """Held by a person until released, or until the end of the hold's last day (the
    ``hold_expired`` deadline then releases it): whatever that day, like a promise."""
    return what.hold_reason is not None


def held_on(what: Holdable, today: date) -> bool:
    """Held on the local day ``today``: the hold's last day is still held."""
    return held(what) and (what.held_until is None or what.held_until >= today)


def hold_ended(what: Holdable, today: date) -> bool:
    """A hold with a last day before ``today``: its deadline may release it."""
    return held(what) and what.held_until is not None and what.held_until < today


def person_hold(invoice: InvoiceState, debtor: DebtorState, today: date) -> str | None:
    """Why a person holds this invoice on ``today`` (its own hold first), or None.

    A hold pauses the messages only: unlike a dispute it has no legal effect, so it is not
    a reason in ``escalation_hold`` and penalties run on (docs/policy.md, "Holds").
    """
    if held_on(invoice, today):
        return f"invoice held: {invoice.hold_reason}"
    if held_on(debtor, today):
        return f"debtor held: {debtor.hold_reason}"
    return None


def paused(invoice: InvoiceState) -> bool:
    """Held by a dispute, a payment plan, a promise to pay (whatever its date), a person's
    hold (whatever its last day), or a factor who collects it."""
    return (
        invoice.disputed
        or invoice.in_payment_plan
        or invoice.paused_until is not None
        or held(invoice)
        or factored(invoice)
    )


def chase_hold(invoice: InvoiceState, debtor: DebtorState, today: date, minimum: Decimal) -> str | None:
    """Why no automatic message may claim this invoice today, or None when one may."""
    if invoice.status != "open":
        return f"invoice {invoice.status}"
    if invoice.balance <= 0:
        return "nothing left to pay"
    if factored(invoice):
        return factored_hold(invoice)
    if below_minimum(invoice, minimum):
        return f"balance {invoice.balance} {invoice.currency} below the minimum of {minimum}"
    if invoice.disputed:
        return "invoice disputed"
    if invoice.in_payment_plan:
        return "invoice in a payment plan"
    if invoice.paused_until is not None and invoice.paused_until >= today:
        return f"promise to pay until {invoice.paused_until.isoformat()}"
    if (reason := person_hold(invoice, debtor, today)) is not None:
        return reason
    if frozen_by_insolvency(invoice, debtor):
        return f"debtor in insolvency proceedings ({debtor.insolvency_procedure})"
    if debtor.opt_out:
        return "debtor opted out of automatic contact"
    return None


def overdue_on(due_date: date, today: date) -> bool:
    """Whether an invoice due on ``due_date`` is overdue on the local day ``today``."""
    return due_date < today


def overdue_step_hold(due_date: date, today: date) -> str | None:
    """Why an overdue step (notice ... formal notice) may not claim this invoice today.

    Only an invoice whose due date is before the day the message goes out is overdue; one
    due today or later may at most be mentioned as coming due.
    """
    if overdue_on(due_date, today):
        return None
    return f"invoice not overdue on {today.isoformat()} (due {due_date.isoformat()})"


def escalation_hold(invoice: InvoiceState, minimum: Decimal) -> str | None:
    """Why this invoice may not join an escalation case, or None when it may.

    An opted-out debtor is still escalated (the case reaches a person, not the debtor).
    """
    if settled(invoice):
        return f"invoice {invoice.status}" if invoice.status != "open" else "nothing left to pay"
    if factored(invoice):
        return factored_hold(invoice)
    if below_minimum(invoice, minimum):
        return f"balance {invoice.balance} {invoice.currency} below the minimum of {minimum}"
    if invoice.disputed:
        return "invoice disputed"
    if invoice.in_payment_plan:
        return "invoice in a payment plan"
    return None


def may_resume(invoice: InvoiceState, debtor: DebtorState) -> bool:
    """Whether dunning of an invoice leaving a plan or a pause starts again now."""
    return (
        not settled(invoice)
        and not invoice.disputed
        and invoice.paused_until is None
        and not held(invoice)
        and not held(debtor)
        and not factored(invoice)
        and not frozen_by_insolvency(invoice, debtor)
    )


def listed_as_other(invoice: InvoiceState, debtor: DebtorState) -> bool:
    """Whether an overdue invoice appears in a reminder's statement of other invoices."""
    return (
        not settled(invoice)
        and not invoice.disputed
        and not invoice.in_payment_plan
        and not factored(invoice)
        and not frozen_by_insolvency(invoice, debtor)
    )
