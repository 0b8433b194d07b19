"""What the events applied in one transaction by ``relance ingest`` share (``Batch``).

The receiving side (handlers/inbox.py) and the appliers (handlers/accounting.py) find the
batch on the unit of work (``handlers.store.Store.batch``, ``adapters.sql_store``) and use
what it read ahead.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from adapters.orm import CaseInvoice, CaseRow, DebtorRow, InboxEvent, InvoiceRow, movements_of
from adapters.sql_lists import one_of
from adapters.uow import UnitOfWork
from handlers.inbox import invoices_of, releases
from handlers.money import Movement

_CHUNK = 500  # values per IN (...) list
_MONEY_EVENTS = ("payment.received", "credit_note.issued")  # their appliers read the movements
_NEXT_INVOICE_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('invoices', 'id')) FROM generate_series(1, :n) ORDER BY 1 DESC"
)


class Batch:
    """What the events applied in one transaction by ``relance ingest`` share.

    ``prefetch`` reads once for the whole batch what each event would otherwise look up on
    its own: whether its event id is in the inbox, and, unless ``savepoints`` is set, the
    invoices and debtors it names (locked ``FOR UPDATE`` as the event would lock them), the
    debtors of those invoices (not locked, as a payment reads its invoice's debtor), the
    payments and credit notes standing on the invoices that its payments and credit notes
    name (``payments``: read once the invoices are locked, so no other transaction adds to
    them before the batch commits), the cases holding those invoices, whatever their status
    (``cases``: locked, read once the invoices are locked; a case joins an invoice only in a
    transaction holding the invoice locked, ``SqlStore.add_case_invoices``, so none joins
    them before the batch commits) and which of the keys it may release have parked events.
    What the batch's events create or park is added as they go, so later events of the
    batch see it. On PostgreSQL it also draws the ids of the invoices the batch creates
    from their sequence, so that a new invoice needs no flush of its own before its steps
    are planned.

    Unless ``savepoints`` is set, events are also applied without savepoints. A savepoint
    would undo what an applier wrote before it parked or rejected its event; the appliers
    look up what they need before they write, so there is nothing to undo. That is checked
    at run time: since the applier started (after a flush of the session's mapped changes),
    no statement other than a SELECT ran but the writing of earlier events' plain rows and
    drafts, no plain row or draft was added or changed, and nothing is pending in the
    session (``SqlStore.write_mark``); an applier in ``NEVER_PARKED`` is not expected to
    park or reject at all. Otherwise ``NeedsSavepoints`` is raised: the caller rolls the
    batch back and applies it again with ``savepoints`` set, as ``ingest_one`` always did,
    with a savepoint per event.
    """

    def __init__(self, session: Session, *, savepoints: bool = False) -> None:
        self.session = session
        self.savepoints = savepoints
        self.writes = 0  # statements other than SELECT run on the batch's connection
        self._inbox: dict[str, str | None] = {}  # event id -> stored content hash, or None
        self.invoices: dict[str, InvoiceRow | None] = {}  # number -> locked row, or None
        self.debtors: dict[str, DebtorRow | None] = {}  # id -> locked row, or None
        # invoice id -> its movements (payments and credit notes not reversed) as stored and
        # added by the batch since; an invoice absent is read from the store (``SqlStore``)
        self.payments: dict[int, list[Movement]] = {}
        # invoice id -> the cases holding it (any status, locked, by id) as read ahead; an
        # invoice absent is read from the store (``SqlStore.cases_holding``)
        self.cases: dict[int, list[CaseRow]] = {}
        self._keys_looked_up: set[str] = set()
        self._parked_keys: set[str] = set()  # keys that may have parked events
        self._invoice_ids: list[int] = []  # drawn from the invoices' id sequence
        self._read: list[Any] = []  # rows read ahead unlocked, kept in the identity map
        self._connection = None
        if not savepoints:
            self._connection = session.connection()
            sa_event.listen(self._connection, "before_cursor_execute", self._count)
            _unit_of_work(session).batch = self

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip()[:6].upper() != "SELECT":
            self.writes += 1

    def close(self) -> None:
        if self._connection is not None:
            sa_event.remove(self._connection, "before_cursor_execute", self._count)
            self._connection = None
            _unit_of_work(self.session).batch = None

    def prefetch(self, events: list[Any]) -> None:
        """Read the store once for the events of the batch, in their order."""
        postgres = self.session.get_bind().dialect.name == "postgresql"
        reads = _reads(postgres)
        ids = list(dict.fromkeys(e.event_id for e in events))
        self._inbox.update(dict.fromkeys(ids))
        for chunk in _chunks(ids):
            stored = self.session.execute(reads.inbox, {"values": chunk})
            self._inbox.update((event_id, digest) for event_id, digest in stored)
        if self.savepoints:
            return
        fresh = [e for e in events if self._inbox[e.event_id] is None]
        # debtors first, then invoices: the order in which the workers lock them
        upserted = list(
            dict.fromkeys(e.debtor.id for e in fresh if e.type in ("invoice.issued", "debtor.updated"))
        )
        self.debtors.update(dict.fromkeys(upserted))
        for chunk in _chunks(upserted):
            self.debtors.update(
                (row.id, row) for row in self.session.execute(reads.debtors, {"values": chunk}).scalars()
            )
        numbers = list(dict.fromkeys(n for e in fresh for n in invoices_of(e)))
        self.invoices.update(dict.fromkeys(numbers))
        for chunk in _chunks(numbers):
            self.invoices.update(
                (row.number, row) for row in self.session.execute(reads.invoices, {"values": chunk}).scalars()
            )
        self._read_payments(fresh, reads)
        # the debtors of the invoices read, not locked: a payment's applier reads its invoice's
        # debtor (its policy) as ``session.get`` would, found in the identity map (held here)
        owners = dict.fromkeys(row.debtor_id for row in self.invoices.values() if row is not None)
        unread = [debtor for debtor in owners if debtor not in self.debtors]
        for chunk in _chunks(unread):
            self._read.extend(self.session.execute(reads.owners, {"values": chunk}).scalars())
        issued = dict.fromkeys(e.invoice.number for e in fresh if e.type == "invoice.issued")
        created = sum(1 for number in issued if self.invoices[number] is None)
        if created and postgres:
            self._invoice_ids = list(self.session.execute(_NEXT_INVOICE_IDS, {"n": created}).scalars())
        keys = list(dict.fromkeys(key for e in fresh for key in releases(e)))
        self._keys_looked_up.update(keys)
        for chunk in _chunks(keys):
            waiting = self.session.execute(reads.parked, {"values": chunk}).scalars()
            self._parked_keys.update(key for key in waiting if key is not None)

    def _read_payments(self, fresh: list[Any], reads: _Reads) -> None:
        """The movements of the stored invoices the batch's payments and credit notes name:
        what a payment that settles its invoice reads for the penalties outstanding."""
        named = dict.fromkeys(n for e in fresh if e.type in _MONEY_EVENTS for n in invoices_of(e))
        ids = [row.id for n in named if (row := self.invoices.get(n)) is not None]
        with self.session.no_autoflush:
            for chunk in _chunks(ids):
                self.payments.update(movements_of(self.session, chunk))
            self._read_cases(ids, reads)

    def _read_cases(self, ids: list[int], reads: _Reads) -> None:
        """The cases holding the invoices ``ids`` (what a payment on one reads), locked."""
        self.cases.update((invoice_id, []) for invoice_id in ids)
        for chunk in _chunks(ids):
            for case, invoice_id in self.session.execute(reads.cases, {"values": chunk}):
                self.cases[invoice_id].append(case)

    def known(self, event_id: str) -> tuple[bool, str | None]:
        """(whether the batch looked it up, the stored content hash or None)."""
        return event_id in self._inbox, self._inbox.get(event_id)

    def remember(self, event_id: str, digest: str) -> None:
        self._inbox[event_id] = digest

    def invoice_id(self) -> int | None:
        """An id for a new invoice, drawn ahead from the sequence (PostgreSQL), or None."""
        return self._invoice_ids.pop() if self._invoice_ids else None

    def may_have_parked(self, key: str) -> bool:
        return key not in self._keys_looked_up or key in self._parked_keys

    def parked(self, key: str) -> None:
        self._parked_keys.add(key)

    def released(self, key: str) -> None:
        self._parked_keys.discard(key)


class _Reads:
    """The statements of ``Batch.prefetch``, each of the parameter ``values`` (a list),
    built once per kind of database (``adapters.sql_lists``)."""

    def __init__(self, postgres: bool) -> None:
        def among(column: Any) -> Any:
            return one_of(column, "values", postgres)

        self.inbox = select(InboxEvent.event_id, InboxEvent.content_sha256).where(among(InboxEvent.event_id))
        self.debtors = select(DebtorRow).where(among(DebtorRow.id)).order_by(DebtorRow.id).with_for_update()
        self.invoices = (
            select(InvoiceRow).where(among(InvoiceRow.number)).order_by(InvoiceRow.id).with_for_update()
        )
        self.owners = select(DebtorRow).where(among(DebtorRow.id))
        self.cases = (
            select(CaseRow, CaseInvoice.invoice_id)
            .join(CaseInvoice, CaseInvoice.case_id == CaseRow.id)
            .where(among(CaseInvoice.invoice_id))
            .order_by(CaseRow.id)
            .with_for_update()
        )
        self.parked = (
            select(InboxEvent.waiting_for)
            .distinct()
            .where(InboxEvent.status == "parked", among(InboxEvent.waiting_for))
        )


@functools.cache
def _reads(postgres: bool) -> _Reads:
    return _Reads(postgres)


def _chunks(values: list[Any]) -> list[list[Any]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _unit_of_work(session: Session) -> UnitOfWork:
    if not isinstance(session, UnitOfWork):
        raise TypeError("an ingest batch runs in a unit of work (adapters.store.transaction)")
    return session
