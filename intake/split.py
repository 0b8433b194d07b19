"""One feed cut into parts for ``relance ingest FILE --jobs N``: each debtor's events in one part.

Each line of the feed is given a part (``plan_parts``): the events of one debtor (of one
creditor) all go to the same part, so that the process applying that part applies them in
the order of the file. An event about an invoice (``invoice_number``, ``invoice.number``,
``invoice_numbers``) goes with the invoice's debtor: the one stored, else the one of the
file's first ``invoice.issued`` of that number, whatever debtor the event itself claims.
Other events go with the debtor they name (``debtor.id``, ``debtor_id``), a
``delivery.status`` with its message's debtor as stored. What names no debtor found
anywhere (a payment for an invoice issued in no file yet, a line that is not a JSON object)
goes by what it names, or by its line number: it is parked or rejected in whichever part.

Two passes over the file, one JSON decoding of each line each time, nothing applied: the
first notes the part of each invoice the file issues, in an SQLite file on disk (memory
does not grow with the file), the second gives each line its part, with one read of that
file and of the store per ``CHUNK`` lines for the invoices and messages they name. The plan
is one byte per line (1 MB for a million lines), in a file the parts' processes read.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Engine, select

from adapters.orm import InvoiceRow, MessageRow
from handlers.events import DEFAULT_CREDITOR, OverlongLine
from intake.lines import numbered_lines

Line = TypeVar("Line")

CHUNK = 5000  # lines whose store reads go together
_IN = 500  # values per IN (...) list
_INVOICES = InvoiceRow.__table__
_MESSAGES = MessageRow.__table__


def part_of(creditor: str, debtor: str, parts: int) -> int:
    """The part of a debtor's events: the same in every run, process and Python version."""
    return zlib.crc32(f"{creditor}\x00{debtor}".encode("utf-8", "surrogatepass")) % parts


def plan_parts(engine: Engine, path: str, parts: int, into: Path) -> Path:
    """Give each line of ``path`` one of ``parts`` parts; write them to ``into``, a byte a line
    (the invoices the file issues are noted meanwhile in an SQLite file beside it)."""
    noted = into.with_name(f"{into.name}.invoices")
    noted.unlink(missing_ok=True)
    issued = sqlite3.connect(noted)
    try:
        issued.execute(
            "CREATE TABLE issued (creditor TEXT, number TEXT, part INTEGER, PRIMARY KEY (number, creditor))"
        )
        _note_issued_invoices(path, parts, issued)
        plan = bytearray()
        with open(path, "rb") as stream:
            chunk: list[tuple[int, _Named | None]] = []
            for number, raw in numbered_lines(stream):
                chunk.append((number, _named(_object_or_none(raw))))
                if len(chunk) >= CHUNK:
                    plan += _parts_of(engine, chunk, issued, parts)
                    chunk = []
            plan += _parts_of(engine, chunk, issued, parts)
    finally:
        issued.close()
        noted.unlink(missing_ok=True)
    into.write_bytes(bytes(plan))
    return into


def lines_of_part(plan: bytes, index: int, lines: Iterator[tuple[int, Line]]) -> Iterator[tuple[int, Line]]:
    """The lines of ``lines`` (numbered from 1) that ``plan`` gives to part ``index``."""
    for number, raw in lines:
        if number <= len(plan) and plan[number - 1] == index:
            yield number, raw


def _object_or_none(raw: bytes | OverlongLine) -> dict[str, Any] | None:
    if isinstance(raw, OverlongLine):
        return None
    try:
        found = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return found if isinstance(found, dict) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _creditor(event: dict[str, Any]) -> str:
    return _text(event.get("creditor_id")) or DEFAULT_CREDITOR


def _note_issued_invoices(path: str, parts: int, issued: sqlite3.Connection) -> None:
    """Note (creditor, invoice number) -> part of the debtor of its first ``invoice.issued``."""
    rows: list[tuple[str, str, int]] = []
    with open(path, "rb") as stream:
        for _, raw in numbered_lines(stream):
            if isinstance(raw, OverlongLine) or b"invoice.issued" not in raw:
                continue
            event = _object_or_none(raw)
            if event is None or event.get("type") != "invoice.issued":
                continue
            invoice, debtor = event.get("invoice"), event.get("debtor")
            if not isinstance(invoice, dict) or not isinstance(debtor, dict):
                continue
            number, debtor_id = _text(invoice.get("number")), _text(debtor.get("id"))
            if number is not None and debtor_id is not None:
                creditor = _creditor(event)
                rows.append((creditor, number, part_of(creditor, debtor_id, parts)))
                if len(rows) >= CHUNK:
                    issued.executemany("INSERT OR IGNORE INTO issued VALUES (?, ?, ?)", rows)
                    rows = []
    issued.executemany("INSERT OR IGNORE INTO issued VALUES (?, ?, ?)", rows)
    issued.commit()


