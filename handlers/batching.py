"""What the core knows of the batch ``relance ingest`` is applying, if any.

The batch itself (``adapters.ingest_batch.Batch``) reads the store ahead for its events and
sits on the unit of work; the inbox finds it as ``handlers.store.Store.batch``, and the SQL
store serves invoices, debtors and the movements of invoices from what it read ahead
(``adapters.sql_store``).
"""

from __future__ import annotations

from typing import Any, Protocol

from handlers.money import Movement


class IngestBatch(Protocol):
    """What the inbox and the appliers use of a batch."""

    savepoints: bool  # each event in a savepoint of its own (no rows cached ahead)
    writes: int  # statements other than SELECT run so far on the batch's connection
    invoices: dict[str, Any]  # number -> the invoice row locked for the batch, or None
    debtors: dict[str, Any]  # id -> the debtor row locked for the batch, or None
    payments: dict[int, list[Movement]]  # invoice id -> its movements known to the batch
    cases: dict[int, list[Any]]  # invoice id -> the cases holding it, read ahead (any status)

    def known(self, event_id: str) -> tuple[bool, str | None]: ...
    def remember(self, event_id: str, digest: str) -> None: ...
    def invoice_id(self) -> int | None: ...
    def may_have_parked(self, key: str) -> bool: ...
    def parked(self, key: str) -> None: ...
    def released(self, key: str) -> None: ...
