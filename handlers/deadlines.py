"""The formal notice's deadline, counted from the registered letter's presentation.

A registered letter is not read the day it is posted: it is presented to the debtor some
business days later, and may then wait 15 days at the post office. The deadline the notice
gives (``deadline_days``, 8 calendar days) therefore runs from the letter's **expected
presentation** (``postal_delay_days`` business days after posting) and ends on a business
day of the debtor's country. A delivery status showing a later presentation moves it later,
never earlier (docs/policy.md, "Escalation").
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import structlog

from handlers import events as ev
from handlers import evidence
from handlers.calendar import local_date, next_business_day
from handlers.planning import end_of_day
from handlers.policy import ESCALATION, FORMAL_NOTICE, Escalation, PolicySet
from handlers.records import DebtorRecord, InvoiceRecord
from handlers.store import PENDING, Store

log = structlog.get_logger("relance.deadlines")

# statuses of a registered letter that date its presentation: handed over (signed or not),
# refused at the door, or left unclaimed at the post office after a first presentation
PRESENTED = ("delivered", "acknowledged", "refused", "unclaimed")


def presentation_day(posted_on: date, country: str, postal_delay_days: int) -> date:
    """The day a letter posted on ``posted_on`` is expected to be presented: the
    ``postal_delay_days``-th business day of ``country`` after it (the day itself for 0)."""
    day = posted_on
    for _ in range(postal_delay_days):
        day = next_business_day(day + timedelta(days=1), country)
    return day


def deadline_after(presented_on: date, country: str, deadline_days: int) -> date:
    """The last day to pay: ``deadline_days`` calendar days after the presentation, moved to
    the next business day of ``country`` when it is a weekend day or a public holiday."""
    return next_business_day(presented_on + timedelta(days=deadline_days), country)


def formal_notice_deadline(posted_on: date, country: str, rules: Escalation) -> date:
    """The deadline a formal notice posted on ``posted_on`` states: from its expected
    presentation. Every channel of the notice states the same date."""
    presented = presentation_day(posted_on, country, rules.postal_delay_days)
    return deadline_after(presented, country, rules.deadline_days)


def follow_presentation(
    store: Store, event: ev.DeliveryStatus, debtor_id: str, policies: PolicySet, now: datetime
) -> None:
    """A registered formal notice presented on the day of ``event.at`` (debtor's zone): each
    invoice it claims gets its deadline moved to ``deadline_days`` after that day when this
    is later than the deadline planned."""
    if event.status not in PRESENTED:
        return
    numbers = [number for number, step in store.message_claims(event.message_id) if step == FORMAL_NOTICE]
    debtor = store.debtor(debtor_id, lock=True) if numbers else None
    if debtor is None:
        return
    presented_on = local_date(event.at, debtor.timezone)
    for number in numbers:
        invoice = store.invoice(number)
        if invoice is None:
            continue
        rules = policies.for_debtor(debtor, number).escalation
        deadline = deadline_after(presented_on, debtor.country, rules.deadline_days)
        _move_later(store, invoice, debtor, deadline, event, presented_on, now)


def _move_later(
    store: Store,
    invoice: InvoiceRecord,
    debtor: DebtorRecord,
    deadline: date,
    event: ev.DeliveryStatus,
    presented_on: date,
    now: datetime,
) -> None:
    row = store.step_of(invoice.id, ESCALATION)
    expires = end_of_day(deadline, debtor.timezone)
    if row is None or expires <= row.due_at:
        return  # never earlier: the deadline stated in the letter stands
    previous = local_date(row.due_at, debtor.timezone) - timedelta(days=1)
    facts = {
        "debtor_id": debtor.id,
        "invoice_number": invoice.number,
        "message_id": event.message_id,
        "status": event.status,
        "presented_on": presented_on.isoformat(),
        "previous_deadline": previous.isoformat(),
        "deadline": deadline.isoformat(),
    }
    if row.status not in PENDING:
        if row.status == "done":  # a case was opened before the debtor's full time had run
            log.warning("deadline.not_moved", reason="the deadline had already expired", **facts)
        return
    row.due_at, row.status, row.lease_until = expires, "planned", None
    reason = f"registered letter {event.status}, presented on {presented_on.isoformat()}"
    evidence.append(
        store,
        "deadline.moved",
        now,
        {
            "action": "deadline.moved",
            "step": ESCALATION,
            "invoice_numbers": [invoice.number],
            "reason": reason,
        }
        | {k: v for k, v in facts.items() if k != "invoice_number"},
        debtor_id=debtor.id,
        invoice_numbers=[invoice.number],
        message_id=event.message_id,
    )
    log.info("deadline.moved", **facts)