def _issued_parts(issued: sqlite3.Connection, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(creditor, invoice number) -> part, for the wanted invoices the file issues."""
    values = sorted({number for _, number in wanted})
    found: dict[tuple[str, str], int] = {}
    for start in range(0, len(values), _IN):
        chunk = values[start : start + _IN]
        marks = ", ".join("?" * len(chunk))
        rows = issued.execute(f"SELECT creditor, number, part FROM issued WHERE number IN ({marks})", chunk)
        found.update(((creditor, number), part) for creditor, number, part in rows)
    return found


class _Named(NamedTuple):
    """What a line names that decides its part (its decoded JSON is not kept)."""

    creditor: str
    invoices: tuple[str, ...]
    debtor: str | None
    message: str | None


def _named(event: dict[str, Any] | None) -> _Named | None:
    if event is None:
        return None
    return _Named(
        _creditor(event), tuple(_invoices_named(event)), _debtor_named(event), _text(event.get("message_id"))
    )


def _parts_of(
    engine: Engine,
    chunk: list[tuple[int, _Named | None]],
    issued: sqlite3.Connection,
    parts: int,
) -> bytes:
    """The parts of a chunk of consecutive lines (numbered, with what they name or None)."""
    wanted_invoices: set[tuple[str, str]] = set()
    wanted_messages: set[tuple[str, str]] = set()
    for _, named in chunk:
        if named is None:
            continue
        wanted_invoices.update((named.creditor, number) for number in named.invoices)
        if named.message is not None:
            wanted_messages.add((named.creditor, named.message))
    stored_invoices = _stored_debtors(engine, _INVOICES, _INVOICES.c.number, wanted_invoices)
    stored_messages = _stored_debtors(engine, _MESSAGES, _MESSAGES.c.message_id, wanted_messages)
    issued_parts = _issued_parts(issued, wanted_invoices)
    found = bytearray()
    for number, named in chunk:
        found.append(_part(number, named, issued_parts, stored_invoices, stored_messages, parts))
    return bytes(found)


def _part(
    number: int,
    named: _Named | None,
    issued: dict[tuple[str, str], int],
    stored_invoices: dict[tuple[str, str], str],
    stored_messages: dict[tuple[str, str], str],
    parts: int,
) -> int:
    """An event about an invoice goes with the invoice's debtor (as stored, else as the
    file's first ``invoice.issued`` of it names it), whatever debtor it claims: an event
    claiming another debtor's invoice is rejected in the order of that debtor's events."""
    if named is None:
        return number % parts
    creditor, invoices, debtor, message = named
    for invoice in invoices:  # the first one known tells
        if (stored := stored_invoices.get((creditor, invoice))) is not None:
            return part_of(creditor, stored, parts)
        if (part := issued.get((creditor, invoice))) is not None:
            return part
    if debtor is not None:
        return part_of(creditor, debtor, parts)
    if message is not None:
        if (stored := stored_messages.get((creditor, message))) is not None:
            return part_of(creditor, stored, parts)
        return part_of(creditor, f"message:{message}", parts)
    if invoices:  # an invoice known nowhere yet: its events stay together
        return part_of(creditor, f"invoice:{invoices[0]}", parts)
    return number % parts


def _debtor_named(event: dict[str, Any]) -> str | None:
    debtor = event.get("debtor")
    if isinstance(debtor, dict) and (found := _text(debtor.get("id"))) is not None:
        return found
    invoice = event.get("invoice")
    if isinstance(invoice, dict) and (found := _text(invoice.get("debtor_id"))) is not None:
        return found
    return _text(event.get("debtor_id"))


def _invoices_named(event: dict[str, Any]) -> list[str]:
    found = [_text(event.get("invoice_number"))]
    invoice = event.get("invoice")
    if isinstance(invoice, dict):
        found.append(_text(invoice.get("number")))
    numbers = event.get("invoice_numbers")
    if isinstance(numbers, list):
        found += [_text(n) for n in numbers]
    return [n for n in found if n is not None]


def _stored_debtors(
    engine: Engine, table: Any, key: Any, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """(creditor, key) -> debtor id, for the wanted rows found in the store."""
    if not wanted:
        return {}
    values = sorted({value for _, value in wanted})
    found: dict[tuple[str, str], str] = {}
    with engine.connect() as connection:
        for start in range(0, len(values), _IN):
            rows = connection.execute(
                select(table.c.creditor_id, key, table.c.debtor_id).where(
                    key.in_(values[start : start + _IN])
                )
            )
            found.update(((creditor, value), debtor) for creditor, value, debtor in rows)
    return found
