"""The leased outbox in memory: the same semantics as the SQL one, for tests and simulations.

It sits beside the SQL implementation, not under ``tests/``, because it is a full
implementation of the port (thread-safe, transactional), held to the same contract suite,
and usable wherever a store is not wanted. Every outbox of one ``MemoryOutboxes`` shares one
re-entrant lock: an operation is atomic, and ``transaction()`` holds the lock for a whole
unit of work (as a row lock would) and puts the rows back as they were if it raises.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from handlers.outbox import DONE_STATUS, KINDS, Due, Item, Kind, Refusal, clip, refusal, retry_at

# the kinds' own columns that the core may set, as in adapters.outbox
CHANGEABLE: Mapping[Kind, frozenset[str]] = {
    "messages": frozenset({"tracking_id"}),
    "handovers": frozenset({"channel", "response_code", "dossier_sha256"}),
    "signals": frozenset({"response_code"}),
}


@dataclass
class _Row:
    id: int
    status: str
    attempts: int
    lease_until: datetime | None
    last_error: str | None = None
    done_at: datetime | None = None
    record_due: bool = False  # a message sent whose message.transmitted record is not written
    details: dict[str, object] = field(default_factory=dict)

    def item(self) -> Item:
        return Item(
            self.id, self.status, self.attempts, self.lease_until, self.last_error, dict(self.details)
        )


class MemoryOutboxes:
    """The rows of every kind, in memory."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rows: dict[Kind, dict[int, _Row]] = {kind: {} for kind in KINDS}
        self._next_id = 1

    def outbox(self, kind: Kind) -> MemoryOutbox:
        return MemoryOutbox(self, kind)

    @contextmanager
    def transaction(self) -> Iterator[MemoryOutboxes]:
        with self._lock:
            saved = copy.deepcopy(self._rows)
            try:
                yield self
            except BaseException:
                self._rows = saved
                raise

    def add(
        self,
        kind: Kind,
        *,
        lease_until: datetime | None,
        attempts: int = 0,
        status: str = "pending",
        **details: object,
    ) -> int:
        """Record a new row (what the recording transaction does on SQL); return its id."""
        with self._lock:
            item_id, self._next_id = self._next_id, self._next_id + 1
            self._rows[kind][item_id] = _Row(item_id, status, attempts, lease_until, details=dict(details))
            return item_id

    def rows(self, kind: Kind) -> dict[int, _Row]:
        return self._rows[kind]


