"""``relance payments``: the bank entries no invoice was found for, and settling them.

``unmatched`` lists the entries ``relance import`` kept without a match (unmatched or
ambiguous), ``--retry`` first matches them again against the open invoices (an invoice
imported after the statement); ``match ENTRY INVOICE…`` pays the invoices a person names
with the entry (``handlers.bank_entries.allocate``). The payments are events applied
through the batches of ``relance ingest``; the entry is marked matched once they are in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import TextIO

from sqlalchemy import select

from adapters import bank_entries as table
from adapters.orm import BankEntryRow, InvoiceRow, PaymentRow
from adapters.store import transaction
from config.bootstrap import App
from handlers.bank_entries import AllocationRefused, Outcome, Payment, allocate, outcome, payment_events
from handlers.matching import StatementEntry, match_entries
from handlers.service import parse_line
from intake.importing import json_line
from intake.ingest import BatchItem, apply_items
from intake.statements import open_invoices


class MatchRefused(ValueError):
    """``relance payments match`` cannot do what it was asked: one line says why."""


def waiting_lines(app: App, creditor: str) -> Iterator[str]:
    """One tab-separated line per waiting entry (key, day, amount, currency, payer,
    remittance, why), then a summary line."""
    with transaction(app.sessions) as session:
        session.scope(creditor)
        rows = table.waiting(session)
        lines = [_line_of(row) for row in rows]
    yield from lines
    ambiguous = sum(1 for row in rows if row.status == "ambiguous")
    yield f"unmatched {len(rows) - ambiguous}, ambiguous {ambiguous}"


def _line_of(row: BankEntryRow) -> str:
    day = row.value_date or row.booking_date
    sign = "" if row.credit else "-"
    candidates = json.loads(row.candidates)
    why = f"{row.status}: {row.reason}"
    if candidates:
        why += " (candidates: " + " | ".join(", ".join(c) for c in candidates) + ")"
    return "\t".join(
        (
            row.entry_key,
            day.isoformat() if day else "-",
            f"{sign}{row.amount}",
            row.currency,
            row.counterparty or "-",
            row.remittance or "-",
            why,
        )
    )


def _entry_of(row: BankEntryRow) -> StatementEntry:
    texts = tuple(t for t in row.remittance.split(" | ") if t)
    return StatementEntry(
        reference=row.entry_key,
        booking_date=row.booking_date,
        value_date=row.value_date,
        amount=row.amount,
        currency=row.currency,
        credit=row.credit,
        remittance=texts,
        structured_references=texts,  # an RF reference among them is still one
        counterparty=row.counterparty,
        end_to_end_id=row.end_to_end_id,
        is_return=row.is_return,
    )


def retry(app: App, creditor: str, out: TextIO) -> int:
    """Match the waiting entries again against the open invoices; apply the payments of
    those matched now and mark them matched. Returns how many were matched."""
    invoices = open_invoices(app, creditor)
    with transaction(app.sessions) as session:
        session.scope(creditor)
        entries = [_entry_of(row) for row in table.waiting(session)]
        results: list[tuple[StatementEntry, Outcome]] = []
        for result in match_entries(entries, invoices):
            entry = result.entry
            returned = table.returned_payments(session, entry) if entry.is_return and not entry.credit else []
            found = outcome(result, returned)
            if found.status in ("matched", "reversed"):
                results.append((entry, found))
    done = 0
    for entry, found in results:
        if _apply_and_settle(app, creditor, entry.reference, found, "retry", out):
            done += 1
    out.write(f"matched {done} of {len(entries)} waiting entries\n")
    return done


def match(app: App, creditor: str, key: str, numbers: list[str], by: str | None, out: TextIO) -> Outcome:
    """Settle waiting entry ``key`` with invoices ``numbers``: a credit pays each invoice its
    open balance in order, the last the rest; a returned debit takes back the payment of
    the one invoice named. Raises MatchRefused."""
    with transaction(app.sessions) as session:
        session.scope(creditor)
        row = table.by_key(session, key)
        if row is None:
            raise MatchRefused(f"no bank entry {key} (see `relance payments unmatched`)")
        if row.status not in ("unmatched", "ambiguous"):
            raise MatchRefused(f"bank entry {key} is already {row.status}")
        found = _paid_by(session, row, numbers) if row.credit else _taken_back(session, row, numbers)
    if not _apply_and_settle(app, creditor, key, found, by or "hand", out):
        raise MatchRefused(f"bank entry {key}: an event was rejected (see `relance inbox`); the entry waits")
    return found


def _paid_by(session, row: BankEntryRow, numbers: list[str]) -> Outcome:
    balances = [_balance(session, number, row.currency) for number in numbers]
    try:
        payments = allocate(row.entry_key, row.amount, balances)
    except AllocationRefused as exc:
        raise MatchRefused(f"bank entry {row.entry_key}: {exc}") from None
    return Outcome("matched", "by hand", payments=payments)


def _taken_back(session, row: BankEntryRow, numbers: list[str]) -> Outcome:
    """A returned debit matched by hand to the one invoice whose payment it takes back: the
    invoice's latest standing payment of exactly the returned amount, with an id."""
    if not row.is_return:
        raise MatchRefused(f"bank entry {row.entry_key} is a debit, not a returned payment")
    if len(numbers) != 1:
        raise MatchRefused(
            f"bank entry {row.entry_key} is a returned payment: name the one invoice it was for"
        )
    (number,) = numbers
    if session.scalars(select(InvoiceRow.id).where(InvoiceRow.number == number)).first() is None:
        raise MatchRefused(f"no invoice {number}")
    payments = session.execute(
        select(PaymentRow.payment_id)
        .join(InvoiceRow, InvoiceRow.id == PaymentRow.invoice_id)
        .where(
            InvoiceRow.number == number,
            PaymentRow.kind == "payment",
            PaymentRow.reversed_on.is_(None),
            PaymentRow.amount == row.amount,
            PaymentRow.payment_id.is_not(None),
        )
        .order_by(PaymentRow.on_day.desc(), PaymentRow.id.desc())
    ).scalars()
    payment_id = next(iter(payments), None)
    if payment_id is None:
        raise MatchRefused(
            f"invoice {number} has no standing payment of {row.amount} with a payment id to take back"
        )
    why = row.reason.split(":")[0]  # "returned debit (MD06)", as stored on import
    return Outcome("reversed", why, payments=(Payment(number, row.amount, payment_id),))


