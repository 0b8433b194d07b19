"""The imported bank statement entries of a creditor (table ``bank_entries``), on SQL.

Every entry ``relance import`` reads from a statement is kept once, under its key (unique
per creditor): the key says whether a statement was imported before, and the entries no
invoice was found for wait there for ``relance payments match``. The session given is
scoped to the creditor (``adapters.uow``), so these functions see its entries only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from adapters.orm import BankEntryRow, InvoiceRow, PaymentRow
from handlers.bank_entries import WAITING, Outcome, Payment
from handlers.matching import StatementEntry


def known(session: Session, keys: Iterable[str]) -> dict[str, BankEntryRow]:
    """The entries already imported among ``keys``, by key."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, BankEntryRow] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.scalars(select(BankEntryRow).where(BankEntryRow.entry_key.in_(chunk)))
        found.update((row.entry_key, row) for row in rows)
    return found


def add(session: Session, entry: StatementEntry, result: Outcome, source: str, now: datetime) -> BankEntryRow:
    """Keep ``entry`` and what it became."""
    row = BankEntryRow(
        entry_key=entry.reference,
        source=source[-500:],
        booking_date=entry.booking_date,
        value_date=entry.value_date,
        amount=entry.amount,
        currency=entry.currency,
        credit=entry.credit,
        is_return=entry.is_return,
        counterparty=(entry.counterparty or "")[:300] or None,
        remittance=" | ".join((*entry.remittance, *entry.structured_references)),
        end_to_end_id=(entry.end_to_end_id or "")[:100] or None,
        imported_at=now,
    )
    settle(row, result)
    session.add(row)
    return row


def settle(row: BankEntryRow, result: Outcome, by: str | None = None) -> None:
    """Write ``result`` on ``row``: its status, reason, candidates and payments."""
    row.status = result.status
    row.reason = result.reason[:500]
    row.candidates = json.dumps([list(c) for c in result.candidates])
    row.allocations = json.dumps([[p.invoice_number, str(p.amount), p.payment_id] for p in result.payments])
    row.matched_by = by


def stored_outcome(row: BankEntryRow) -> Outcome:
    """What ``row`` says the entry became."""
    payments = tuple(Payment(n, Decimal(a), p) for n, a, p in json.loads(row.allocations))
    candidates = tuple(tuple(c) for c in json.loads(row.candidates))
    return Outcome(row.status, row.reason, candidates, payments)  # type: ignore[arg-type]


def waiting(session: Session) -> list[BankEntryRow]:
    """The entries no invoice was found for, oldest first."""
    query = select(BankEntryRow).where(BankEntryRow.status.in_(WAITING))
    return list(session.scalars(query.order_by(BankEntryRow.creditor_id, BankEntryRow.id)))


def by_key(session: Session, key: str) -> BankEntryRow | None:
    return session.scalars(select(BankEntryRow).where(BankEntryRow.entry_key == key)).first()


def returned_payments(session: Session, entry: StatementEntry) -> list[Payment]:
    """The standing payments a returned debit takes back: those of the imported credit
    entry with the same end-to-end id (its payments' id is that entry's key), else a
    payment whose own id is that end-to-end id (sent by the accounting system). Only
    payments of the returned amount in all are taken."""
    if not entry.end_to_end_id:
        return []
    credits = session.scalars(
        select(BankEntryRow).where(
            BankEntryRow.end_to_end_id == entry.end_to_end_id,
            BankEntryRow.credit.is_(True),
            BankEntryRow.status == "matched",
            BankEntryRow.amount == entry.amount,
        )
    ).all()
    if credits:  # the payments it gave, recorded or about to be in this import
        found = [p for row in credits[:1] for p in stored_outcome(row).payments]
    else:
        rows = session.execute(
            select(InvoiceRow.number, PaymentRow.amount, PaymentRow.payment_id)
            .join(InvoiceRow, InvoiceRow.id == PaymentRow.invoice_id)
            .where(
                PaymentRow.payment_id == entry.end_to_end_id,
                PaymentRow.reversed_on.is_(None),
                PaymentRow.kind == "payment",
            )
            .order_by(PaymentRow.id)
        ).all()
        found = [Payment(r.number, r.amount, str(r.payment_id)) for r in rows]
    if sum((p.amount for p in found), Decimal(0)) != entry.amount:
        return []
    return found


def erase_payer(session: Session, clues: list[str], invoice_numbers: list[str], erased: str) -> int:
    """Replace the payer's name and the remittance texts of the entries of a debtor being
    erased: those that paid or took back one of its invoices, or whose payer or remittance
    holds one of ``clues`` (its name, its e-mail address). The amounts, days and keys stay:
    they are the creditor's accounts. Returns how many entries were changed."""
    tests = [BankEntryRow.counterparty.in_(clues)] + [
        BankEntryRow.remittance.contains(clue, autoescape=True) for clue in clues
    ]
    tests += [
        BankEntryRow.allocations.contains(f"[{json.dumps(number)}, ", autoescape=True)
        for number in invoice_numbers
    ]
    count = 0
    for start in range(0, len(tests), 200):
        rows = session.scalars(select(BankEntryRow).where(or_(*tests[start : start + 200]))).all()
        for row in rows:
            if row.remittance != erased or (row.counterparty not in (None, erased)):
                row.counterparty = erased if row.counterparty is not None else None
                row.remittance, count = erased, count + 1
    return count