class LeasedRows:
    """The ``handlers.outbox.Outbox`` operations on rows kept in memory, written once.

    A subclass says where its rows are (``_rows``), which lock makes an operation atomic
    (``_lock``), how a row becomes an ``Item`` and takes the changes the core may make, and
    where a settled row keeps its time: ``MemoryOutbox`` below, and the outboxes of the
    memory store on its own records (``adapters.memory_store.RecordOutbox``).
    """

    kind: Kind

    @property
    def _rows(self) -> Mapping[int, Any]:
        raise NotImplementedError

    def _lock(self) -> AbstractContextManager[object]:
        raise NotImplementedError

    def _item(self, row: Any, *, claimed: bool = False) -> Item:
        raise NotImplementedError

    def _set(self, row: Any, changes: Mapping[str, object]) -> None:
        raise NotImplementedError

    def _settle(self, row: Any, now: datetime) -> None:
        raise NotImplementedError

    def _done_at(self, row: Any) -> datetime | None:
        raise NotImplementedError

    def _tracking_id(self, row: Any) -> object:
        raise NotImplementedError

    def _change(self, row: Any, changes: Mapping[str, object]) -> None:
        unknown = set(changes) - CHANGEABLE[self.kind]
        if unknown:
            raise ValueError(f"{self.kind}: cannot set {sorted(unknown)} through the outbox")
        self._set(row, changes)

    def claim_expired(self, now: datetime, lease: timedelta, limit: int) -> list[Due]:
        with self._lock():
            expired = sorted(
                (
                    row
                    for row in self._rows.values()
                    if row.status == "pending" and row.lease_until is not None and row.lease_until <= now
                ),
                key=lambda row: (row.lease_until, row.id),
            )[: max(limit, 0)]
            for row in expired:
                row.lease_until = now + lease
            return [Due(row.id, row.attempts) for row in expired]

    def get(self, item_id: int) -> Item | None:
        with self._lock():
            row = self._rows.get(item_id)
            return self._item(row) if row is not None else None

    def claim(
        self, item_id: int, attempt: int, now: datetime, lease: timedelta, **changes: object
    ) -> Item | Refusal:
        with self._lock():
            row = self._rows.get(item_id)
            why = refusal(row.status if row else None, row.attempts if row else None, attempt)
            if why is not None or row is None:
                return why or Refusal.MISSING
            self._change(row, changes)
            row.attempts += 1
            row.lease_until = now + lease
            return self._item(row, claimed=True)

    def mark_done(
        self, item_id: int, now: datetime, *, count_attempt: bool = False, **changes: object
    ) -> Item | None:
        with self._lock():
            row = self._rows.get(item_id)
            if row is None or row.status == DONE_STATUS[self.kind]:
                return None
            self._change(row, changes)
            row.status, row.lease_until = DONE_STATUS[self.kind], None
            self._settle(row, now)
            row.attempts += 1 if count_attempt else 0
            if self.kind == "messages":  # its message.transmitted record is written after
                row.record_due = True
            return self._item(row)

    def unrecorded(self, sent_before: datetime, limit: int) -> list[int]:
        """As ``adapters.outbox.SqlMessages.unrecorded``: messages sent at or before
        ``sent_before`` whose record is due, oldest first."""
        with self._lock():
            due = [
                (done_at, row.id)
                for row in self._rows.values()
                if getattr(row, "record_due", False)
                and (done_at := self._done_at(row)) is not None
                and done_at <= sent_before
            ]
            return [item_id for _, item_id in sorted(due)[: max(limit, 0)]]

    def take_unrecorded(self, item_ids: Sequence[int]) -> list[Item]:
        """As ``adapters.outbox.SqlMessages.take_unrecorded``: those of these messages whose
        record is due, no longer due, with their ``sent_at`` and ``tracking_id``."""
        with self._lock():
            taken = []
            for item_id in sorted(set(item_ids)):
                row = self._rows.get(item_id)
                if row is None or not getattr(row, "record_due", False):
                    continue
                row.record_due = False
                item = self._item(row)
                sent = {"sent_at": self._done_at(row), "tracking_id": self._tracking_id(row)}
                taken.append(replace(item, details={**item.details, **sent}))
            return taken

    def record_retry(
        self, item_id: int, now: datetime, error: str, *, count_attempt: bool = False, **changes: object
    ) -> Item | None:
        with self._lock():
            row = self._rows.get(item_id)
            if row is None or row.status != "pending":
                return None
            self._change(row, changes)
            row.attempts += 1 if count_attempt else 0
            row.last_error, row.lease_until = clip(error), retry_at(now, row.attempts)
            return self._item(row)

    def record_failure(
        self, item_id: int, now: datetime, error: str, *, count_attempt: bool = False, **changes: object
    ) -> Item | None:
        with self._lock():
            row = self._rows.get(item_id)
            if row is None or row.status != "pending":
                return None
            self._change(row, changes)
            row.attempts += 1 if count_attempt else 0
            row.status, row.last_error, row.lease_until = "failed", clip(error), None
            return self._item(row)


class MemoryOutbox(LeasedRows):
    """The ``handlers.outbox.Outbox`` port on the rows of one kind held by a ``MemoryOutboxes``."""

    def __init__(self, store: MemoryOutboxes, kind: Kind) -> None:
        self.store = store
        self.kind = kind

    @property
    def _rows(self) -> dict[int, _Row]:
        return self.store.rows(self.kind)

    def _lock(self) -> AbstractContextManager[object]:
        return self.store._lock

    def _item(self, row: _Row, *, claimed: bool = False) -> Item:
        return row.item()

    def _set(self, row: _Row, changes: Mapping[str, object]) -> None:
        row.details.update(changes)

    def _settle(self, row: _Row, now: datetime) -> None:
        row.done_at = now

    def _done_at(self, row: _Row) -> datetime | None:
        return row.done_at

    def _tracking_id(self, row: _Row) -> object:
        return row.details.get("tracking_id")
