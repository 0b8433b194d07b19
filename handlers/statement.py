"""The full statement of a message too long to list in its body: one CSV line per invoice.

A message claiming more invoices than the policy's ``messages.max_listed_invoices`` (or
listing more other or coming-due invoices than that) lists the first ones in its body,
summarises the rest, and carries the whole statement: a CSV file attached to the e-mail, an
annex at the end of the letter. Amounts are plain decimals with a point ("1234.56"), one
currency per statement (the message's); the last line totals the amounts demanded.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from handlers.money import ZERO

HEADER = (
    "invoice",
    "issue_date",
    "due_date",
    "currency",
    "balance",
    "late_interest",
    "indemnity",
    "demanded",
    "section",
)
CLAIMED, OTHER, UPCOMING = "claimed", "other_overdue", "coming_due"


@dataclass(frozen=True)
class Statement:
    """The statement attached to a message: its file name and CSV lines (header included)."""

    filename: str
    lines: tuple[tuple[str, ...], ...]

    def csv_bytes(self) -> bytes:
        """The statement as UTF-8 CSV with CRLF line ends (RFC 4180)."""
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(self.lines)
        return out.getvalue().encode("utf-8")

    def text_lines(self) -> list[str]:
        """The statement as lines for a printed annex: the same fields, separated by « ; »."""
        return ["; ".join(field for field in line) for line in self.lines]


class StatementBuilder:
    """A statement written line by line: the invoices claimed as their amounts are worked
    out, then the other overdue and coming-due invoices, then the total. A message claiming
    20 000 invoices need not hold their amounts all at once to carry their statement."""

    def __init__(self, reference: str, currency: str) -> None:
        self._reference, self._currency = reference, currency
        self._lines: list[tuple[str, ...]] = [HEADER]
        self._balance = self._interest = self._indemnity = ZERO

    def claim(self, inv: Mapping[str, Any]) -> None:
        """One invoice claimed, with its penalties, indemnity and amount demanded."""
        demanded = inv["balance"] + inv["late_interest"] + inv["indemnity"]
        self._balance += inv["balance"]
        self._interest += inv["late_interest"]
        self._indemnity += inv["indemnity"]
        self._lines.append(
            (
                inv["number"],
                inv["issue_date"].isoformat(),
                inv["due_date"].isoformat(),
                inv["currency"],
                str(inv["balance"]),
                str(inv["late_interest"]),
                str(inv["indemnity"]),
                str(demanded),
                CLAIMED,
            )
        )

    def finish(
        self, others: Iterable[Mapping[str, Any]] = (), upcoming: Iterable[Mapping[str, Any]] = ()
    ) -> Statement:
        """The statement: the claimed lines, the other overdue and coming-due invoices (not
        demanded), then the total demanded."""
        lines = self._lines
        for section, listed in ((OTHER, others), (UPCOMING, upcoming)):
            for inv in listed:
                due = inv["due_date"].isoformat()
                lines.append(
                    (inv["number"], "", due, inv["currency"], str(inv["balance"]), "", "", "", section)
                )
        balance, interest, indemnity = self._balance, self._interest, self._indemnity
        total = balance + interest + indemnity
        currency = self._currency
        lines.append(
            ("total", "", "", currency, str(balance), str(interest), str(indemnity), str(total), CLAIMED)
        )
        filename = f"statement-{re.sub(r'[^A-Za-z0-9._-]+', '-', self._reference)}.csv"
        return Statement(filename, tuple(lines))


def build_statement(
    reference: str,
    currency: str,
    claimed: Iterable[Mapping[str, Any]],
    others: Iterable[Mapping[str, Any]] = (),
    upcoming: Iterable[Mapping[str, Any]] = (),
) -> Statement:
    """One line per invoice claimed (with its penalties, indemnity and amount demanded), then
    the other overdue and coming-due invoices (not demanded), then the total demanded."""
    builder = StatementBuilder(reference, currency)
    for inv in claimed:
        builder.claim(inv)
    return builder.finish(others, upcoming)
