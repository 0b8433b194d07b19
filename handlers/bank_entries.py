"""Bank statement entries turned into payment events (docs/import.md#bank-statements).

Pure: what an imported entry becomes (``outcome``), how a person's choice of invoices splits
an entry (``allocate``), and the ``payment.received`` / ``payment.reversed`` events an entry
gives. Each event's ``event_id`` is made of the entry's key and the invoice number, so the
same entry imported again gives the same events, which the inbox takes as duplicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from handlers.events import DEFAULT_CREDITOR
from handlers.matching import Allocation, EntryMatch, StatementEntry

Status = Literal["matched", "reversed", "unmatched", "ambiguous", "ignored"]
_PARIS = ZoneInfo("Europe/Paris")
WAITING = ("unmatched", "ambiguous")  # the entries a person settles (`relance payments`)


@dataclass(frozen=True)
class Payment:
    """One invoice's share of an entry: paid (a credit) or taken back (a returned debit)."""

    invoice_number: str
    amount: Decimal
    payment_id: str


@dataclass(frozen=True)
class Outcome:
    """What an entry became on import, as it is stored."""

    status: Status
    reason: str = ""
    candidates: tuple[tuple[str, ...], ...] = ()
    payments: tuple[Payment, ...] = ()


class AllocationRefused(ValueError):
    """Invoices named for an entry that cannot take its amount as stated."""


def day_of(entry: StatementEntry) -> date | None:
    """The day the money moved: the value date, else the booking date."""
    return entry.value_date or entry.booking_date


def outcome(result: EntryMatch, returned: Sequence[Payment] = ()) -> Outcome:
    """What ``result`` (``handlers.matching``) becomes. A returned debit becomes
    ``reversed`` when the payments it takes back were found (``returned``), else waits
    with the reason; another debit is no debtor's payment and is ``ignored``."""
    entry = result.entry
    if entry.is_return and not entry.credit:
        if returned:
            return Outcome("reversed", _return_reason(entry), payments=tuple(returned))
        named = f" (end-to-end id {entry.end_to_end_id})" if entry.end_to_end_id else ""
        why = f"{_return_reason(entry)}: the payment it takes back was not found{named}"
        return Outcome("unmatched", why)
    if not entry.credit:
        return Outcome("ignored", result.reason)
    if result.status == "matched" and day_of(entry) is not None:
        return Outcome("matched", f"by {result.rule}", payments=_paid(entry, result.allocations))
    if result.status == "matched":
        return Outcome("unmatched", "the entry has neither a value date nor a booking date")
    return Outcome(result.status, result.reason, result.candidates)


def _return_reason(entry: StatementEntry) -> str:
    code = f" ({entry.return_reason})" if entry.return_reason else ""
    return f"returned debit{code}"


def _paid(entry: StatementEntry, allocations: Sequence[Allocation]) -> tuple[Payment, ...]:
    return tuple(Payment(a.invoice_number, a.amount, entry.reference) for a in allocations)


def allocate(key: str, amount: Decimal, balances: Sequence[tuple[str, Decimal]]) -> tuple[Payment, ...]:
    """The entry of ``amount`` split over invoices named by a person, in their order: each
    takes its open balance, the last one the rest. Refused when the rest is nothing (the
    earlier invoices take it all) or more than the last invoice's balance (the entry pays
    more than the invoices named owe: name the others too)."""
    if not balances:
        raise AllocationRefused("no invoice named")
    numbers = [number for number, _ in balances]
    if len(set(numbers)) != len(numbers):
        raise AllocationRefused("an invoice is named twice")
    *first, (last, last_balance) = balances
    before = sum((balance for _, balance in first), Decimal(0))
    rest = amount - before
    if rest <= 0:
        raise AllocationRefused(
            f"{amount} is taken by the invoices before {last} (open {before}): leave {last} out"
        )
    if rest > last_balance:
        owed = before + last_balance
        raise AllocationRefused(f"{amount} is more than the {owed} open on {', '.join(numbers)}")
    return (*(Payment(n, b, key) for n, b in first), Payment(last, rest, key))


def event_id(key: str, invoice_number: str) -> str:
    """The id of the event an entry gives for one invoice: the same on every import."""
    made = f"bank-{key}-{invoice_number}"
    if len(made) <= 200:
        return made
    return f"bank-{hashlib.sha256(made.encode()).hexdigest()}"


def payment_events(key: str, stored: Outcome, day: date, creditor: str) -> list[dict[str, Any]]:
    """The events of a matched or reversed entry: one per invoice it pays or takes back.
    They occurred on ``day`` (the value date) at noon in Paris, the same day in every
    European time zone; nothing in them depends on when the statement is imported."""
    occurred = datetime.combine(day, time(12), tzinfo=_PARIS).isoformat()
    events = []
    for payment in stored.payments:
        if stored.status == "reversed":
            body: dict[str, Any] = {
                "type": "payment.reversed",
                "invoice_number": payment.invoice_number,
                "payment_id": payment.payment_id,
                "reversed_on": day.isoformat(),
                "reason": stored.reason,
            }
        else:
            body = {
                "type": "payment.received",
                "invoice_number": payment.invoice_number,
                "amount": str(payment.amount),
                "paid_on": day.isoformat(),
                "payment_id": payment.payment_id,
            }
        envelope = {"event_id": event_id(key, payment.invoice_number), "occurred_at": occurred}
        if creditor != DEFAULT_CREDITOR:
            envelope["creditor_id"] = creditor
        events.append(envelope | body)
    return events
