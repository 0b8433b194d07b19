"""Contact pressure: courtesy messages to one debtor keep ``min_days_between_messages`` apart.

A courtesy step (a pre-due, due or overdue reminder of the ladder) due fewer than N days
after the last message recorded for the debtor (any channel, any currency, any step) waits
for the first business day N days after that message, at the opening of its sending window.
Never held back:

- the formal notice, and the milder steps of its invoice due with it (passed over for it);
- an installment reminder of a payment plan: its date was agreed with the debtor;
- a step already recorded on one of its channels (an e-mail refused and re-sent by post):
  the same message again, not a new contact.

Messages recorded by one decision leave together and are one contact: a courtesy group that
cannot go with them (its channel is used that day) waits N days from today, not one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta

from handlers.calendar import next_sending_time, zone
from handlers.snapshot import DueStep, Snapshot


def is_courtesy(step: DueStep, recorded: set[tuple[int, str]]) -> bool:
    """Whether the gap between messages may hold this step back."""
    if step.formal_notice or step.installment:
        return False
    return (step.invoice_id, step.name) not in recorded


def recorded_pairs(snapshot: Snapshot) -> set[tuple[int, str]]:
    """The (invoice id, step) already in a recorded message, on any channel."""
    return {(invoice_id, name) for invoice_id, name, _ in snapshot.recorded}


def allowed_from(snapshot: Snapshot, contact: date) -> datetime:
    """The sending opening of the first business day ``min_days_between_messages`` after a
    contact on ``contact``."""
    debtor = snapshot.debtor
    first = contact + timedelta(days=snapshot.min_days_between_messages)
    midnight = datetime.combine(first, time(0, 0), tzinfo=zone(debtor.timezone))
    return next_sending_time(midnight, debtor.timezone, debtor.country, snapshot.window)


def too_soon(snapshot: Snapshot, today: date) -> bool:
    """Whether the last contact is fewer than the policy's days before ``today``."""
    last = snapshot.last_contact
    gap = snapshot.min_days_between_messages
    return gap > 0 and last is not None and (today - last).days < gap


def reason(snapshot: Snapshot, contact: date) -> str:
    days = snapshot.min_days_between_messages
    return f"{days} days between messages to the debtor, the last on {contact.isoformat()}"


def split_held(
    steps: Sequence[DueStep], passed_over: Iterable[tuple[int, int | None]], recorded: set[tuple[int, str]]
) -> tuple[list[DueStep], list[int], set[int]]:
    """The steps that may go, the ids of the courtesy steps held back, and the ids of the
    passed-over steps (``(step id, lead step id)``) whose lead is held back: they wait with it."""
    kept: list[DueStep] = []
    held: list[int] = []
    for step in steps:
        if is_courtesy(step, recorded):
            held.append(step.step_id)
        else:
            kept.append(step)
    leads = set(held)
    waiting = {step_id for step_id, lead in passed_over if lead in leads}
    return kept, held, waiting
