"""The unit of work: one database transaction, its evidence records and its follow-up tasks.

A ``UnitOfWork`` is the session every use case runs in (``adapters.store.transaction``
opens one). It owns three things the rest of the code only adds to:

- the **evidence records** of the transaction (``handlers.evidence.append``), chained and
  written when it commits, so the chain head, which serialises every append, is locked only
  for the last statements and the commit;
- the **tasks to publish** once it has committed (``after_commit``), never before: a task
  published for work that then rolls back would act on nothing;
- its **savepoints** (``begin_nested``): what a rolled-back savepoint added, records and
  tasks alike, is dropped with it;
- the **planned steps** it adds (``add_steps``): plain rows, not mapped objects, written
  together at its next flush (a flush also runs before each ORM query and at commit, as
  for mapped objects), after the invoices they belong to (``adapters.bulk.insert_rows``:
  one ``COPY`` on PostgreSQL). An invoice's eight steps were eight mapped objects, the
  larger part of what ``relance ingest`` spent per event; the evidence records are written
  the same way once chained, and so are the inbox rows of a ``relance ingest`` batch
  (``add_inbox_row``: plain objects the inbox completes, written after the steps) and its
  payments (``add_payment_row``);
- the **new debtors and invoices** of a ``relance ingest`` batch (``add_draft``): mapped
  objects kept out of the session until its next flush, which writes them first, set-based
  (debtors, then invoices, as their foreign key requires), then attaches them as stored
  rows: a later change to one is an ``UPDATE``, a later query finds that same object. One
  mapped insert per invoice cost more than the rest of an ``invoice.issued``.

It is also **scoped to one creditor** (``creditor``, ``default`` unless told): its ORM
statements read only that creditor's rows (``Scoped`` tables, filtered by one
``do_orm_execute`` hook on this class), the rows it adds are that creditor's, and its
evidence goes to that creditor's chain. ``scope(None)`` reads every creditor's rows (the
scheduler, the workers finding whose a row is) and refuses to add a creditor's row.

Nothing else here is a global hook: a session that is not a ``UnitOfWork`` cannot record
evidence.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Insert, Table, bindparam, event, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    ORMExecuteState,
    Session,
    SessionTransaction,
    make_transient_to_detached,
    with_loader_criteria,
)
from sqlalchemy.orm.attributes import flag_modified, instance_state

from adapters.bulk import insert_rows
from adapters.orm import (
    DEFAULT_CREDITOR,
    DebtorRow,
    DebtorSalt,
    EvidenceHead,
    EvidenceRecord,
    HandoverRow,
    InboxEvent,
    InvoiceRow,
    MessageRow,
    PaymentRow,
    PlannedStep,
    ProcessedMessage,
    RejectedEvent,
    Scoped,
    SignalRow,
)
from adapters.outbox import SqlMessages
from adapters.sql_store import InboxDraft, SqlStore
from adapters.step_cancellation import cancel_steps
from handlers.evidence import GENESIS, VERSION, PendingRecord, pending_hash, pending_needs_salt
from handlers.store import PENDING, StepFilter


class UnitOfWork(Session):
    """A session that is one unit of work (see the module's docstring)."""

    _pending: list[PendingRecord]
    _tasks: list[object]
    _heads: dict[str, _Head]
    _salts: dict[tuple[str, str], bytes | None]
    _steps: list[dict[str, Any]]
    # (reason, filter) -> the stored invoices whose pending steps the next flush cancels
    _cancellations: dict[tuple[str, StepFilter], list[int]]
    _payments: list[dict[str, Any]]
    _rejected: list[dict[str, Any]]
    _inbox: list[InboxDraft]
    _drafts: dict[type, list[Any]]  # new rows per mapped class, in the order they are written
    rows_added: int
    batch: Any = None  # the ``relance ingest`` batch applied in it, if any (handlers.batching)
    # what the reminder path read ahead for a batch of steps (``adapters.dunning_ahead``):
    # read under this transaction's locks, so forgotten when it ends or a savepoint rolls back
    read_ahead: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._store: SqlStore | None = None
        self.creditor: str | None = DEFAULT_CREDITOR
        self._reset()

    # -- the creditor it acts for --------------------------------------------------------

    def scope(self, creditor: str | None) -> None:
        """Act for ``creditor`` from now on (None: read every creditor's rows, add none)."""
        self.creditor = creditor

    def creditor_of(self, table: str, row_id: int) -> str | None:
        """Whose the row is (any creditor's: the row is what tells): a statement built once."""
        self.flush()  # a row added in this unit of work is found too
        found: str | None = self.connection().execute(_CREDITOR_OF[table], {"id": row_id}).scalar()
        return found

    def creditors_of(self, table: str, row_ids: Iterable[int]) -> dict[int, str]:
        """The creditor of each of these rows found, in one statement per 500 ids."""
        self.flush()
        ids, found = sorted(set(row_ids)), dict[int, str]()
        for start in range(0, len(ids), 500):
            rows = self.connection().execute(_CREDITORS_OF[table], {"ids": ids[start : start + 500]})
            found.update((row_id, creditor) for row_id, creditor in rows)
        return found

    def add(self, instance: object, _warn: bool = True) -> None:
        if isinstance(instance, Scoped) and getattr(instance, "creditor_id", None) is None:
            if self.creditor is None:
                raise RuntimeError(f"a {type(instance).__name__} is added by a unit of work of no creditor")
            instance.creditor_id = self.creditor
        super().add(instance, _warn=_warn)

    def add_all(self, instances: Any) -> None:
        for instance in instances:
            self.add(instance, _warn=False)

    # -- what the use cases add ----------------------------------------------------------

    def record_evidence(self, record: PendingRecord) -> None:
        if self.creditor is None:
            raise RuntimeError(f"a {record.kind} record is added by a unit of work of no creditor")
        if record.creditor_id != self.creditor:  # records are frozen: one already right is kept
            record = replace(record, creditor_id=self.creditor)
        self._pending.append(record)

    def add_steps(self, rows: list[dict[str, Any]]) -> None:
        """Plan steps (``planned_steps`` rows but their id and creditor: the rows are the
        caller's to give, and get their creditor here), inserted with the next flush."""
        creditor = self.creditor
        if creditor is None:
            raise RuntimeError("planned steps are added by a unit of work of no creditor")
        for row in rows:
            row["creditor_id"] = creditor
        self._steps.extend(rows)
        self.rows_added += len(rows)

    def add_inbox_row(self, draft: InboxDraft) -> None:
        """An ``inbox_events`` row, inserted with the next flush as it is then."""
        if self.creditor is None:
            raise RuntimeError("an inbox row is added by a unit of work of no creditor")
        draft.creditor_id = self.creditor
        self._inbox.append(draft)
        self.rows_added += 1

    def add_payment_row(self, row: dict[str, Any]) -> None:
        """A ``payments`` row but its id and creditor, inserted with the next flush."""
        if self.creditor is None:
            raise RuntimeError("a payment is added by a unit of work of no creditor")
        self._payments.append({**row, "creditor_id": self.creditor})
        self.rows_added += 1

    def add_draft(self, model: type, values: dict[str, Any]) -> Any:
        """A new ``DebtorRow`` or ``InvoiceRow`` (its primary key given), not in the session
        until the next flush inserts it with the others of its table and attaches it. Its
        columns not given take their default (or NULL), as a mapped insert would."""
        if self.creditor is None:
            raise RuntimeError(f"a {model.__name__} is added by a unit of work of no creditor")
        row = model.__mapper__.class_manager.new_instance()  # type: ignore[attr-defined]
        row.__dict__.update(_COLUMN_DEFAULTS[model])  # a loaded row's way: no attribute events
        row.__dict__.update(values)
        row.__dict__["creditor_id"] = self.creditor
        self._drafts[model].append(row)
        self.rows_added += 1
        return row

    def steps_waiting_for(self, invoice_id: int) -> bool:
        """Whether steps of the invoice planned as plain rows wait for the next flush."""
        return invoice_id in self._steps_seen.of(self._steps, _invoice_of_step)

    def invoice_waiting(self, invoice_id: int) -> bool:
        """Whether the invoice is a draft waiting for the next flush: none of its steps is
        written yet either (their foreign key), so none has a lease."""
        return invoice_id in self._drafts_seen.of(self._drafts[InvoiceRow], _id_of_draft)

    def cancel_waiting_steps(self, invoice_id: int, reason: str, takes: Callable[[str], bool]) -> int:
        """Cancel the invoice's pending steps still waiting as plain rows that ``takes``
        accepts, as the cancellation's ``UPDATE`` would once they are written (status,
        reason; ``emit_count`` unchanged: an unwritten step has no lease); how many. Outside
        a savepoint only (its rollback would not take the change back). Counted in
        ``rows_added``, as the statement it replaces counts as a write of the batch's."""
        count = 0
        for row in self._steps:
            if row["invoice_id"] == invoice_id and row["status"] in PENDING and takes(row["step"]):
                row["status"], row["reason"] = "cancelled", reason
                count += 1
        self.rows_added += 1
        return count

    def cancel_pending_later(self, invoice_id: int, reason: str, which: StepFilter) -> None:
        """Cancel the pending steps of a stored invoice (``which`` takes) at the next flush,
        first thing, in one statement with the others left until then: before the steps
        added since are written, and before any ORM read (autoflush), so that nothing sees
        them pending. Only outside a savepoint, whose rollback would not take it back
        (``SqlStore.cancel_pending_soon``). Counted in ``rows_added``, as the statement it
        stands for counts as a write of the batch's."""
        self._cancellations.setdefault((reason, which), []).append(invoice_id)
        self.rows_added += 1

    def cancel_pending_now(self) -> None:
        """Run the cancellations left for the next flush (``cancel_pending_later``): one
        statement for each reason and filter, not counted as a write of the batch's (they
        were, when left)."""
        if not self._cancellations:
            return
        left, self._cancellations = self._cancellations, {}
        batch = self.batch
        writes = batch.writes if batch is not None else 0
        for (reason, which), invoices in left.items():
            cancel_steps(self, invoices, reason, which, self.creditor)
        if batch is not None:
            batch.writes = writes

    def has_unflushed_rows(self) -> bool:
        """Whether rows added as plain rows or drafts (``add_steps``, ``add_payment_row``,
        ``add_inbox_row``, ``add_draft``, ``store_rejected`` in a batch), or cancellations
        (``cancel_pending_later``), wait for the next flush."""
        return bool(
            self._steps
            or self._payments
            or self._rejected
            or self._inbox
            or self._cancellations
            or self._has_drafts()
        )

    def flush(self, objects: Any = None) -> None:
        if objects is None:
            self.cancel_pending_now()  # first: before the steps added since are written
        if objects is None and self._has_drafts():
            self._write_drafts()  # first: the session's rows may refer to them
        self._invoice_changes_alike()
        super().flush(objects)
        if objects is not None:
            return
        if self._steps:
            rows, self._steps = self._steps, []
            self._insert(PlannedStep.__table__, rows, counted=False)
        if self._payments:
            rows, self._payments = self._payments, []
            self._insert(PaymentRow.__table__, rows, counted=False)
        if self._rejected:
            rows, self._rejected = self._rejected, []
            self._insert(RejectedEvent.__table__, rows, counted=False)
        if self._inbox:
            drafts, self._inbox = self._inbox, []
            self._insert(InboxEvent.__table__, [draft.row() for draft in drafts], counted=False)

    def _invoice_changes_alike(self) -> None:
        """Have every changed invoice set the same columns (those a payment or credit note
        changes), so that the ORM writes them in one ``executemany`` (one round trip with
        psycopg's pipeline): it groups the ``UPDATE`` of consecutive rows only when they set
        the same columns, and a batch's payments change ``paid``, ``credited``, ``status``
        and ``updated_at`` in every combination. A column set to the value it has is written
        unchanged."""
        for row in self.dirty:
            if type(row) is InvoiceRow:
                state = instance_state(row)
                for key in _INVOICE_CHANGES:
                    if key in state.dict and key not in state.committed_state:
                        flag_modified(row, key)

    def flush_mapped(self) -> None:
        """Flush the changes of the session's mapped objects, leaving the plain rows and
        drafts for a later flush; everything when a new mapped object may refer to a draft."""
        if self.new:
            self.flush()
        else:
            self._invoice_changes_alike()
            super().flush()

    def settle_drafts(self) -> None:
        """From now on, ``drafts_changed`` tells whether a draft waiting was changed."""
        for rows in self._drafts.values():
            for row in rows:
                state = instance_state(row)
                if state.modified:
                    state._commit_all(state.dict)

    def drafts_changed(self) -> bool:
        """Whether a draft waiting for the flush was changed since ``settle_drafts``."""
        return any(instance_state(row).modified for rows in self._drafts.values() for row in rows)

    def _has_drafts(self) -> bool:
        return any(self._drafts.values())

    def _write_drafts(self) -> None:
        """Insert the drafts, each table's in one statement, and attach them unchanged."""
        for model, rows in self._drafts.items():
            if not rows:
                continue
            self._drafts[model] = []
            columns = _DRAFT_COLUMNS[model]
            table = model.__table__  # type: ignore[attr-defined]
            self._insert(
                table, [{name: row.__dict__[name] for name in columns} for row in rows], counted=False
            )
            self.rows_added += sum(1 for row in rows if instance_state(row).modified)  # changed since settled
            for row in rows:
                make_transient_to_detached(row)  # as if loaded: what it holds is what is stored
                super().add(row)

    def _is_clean(self) -> bool:
        """Whether a commit has nothing to flush (SQLAlchemy skips the flush then). A hook of
        SQLAlchemy's own, not of its public API: the version is pinned in constraints.txt and
        ``test_steps_planned_in_a_savepoint_are_written_before_it_is_released`` covers it."""
        return bool(super()._is_clean()) and not self.has_unflushed_rows()

    def _insert(self, table: Any, rows: list[dict[str, Any]], *, counted: bool = True) -> None:
        """Insert ``rows``. Rows added as plain rows or drafts were counted when added
        (``rows_added``); other rows count as a statement of the batch's (a ``COPY`` is not
        seen by its count of statements)."""
        insert_rows(self.connection(), table, rows)
        if counted and self.batch is not None:
            self.batch.writes += 1

    def after_commit(self, task: object) -> None:
        """Publish ``task`` once this transaction has committed."""
        self._tasks.append(task)

    def take_tasks(self) -> list[object]:
        """The tasks added so far, handed over to the caller (who publishes after commit)."""
        tasks, self._tasks = self._tasks, []
        return tasks

    # -- the core's port (handlers.ports.UnitOfWork) ---------------------------------------

    def remember_message(self, message_id: str, actor: str, at: datetime) -> bool:
        """Insert the ``processed_messages`` row now; False if its key is already there.

        A statement, not a mapped row: every broker message comes through here, and a tick
        of one debtor's catch-up publishes 100 000 of them (the unit of work's flush of one
        new row cost about as much as the rest of a message already handled)."""
        row = {"message_id": message_id, "actor": actor, "processed_at": at}
        try:
            self.connection().execute(_REMEMBER_MESSAGE, row)
        except IntegrityError:  # the transaction is done for: the caller rolls it back
            return False
        return True

    def store_rejected(
        self,
        *,
        event_id: str | None,
        raw: str,
        reason: str,
        source: str | None,
        line_no: int | None,
        received_at: datetime,
    ) -> None:
        """Keep a rejected event for replay. In a ``relance ingest`` batch, a plain row inserted
        with the next flush: a mapped one pending would make the next event's applier flush
        the batch's other waiting rows first (``SqlStore.write_mark``)."""
        row = {
            "creditor_id": self.creditor,
            "event_id": event_id,
            "raw": raw,
            "reason": reason,
            "source": source,
            "line_no": line_no,
            "received_at": received_at,
        }
        if self.batch is not None and self.creditor is not None:
            self._rejected.append({**row, "replayed_at": None})
            self.rows_added += 1
        else:
            self.add(RejectedEvent(**row))

    def savepoint(self) -> Any:
        return self.begin_nested()

    def messages(self) -> SqlMessages:
        return SqlMessages(self)

    @property
    def store(self) -> SqlStore:
        """The store port on this unit of work (``adapters.sql_store``)."""
        if self._store is None:
            self._store = SqlStore(self)
        return self._store

    @property
    def session(self) -> UnitOfWork:
        """The unit of work is itself the session the store's handlers take."""
        return self

    # -- the transaction -----------------------------------------------------------------

    def write_evidence(self) -> int:
        """Chain and write the records added so far; return how many.

        Per creditor, one locked read of the chain head (``_locked_head``) per transaction,
        then one statement writing a single record and the head's new values together on
        PostgreSQL (``_write_chained``; on SQLite, which has no ``UPDATE`` inside a ``WITH``,
        and for several records: the records, then the head)."""
        if not self._pending:
            return 0
        self.flush()  # the rows the records are about go first (foreign keys, reads)
        connection = self.connection()
        for creditor in dict.fromkeys(pending.creditor_id for pending in self._pending):
            self._locked_head(connection, creditor)  # first: evidence writers make salts one at a time
        self._make_missing_salts(connection)
        by_creditor: dict[str, list[dict[str, Any]]] = {}
        for pending in self._pending:
            head = self._locked_head(connection, pending.creditor_id)
            seq = head.seq + 1
            digest = pending_hash(head.hash, seq, pending, self._salt_for(connection, pending))
            by_creditor.setdefault(pending.creditor_id, []).append(_stored(pending, seq, head.hash, digest))
            head.seq, head.hash = seq, digest
        for creditor, rows in by_creditor.items():
            self._write_chained(connection, creditor, rows, self._heads[creditor])
        written = len(self._pending)
        self._pending.clear()
        return written

    def _write_chained(
        self, connection: Connection, creditor: str, rows: list[dict[str, Any]], head: _Head
    ) -> None:
        """Insert the creditor's chained records and move its head to the last of them: one
        statement for a single record on PostgreSQL; else the records set-based (one
        ``COPY`` on PostgreSQL, ``adapters.bulk``), then the head."""
        moved = {"creditor": creditor, "head_seq": head.seq, "head_hash": head.hash}
        if len(rows) == 1 and connection.dialect.name == "postgresql":
            connection.execute(_RECORD_MOVING_HEAD, {f"record_{k}": v for k, v in rows[0].items()} | moved)
            return
        self._insert(EvidenceRecord.__table__, rows)
        connection.execute(_MOVE_HEAD, moved)

    def know_salt(self, creditor: str, debtor_id: str, salt: str | None) -> None:
        """The debtor's salt as a read under the debtor's lock found it (None: it has none
        yet): its records are then chained without reading it again."""
        self._salts[(creditor, debtor_id)] = None if salt is None else bytes.fromhex(salt)

    def commit(self) -> None:
        self.write_evidence()
        self.flush()
        super().commit()
        self._forget_transaction()

    def rollback(self) -> None:
        # discarded, not a change made after the transaction ended
        self._steps, self._payments, self._rejected, self._inbox = [], [], [], []
        self._drafts = _no_drafts()
        self._cancellations = {}
        super().rollback()
        self._reset()

    def close(self) -> None:
        super().close()
        self._reset()

    def begin_nested(self) -> Any:
        return _Savepoint(self, super().begin_nested())

    # -- internals -----------------------------------------------------------------------

    def _reset(self) -> None:
        self._steps_seen, self._drafts_seen = _Seen(), _Seen()
        self._pending = []
        self._tasks = []
        self._steps = []
        self._payments = []
        self._rejected = []
        self._inbox = []
        self._drafts = _no_drafts()
        self._cancellations = {}
        self.rows_added = 0  # plain rows and drafts added, and drafts changed (``wrote_since``)
        self._forget_transaction()

    def _forget_transaction(self) -> None:
        self._heads = {}
        self._salts = {}
        self.read_ahead = None

    def _rolled_back_to(self, marks: _Marks) -> None:
        del self._pending[marks.records :]
        del self._tasks[marks.tasks :]
        self._drop_unflushed(marks)
        self._heads = {}  # a savepoint's rollback releases the locks taken inside it
        self._salts = {}  # and undoes the salts it made
        self.read_ahead = None

    def _drop_unflushed(self, marks: _Marks) -> None:
        """The plain rows and drafts added since ``marks`` (a savepoint's rollback)."""
        del self._steps[marks.steps :]
        del self._payments[marks.payments :]
        del self._rejected[marks.rejected :]
        del self._inbox[marks.inbox :]
        for model, count in marks.drafts.items():
            del self._drafts[model][count:]

    def _marks(self) -> _Marks:
        return _Marks(self)

    def _salt_for(self, connection: Connection, pending: PendingRecord) -> bytes | None:
        """The salt of the record's debtor when it has personal values to seal; made on
        first use. The chain head is locked first: evidence writers make it one at a time.

        A salt known absent (read with the locked debtor, ``know_salt``) is inserted at once;
        one not known is read first, since most debtors have theirs already."""
        if pending.debtor_id is None or not pending_needs_salt(pending):
            return None
        key = (pending.creditor_id, pending.debtor_id)
        params = {"creditor": pending.creditor_id, "debtor": pending.debtor_id}
        salt = self._salts.get(key)
        if salt is None and key not in self._salts:
            salt = _salt_of(connection.execute(_READ_SALT, params).scalar())
        if salt is None:
            made = {**params, "salt": secrets.token_hex(32), "at": pending.at}
            statement = _INSERT_SALT[connection.dialect.name]
            # nothing inserted: another transaction made it since it was read
            salt = _salt_of(connection.execute(statement, made).scalar()) or _salt_of(
                connection.execute(_READ_SALT, params).scalar()
            )
        if salt is None:
            raise LookupError(f"the salt of debtor {pending.debtor_id} could not be made")
        self._salts[key] = salt
        return salt

    def _make_missing_salts(self, connection: Connection) -> None:
        """The salts known absent (``know_salt``) that the records need, made in one
        statement on PostgreSQL when there are several (a batch of steps reminds many new
        debtors): ``INSERT … SELECT … FROM unnest(…) ON CONFLICT DO NOTHING RETURNING``. A
        salt not returned was made by another transaction since it was read: it is read
        again by ``_salt_for``, as a single one is made there."""
        if connection.dialect.name != "postgresql":
            return
        wanted: dict[tuple[str, str], datetime] = {}
        for pending in self._pending:
            key = (pending.creditor_id, pending.debtor_id or "")
            known_absent = key in self._salts and self._salts[key] is None
            if known_absent and key not in wanted and pending_needs_salt(pending):
                wanted[key] = pending.at
        if len(wanted) < 2:
            return
        made = {
            "creditors": [creditor for creditor, _ in wanted],
            "debtors": [debtor for _, debtor in wanted],
            "salts": [secrets.token_hex(32) for _ in wanted],
            "ats": list(wanted.values()),
        }
        for creditor, debtor, salt in connection.execute(_INSERT_SALTS, made):
            self._salts[(creditor, debtor)] = bytes.fromhex(salt)
        for key in wanted:
            if self._salts.get(key) is None:
                del self._salts[key]  # not known any more: read again

    def _locked_head(self, connection: Connection, creditor: str) -> _Head:
        """The creditor's chain head, locked (``FOR UPDATE``) by this transaction; created on
        first use. Each creditor's chain has its own head: appends of two creditors never
        wait on each other."""
        if creditor in self._heads:
            return self._heads[creditor]
        params = {"creditor": creditor}
        row = connection.execute(_LOCK_HEAD, params).first()
        if row is None:  # the creditor's first record: its head is made (by one writer only)
            connection.execute(_MAKE_HEAD[connection.dialect.name], params)
            row = connection.execute(_LOCK_HEAD, params).one()
        head = self._heads[creditor] = _Head(row.seq, row.hash)
        return head


class _Marks:
    """How many of each kind of row a unit of work had added when a savepoint began."""

    __slots__ = ("drafts", "inbox", "payments", "records", "rejected", "steps", "tasks")

    def __init__(self, uow: UnitOfWork) -> None:
        self.records, self.tasks = len(uow._pending), len(uow._tasks)
        self.steps, self.payments, self.inbox = len(uow._steps), len(uow._payments), len(uow._inbox)
        self.rejected = len(uow._rejected)
        self.drafts = {model: len(rows) for model, rows in uow._drafts.items()}


class _Seen:
    """The invoice ids of a list of waiting rows, kept up to date as the list grows: a
    payment asks whether its invoice has rows waiting, and a batch's lists hold thousands.
    Rows are only appended to a list, or it is cut short or replaced (a flush, a savepoint's
    rollback): the ids are then gathered again. The last row seen still in its place tells
    a list that only grew from one cut short and grown again."""

    def __init__(self) -> None:
        self._rows: list[Any] | None = None
        self._count = 0
        self._last: Any = None
        self._ids: set[int] = set()

    def of(self, rows: list[Any], invoice_of: Callable[[Any], int]) -> set[int]:
        count = self._count
        if rows is not self._rows or len(rows) < count or (count and rows[count - 1] is not self._last):
            self._rows, self._count, self._ids = rows, 0, set()
        if len(rows) > self._count:
            self._ids.update(invoice_of(row) for row in rows[self._count :])
            self._count, self._last = len(rows), rows[-1]
        return self._ids


def _invoice_of_step(row: dict[str, Any]) -> int:
    return int(row["invoice_id"])


def _id_of_draft(row: Any) -> int:
    return int(row.__dict__["id"])


# the columns of an invoice that payments and credit notes change (``_invoice_changes_alike``)
_INVOICE_CHANGES = ("paid", "credited", "status", "updated_at")

# the mapped classes a batch adds as drafts (``add_draft``), in the order they are written:
# an invoice's debtor first (foreign key)
_DRAFTED = (DebtorRow, InvoiceRow)
_DRAFT_COLUMNS: dict[type, tuple[str, ...]] = {
    model: tuple(column.name for column in model.__table__.columns) for model in _DRAFTED
}
_COLUMN_DEFAULTS: dict[type, dict[str, Any]] = {
    model: {
        column.name: column.default.arg if column.default is not None and column.default.is_scalar else None
        for column in model.__table__.columns
    }
    for model in _DRAFTED
}


def _no_drafts() -> dict[type, list[Any]]:
    return {model: [] for model in _DRAFTED}


class _Head:
    """A chain head as this transaction has it: last sequence number and hash."""

    __slots__ = ("hash", "seq")

    def __init__(self, seq: int, hash: str) -> None:
        self.seq, self.hash = seq, hash


def _salt_of(hexadecimal: str | None) -> bytes | None:
    return None if hexadecimal is None else bytes.fromhex(hexadecimal)


# -- the statements of the evidence chain, built once: Core on the session's connection, each
# naming its creditor (the ``do_orm_execute`` filter does not see them) ---------------------

_HEADS: Table = EvidenceHead.__table__  # type: ignore[assignment]
_RECORDS: Table = EvidenceRecord.__table__  # type: ignore[assignment]
_SALTS: Table = DebtorSalt.__table__  # type: ignore[assignment]
_RECORD_COLUMNS = tuple(c.name for c in _RECORDS.c)
_LOCK_HEAD = (
    select(_HEADS.c.seq, _HEADS.c.hash).where(_HEADS.c.creditor_id == bindparam("creditor")).with_for_update()
)


def _on_conflict_do_nothing(table: Any, values: dict[str, Any]) -> dict[str, Insert]:
    """``INSERT … ON CONFLICT DO NOTHING`` on each dialect the store runs on."""
    return {
        "postgresql": postgresql.insert(table).values(values).on_conflict_do_nothing(),
        "sqlite": sqlite.insert(table).values(values).on_conflict_do_nothing(),
    }


_MAKE_HEAD = _on_conflict_do_nothing(
    _HEADS, {"creditor_id": bindparam("creditor"), "seq": 0, "hash": GENESIS}
)
_READ_SALT = select(_SALTS.c.salt).where(
    _SALTS.c.creditor_id == bindparam("creditor"), _SALTS.c.debtor_id == bindparam("debtor")
)
_INSERT_SALT = {
    dialect: statement.returning(_SALTS.c.salt)
    for dialect, statement in _on_conflict_do_nothing(
        _SALTS,
        {
            "creditor_id": bindparam("creditor"),
            "debtor_id": bindparam("debtor"),
            "salt": bindparam("salt"),
            "created_at": bindparam("at", type_=_SALTS.c.created_at.type),
        },
    ).items()
}
# several salts made at once (PostgreSQL), bound as four arrays (``_make_missing_salts``)
_SALTS_MADE = (
    func.unnest(
        bindparam("creditors", type_=postgresql.ARRAY(_SALTS.c.creditor_id.type)),
        bindparam("debtors", type_=postgresql.ARRAY(_SALTS.c.debtor_id.type)),
        bindparam("salts", type_=postgresql.ARRAY(_SALTS.c.salt.type)),
        bindparam("ats", type_=postgresql.ARRAY(_SALTS.c.created_at.type)),
    )
    .table_valued("creditor_id", "debtor_id", "salt", "created_at")
    .render_derived()
)
_INSERT_SALTS = (
    postgresql.insert(_SALTS)
    .from_select(
        ["creditor_id", "debtor_id", "salt", "created_at"],
        select(
            _SALTS_MADE.c.creditor_id, _SALTS_MADE.c.debtor_id, _SALTS_MADE.c.salt, _SALTS_MADE.c.created_at
        ),
    )
    .on_conflict_do_nothing()
    .returning(_SALTS.c.creditor_id, _SALTS.c.debtor_id, _SALTS.c.salt)
)
_MOVE_HEAD = (
    update(_HEADS)
    .where(_HEADS.c.creditor_id == bindparam("creditor"))
    .values(seq=bindparam("head_seq"), hash=bindparam("head_hash"))
)
_REMEMBER_MESSAGE = insert(ProcessedMessage)
# one record written with the head moved, in one statement (PostgreSQL): most transactions
# chain a single record (a multi-row ``VALUES`` is not cached by SQLAlchemy: several records
# go as one batched insert, then the head)
_RECORD_MOVING_HEAD = (
    insert(_RECORDS)
    .values({name: bindparam(f"record_{name}", type_=_RECORDS.c[name].type) for name in _RECORD_COLUMNS})
    .add_cte(_MOVE_HEAD.cte("head"))
)


# the tables whose rows tasks name by id (``creditor_of``), and the read of a row's creditor
_ROWS_BY_ID: dict[str, Any] = {
    "planned_steps": PlannedStep,
    "messages": MessageRow,
    "handovers": HandoverRow,
    "signals": SignalRow,
}
_CREDITOR_OF = {
    name: select(row.__table__.c.creditor_id).where(row.__table__.c.id == bindparam("id"))
    for name, row in _ROWS_BY_ID.items()
}
_CREDITORS_OF = {
    name: select(row.__table__.c.id, row.__table__.c.creditor_id).where(
        row.__table__.c.id.in_(bindparam("ids", expanding=True))
    )
    for name, row in _ROWS_BY_ID.items()
}
# execution options of a statement that names its creditor itself
ALL_CREDITORS = {"all_creditors": True}


@event.listens_for(UnitOfWork, "do_orm_execute")
def _only_the_creditors_rows(state: ORMExecuteState) -> None:
    """Filter a scoped unit of work's ORM statements to its creditor's rows."""
    uow = state.session
    if not isinstance(uow, UnitOfWork) or uow.creditor is None:
        return
    if state.execution_options.get("all_creditors") or state.is_column_load or state.is_relationship_load:
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(_only_rows_of(uow.creditor))


_ONLY_ROWS_OF: dict[str, Any] = {}  # the filter of each creditor, made once per process


def _only_rows_of(creditor: str) -> Any:
    """The option filtering a statement's ``Scoped`` tables to ``creditor``'s rows."""
    found = _ONLY_ROWS_OF.get(creditor)
    if found is None:
        found = _ONLY_ROWS_OF[creditor] = with_loader_criteria(
            Scoped, lambda cls: cls.creditor_id == creditor, include_aliases=True
        )
    return found


def _stored(pending: PendingRecord, seq: int, prev_hash: str, digest: str) -> dict[str, Any]:
    """The ``evidence`` row of a chained record."""
    return {
        "creditor_id": pending.creditor_id,
        "seq": seq,
        "at": pending.at,
        "kind": pending.kind,
        "debtor_id": pending.debtor_id,
        "invoice_numbers": pending.invoice_numbers,
        "case_id": pending.case_id,
        "message_id": pending.message_id,
        "payload": pending.payload,
        "prev_hash": prev_hash,
        "hash": digest,
        "version": VERSION,
    }


class _Savepoint:
    """``with uow.begin_nested():``, dropping what the block added when it rolls back."""

    def __init__(self, uow: UnitOfWork, nested: SessionTransaction) -> None:
        self._uow, self._nested = uow, nested
        self._marks = uow._marks()

    def __enter__(self) -> SessionTransaction:
        return self._nested.__enter__()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:  # its plain rows are discarded before SQLAlchemy checks what changed
            self._uow._drop_unflushed(self._marks)
        try:
            self._nested.__exit__(kind, exc, tb)
        except BaseException:  # releasing the savepoint failed: SQLAlchemy rolled it back
            self._uow._rolled_back_to(self._marks)
            raise
        if kind is not None:
            self._uow._rolled_back_to(self._marks)
