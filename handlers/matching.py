"""Bank statement entries matched to open invoices (docs/import.md#matching-payments).

``match_entries`` proposes, for each entry of a statement, the invoices it pays, trying in
order: an invoice number or RF creditor reference in the remittance information; then the
debtor (by name) and an open invoice of exactly the amount; then the debtor and a set of its
open invoices adding up to the amount (a bounded search). It decides nothing: every entry
comes back, matched, unmatched or ambiguous, with its reason, for a person or a later step
to turn into payment events. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import combinations
from typing import Literal

# the sum search looks at no more than this many of a debtor's invoices, in sets of at most
# MAX_SET_SIZE: C(20, 4) = 4845 sets at most per entry, a few milliseconds
MAX_CANDIDATES = 20
MAX_SET_SIZE = 4


@dataclass(frozen=True)
class StatementEntry:
    """One movement of a bank statement, as the readers of adapters/importers/bank.py give it."""

    reference: str  # unique within its statement
    booking_date: date | None
    value_date: date | None
    amount: Decimal  # positive; ``credit`` gives the direction
    currency: str
    credit: bool
    remittance: tuple[str, ...] = ()  # unstructured remittance information
    structured_references: tuple[str, ...] = ()  # creditor references (RF…), referred documents
    counterparty: str | None = None  # the payer of a credit, the payee of a debit
    end_to_end_id: str | None = None
    is_return: bool = False  # a return or reversal (of a direct debit, a transfer)
    return_reason: str | None = None  # ISO 20022 return reason or CFONB reject code
    label: str | None = None  # the bank's own text for the entry


@dataclass(frozen=True)
class OpenInvoice:
    number: str
    debtor_id: str
    debtor_name: str
    balance: Decimal
    currency: str


@dataclass(frozen=True)
class Allocation:
    invoice_number: str
    amount: Decimal


@dataclass(frozen=True)
class EntryMatch:
    """What ``match_entries`` proposes for one entry. ``matched``: ``allocations`` add up to
    the entry's amount; ``ambiguous``: several readings, listed in ``candidates``;
    ``unmatched``: nothing found, or not a payment to match (a debit, a return)."""

    entry: StatementEntry
    status: Literal["matched", "unmatched", "ambiguous"]
    rule: Literal["reference", "amount", "sum"] | None = None
    allocations: tuple[Allocation, ...] = ()
    candidates: tuple[tuple[str, ...], ...] = ()
    reason: str = ""
    debtor_ids: tuple[str, ...] = ()  # the debtors the payer's name designates


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def _compact(text: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", _plain(text))


def is_rf_reference(text: str) -> bool:
    """An ISO 11649 creditor reference: RF, two check digits, 1–21 letters or digits, whose
    letters-to-digits rearrangement is 1 modulo 97."""
    ref = _compact(text)
    if not re.fullmatch(r"RF[0-9]{2}[0-9A-Z]{1,21}", ref):
        return False
    digits = "".join(str(int(ch, 36)) for ch in ref[4:] + ref[:4])
    return int(digits) % 97 == 1


def _mentions(texts: Iterable[str], number: str) -> bool:
    """``number`` written in one of ``texts`` as a whole word (not inside a longer code)."""
    wanted = re.escape(_plain(number))
    pattern = re.compile(rf"(?<![0-9A-Z]){wanted}(?![0-9A-Z])")
    return any(pattern.search(_plain(text)) for text in texts)


def _referenced(entry: StatementEntry, invoices: Sequence[OpenInvoice]) -> list[OpenInvoice]:
    texts = [*entry.remittance, *entry.structured_references]
    if entry.end_to_end_id:
        texts.append(entry.end_to_end_id)
    rf_bodies = {_compact(ref)[4:] for ref in entry.structured_references if is_rf_reference(ref)}
    return [
        invoice
        for invoice in invoices
        if _compact(invoice.number) in rf_bodies or _mentions(texts, invoice.number)
    ]


def _same_name(a: str, b: str) -> bool:
    left, right = " ".join(_compact_words(a)), " ".join(_compact_words(b))
    if not left or not right:
        return False
    if left == right:
        return True
    shorter, longer = sorted((left, right), key=len)
    return len(shorter) >= 4 and f" {shorter} " in f" {longer} "


def _compact_words(text: str) -> list[str]:
    return re.findall(r"[0-9A-Z]+", _plain(text))


def match_entries(entries: Sequence[StatementEntry], invoices: Sequence[OpenInvoice]) -> list[EntryMatch]:
    """One proposal per entry, in the order of ``entries``. Entries are matched in that
    order against the balances left by the earlier ones, so two entries never claim more
    than an invoice's balance; ``invoices`` in the order to pay them (oldest first)."""
    left = {invoice.number: invoice.balance for invoice in invoices}
    results = []
    for entry in entries:
        result = _match_one(entry, invoices, left)
        for allocation in result.allocations:
            left[allocation.invoice_number] -= allocation.amount
        results.append(result)
    return results


