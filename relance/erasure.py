"""``relance erase DEBTOR``: remove a debtor's personal data once its claims are over
(docs/cli.md#relance-erase-debtor, docs/dossier.md#personal-data-in-the-chain)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from adapters import bank_entries
from adapters.orm import (
    DEFAULT_CREDITOR,
    CaseRow,
    DebtorRow,
    DebtorSalt,
    EvidenceRecord,
    InboxEvent,
    InvoiceRow,
    MessageRow,
    RejectedEvent,
    TaskRow,
    creditor_of,
    debtor_key,
    lock_debtor,
)
from adapters.store import transaction
from config.bootstrap import App
from handlers import evidence
from handlers.calendar import local_date
from handlers.erasure import ERASED, past_retention, refusal

log = structlog.get_logger("relance.erasure")


class ErasureRefused(Exception):
    """The debtor cannot be erased: one line for the operator."""


@dataclass(frozen=True)
class Erased:
    """What ``erase_debtor`` changed."""

    debtor_id: str
    messages: int
    inbox_events: int
    rejected_events: int
    records_sealed: int
    records_kept: int  # records of versions 1 and 2 that hold a personal value: the chain needs them
    bank_entries: int = 0  # imported bank entries whose payer and remittance were erased


def erase_debtor(app: App, debtor_id: str, creditor: str = DEFAULT_CREDITOR) -> Erased:
    """Remove the debtor's personal data in one transaction and record ``debtor.erased``."""
    now = app.clock.now()
    with transaction(app.sessions) as session:
        session.scope(creditor)
        debtor = lock_debtor(session, debtor_id)
        if debtor is None:
            raise ErasureRefused(f"no debtor {debtor_id}")
        if debtor.erased_at is not None:
            raise ErasureRefused(f"debtor {debtor_id} was already erased on {debtor.erased_at.date()}")
        why = _refusal(session, debtor, now)
        if why is not None:
            log.warning("debtor.erase_refused", debtor_id=debtor_id, reason=why)
            raise ErasureRefused(why)
        clues = [c for c in (debtor_id, debtor.email, debtor.name, debtor.phone) if c]
        numbers = list(session.scalars(select(InvoiceRow.number).where(InvoiceRow.debtor_id == debtor_id)))
        done = Erased(
            debtor_id,
            _erase_messages(session, debtor_id),
            _erase_inbox(session, debtor_id, clues),
            _erase_rejected(session, debtor_id, clues),
            *_seal_records(session, debtor_id),
            bank_entries.erase_payer(session, clues[1:], numbers, ERASED),
        )
        _erase_tasks(session, debtor_id)
        _erase_debtor_row(debtor, now)
        session.query(DebtorSalt).filter(DebtorSalt.debtor_id == debtor_id).delete()
        facts = {k: v for k, v in done.__dict__.items() if k != "debtor_id"}
        evidence.append(
            session, "debtor.erased", now, {"action": "debtor.erased", **facts}, debtor_id=debtor_id
        )
    log.info("debtor.erased", debtor_id=debtor_id, **facts)
    return done


def _refusal(session: Session, debtor: DebtorRow, now: datetime) -> str | None:
    invoices = session.execute(select(InvoiceRow).where(InvoiceRow.debtor_id == debtor.id)).scalars().all()
    cases = session.execute(select(CaseRow.id, CaseRow.status).where(CaseRow.debtor_id == debtor.id)).all()
    today = local_date(now, debtor.timezone)
    return refusal(debtor.id, debtor.kind, invoices, [(c.id, c.status) for c in cases], today)


def _erase_debtor_row(debtor: DebtorRow, now: datetime) -> None:
    """Name, e-mail, phone and postal address go; the country, kind and language stay (they choose
    the policy and are no one's identity); the SIREN of a company stays, a person's goes."""
    debtor.name, debtor.email, debtor.address = ERASED, None, {"country": debtor.country}
    debtor.phone = None
    if debtor.kind == "consumer":
        debtor.siren = None
    debtor.erased_at = debtor.updated_at = now


def _erase_tasks(session: Session, debtor_id: str) -> None:
    """The phone and the operator's notes of the debtor's tasks go; outcomes stay."""
    for row in session.execute(select(TaskRow).where(TaskRow.debtor_id == debtor_id)).scalars():
        row.phone = None
        row.note = ERASED if row.note else None


