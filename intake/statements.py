"""``relance statement``: the payments a bank statement brings, matched to open invoices.

Read-only: the statement is read (adapters/importers/bank.py), the open invoices are read
from the store, and ``handlers.matching.match_entries`` proposes for each entry the invoices
it pays. Nothing is applied; a person checks the proposals and sends the payments as
``payment.received`` events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from adapters.importers.bank import read_statement
from adapters.orm import DEFAULT_CREDITOR, DebtorRow, InvoiceRow
from adapters.store import transaction
from config.bootstrap import App
from handlers.matching import EntryMatch, OpenInvoice, match_entries


def open_invoices(app: App, creditor: str = DEFAULT_CREDITOR) -> list[OpenInvoice]:
    """Every open invoice of ``creditor`` with its debtor's name and open balance, oldest
    due first."""
    with transaction(app.sessions) as session:
        session.scope(creditor)
        rows = session.execute(
            select(
                InvoiceRow.number,
                InvoiceRow.debtor_id,
                DebtorRow.name,
                InvoiceRow.amount_due,
                InvoiceRow.paid,
                InvoiceRow.credited,
                InvoiceRow.currency,
            )
            .join(DebtorRow, DebtorRow.id == InvoiceRow.debtor_id)
            .where(InvoiceRow.status == "open")
            .order_by(InvoiceRow.due_date, InvoiceRow.number)
        ).all()
    return [OpenInvoice(row.number, row.debtor_id, row.name, _balance(row), row.currency) for row in rows]


def _balance(row: Any) -> Decimal:
    return row.amount_due - row.paid - row.credited


def proposals(app: App, files: Iterable[Path], creditor: str = DEFAULT_CREDITOR) -> list[EntryMatch]:
    """The entries of ``files`` in order, matched against the open invoices of ``creditor``
    (a bank account is one creditor's). Raises StatementRejected for a file that cannot be
    read."""
    entries = [entry for path in files for entry in read_statement(path)]
    return match_entries(entries, open_invoices(app, creditor))


def lines(results: list[EntryMatch]) -> Iterator[str]:
    """One tab-separated line per entry, then a summary line."""
    for result in results:
        entry = result.entry
        booked = entry.booking_date.isoformat() if entry.booking_date else "-"
        sign = "" if entry.credit else "-"
        status = f"{result.status} ({result.rule})" if result.rule else result.status
        if result.allocations:
            found = ", ".join(f"{a.invoice_number} {a.amount}" for a in result.allocations)
        else:
            found = " | ".join(", ".join(numbers) for numbers in result.candidates) or "-"
        amount = f"{sign}{entry.amount} {entry.currency}"
        yield "\t".join((entry.reference, booked, amount, status, found, result.reason or "-"))
    counts = Counter(result.status for result in results)
    yield (
        f"entries {len(results)}: matched {counts['matched']}, ambiguous {counts['ambiguous']}, "
        f"unmatched {counts['unmatched']}"
    )