def _match_one(
    entry: StatementEntry, invoices: Sequence[OpenInvoice], left: dict[str, Decimal]
) -> EntryMatch:
    if entry.is_return:  # a direct debit collected, then returned: it undoes a payment
        why = f" ({entry.return_reason})" if entry.return_reason else ""
        return EntryMatch(entry, "unmatched", reason=f"a return or reversal{why}: not a payment")
    if not entry.credit:
        return EntryMatch(entry, "unmatched", reason="a debit: not a payment from a debtor")
    if entry.amount <= 0:
        return EntryMatch(entry, "unmatched", reason="no amount")
    open_here = [i for i in invoices if i.currency == entry.currency and left[i.number] > 0]
    referenced = _referenced(entry, open_here)
    if referenced:
        return _by_reference(entry, referenced, left)
    debtors = tuple(
        dict.fromkeys(
            i.debtor_id
            for i in open_here
            if entry.counterparty and _same_name(i.debtor_name, entry.counterparty)
        )
    )
    if not debtors:
        return EntryMatch(
            entry,
            "unmatched",
            reason="no invoice number in the remittance, and no debtor of that name with an open balance",
        )
    theirs = [i for i in open_here if i.debtor_id in debtors]
    exact = [i for i in theirs if left[i.number] == entry.amount]
    if len(exact) == 1:
        return EntryMatch(
            entry, "matched", "amount", (Allocation(exact[0].number, entry.amount),), debtor_ids=debtors
        )
    if len(exact) > 1:
        return EntryMatch(
            entry,
            "ambiguous",
            "amount",
            candidates=tuple((i.number,) for i in exact),
            reason=f"{len(exact)} open invoices of the debtor are of exactly {entry.amount}",
            debtor_ids=debtors,
        )
    return _by_sum(entry, theirs, left, debtors)


def _by_reference(
    entry: StatementEntry, referenced: list[OpenInvoice], left: dict[str, Decimal]
) -> EntryMatch:
    total = sum((left[i.number] for i in referenced), Decimal(0))
    numbers = tuple(i.number for i in referenced)
    if entry.amount > total:
        return EntryMatch(
            entry,
            "ambiguous",
            "reference",
            candidates=(numbers,),
            reason=f"pays {entry.amount - total} more than the open balance of {', '.join(numbers)}",
        )
    allocations, rest = [], entry.amount
    for invoice in referenced:  # oldest first: a partial payment pays the oldest in full first
        part = min(rest, left[invoice.number])
        if part > 0:
            allocations.append(Allocation(invoice.number, part))
            rest -= part
    return EntryMatch(entry, "matched", "reference", tuple(allocations))


def _by_sum(
    entry: StatementEntry, theirs: list[OpenInvoice], left: dict[str, Decimal], debtors: tuple[str, ...]
) -> EntryMatch:
    pool = [i for i in theirs if left[i.number] < entry.amount][:MAX_CANDIDATES]
    found: list[tuple[OpenInvoice, ...]] = []
    for size in range(2, min(MAX_SET_SIZE, len(pool)) + 1):
        for chosen in combinations(pool, size):
            if sum((left[i.number] for i in chosen), Decimal(0)) == entry.amount:
                found.append(chosen)
                if len(found) > 1:
                    break
        if found:  # the smallest sets that fit: a larger one is a less likely reading
            break
    if len(found) == 1:
        allocations = tuple(Allocation(i.number, left[i.number]) for i in found[0])
        return EntryMatch(entry, "matched", "sum", allocations, debtor_ids=debtors)
    if found:
        return EntryMatch(
            entry,
            "ambiguous",
            "sum",
            candidates=tuple(tuple(i.number for i in chosen) for chosen in found),
            reason=f"several sets of the debtor's open invoices add up to {entry.amount}",
            debtor_ids=debtors,
        )
    return EntryMatch(
        entry,
        "unmatched",
        reason=f"no open invoice of the debtor, nor a set of up to {MAX_SET_SIZE}, is of {entry.amount}",
        debtor_ids=debtors,
    )
