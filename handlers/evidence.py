"""The evidence chain: every action and fact, appended in the transaction that makes it.

Each record's hash covers its own canonical content and the previous record's hash, so
altering, removing or reordering a record breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from adapters.orm import EvidenceHead, EvidenceRecord

GENESIS = "0" * 64


def canonical(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, decimals and datetimes as strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)


def _plain(value: Any) -> str:
    if isinstance(value, Decimal | datetime):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in evidence")


def record_hash(prev_hash: str, seq: int, at: datetime, kind: str, payload: str) -> str:
    text = f"{prev_hash}\n{seq}\n{at.astimezone(UTC).isoformat()}\n{kind}\n{payload}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append(
    session: Session,
    kind: str,
    at: datetime,
    payload: dict[str, Any],
    *,
    debtor_id: str | None = None,
    invoice_numbers: Iterable[str] = (),
    case_id: int | None = None,
    message_id: str | None = None,
) -> None:
    """Append one record to the chain, as part of the session's transaction.

    The record is queued and chained when the transaction commits (``write_pending``): the
    chain head, which serialises every append, is then locked only for the last statements
    of the transaction and its commit, not for all the work before them. Records appended in
    a savepoint that is rolled back are dropped with it.
    """
    at = at.astimezone(UTC)  # hashed exactly as the store gives it back
    _queue(session).append(
        _Pending(kind, at, canonical(payload), debtor_id, sorted(invoice_numbers), case_id, message_id)
    )


@dataclass(frozen=True)
class _Pending:
    kind: str
    at: datetime
    payload: str
    debtor_id: str | None
    invoice_numbers: list[str]
    case_id: int | None
    message_id: str | None


def write_pending(session: Session) -> int:
    """Chain and write the records queued in this transaction; return how many.

    Runs by itself when the outermost transaction commits; call it before reading the
    evidence table in a transaction that appended to it.
    """
    queue = _queue(session)
    if not queue:
        return 0
    head = _locked_head(session)
    for pending in queue:
        seq = head.seq + 1
        digest = record_hash(head.hash, seq, pending.at, pending.kind, pending.payload)
        session.add(
            EvidenceRecord(
                seq=seq,
                at=pending.at,
                kind=pending.kind,
                debtor_id=pending.debtor_id,
                invoice_numbers=pending.invoice_numbers,
                case_id=pending.case_id,
                message_id=pending.message_id,
                payload=pending.payload,
                prev_hash=head.hash,
                hash=digest,
            )
        )
        head.seq, head.hash = seq, digest
    written = len(queue)
    queue.clear()
    session.flush()
    return written


_QUEUE = "relance.evidence.queue"
_MARKS = "relance.evidence.marks"
_HEAD = "relance.evidence.head"


def _queue(session: Session) -> list[_Pending]:
    return session.info.setdefault(_QUEUE, [])


def _locked_head(session: Session) -> EvidenceHead:
    """The chain head, locked (``FOR UPDATE``) by this transaction; created on first use."""
    head = session.info.get(_HEAD)
    if head is not None:
        return head
    head = session.execute(
        select(EvidenceHead).where(EvidenceHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = EvidenceHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
    session.info[_HEAD] = head
    return head


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: Any) -> None:
    if transaction.nested:  # where to cut the queue back to if this savepoint rolls back
        session.info.setdefault(_MARKS, {})[transaction] = len(_queue(session))


@event.listens_for(Session, "before_commit")
def _write_at_commit(session: Session) -> None:
    if session.get_nested_transaction() is None:  # the outermost transaction commits
        write_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop_on_rollback(session: Session, previous: Any) -> None:
    # a rolled-back savepoint releases the locks taken inside it: lock again next time
    session.info.pop(_HEAD, None)
    mark = session.info.get(_MARKS, {}).pop(previous, None) if previous.nested else 0
    if mark is not None:
        del _queue(session)[mark:]


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        for key in (_HEAD, _QUEUE, _MARKS):
            session.info.pop(key, None)


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    records: int
    broken_seq: int | None = None
    reason: str | None = None
    head_hash: str | None = None  # hash of the last record checked, when the chain holds


def verify(records: Iterable[EvidenceRecord], head: EvidenceHead | None) -> ChainCheck:
    """Recompute the chain in order; name the first record that does not hold."""
    prev, expected_seq, count = GENESIS, 1, 0
    for record in records:
        if record.seq != expected_seq:
            return ChainCheck(False, count, expected_seq, f"record {expected_seq} is missing")
        if record.prev_hash != prev:
            return ChainCheck(False, count, record.seq, "previous-hash link does not match")
        if record_hash(prev, record.seq, record.at, record.kind, record.payload) != record.hash:
            return ChainCheck(False, count, record.seq, "content does not match its hash")
        prev, expected_seq, count = record.hash, expected_seq + 1, count + 1
    if head is not None and head.seq > count:
        return ChainCheck(False, count, count + 1, "records after this one were removed")
    if head is not None and head.seq < count:
        return ChainCheck(False, count, head.seq + 1, "records after the chain head were added")
    if head is not None and head.hash != prev:
        return ChainCheck(False, count, count, "last record does not match the chain head")
    return ChainCheck(True, count, head_hash=prev if count else None)
