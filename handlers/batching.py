"""How the inbox and the appliers find the batch ``relance ingest`` is applying, if any.

The batch itself (``adapters.ingest_batch.Batch``) reads the store ahead for its events;
here is only what the core uses of it, and where it sits: in the session's ``info``.
"""

from __future__ import annotations

from typing import Any, Protocol

BATCH_KEY = "relance.ingest.batch"  # the key of the batch in ``session.info``


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


class HasInfo(Protocol):
    """A session, as far as finding its batch goes."""

    @property
    def info(self) -> dict[Any, Any]: ...
    def in_nested_transaction(self) -> bool: ...


def fast_batch(session: HasInfo) -> IngestBatch | None:
    """The batch being applied without savepoints in ``session``, if any."""
    return session.info.get(BATCH_KEY)


def cache(session: HasInfo, found: dict[str, Any], key: str, row: Any) -> None:
    """Let the batch's later events find a row created now, unless a savepoint may still
    take it back (then they look it up again)."""
    if session.in_nested_transaction():
        found.pop(key, None)
    else:
        found[key] = row