def _balance(session, number: str, currency: str) -> tuple[str, Decimal]:
    invoice = session.scalars(select(InvoiceRow).where(InvoiceRow.number == number)).first()
    if invoice is None:
        raise MatchRefused(f"no invoice {number}")
    if invoice.status != "open":
        raise MatchRefused(f"invoice {number} is {invoice.status}, not open")
    if invoice.currency != currency:
        raise MatchRefused(f"invoice {number} is in {invoice.currency}, the entry in {currency}")
    return number, invoice.amount_due - invoice.paid - invoice.credited


def _apply_and_settle(app: App, creditor: str, key: str, found: Outcome, by: str, out: TextIO) -> bool:
    """Apply the events of ``found``; when none is rejected, mark the entry with it."""
    with transaction(app.sessions) as session:
        session.scope(creditor)
        row = table.by_key(session, key)
        assert row is not None
        day = row.value_date or row.booking_date
    if day is None:
        return False
    events = payment_events(key, found, day, creditor)
    items = []
    for number, event in enumerate(events, start=1):
        raw = json_line(event)
        items.append(
            BatchItem(f"bank entry {key}", number, raw, parse_line(raw), f"{key} ({event['invoice_number']})")
        )
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    apply_items(app, items, counts, out)
    if counts["rejected"]:
        return False
    with transaction(app.sessions) as session:
        session.scope(creditor)
        row = table.by_key(session, key)
        assert row is not None
        table.settle(row, found, by=by)
    return True
