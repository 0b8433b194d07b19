"""Apply accepted accounting events to the store (docs/events.md).

Every event is applied in the caller's transaction together with its inbox row and its
evidence record. An event about an invoice (or debtor) not known yet is parked and applied
when that invoice arrives.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import event as sa_event
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from adapters.orm import DebtorRow, InboxEvent, InvoiceRow, MessageRow, PaymentRow
from handlers import cases, evidence, holds, plans
from handlers import events as ev
from handlers.planning import cancel_pending, end_of_day, plan_invoice, resume_invoice, schedule
from handlers.policy import CLAIM_DECLARATION, PolicySet

log = structlog.get_logger("relance.accounting")


class Parked(Exception):
    """The event needs something not known yet (``key``, e.g. ``invoice:F-1``)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


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
    a savepoint per event (see ``Batch``)."""


_BATCH = "relance.ingest.batch"
# appliers that neither park nor reject their event
NEVER_PARKED = frozenset({"invoice.issued", "debtor.updated", "delivery.status"})
_CHUNK = 500  # values per IN (...) list
_NEXT_INVOICE_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('invoices', 'id')) FROM generate_series(1, :n) ORDER BY 1 DESC"
)


class Batch:
    """What the events applied in one transaction by ``relance ingest`` share.

    ``prefetch`` reads once for the whole batch what each event would otherwise look up on
    its own: whether its event id is in the inbox, and, unless ``savepoints`` is set, the
    invoices and debtors it names (locked ``FOR UPDATE`` as the event would lock them) and
    which of the keys it may release have parked events. What the batch's events create or
    park is added as they go, so later events of the batch see it. On PostgreSQL it also
    draws the ids of the invoices the batch creates from their sequence, so that a new
    invoice needs no flush of its own before its steps are planned.

    Unless ``savepoints`` is set, events are also applied without savepoints. A savepoint
    would undo what an applier wrote before it parked or rejected its event; the appliers
    look up what they need before they write, so there is nothing to undo. That is checked
    at run time: since the applier started (after a flush), no statement other than a
    SELECT ran and nothing is pending in the session; an applier in ``NEVER_PARKED`` is not
    expected to park or reject at all. Otherwise ``NeedsSavepoints`` is raised: the caller
    rolls the batch back and applies it again with ``savepoints`` set, as ``ingest_one``
    always did, with a savepoint per event.
    """

    def __init__(self, session: Session, *, savepoints: bool = False) -> None:
        self.session = session
        self.savepoints = savepoints
        self.writes = 0  # statements other than SELECT run on the batch's connection
        self._inbox: dict[str, str | None] = {}  # event id -> stored content hash, or None
        self.invoices: dict[str, InvoiceRow | None] = {}  # number -> locked row, or None
        self.debtors: dict[str, DebtorRow | None] = {}  # id -> locked row, or None
        self._keys_looked_up: set[str] = set()
        self._parked_keys: set[str] = set()  # keys that may have parked events
        self._invoice_ids: list[int] = []  # drawn from the invoices' id sequence
        self._connection = None
        if not savepoints:
            self._connection = session.connection()
            sa_event.listen(self._connection, "before_cursor_execute", self._count)
            session.info[_BATCH] = self

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip()[:6].upper() != "SELECT":
            self.writes += 1

    def close(self) -> None:
        if self._connection is not None:
            sa_event.remove(self._connection, "before_cursor_execute", self._count)
            self._connection = None
            self.session.info.pop(_BATCH, None)

    def prefetch(self, events: list[Any]) -> None:
        """Read the store once for the events of the batch, in their order."""
        ids = list(dict.fromkeys(e.event_id for e in events))
        self._inbox.update(dict.fromkeys(ids))
        for chunk in _chunks(ids):
            self._inbox.update(
                (event_id, digest)
                for event_id, digest in self.session.execute(
                    select(InboxEvent.event_id, InboxEvent.content_sha256).where(
                        InboxEvent.event_id.in_(chunk)
                    )
                )
            )
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
                (row.id, row)
                for row in self.session.execute(
                    select(DebtorRow).where(DebtorRow.id.in_(chunk)).order_by(DebtorRow.id).with_for_update()
                ).scalars()
            )
        numbers = list(dict.fromkeys(n for e in fresh for n in _invoices_of(e)))
        self.invoices.update(dict.fromkeys(numbers))
        for chunk in _chunks(numbers):
            self.invoices.update(
                (row.number, row)
                for row in self.session.execute(
                    select(InvoiceRow)
                    .where(InvoiceRow.number.in_(chunk))
                    .order_by(InvoiceRow.id)
                    .with_for_update()
                ).scalars()
            )
        issued = dict.fromkeys(e.invoice.number for e in fresh if e.type == "invoice.issued")
        created = sum(1 for number in issued if self.invoices[number] is None)
        if created and self.session.get_bind().dialect.name == "postgresql":
            self._invoice_ids = list(self.session.execute(_NEXT_INVOICE_IDS, {"n": created}).scalars())
        keys = list(dict.fromkeys(key for e in fresh for key in _releases(e)))
        self._keys_looked_up.update(keys)
        for chunk in _chunks(keys):
            self._parked_keys.update(
                self.session.execute(
                    select(InboxEvent.waiting_for)
                    .distinct()
                    .where(InboxEvent.status == "parked", InboxEvent.waiting_for.in_(chunk))
                ).scalars()
            )

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


def _chunks(values: list[Any]) -> list[list[Any]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _releases(event: Any) -> list[str]:
    """The parked keys an event may release (those ``APPLY`` returns)."""
    if event.type == "invoice.issued":
        return [f"debtor:{event.debtor.id}", f"invoice:{event.invoice.number}"]
    if event.type == "debtor.updated":
        return [f"debtor:{event.debtor.id}"]
    return []


def _fast_batch(session: Session) -> Batch | None:
    """The batch being applied without savepoints in ``session``, if any."""
    return session.info.get(_BATCH)


def _cache(session: Session, found: dict[str, Any], key: str, row: Any) -> None:
    """Let the batch's later events find a row created now, unless a savepoint may still
    take it back (then they look it up again)."""
    if session.in_nested_transaction():
        found.pop(key, None)
    else:
        found[key] = row


def receive(
    session: Session,
    event: Any,
    raw: str,
    now: datetime,
    policies: PolicySet,
    *,
    data: dict[str, Any] | None = None,
    batch: Batch | None = None,
) -> Outcome:
    """Record and apply one validated event; duplicates change nothing.

    ``data`` is the decoded JSON of ``raw`` when the caller has it already.
    """
    digest = _digest(ev.decode_json(raw) if data is None else data)
    looked_up, stored = batch.known(event.event_id) if batch is not None else (False, None)
    if not looked_up:
        stored = session.execute(
            select(InboxEvent.content_sha256).where(InboxEvent.event_id == event.event_id)
        ).scalar_one_or_none()
    if stored is not None:
        if stored != digest:
            raise ev.EventRejected(
                f"event_id: {event.event_id!r} was already used by a different event", event.event_id
            )
        return Outcome("duplicate", event.event_id)
    if batch is None or batch.savepoints:
        row = _inbox_row(event, raw, digest, now)
        session.add(row)
        session.flush()
        outcome = _apply_or_park(session, row, event, now, policies)
    else:
        outcome = _apply_unguarded(session, event, raw, digest, now, policies, batch)
    if batch is not None:
        batch.remember(event.event_id, digest)
    return outcome


def _inbox_row(event: Any, raw: str, digest: str, now: datetime) -> InboxEvent:
    return InboxEvent(
        event_id=event.event_id,
        type=event.type,
        occurred_at=event.occurred_at,
        raw=raw,
        content_sha256=digest,
        status="applied",
        received_at=now,
    )


def _apply_or_park(
    session: Session, row: InboxEvent, event: Any, now: datetime, policies: PolicySet
) -> Outcome:
    try:
        with session.begin_nested():
            released = APPLY[event.type](session, event, now, policies)
    except Parked as parked:
        return _parked(session, row, event, now, parked.key)
    return _applied(session, row, event, now, policies, released)


def _apply_unguarded(
    session: Session, event: Any, raw: str, digest: str, now: datetime, policies: PolicySet, batch: Batch
) -> Outcome:
    """``_apply_or_park`` without a savepoint; the inbox row is added once the applier is
    done, so an event it rejects leaves nothing behind (see ``Batch``)."""
    checked = event.type not in NEVER_PARKED
    if checked:
        session.flush()
    writes = batch.writes
    parked: Parked | None = None
    try:
        released = APPLY[event.type](session, event, now, policies)
    except (Parked, ev.EventRejected) as exc:
        if not checked or batch.writes != writes or session.new or session.dirty or session.deleted:
            raise NeedsSavepoints(f"{event.type} {event.event_id!r}: {exc}") from exc
        if isinstance(exc, ev.EventRejected):
            raise
        parked, released = exc, []
    row = _inbox_row(event, raw, digest, now)
    session.add(row)
    if parked is not None:
        return _parked(session, row, event, now, parked.key)
    return _applied(session, row, event, now, policies, released)


def _parked(session: Session, row: InboxEvent, event: Any, now: datetime, key: str) -> Outcome:
    row.status, row.waiting_for = "parked", key
    if (batch := _fast_batch(session)) is not None:
        batch.parked(key)
    evidence.append(
        session, "event.parked", now, {"event_id": event.event_id, "type": event.type, "waiting_for": key}
    )
    if _info_enabled():
        log.info("event.parked", event_id=event.event_id, type=event.type, waiting_for=key)
    return Outcome("parked", event.event_id, key)


def _applied(
    session: Session, row: InboxEvent, event: Any, now: datetime, policies: PolicySet, released: list[str]
) -> Outcome:
    row.status, row.waiting_for, row.applied_at = "applied", None, now
    evidence.append(
        session,
        "event.accepted",
        now,
        {"event_id": event.event_id, "type": event.type, "raw_sha256": row.content_sha256},
        debtor_id=_debtor_of(event),
        invoice_numbers=_invoices_of(event),
    )
    if _info_enabled():
        log.info("event.accepted", event_id=event.event_id, type=event.type)
    for key in released:
        _release_parked(session, key, now, policies)
    return Outcome("accepted", event.event_id)


def _info_enabled() -> bool:
    """Whether ``log.info`` writes: structlog runs its processors before the standard
    library checks the level, so the per-event lines are skipped here above INFO."""
    return log.is_enabled_for(logging.INFO)


def _release_parked(session: Session, key: str, now: datetime, policies: PolicySet) -> None:
    batch = _fast_batch(session)
    if batch is not None:
        if not batch.may_have_parked(key):
            return
        batch.released(key)  # those parked again under this key are noted again
    waiting = (
        session.execute(
            select(InboxEvent)
            .where(InboxEvent.status == "parked", InboxEvent.waiting_for == key)
            .order_by(InboxEvent.occurred_at, InboxEvent.id)
        )
        .scalars()
        .all()
    )
    for row in waiting:
        try:
            with session.begin_nested():
                _apply_or_park(session, row, ev.parse_event(row.raw), now, policies)
        except ev.EventRejected as rejected:
            _reject_parked(session, row, rejected.reason, now)


def _reject_parked(session: Session, row: InboxEvent, reason: str, now: datetime) -> None:
    """A parked event found invalid once applicable: keep it as rejected, for replay."""
    from adapters.orm import RejectedEvent

    row.status, row.waiting_for = "rejected", None
    session.add(
        RejectedEvent(event_id=row.event_id, raw=row.raw, reason=reason, source="parked", received_at=now)
    )
    log.warning("event.rejected", event_id=row.event_id, reason=reason, source="parked")


def _debtor_of(event: Any) -> str | None:
    if hasattr(event, "debtor_id"):
        return event.debtor_id
    if hasattr(event, "debtor"):
        return event.debtor.id
    return None


def _invoices_of(event: Any) -> list[str]:
    if hasattr(event, "invoice_number"):
        return [event.invoice_number]
    if hasattr(event, "invoice"):
        return [event.invoice.number]
    return list(getattr(event, "invoice_numbers", []))


PLAN_PAYMENT = "plan_payment"


# ---- lookups -------------------------------------------------------------------------


def _policy_of(session: Session, invoice: InvoiceRow, policies: PolicySet):
    """The policy that governs ``invoice`` (segment of its debtor, overrides)."""
    return policies.for_debtor(session.get(DebtorRow, invoice.debtor_id), invoice.number)


def _resume(session: Session, invoice: InvoiceRow, policies: PolicySet, now: datetime) -> None:
    debtor = session.get(DebtorRow, invoice.debtor_id)
    resume_invoice(session, invoice, debtor, policies.for_debtor(debtor, invoice.number), now)


def invoice_by_number(session: Session, number: str, *, lock: bool = True) -> InvoiceRow:
    found = _find_invoice(session, number, lock=lock)
    if found is None:
        raise Parked(f"invoice:{number}")
    return found


def _find_invoice(session: Session, number: str, *, lock: bool = True) -> InvoiceRow | None:
    batch = _fast_batch(session)
    if batch is not None and number in batch.invoices:  # looked up and locked for the batch
        return batch.invoices[number]
    query = select(InvoiceRow).where(InvoiceRow.number == number)
    return session.execute(query.with_for_update() if lock else query).scalar_one_or_none()


def debtor_by_id(session: Session, debtor_id: str) -> DebtorRow:
    found = session.get(DebtorRow, debtor_id)
    if found is None:
        raise Parked(f"debtor:{debtor_id}")
    return found


def _upsert_debtor(session: Session, data: ev.Debtor, now: datetime) -> DebtorRow:
    batch = _fast_batch(session)
    if batch is not None and data.id in batch.debtors:  # looked up and locked for the batch
        row = batch.debtors[data.id]
    else:
        row = session.get(DebtorRow, data.id, with_for_update=True)
    if row is None:
        row = DebtorRow(id=data.id, email_bounced=False)
        session.add(row)
        if batch is not None:
            _cache(session, batch.debtors, data.id, row)
    elif row.email != data.email:
        row.email_bounced = False
    row.name, row.kind, row.email, row.language = data.name, data.kind, data.email, data.language
    row.timezone, row.country = data.timezone, data.address.country
    row.address = data.address.model_dump(exclude_none=True)
    row.siren, row.opt_out, row.segment, row.updated_at = data.siren, data.opt_out, data.segment, now
    return row


# ---- one function per event type; each returns the parked keys it releases --------


def on_invoice_issued(
    session: Session, event: ev.InvoiceIssued, now: datetime, policies: PolicySet
) -> list[str]:
    debtor = _upsert_debtor(session, event.debtor, now)
    existing = _find_invoice(session, event.invoice.number)
    if existing is not None:
        _update_invoice(session, existing, event.invoice, now, policies)
        return []
    data = event.invoice
    invoice = InvoiceRow(
        number=data.number,
        debtor_id=debtor.id,
        issue_date=data.issue_date,
        due_date=data.due_date,
        currency=data.currency,
        amount_due=data.amount_due,
        paid=Decimal("0.00"),
        credited=Decimal("0.00"),
        late_penalty_rate=data.late_penalty_rate,
        payment_url=data.payment_url,
        delivered_on=data.delivered_on,
        status="open",
        disputed=False,
        ever_disputed=False,
        in_payment_plan=False,
        created_at=now,
        updated_at=now,
    )
    batch = _fast_batch(session)
    # the steps planned below need the invoice's id: drawn ahead for the batch, or got from
    # a flush. Drawn ahead, the invoice is inserted with the next flush, and its planned
    # steps after it in the same flush: the unit of work orders the tables of mappers with
    # no relationship() between them by class name (DebtorRow, InvoiceRow, PlannedStep);
    # the foreign keys would refuse another order (tests/integration/test_ingest_batch.py)
    drawn = batch.invoice_id() if batch is not None and not session.in_nested_transaction() else None
    if drawn is not None:
        invoice.id = drawn
    session.add(invoice)
    if drawn is None:
        session.flush()
    if batch is not None:
        _cache(session, batch.invoices, data.number, invoice)
    plan_invoice(session, invoice, debtor, policies.for_debtor(debtor, invoice.number), now)
    return [f"debtor:{debtor.id}", f"invoice:{data.number}"]


def _update_invoice(
    session: Session, invoice: InvoiceRow, data: ev.Invoice, now: datetime, policies: PolicySet
) -> None:
    if invoice.status != "open":
        return
    invoice.amount_due, invoice.due_date, invoice.currency = data.amount_due, data.due_date, data.currency
    invoice.issue_date, invoice.late_penalty_rate = data.issue_date, data.late_penalty_rate
    invoice.payment_url, invoice.delivered_on, invoice.updated_at = (data.payment_url, data.delivered_on, now)
    _settle_if_paid(session, invoice, now)
    if invoice.status == "open" and not holds.paused(invoice):
        _resume(session, invoice, policies, now)


def on_invoice_updated(
    session: Session, event: ev.InvoiceUpdated, now: datetime, policies: PolicySet
) -> list[str]:
    _update_invoice(session, invoice_by_number(session, event.invoice.number), event.invoice, now, policies)
    return []


def on_invoice_cancelled(
    session: Session, event: ev.InvoiceCancelled, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(session, event.invoice_number)
    invoice.status, invoice.updated_at = "cancelled", now
    cancel_pending(session, invoice.id, "invoice cancelled")
    cases.follow_invoice(session, invoice, now, "invoice cancelled")
    return []


def _settle_if_paid(session: Session, invoice: InvoiceRow, now: datetime) -> None:
    if invoice.status == "open" and invoice.balance <= 0:
        invoice.status = "settled"
        cancel_pending(session, invoice.id, "invoice settled")
        log.info("invoice.settled", invoice_number=invoice.number, debtor_id=invoice.debtor_id)


def _record_money(
    session: Session,
    event: Any,
    kind: str,
    reference: str | None,
    on_day: Any,
    now: datetime,
    policies: PolicySet,
) -> list[str]:
    invoice = invoice_by_number(session, event.invoice_number)
    # a payment under an agreed plan pays the agreed balance: imputed on principal (1343-1)
    stored_kind = PLAN_PAYMENT if kind == "payment" and invoice.in_payment_plan else kind
    session.add(
        PaymentRow(
            event_id=event.event_id,
            invoice_id=invoice.id,
            kind=stored_kind,
            reference=reference,
            amount=event.amount,
            on_day=on_day,
        )
    )
    if kind == "payment":
        invoice.paid += event.amount
    else:
        invoice.credited += event.amount
    invoice.updated_at = now
    _settle_if_paid(session, invoice, now)
    cases.money_recorded(session, invoice, now, kind, policies)
    if invoice.in_payment_plan:  # pays the plan's oldest unpaid installments first
        plans.apply_money(session, invoice, event.amount, now, _policy_of(session, invoice, policies))
    return []


def on_payment_received(
    session: Session, event: ev.PaymentReceived, now: datetime, policies: PolicySet
) -> list[str]:
    return _record_money(session, event, "payment", None, event.paid_on, now, policies)


def on_credit_note_issued(
    session: Session, event: ev.CreditNoteIssued, now: datetime, policies: PolicySet
) -> list[str]:
    return _record_money(
        session, event, "credit_note", event.credit_note_number, event.occurred_at.date(), now, policies
    )


def on_invoice_disputed(
    session: Session, event: ev.InvoiceDisputed, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(session, event.invoice_number)
    invoice.disputed, invoice.ever_disputed, invoice.updated_at = True, True, now
    cancel_pending(session, invoice.id, "invoice disputed")
    return []


def on_dispute_resolved(
    session: Session, event: ev.DisputeResolved, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(session, event.invoice_number)
    invoice.disputed, invoice.updated_at = False, now
    if event.outcome == "upheld":
        invoice.status = "closed"
        cancel_pending(session, invoice.id, "dispute upheld")
        cases.follow_invoice(session, invoice, now, "dispute upheld")
    elif invoice.status == "open" and not holds.paused(invoice):
        _resume(session, invoice, policies, now)
    return []


def on_promise_to_pay(
    session: Session, event: ev.PromiseToPay, now: datetime, policies: PolicySet
) -> list[str]:
    invoice = invoice_by_number(session, event.invoice_number)
    debtor = session.get(DebtorRow, invoice.debtor_id)
    invoice.paused_until, invoice.updated_at = event.promised_date, now
    cancel_pending(session, invoice.id, "promise to pay")
    schedule(
        session,
        invoice,
        "promise_expired",
        "deadline.expired",
        end_of_day(event.promised_date, debtor.timezone),
    )
    return []


def on_payment_plan_agreed(
    session: Session, event: ev.PaymentPlanAgreed, now: datetime, policies: PolicySet
) -> list[str]:
    invoices = [invoice_by_number(session, n) for n in dict.fromkeys(event.invoice_numbers)]
    open_balance = sum((i.balance for i in invoices if i.status == "open"), Decimal("0.00"))
    planned = sum((i.amount for i in event.installments), Decimal("0.00"))
    if planned != open_balance:
        raise ev.EventRejected(
            f"installments: total {planned} differs from the open balance {open_balance}", event.event_id
        )
    _check_plan_invoices(session, event, invoices)
    for invoice in invoices:
        invoice.in_payment_plan, invoice.updated_at = True, now
        cancel_pending(session, invoice.id, "payment plan agreed")
    debtor = debtor_by_id(session, event.debtor_id)
    plans.agree(session, event, invoices, debtor, policies.for_debtor(debtor, invoices[0].number), now)
    return []


def _check_plan_invoices(session: Session, event: ev.PaymentPlanAgreed, invoices: list[InvoiceRow]) -> None:
    for invoice in invoices:
        if invoice.debtor_id != event.debtor_id:
            raise ev.EventRejected(
                f"invoice_numbers: {invoice.number} is owed by another debtor than {event.debtor_id}",
                event.event_id,
            )
        if plans.active_plan_of(session, invoice.id) is not None:
            raise ev.EventRejected(
                f"invoice_numbers: {invoice.number} is already in an active payment plan", event.event_id
            )
    currencies = sorted({i.currency for i in invoices if i.status == "open"})
    if len(currencies) > 1:
        raise ev.EventRejected(
            f"invoice_numbers: one plan cannot mix currencies ({', '.join(currencies)})", event.event_id
        )


def on_debtor_updated(
    session: Session, event: ev.DebtorUpdated, now: datetime, policies: PolicySet
) -> list[str]:
    _upsert_debtor(session, event.debtor, now)
    return [f"debtor:{event.debtor.id}"]


def on_insolvency_opened(
    session: Session, event: ev.InsolvencyOpened, now: datetime, policies: PolicySet
) -> list[str]:
    debtor = debtor_by_id(session, event.debtor_id)
    debtor.insolvency_procedure = event.procedure
    debtor.insolvency_judgment_date = event.judgment_date
    frozen = (
        session.execute(
            select(InvoiceRow).where(
                InvoiceRow.debtor_id == debtor.id,
                InvoiceRow.status == "open",
                InvoiceRow.issue_date < event.judgment_date,
            )
        )
        .scalars()
        .all()
    )
    for invoice in frozen:
        cancel_pending(session, invoice.id, f"insolvency ({event.procedure})")
    if frozen:  # the claim-declaration case is opened by the deadline handler, at once
        schedule(session, frozen[0], CLAIM_DECLARATION, "deadline.expired", now)
    return []


def on_delivery_status(
    session: Session, event: ev.DeliveryStatus, now: datetime, policies: PolicySet
) -> list[str]:
    """Record the status as evidence; a bounced e-mail sends the next steps by post."""
    message = session.execute(
        select(MessageRow).where(MessageRow.message_id == event.message_id)
    ).scalar_one_or_none()
    if message is None:
        log.warning("delivery.unknown_message", message_id=event.message_id, status=event.status)
    elif event.status == "bounced" and message.channel == "email":
        debtor = session.get(DebtorRow, message.debtor_id, with_for_update=True)
        debtor.email_bounced = True
    evidence.append(
        session,
        "delivery.status",
        now,
        {
            "message_id": event.message_id,
            "status": event.status,
            "at": event.at.isoformat(),
            "channel": message.channel if message else None,
            "known_message": message is not None,
        },
        debtor_id=message.debtor_id if message else None,
        message_id=event.message_id,
    )
    return []


Applier = Callable[[Session, Any, datetime, PolicySet], list[str]]
APPLY: dict[str, Applier] = {
    "invoice.issued": on_invoice_issued,
    "invoice.updated": on_invoice_updated,
    "invoice.cancelled": on_invoice_cancelled,
    "payment.received": on_payment_received,
    "credit_note.issued": on_credit_note_issued,
    "invoice.disputed": on_invoice_disputed,
    "dispute.resolved": on_dispute_resolved,
    "promise_to_pay.recorded": on_promise_to_pay,
    "payment_plan.agreed": on_payment_plan_agreed,
    "debtor.updated": on_debtor_updated,
    "debtor.insolvency_opened": on_insolvency_opened,
    "delivery.status": on_delivery_status,
}