def _erase_messages(session: Session, debtor_id: str) -> int:
    rows = session.execute(select(MessageRow).where(MessageRow.debtor_id == debtor_id)).scalars().all()
    for row in rows:  # content_sha256 stays: the evidence proves what was sent
        row.recipient, row.subject, row.body_text, row.content = ERASED, ERASED, ERASED, b""
    return len(rows)


def _stub(raw: str) -> str:
    """What replaces an event's raw text: the digest it can still be matched by."""
    return evidence.canonical({"erased": True, "raw_sha256": hashlib.sha256(raw.encode("utf-8")).hexdigest()})


def _names(raw: str, debtor_id: str, clues: list[str]) -> bool:
    """Whether an event's raw text is about the debtor: it names its id in a debtor field,
    or holds its e-mail address or name."""
    try:
        event = json.loads(raw)
    except ValueError:
        event = None
    if isinstance(event, dict):
        nested = [event.get("debtor"), event.get("invoice")]
        ids = {event.get("debtor_id")} | {
            n.get("id") or n.get("debtor_id") for n in nested if isinstance(n, dict)
        }
        if debtor_id in ids:
            return True
    return any(clue in raw for clue in clues[1:])


def _candidates(
    session: Session, table: type[InboxEvent] | type[RejectedEvent], clues: list[str]
) -> Iterator[Any]:
    """The rows whose raw text holds one of the clues (checked one by one after)."""
    query: Any = select(table).where(or_(*(table.raw.contains(c, autoescape=True) for c in clues)))
    if table is RejectedEvent:  # not filtered by the scope: its creditor may be unknown (None)
        creditor = creditor_of(session)
        query = query.where(or_(RejectedEvent.creditor_id == creditor, RejectedEvent.creditor_id.is_(None)))
    yield from session.execute(query).scalars().all()


def _erase_inbox(session: Session, debtor_id: str, clues: list[str]) -> int:
    count = 0
    for row in _candidates(session, InboxEvent, clues):
        if _names(row.raw, debtor_id, clues):
            row.raw, count = _stub(row.raw), count + 1
            if row.status == "parked":  # never applied: it will not be
                row.status, row.waiting_for = ERASED, None
    return count


def _erase_rejected(session: Session, debtor_id: str, clues: list[str]) -> int:
    count = 0
    for row in _candidates(session, RejectedEvent, clues):
        if _names(row.raw, debtor_id, clues):
            row.raw, count = _stub(row.raw), count + 1
            if any(clue in row.reason for clue in clues[1:]):
                row.reason = ERASED
    return count


def _seal_records(session: Session, debtor_id: str) -> tuple[int, int]:
    """Seal the personal values of the debtor's version 3 and 4 records (their hash already covers
    the sealed form); count the older records that hold one, which must stay as they are."""
    salt_row = session.get(DebtorSalt, debtor_key(session, debtor_id))
    salt = bytes.fromhex(salt_row.salt) if salt_row is not None else None
    sealed = kept = 0
    query = select(EvidenceRecord).where(EvidenceRecord.debtor_id == debtor_id)
    for record in session.execute(query).scalars():
        if not evidence.cleartext_fields(record.payload):
            continue
        if record.version < 3 or salt is None:
            kept += 1
            continue
        record.payload, sealed = evidence.sealed_payload(record.payload, salt) or record.payload, sealed + 1
    return sealed, kept


def due_for_erasure(app: App, creditor: str = DEFAULT_CREDITOR) -> list[tuple[str, datetime]]:
    """The debtors not yet erased that could be and whose retention period has run out,
    with the last change of their invoices."""
    settings, now = app.settings, app.clock.now()
    found: list[tuple[str, datetime]] = []
    with transaction(app.sessions) as session:
        session.scope(creditor)
        last = (
            select(InvoiceRow.debtor_id, func.max(InvoiceRow.updated_at).label("last"))
            .group_by(InvoiceRow.debtor_id)
            .subquery()
        )
        rows = session.execute(
            select(DebtorRow, last.c.last)
            .join(last, last.c.debtor_id == DebtorRow.id)
            .where(DebtorRow.erased_at.is_(None))
            .order_by(DebtorRow.id)
        ).all()
        for debtor, changed in rows:
            changed = changed or debtor.updated_at
            if not past_retention(
                changed,
                debtor.kind,
                now,
                settings.personal_data_retention_days,
                settings.consumer_data_retention_days,
            ):
                continue
            if _refusal(session, debtor, now) is None:
                found.append((debtor.id, changed))
    return found
