"""The unit of work: one database transaction, its evidence records and its follow-up tasks.

A ``UnitOfWork`` is the session every use case runs in (``adapters.store.transaction``
opens one). It owns three things the rest of the code only adds to:

- the **evidence records** of the transaction (``handlers.evidence.append``), chained and
  written when it commits, so the chain head, which serialises every append, is locked only
  for the last statements and the commit;
- the **tasks to publish** once it has committed (``after_commit``), never before: a task
  published for work that then rolls back would act on nothing;
- its **savepoints** (``begin_nested``): what a rolled-back savepoint added, records and
  tasks alike, is dropped with it.

Nothing here is a global hook: a session that is not a ``UnitOfWork`` cannot record evidence.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction

from adapters.orm import DebtorSalt, EvidenceHead, EvidenceRecord, ProcessedMessage, RejectedEvent
from adapters.outbox import SqlMessages
from adapters.sql_store import SqlStore
from handlers.evidence import GENESIS, VERSION, PendingRecord, needs_salt, pending_hash


class UnitOfWork(Session):
    """A session that is one unit of work (see the module's docstring)."""

    _pending: list[PendingRecord]
    _tasks: list[object]
    _head: EvidenceHead | None
    batch: Any = None  # the ``relance ingest`` batch applied in it, if any (handlers.batching)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._store: SqlStore | None = None
        self._reset()

    # -- what the use cases add ----------------------------------------------------------

    def record_evidence(self, record: PendingRecord) -> None:
        self._pending.append(record)

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
            self.execute(insert(ProcessedMessage), [row])
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
        self.add(
            RejectedEvent(
                event_id=event_id,
                raw=raw,
                reason=reason,
                source=source,
                line_no=line_no,
                received_at=received_at,
            )
        )

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
        """Chain and write the records added so far; return how many."""
        if not self._pending:
            return 0
        head = self._locked_head()
        for pending in self._pending:
            seq = head.seq + 1
            digest = pending_hash(head.hash, seq, pending, self._salt_for(pending))
            self.add(_stored(pending, seq, head.hash, digest))
            head.seq, head.hash = seq, digest
        written = len(self._pending)
        self._pending.clear()
        self.flush()
        return written

    def commit(self) -> None:
        self.write_evidence()
        super().commit()
        self._forget_transaction()

    def rollback(self) -> None:
        super().rollback()
        self._reset()

    def close(self) -> None:
        super().close()
        self._reset()

    def begin_nested(self) -> Any:
        return _Savepoint(self, super().begin_nested())

    # -- internals -----------------------------------------------------------------------

    def _reset(self) -> None:
        self._pending = []
        self._tasks = []
        self._forget_transaction()

    def _forget_transaction(self) -> None:
        self._head = None

    def _rolled_back_to(self, records: int, tasks: int) -> None:
        del self._pending[records:]
        del self._tasks[tasks:]
        self._head = None  # a savepoint's rollback releases the locks taken inside it

    def _marks(self) -> tuple[int, int]:
        return len(self._pending), len(self._tasks)

    def _salt_for(self, pending: PendingRecord) -> bytes | None:
        """The salt of the record's debtor when it has personal values to seal; made on
        first use. The chain head is locked first: evidence writers make it one at a time."""
        if pending.debtor_id is None or not needs_salt(pending.debtor_id, pending.payload):
            return None
        row = self.get(DebtorSalt, pending.debtor_id)
        if row is None:
            row = DebtorSalt(debtor_id=pending.debtor_id, salt=secrets.token_hex(32), created_at=pending.at)
            self.add(row)
        return bytes.fromhex(row.salt)

    def _locked_head(self) -> EvidenceHead:
        """The chain head, locked (``FOR UPDATE``) by this transaction; created on first use."""
        if self._head is not None:
            return self._head
        head = self.execute(
            select(EvidenceHead).where(EvidenceHead.id == 1).with_for_update()
        ).scalar_one_or_none()
        if head is None:
            head = EvidenceHead(id=1, seq=0, hash=GENESIS)
            self.add(head)
        self._head = head
        return head


def _stored(pending: PendingRecord, seq: int, prev_hash: str, digest: str) -> EvidenceRecord:
    return EvidenceRecord(
        seq=seq,
        at=pending.at,
        kind=pending.kind,
        debtor_id=pending.debtor_id,
        invoice_numbers=pending.invoice_numbers,
        case_id=pending.case_id,
        message_id=pending.message_id,
        payload=pending.payload,
        prev_hash=prev_hash,
        hash=digest,
        version=VERSION,
    )


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
        try:
            self._nested.__exit__(kind, exc, tb)
        except BaseException:  # releasing the savepoint failed: SQLAlchemy rolled it back
            self._uow._rolled_back_to(*self._marks)
            raise
        if kind is not None:
            self._uow._rolled_back_to(*self._marks)
