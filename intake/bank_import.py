"""Bank statements given to ``relance import``: their entries become payment events.

A statement's entries are read (adapters/importers/bank.py), the ones not imported before
are matched against the creditor's open invoices (``handlers.matching``) and kept with what
they became (adapters/bank_entries.py), in one transaction. Then the events of the
statement's matched and returned entries go through the batches of ``relance ingest`` like
any event: a statement imported again gives the same events, which are duplicates.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TextIO

import structlog

from adapters import bank_entries as table
from adapters.importers.bank import StatementRejected, read_statement
from adapters.store import transaction
from config.bootstrap import App
from handlers.bank_entries import Outcome, day_of, outcome, payment_events
from handlers.context import UnknownCreditor
from handlers.events import DEFAULT_CREDITOR
from handlers.matching import StatementEntry, match_entries
from intake.statements import open_invoices

log = structlog.get_logger("relance.import")

_CAMT = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:camt\.")
_CFONB = re.compile(rb"0[1-9][0-9]{5}")


def is_statement(path: Path) -> bool:
    """Whether ``path`` looks like a bank statement (camt XML, or CFONB records), as
    ``relance statement`` tells them; anything else is read as an e-invoice."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(4096)
    except OSError:
        return False
    if head.lstrip().startswith(b"<"):
        return _CAMT.search(head) is not None
    return _CFONB.match(head) is not None


class StatementRefused(ValueError):
    """A statement that gives no entry: unreadable, or for a creditor that does not exist."""


def statement_events(
    app: App, path: Path, out: TextIO, creditor: str | None, shown: str | None = None
) -> list[dict]:
    """Import the entries of ``path`` for ``creditor`` (``default`` when None: a bank
    account is one creditor's), print what they became, and give the events of its matched
    and returned entries in the statement's order; the file is named ``shown`` (its path by
    default). Raises StatementRefused."""
    owner = creditor or DEFAULT_CREDITOR
    shown = str(path) if shown is None else shown
    try:
        app.ctx.for_creditor(owner)
        entries = read_statement(path)
    except UnknownCreditor as exc:
        raise StatementRefused(f"file: {exc}") from None
    except StatementRejected as exc:
        raise StatementRefused(f"{exc.where}: {exc.reason}") from None
    outcomes, before = _record(app, entries, shown, owner)
    counts: Counter[str] = Counter(str(result.status) for result in outcomes.values())
    out.write(
        f"{shown}: entries {len(entries)}: matched {counts['matched']}, returned {counts['reversed']}, "
        f"unmatched {counts['unmatched']}, ambiguous {counts['ambiguous']}, not payments "
        f"{counts['ignored']} (already imported {before})\n"
    )
    log.info("import.statement", file=shown, creditor=owner, entries=len(entries), **counts)
    events = []
    for key, entry in dict((e.reference, e) for e in entries).items():
        result, day = outcomes[key], day_of(entry)
        if result.status in ("matched", "reversed") and day is not None:
            events += payment_events(key, result, day, owner)
    return events


def _record(
    app: App, entries: list[StatementEntry], source: str, creditor: str
) -> tuple[dict[str, Outcome], int]:
    """What each entry became, by key: as stored before, or matched now and stored; and
    how many were imported before."""
    invoices = open_invoices(app, creditor)
    now = app.clock.now()
    with transaction(app.sessions) as session:
        session.scope(creditor)
        stored = table.known(session, (e.reference for e in entries))
        outcomes = {key: table.stored_outcome(row) for key, row in stored.items()}
        new = [e for e in dict((e.reference, e) for e in entries).values() if e.reference not in stored]
        for result in match_entries(new, invoices):
            entry = result.entry
            returned = table.returned_payments(session, entry) if entry.is_return and not entry.credit else []
            outcomes[entry.reference] = outcome(result, returned)
            table.add(session, entry, outcomes[entry.reference], source, now)
            session.flush()  # a return later in the statement finds this entry
    return outcomes, len(stored)
