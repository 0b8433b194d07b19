"""How the inbox and the appliers find the batch ``relance ingest`` is applying, if any.

The batch itself (``adapters.ingest_batch.Batch``) reads the store ahead for its events;
here is only what the core uses of it, and where it sits: on the unit of work (``batch``).
"""

from __future__ import annotations

from typing import Any, Protocol


class IngestBatch(Protocol):
    """What the inbox and the appliers use of a batch."""

    savepoints: bool  # each event in a savepoint of its own (no rows cached ahead)
    writes: int  # statements other than SELECT run so far on the batch's connection
    invoices: dict[str, Any]  # number -> the invoice row locked for the batch, or None
    debtors: dict[str, Any]  # id -> the debtor row locked for the batch, or None

    def known(self, event_id: str) -> tuple[bool, str | None]: ...
    def remember(self, event_id: str, digest: str) -> None: ...
    def invoice_id(self) -> int | None: ...
    def may_have_parked(self, key: str) -> bool: ...
    def parked(self, key: str) -> None: ...
    def released(self, key: str) -> None: ...


class InTransaction(Protocol):
    """A unit of work, as far as finding its batch goes."""

    def in_nested_transaction(self) -> bool: ...


def fast_batch(session: object) -> IngestBatch | None:
    """The batch being applied without savepoints in this unit of work, if any."""
    batch: IngestBatch | None = getattr(session, "batch", None)
    return batch


def cache(session: InTransaction, found: dict[str, Any], key: str, row: Any) -> None:
    """Let the batch's later events find a row created now, unless a savepoint may still
    take it back (then they look it up again)."""
    if session.in_nested_transaction():
        found.pop(key, None)
    else:
        found[key] = row
