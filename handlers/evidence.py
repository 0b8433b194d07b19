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
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class EvidenceSink(Protocol):
    """Where records go: the unit of work, which chains them when its transaction commits."""

    def record_evidence(self, record: PendingRecord) -> None: ...
    def write_evidence(self) -> int: ...


@dataclass(frozen=True)
class PendingRecord:
    """A fact to add to the chain; its sequence number and hashes are given at commit."""

    kind: str
    at: datetime
    payload: str  # canonical JSON
    debtor_id: str | None
    invoice_numbers: list[str]
    case_id: int | None
    message_id: str | None


def append(
    sink: object,
    kind: str,
    at: datetime,
    payload: dict[str, Any],
    *,
    debtor_id: str | None = None,
    invoice_numbers: Iterable[str] = (),
    case_id: int | None = None,
    message_id: str | None = None,
) -> None:
    """Add one record to the chain, as part of the unit of work's transaction.

    The unit of work chains and writes its records when the transaction commits: the chain
    head, which serialises every append, is then locked only for the last statements of the
    transaction and its commit. Records added in a savepoint that is rolled back are dropped
    with it.
    """
    at = at.astimezone(UTC)  # hashed exactly as the store gives it back
    _sink(sink).record_evidence(
        PendingRecord(kind, at, canonical(payload), debtor_id, sorted(invoice_numbers), case_id, message_id)
    )


def write_pending(sink: object) -> int:
    """Chain and write the records added so far in this transaction; return how many.

    The unit of work does it when it commits; call it before reading the evidence table in
    a transaction that added to it.
    """
    return _sink(sink).write_evidence()


def _sink(candidate: object) -> EvidenceSink:
    """The unit of work behind a store session (every session the store makes is one)."""
    if not isinstance(candidate, EvidenceSink):
        raise TypeError(f"evidence is recorded in a unit of work, not in a {type(candidate).__name__}")
    return candidate


class StoredRecord(Protocol):
    """A record as the store gives it back."""

    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> str: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...


class StoredHead(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def hash(self) -> str: ...


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    records: int
    broken_seq: int | None = None
    reason: str | None = None
    head_hash: str | None = None  # hash of the last record checked, when the chain holds


def verify(records: Iterable[StoredRecord], head: StoredHead | None) -> ChainCheck:
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
