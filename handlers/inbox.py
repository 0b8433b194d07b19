"""Receive accounting events (docs/events.md): the inbox, before and around applying them.

Each event is recorded once in ``inbox_events``, found again by its id and content hash (a
second copy changes nothing, the same id with other content is rejected); applied by
``handlers.accounting`` with its evidence record, or parked when it needs an invoice or
debtor not known yet, and released when that one arrives. ``relance ingest`` applies
batches of events (``adapters.ingest_batch.Batch``); everything else one at a time.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from handlers import events as ev
from handlers import evidence
from handlers.accounting import APPLY, Parked
from handlers.batching import IngestBatch
from handlers.policy import PolicySet
from handlers.records import InboxRecord
from handlers.store import Store

log = structlog.get_logger("relance.accounting")


@dataclass(frozen=True)
class Outcome:
    status: str  # accepted | duplicate | parked
    event_id: str
    detail: str | None = None


def content_hash(raw: str | bytes) -> str:
    return _digest(ev.decode_json(raw))


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(evidence.canonical(data).encode("utf-8")).hexdigest()


class NeedsSavepoints(Exception):
    """An applier parked or rejected its event after writing: the batch must run again with
    a savepoint per event (see ``adapters.ingest_batch.Batch``)."""


# appliers that neither park nor reject their event
NEVER_PARKED = frozenset({"invoice.issued", "debtor.updated"})


def releases(event: Any) -> list[str]:
    """The parked keys an event may release (those ``APPLY`` returns)."""
    if event.type == "invoice.issued":
        return [f"debtor:{event.debtor.id}", f"invoice:{event.invoice.number}"]
    if event.type == "debtor.updated":
        return [f"debtor:{event.debtor.id}"]
    if event.type == "debtor.insolvency_opened":  # the later stages wait for the opening
        return [f"insolvency:{event.debtor_id}"]
    return []


def receive(
    store: Store,
    event: Any,
    raw: str,
    now: datetime,
    policies: PolicySet,
    *,
    data: dict[str, Any] | None = None,
    batch: IngestBatch | None = None,
) -> Outcome:
    """Record and apply one validated event; duplicates change nothing.

    With a ``batch`` (``relance ingest``), the inbox was read ahead for the whole batch and,
    unless it asks for savepoints, the event is applied without one.

    ``data`` is the decoded JSON of ``raw`` when the caller has it already.
    """
    digest = _digest(ev.decode_json(raw) if data is None else data)
    looked_up, stored = batch.known(event.event_id) if batch is not None else (False, None)
    if not looked_up:
        stored = store.inbox_digest(event.event_id)
    if stored is not None:
        if stored != digest:
            raise ev.EventRejected(
                f"event_id: {event.event_id!r} was already used by a different event", event.event_id
            )
        return Outcome("duplicate", event.event_id)
    if batch is None or batch.savepoints:
        row = _inbox_row(store, event, raw, digest, now)
        outcome = _apply_or_park(store, row, event, now, policies)
    else:
        outcome = _apply_unguarded(store, event, raw, digest, now, policies, batch)
    if batch is not None:
        batch.remember(event.event_id, digest)
    return outcome


def _inbox_row(store: Store, event: Any, raw: str, digest: str, now: datetime) -> InboxRecord:
    return store.add_inbox(
        event_id=event.event_id,
        type=event.type,
        occurred_at=event.occurred_at,
        raw=raw,
        digest=digest,
        received_at=now,
    )


def _apply_or_park(store: Store, row: InboxRecord, event: Any, now: datetime, policies: PolicySet) -> Outcome:
    try:
        with store.savepoint():
            released = APPLY[event.type](store, event, now, policies)
    except Parked as parked:
        return _parked(store, row, event, now, parked.key)
    return _applied(store, row, event, now, policies, released)


def _apply_unguarded(
    store: Store,
    event: Any,
    raw: str,
    digest: str,
    now: datetime,
    policies: PolicySet,
    batch: IngestBatch,
) -> Outcome:
    """``_apply_or_park`` without a savepoint; the inbox row is added once the applier is
    done, so an event it rejects leaves nothing behind (see ``Batch``)."""
    checked = event.type not in NEVER_PARKED
    mark = store.write_mark() if checked else None
    parked: Parked | None = None
    try:
        released = APPLY[event.type](store, event, now, policies)
    except (Parked, ev.EventRejected) as exc:
        if not checked or store.wrote_since(mark):
            raise NeedsSavepoints(f"{event.type} {event.event_id!r}: {exc}") from exc
        if isinstance(exc, ev.EventRejected):
            raise
        parked, released = exc, []
    row = _inbox_row(store, event, raw, digest, now)
    if parked is not None:
        return _parked(store, row, event, now, parked.key)
    return _applied(store, row, event, now, policies, released)


def _parked(store: Store, row: InboxRecord, event: Any, now: datetime, key: str) -> Outcome:
    row.status, row.waiting_for = "parked", key
    if (batch := store.batch) is not None:
        batch.parked(key)
    evidence.append(
        store, "event.parked", now, {"event_id": event.event_id, "type": event.type, "waiting_for": key}
    )
    if _info_enabled():
        log.info("event.parked", event_id=event.event_id, type=event.type, waiting_for=key)
    return Outcome("parked", event.event_id, key)


def _applied(
    store: Store, row: InboxRecord, event: Any, now: datetime, policies: PolicySet, released: list[str]
) -> Outcome:
    row.status, row.waiting_for, row.applied_at = "applied", None, now
    evidence.append(
        store,
        "event.accepted",
        now,
        {"event_id": event.event_id, "type": event.type, "raw_sha256": row.content_sha256},
        debtor_id=_debtor_of(event),
        invoice_numbers=invoices_of(event),
    )
    if _info_enabled():
        log.info("event.accepted", event_id=event.event_id, type=event.type)
    for key in released:
        _release_parked(store, key, now, policies)
    return Outcome("accepted", event.event_id)


def _info_enabled() -> bool:
    """Whether ``log.info`` writes: structlog runs its processors before the standard
    library checks the level, so the per-event lines are skipped here above INFO."""
    return log.is_enabled_for(logging.INFO)


def _release_parked(store: Store, key: str, now: datetime, policies: PolicySet) -> None:
    batch = store.batch
    if batch is not None:
        if not batch.may_have_parked(key):
            return
        batch.released(key)  # those parked again under this key are noted again
    for row in store.parked(key):
        try:
            with store.savepoint():
                _apply_or_park(store, row, ev.parse_event(row.raw), now, policies)
        except ev.EventRejected as rejected:
            _reject_parked(store, row, rejected.reason, now)


def _reject_parked(store: Store, row: InboxRecord, reason: str, now: datetime) -> None:
    """A parked event found invalid once applicable: keep it as rejected, for replay."""
    row.status, row.waiting_for = "rejected", None
    store.store_rejected(
        event_id=row.event_id, raw=row.raw, reason=reason, source="parked", line_no=None, received_at=now
    )
    log.warning("event.rejected", event_id=row.event_id, reason=reason, source="parked")


def _debtor_of(event: Any) -> str | None:
    fields = _fields(event)
    if "debtor_id" in fields:
        return event.debtor_id
    if "debtor" in fields:
        return event.debtor.id
    return None


def invoices_of(event: Any) -> list[str]:
    fields = _fields(event)
    if "invoice_number" in fields:
        return [event.invoice_number]
    if "invoice" in fields:
        return [event.invoice.number]
    return list(event.invoice_numbers) if "invoice_numbers" in fields else []


def _fields(event: Any) -> Any:
    """The fields an event's kind has (a pydantic model's, by its class): asked of the class,
    not with ``hasattr``, which makes the model raise and catch an ``AttributeError`` for
    each field an event lacks."""
    return getattr(type(event), "model_fields", None) or vars(event)
