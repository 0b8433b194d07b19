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
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    """The statement attached to a message: its file name and its CSV text (header
    included), UTF-8 with CRLF line ends (RFC 4180).

    The text is kept as written, about 100 bytes an invoice: the lines are parsed back one
    at a time when the annex is printed, never held as one tuple of fields per invoice.
    """

    filename: str
    data: bytes

    @classmethod
    def of_lines(cls, filename: str, lines: Iterable[Sequence[str]]) -> Statement:
        """The statement of these lines (header included)."""
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(lines)
        return cls(filename, out.getvalue().encode("utf-8"))

    @property
    def lines(self) -> tuple[tuple[str, ...], ...]:
        """Every line's fields (header included): for a small statement or a test."""
        return tuple(self.iter_lines())

    def iter_lines(self) -> Iterator[tuple[str, ...]]:
        """The lines' fields, one line at a time: the text is decoded line by line (a text
        stream of the whole 2 MB statement would hold it four bytes a character)."""
        return (tuple(row) for row in csv.reader(_text_lines(self.data)))

    @property
    def line_count(self) -> int:
        """The number of lines, header and total included."""
        return sum(1 for _ in self.iter_lines())

    def csv_bytes(self) -> bytes:
        """The statement as UTF-8 CSV with CRLF line ends (RFC 4180)."""
        return self.data

    def text_lines(self) -> Iterator[str]:
        """The statement as lines for a printed annex: the same fields, separated by « ; »,
        one line at a time."""
        return ("; ".join(line) for line in self.iter_lines())


class StatementBuilder:
    """A statement written line by line: the invoices claimed as their amounts are worked
    out, then the other overdue and coming-due invoices, then the total. Each line is
    written out as CSV text as it comes: a message claiming 20 000 invoices holds neither
    their amounts nor their fields all at once to carry their statement."""

    def __init__(self, reference: str, currency: str) -> None:
        self._reference, self._currency = reference, currency
        self._out = _Utf8()
        self._csv = csv.writer(self._out, lineterminator="\r\n")
        self._csv.writerow(HEADER)
        self._balance = self._interest = self._indemnity = ZERO

    def claim(self, inv: Mapping[str, Any]) -> None:
        """One invoice claimed, with its penalties, indemnity and amount demanded."""
        demanded = inv["balance"] + inv["late_interest"] + inv["indemnity"]
        self._balance += inv["balance"]
        self._interest += inv["late_interest"]
        self._indemnity += inv["indemnity"]
        self._csv.writerow(
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
        write = self._csv.writerow
        for section, listed in ((OTHER, others), (UPCOMING, upcoming)):
            for inv in listed:
                due = inv["due_date"].isoformat()
                write((inv["number"], "", due, inv["currency"], str(inv["balance"]), "", "", "", section))
        balance, interest, indemnity = self._balance, self._interest, self._indemnity
        total = balance + interest + indemnity
        currency = self._currency
        write(("total", "", "", currency, str(balance), str(interest), str(indemnity), str(total), CLAIMED))
        filename = f"statement-{re.sub(r'[^A-Za-z0-9._-]+', '-', self._reference)}.csv"
        data, self._out = self._out.data, _Utf8()  # finished once: the text goes
        return Statement(filename, bytes(data))


def _text_lines(data: bytes) -> Iterator[str]:
    """The lines of UTF-8 CSV text, each with its line end (a quoted field's line ends stay
    in it: the CSV reader joins the lines of a field)."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        yield data[start:end].decode("utf-8")
        start = end


class _Utf8:
    """Where the CSV writer writes: each line encoded as it comes, into one buffer of bytes
    (not a list of lines joined, then encoded: three copies of a 2 MB statement)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, text: str) -> None:
        self.data += text.encode("utf-8")


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
