"""The store port (``handlers.store.Store``) on a SQL unit of work (SQLite and PostgreSQL).

The records it hands out are the session's mapped rows (``adapters.orm``): the core's
changes to them are flushed with the session's next statement, in the unit of work's
transaction. Within a ``relance ingest`` batch, invoices and debtors come from what the
batch read ahead and locked (``adapters.ingest_batch.Batch``), and a new invoice takes an id
the batch drew from the sequence instead of a flush of its own. Outside a savepoint, the
batch's new debtors and invoices (with a drawn id) are drafts and its payments plain rows,
written set-based with the next flush (``adapters.uow``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from adapters.orm import (
    CaseInvoice,
    CaseRow,
    DebtorRow,
    HandoverRow,
    InboxEvent,
    InvoiceRow,
    MessageItem,
    MessageRow,
    PaymentPlanRow,
    PaymentRow,
    PlanInstallment,
    PlanInvoice,
    PlannedStep,
    SignalRow,
    StepLease,
    case_invoices,
    debtor_key,
    lock_debtor,
    movements_of,
)
from adapters.outbox import SqlOutbox
from adapters.sql_lists import one_of
from adapters.step_cancellation import cancel_steps
from handlers.approval import NOT_SENT
from handlers.batching import IngestBatch
from handlers.evidence import PendingRecord
from handlers.money import CENT, ZERO, Movement
from handlers.records import (
    CaseRecord,
    DebtorRecord,
    HandoverRecord,
    InboxRecord,
    InstallmentRecord,
    InvoiceRecord,
    PaymentRecord,
    PlanRecord,
    StepRecord,
)
from handlers.store import (
    FINISHED,
    PENDING,
    NewCase,
    NewHandover,
    NewInvoice,
    NewSignal,
    SentMessage,
    StepFilter,
)


def closed_emissions() -> Any:
    """A step's ``emit_count`` with its lease's emissions added (``StepLease``): what the
    step's row keeps when its lease is deleted, so the next emission has the next number."""
    leased = select(StepLease.emission).where(StepLease.step_id == PlannedStep.id).scalar_subquery()
    return PlannedStep.emit_count + func.coalesce(leased, 0)


class SqlStore:
    """``handlers.store.Store`` on ``uow``, a unit of work (``adapters.uow.UnitOfWork``)."""

    def __init__(self, uow: Any) -> None:
        self._uow = uow
        self._session: Session = uow

    # -- the unit of work ----------------------------------------------------------------

    def record_evidence(self, record: PendingRecord) -> None:
        self._uow.record_evidence(record)

    def write_evidence(self) -> int:
        return int(self._uow.write_evidence())

    def after_commit(self, task: object) -> None:
        self._uow.after_commit(task)

    def savepoint(self) -> Any:
        return self._uow.begin_nested()

    def in_savepoint(self) -> bool:
        return self._session.in_nested_transaction()

    @property
    def batch(self) -> IngestBatch | None:
        found: IngestBatch | None = getattr(self._uow, "batch", None)
        return found

    def write_mark(self) -> object:
        """In a batch, the statements run and the plain rows and drafts added so far, and the
        session's mapped changes: flushed first, or, when they are all changes to invoices and
        debtors the batch holds locked (``_changes_may_wait``), left for a later flush and
        noted as they are (each changed row's attributes), so that what the applier changes
        on them is still told apart. The plain rows and drafts of earlier events wait for a
        later flush too: written then, they are not counted as the applier's."""
        batch = self.batch
        if batch is None:
            self._session.flush()
            return None
        waiting: dict[int, tuple[Any, dict[str, Any]]] = {}
        if self._flush_mapped_unless_they_may_wait():
            waiting = {id(row): (row, dict(instance_state(row).dict)) for row in self._session.dirty}
        self._uow.settle_drafts()
        return (batch.writes, self._uow.rows_added, waiting)

    def wrote_since(self, mark: object) -> bool:
        session = self._session
        batch = self.batch
        if batch is None or not isinstance(mark, tuple):
            return True
        writes, rows_added, waiting = mark
        if (writes, rows_added) != (batch.writes, self._uow.rows_added):
            return True
        if session.new or session.deleted or self._uow.drafts_changed():
            return True
        for row in session.dirty:  # changed since the mark: a row changed then, changed again
            noted = waiting.get(id(row))
            if noted is None or noted[0] is not row or instance_state(row).dict != noted[1]:
                return True
        return False

    def _drafting(self) -> bool:
        """Whether new rows may wait for the next flush as drafts or plain rows: in a batch,
        outside a savepoint (whose rollback would have to take them back)."""
        return self.batch is not None and not self.in_savepoint()

    def _cache(self, found: dict[str, Any], key: str, row: Any) -> None:
        """Let the batch's later events find a row made now, unless a savepoint may still
        take it back (then they look it up again)."""
        if self.in_savepoint():
            found.pop(key, None)
        else:
            found[key] = row

    # -- debtors and invoices --------------------------------------------------------------

    def debtor(self, debtor_id: str, *, lock: bool = False) -> DebtorRecord | None:
        batch = self.batch
        if batch is not None and debtor_id in batch.debtors:  # read and locked ahead, or new
            found = batch.debtors[debtor_id]
            if lock or found is not None:  # a debtor new in the batch may be a draft: no read
                return cast(DebtorRecord | None, found)
        if lock:
            return lock_debtor(self._session, debtor_id)
        return self._session.get(DebtorRow, debtor_key(self._session, debtor_id))

    def add_debtor(self, debtor_id: str) -> DebtorRecord:
        values = _new_debtor(debtor_id)
        if self._drafting():
            row = self._uow.add_draft(DebtorRow, values)
        else:
            row = DebtorRow(**values)
            self._session.add(row)
        if self.batch is not None:
            self._cache(self.batch.debtors, debtor_id, row)
        return cast(DebtorRecord, row)

    def invoice(self, number: str, *, lock: bool = True) -> InvoiceRecord | None:
        batch = self.batch
        if batch is not None and number in batch.invoices:  # read and locked ahead
            return cast(InvoiceRecord | None, batch.invoices[number])
        query = select(InvoiceRow).where(InvoiceRow.number == number)
        return self._session.execute(query.with_for_update() if lock else query).scalar_one_or_none()

    def add_invoice(self, new: NewInvoice, now: datetime) -> InvoiceRecord:
        values = _new_invoice(new, now)
        batch = self.batch
        # the steps planned next need the invoice's id: drawn ahead for the batch, or got from
        # a flush. Drawn ahead, the invoice is a draft inserted with the next flush, before its
        # planned steps (plain rows, ``UnitOfWork.add_steps``), as the foreign key requires
        # (tests/integration/test_ingest_batch.py)
        drawn = batch.invoice_id() if batch is not None and self._drafting() else None
        if drawn is not None:
            row = self._uow.add_draft(InvoiceRow, {**values, "id": drawn})
            self._start_movements(drawn)  # new: nothing paid on it but what the batch adds
            cast(IngestBatch, batch).cases[drawn] = []  # and no case holds it
        else:
            row = InvoiceRow(**values)
            self._session.add(row)
            self._session.flush()
        if batch is not None:
            self._cache(batch.invoices, new.number, row)
        return cast(InvoiceRecord, row)

    def open_invoices(self, debtor_id: str, *, lock: bool = False) -> list[InvoiceRecord]:
        query = (
            select(InvoiceRow)
            .where(InvoiceRow.debtor_id == debtor_id, InvoiceRow.status == "open")
            .order_by(InvoiceRow.id)
        )
        return list(self._session.execute(query.with_for_update() if lock else query).scalars())

    def add_payment(
        self,
        *,
        event_id: str,
        invoice_id: int,
        kind: str,
        reference: str | None,
        amount: Decimal,
        on_day: Any,
        payment_id: str | None = None,
    ) -> None:
        values = {
            "event_id": event_id,
            "invoice_id": invoice_id,
            "kind": kind,
            "reference": reference,
            "amount": amount,
            "on_day": on_day,
            "payment_id": payment_id,
        }
        if self._drafting():  # nothing reads it back but by a query, after the next flush
            self._uow.add_payment_row({**values, "reversed_on": None})
            self._batch_movement(invoice_id, Movement(on_day, amount.quantize(CENT), kind))  # as read
        else:
            self._session.add(PaymentRow(**values))
            self._forget_movements(invoice_id)  # a savepoint may take it back: read again

    def _start_movements(self, invoice_id: int) -> None:
        batch = self.batch
        if batch is not None:
            batch.payments[invoice_id] = []

    def _batch_movement(self, invoice_id: int, movement: Movement) -> None:
        batch = self.batch
        if batch is not None and invoice_id in batch.payments:
            batch.payments[invoice_id].append(movement)

    def _forget_movements(self, invoice_id: int) -> None:
        batch = self.batch
        if batch is not None:
            batch.payments.pop(invoice_id, None)

    def payment(
        self, invoice_id: int, *, payment_id: str | None = None, credit_note: str | None = None
    ) -> PaymentRecord | None:
        query = select(PaymentRow).where(PaymentRow.invoice_id == invoice_id)
        if payment_id is not None:
            query = query.where(PaymentRow.payment_id == payment_id, PaymentRow.kind != "credit_note")
        else:
            query = query.where(PaymentRow.reference == credit_note, PaymentRow.kind == "credit_note")
        found: PaymentRecord | None = self._session.execute(
            query.order_by(PaymentRow.id).limit(1)
        ).scalar_one_or_none()
        if found is not None:
            self._forget_movements(invoice_id)  # the caller may reverse the row it gets
        return found

    def movements(self, invoice_ids: Iterable[int]) -> dict[int, list[Movement]]:
        wanted = list(invoice_ids)
        batch = self.batch
        if batch is not None and all(i in batch.payments for i in wanted):  # read ahead
            return {i: list(batch.payments[i]) for i in wanted}
        return movements_of(self._session, wanted)

    def sent_message(self, message_id: str) -> SentMessage | None:
        found = self._session.execute(
            select(MessageRow.channel, MessageRow.debtor_id).where(MessageRow.message_id == message_id)
        ).first()
        return None if found is None else SentMessage(found[0], found[1])

    def message_claims(self, message_id: str) -> list[tuple[str, str]]:
        rows = self._session.execute(
            select(InvoiceRow.number, MessageItem.step)
            .join(MessageItem, MessageItem.invoice_id == InvoiceRow.id)
            .join(MessageRow, MessageRow.id == MessageItem.message_pk)
            .where(MessageRow.message_id == message_id)
            .order_by(InvoiceRow.number, MessageItem.step)
        ).all()
        return [(number, step) for number, step in rows]

    # -- planned steps ----------------------------------------------------------------------

    def step(self, step_id: int) -> StepRecord | None:
        self._uow.cancel_pending_now()  # a step found in the identity map is read without a flush
        return self._session.get(PlannedStep, step_id)

    def step_of(self, invoice_id: int, name: str) -> StepRecord | None:
        return self._session.execute(
            select(PlannedStep).where(PlannedStep.invoice_id == invoice_id, PlannedStep.step == name)
        ).scalar_one_or_none()

    def add_step(self, invoice_id: int, debtor_id: str, name: str, event: str, due_at: datetime) -> None:
        self._uow.add_steps([_step_row(invoice_id, debtor_id, name, event, due_at)])

    def add_steps(self, invoice_id: int, debtor_id: str, steps: Iterable[tuple[str, str, datetime]]) -> None:
        self._uow.add_steps(
            [_step_row(invoice_id, debtor_id, name, event, due_at) for name, event, due_at in steps]
        )

    def steps_of(self, invoice_id: int, events: Sequence[str]) -> list[StepRecord]:
        return list(
            self._session.execute(
                select(PlannedStep)
                .where(PlannedStep.invoice_id == invoice_id, PlannedStep.event.in_(events))
                .order_by(PlannedStep.due_at, PlannedStep.id)
            ).scalars()
        )

    def finished_steps(self, invoice_id: int) -> set[str]:
        return set(
            self._session.execute(
                select(PlannedStep.step).where(
                    PlannedStep.invoice_id == invoice_id, PlannedStep.status.in_(FINISHED)
                )
            ).scalars()
        )

    def cancel_pending(self, invoice_id: int, reason: str, which: StepFilter) -> int:
        if self._postgres():
            return self._cancel_in_one_statement(invoice_id, reason, which)
        query = update(PlannedStep).where(
            PlannedStep.invoice_id == invoice_id, PlannedStep.status.in_(PENDING)
        )
        if which.names:
            query = query.where(PlannedStep.step.in_(which.names))
        if which.spare:
            query = query.where(PlannedStep.step.not_in(which.spare))
        if which.spare_prefix is not None and not which.names:
            query = query.where(~PlannedStep.step.startswith(which.spare_prefix, autoescape=True))
        values = query.values(status="cancelled", reason=reason[:300], emit_count=closed_emissions())
        cancelled = select(PlannedStep.id).where(
            PlannedStep.invoice_id == invoice_id, PlannedStep.status == "cancelled"
        )
        result = cast(CursorResult[Any], self._session.execute(values))
        if result.rowcount:
            self._session.execute(delete(StepLease).where(StepLease.step_id.in_(cancelled)))
        return result.rowcount or 0

    def _cancel_in_one_statement(self, invoice_id: int, reason: str, which: StepFilter) -> int:
        """The steps' ``UPDATE`` and the ``DELETE`` of their leases in one round trip
        (``adapters.step_cancellation``), after the cancellations the batch left for later
        and what the statement must find written. An invoice the batch issued and has not
        written yet (a draft, outside a savepoint) has its steps all waiting as plain rows:
        they are cancelled there, without a flush nor a statement
        (``UnitOfWork.cancel_waiting_steps``)."""
        if self._drafting() and self._uow.invoice_waiting(invoice_id):
            return int(self._uow.cancel_waiting_steps(invoice_id, reason[:300], which.takes))
        self._uow.cancel_pending_now()
        self._flush_before_cancelling(invoice_id)
        return len(cancel_steps(self._session, [invoice_id], reason[:300], which, self._uow.creditor))

    def cancel_pending_soon(self, invoice_id: int, reason: str, which: StepFilter) -> None:
        """In a batch (PostgreSQL, outside a savepoint), the cancellation of the steps of an
        invoice stored before the batch, none of its steps waiting to be written, is left
        for the unit of work's next flush, with those of the other invoices settled by then
        (``UnitOfWork.cancel_pending_later``): any read of the steps by the ORM flushes first,
        and a cancellation that must count runs those left before it."""
        uow = self._uow
        if (
            self._drafting()
            and self._postgres()
            and not uow.invoice_waiting(invoice_id)
            and not uow.steps_waiting_for(invoice_id)
        ):
            uow.cancel_pending_later(invoice_id, reason[:300], which)
        else:
            self.cancel_pending(invoice_id, reason, which)

    def _flush_before_cancelling(self, invoice_id: int) -> None:
        """What the cancellation of the invoice's steps must find written: its steps planned
        as plain rows and the mapped changes to steps and leases. In a batch, the other plain
        rows and drafts (other invoices' steps, payments, inbox rows, new debtors and
        invoices) wait for a later flush, to be written with more of their kind: a payment
        that settles an invoice issued before the batch does not write them in small pieces;
        so do the changes to the invoices and debtors the batch holds locked
        (``_changes_may_wait``): the statement reads neither table."""
        if self.batch is not None and not self._uow.steps_waiting_for(invoice_id):
            self._flush_mapped_unless_they_may_wait()
        else:
            self._session.flush()

    def _flush_mapped_unless_they_may_wait(self) -> bool:
        """Flush the session's mapped changes unless they may wait (``_changes_may_wait``);
        whether they wait."""
        if self._changes_may_wait():
            return True
        self._uow.flush_mapped()
        return False

    def _changes_may_wait(self) -> bool:
        """In a batch, whether the session's pending mapped changes are all changes to
        invoices and debtors the batch holds locked (read ``FOR UPDATE`` by ``Batch.prefetch``),
        so that a statement reading neither table may run before they are flushed: written
        later in the same transaction, they take no lock the batch does not hold already, and
        no other transaction sees them before the commit either way. A new or deleted mapped
        object, or any other changed one (a step, a lease, a case, an invoice the batch
        created or read unlocked...), and they are flushed first, as before."""
        batch = self.batch
        session = self._session
        if batch is None or session.new or session.deleted:
            return False
        for row in session.dirty:
            if isinstance(row, InvoiceRow):
                held = batch.invoices.get(row.number) is row
            elif isinstance(row, DebtorRow):
                held = batch.debtors.get(row.id) is row
            else:
                held = False
            if not held:
                return False
        return True

    def due_deadlines(self, debtor_id: str, now: datetime) -> list[tuple[StepRecord, InvoiceRecord]]:
        rows = self._session.execute(
            select(PlannedStep, InvoiceRow)
            .join(InvoiceRow, InvoiceRow.id == PlannedStep.invoice_id)
            .where(
                PlannedStep.debtor_id == debtor_id,
                PlannedStep.status.in_(PENDING),
                PlannedStep.event == "deadline.expired",
                PlannedStep.due_at <= now,
            )
            .order_by(InvoiceRow.due_date, InvoiceRow.number, PlannedStep.id)
        ).all()
        return [(step, invoice) for step, invoice in rows]

    # -- payment plans ---------------------------------------------------------------------

    def active_plan(self, invoice_id: int, *, lock: bool = False) -> PlanRecord | None:
        query = (
            select(PaymentPlanRow)
            .join(PlanInvoice, PlanInvoice.plan_id == PaymentPlanRow.id)
            .where(PlanInvoice.invoice_id == invoice_id, PaymentPlanRow.status == "active")
            .order_by(PaymentPlanRow.id)
        )
        if lock:
            query = query.with_for_update(of=PaymentPlanRow).execution_options(populate_existing=True)
        return self._session.execute(query).scalars().first()

    def plans_anchored_on(self, invoice_id: int) -> int:
        return int(
            self._session.execute(
                select(func.count())
                .select_from(PaymentPlanRow)
                .where(PaymentPlanRow.anchor_invoice_id == invoice_id)
            ).scalar_one()
        )

    def add_plan(
        self,
        *,
        debtor_id: str,
        event_id: str,
        anchor: InvoiceRecord,
        invoice_ids: Sequence[int],
        now: datetime,
    ) -> PlanRecord:
        plan = PaymentPlanRow(
            debtor_id=debtor_id,
            event_id=event_id,
            anchor_invoice_id=anchor.id,
            currency=anchor.currency,
            status="active",
            agreed_at=now,
        )
        self._session.add(plan)
        self._session.flush()
        self._session.add_all([PlanInvoice(plan_id=plan.id, invoice_id=i) for i in invoice_ids])
        return plan

    def add_installment(
        self, plan_id: int, seq: int, step_stem: str, due_date: Any, amount: Decimal
    ) -> InstallmentRecord:
        row = PlanInstallment(
            plan_id=plan_id,
            seq=seq,
            step_stem=step_stem,
            due_date=due_date,
            amount=amount,
            paid=ZERO,
            status="open",
        )
        self._session.add(row)
        return row

    def installments(self, plan_id: int) -> list[InstallmentRecord]:
        return list(
            self._session.execute(
                select(PlanInstallment)
                .where(PlanInstallment.plan_id == plan_id)
                .order_by(PlanInstallment.seq)
                .execution_options(populate_existing=True)
            ).scalars()
        )

    def plan_invoices(self, plan_id: int) -> list[InvoiceRecord]:
        return list(
            self._session.execute(
                select(InvoiceRow)
                .join(PlanInvoice, PlanInvoice.invoice_id == InvoiceRow.id)
                .where(PlanInvoice.plan_id == plan_id)
                .order_by(InvoiceRow.due_date, InvoiceRow.number)
            ).scalars()
        )

    def plan_with_stem(self, anchor_invoice_id: int, stem: str, *, lock: bool = False) -> PlanRecord | None:
        query = (
            select(PaymentPlanRow)
            .join(PlanInstallment, PlanInstallment.plan_id == PaymentPlanRow.id)
            .where(PaymentPlanRow.anchor_invoice_id == anchor_invoice_id, PlanInstallment.step_stem == stem)
            .order_by(PaymentPlanRow.id)
        )
        if lock:
            query = query.with_for_update(of=PaymentPlanRow)
        return self._session.execute(query.execution_options(populate_existing=True)).scalars().first()

    # -- cases ---------------------------------------------------------------------------

    def case(self, case_id: int, *, lock: bool = False) -> CaseRecord | None:
        return self._session.get(CaseRow, case_id, with_for_update=lock or None)

    def cases_holding(self, invoice_id: int, statuses: Sequence[str]) -> list[CaseRecord]:
        batch = self.batch
        held = batch.cases.get(invoice_id) if batch is not None else None
        if held is not None:  # read ahead, locked, and kept up to date by ``add_case_invoices``
            return [case for case in held if case.status in statuses]
        params = {"invoice": invoice_id, "statuses": list(statuses)}
        statement = _CASES_HOLDING[self._postgres()]
        if batch is None:
            return list(self._session.execute(statement, params).scalars())
        # cases and their invoices are mapped objects: the batch's plain rows and drafts (a
        # payment's, an invoice's steps...) need not be written for this read, nor one by one,
        # nor the changes to the invoices and debtors the batch holds locked (the read is of
        # cases and their links, not of those rows: ``_changes_may_wait``)
        self._flush_mapped_unless_they_may_wait()
        with self._session.no_autoflush:
            if not self._any_case_holding(params):
                return []
            return list(self._session.execute(statement, params).scalars())

    def _any_case_holding(self, params: dict[str, Any]) -> bool:
        """Whether a case of the statuses holds the invoice, asked first with the same
        locking read as a Core statement on the session's connection (most payments find
        none: no mapped rows to make, the ORM's execution skipped); when one does, the ORM
        read runs after it and returns the rows, locked by then."""
        creditor, postgres = self._uow.creditor, self._postgres()
        if creditor is None:
            found = self._session.connection().execute(_CASE_IDS_HOLDING[False, postgres], params).first()
        else:
            scoped = {**params, "creditor": creditor}
            found = self._session.connection().execute(_CASE_IDS_HOLDING[True, postgres], scoped).first()
        return found is not None

    def _postgres(self) -> bool:
        return bool(self._session.get_bind().dialect.name == "postgresql")

    def open_cases(self, debtor_id: str) -> list[CaseRecord]:
        return list(
            self._session.execute(
                select(CaseRow)
                .where(CaseRow.debtor_id == debtor_id, CaseRow.status == "open")
                .order_by(CaseRow.id)
            ).scalars()
        )

    def add_case(self, new: NewCase, now: datetime) -> CaseRecord:
        case = CaseRow(
            **asdict(new),
            status="open",
            alternatives=[],
            amount_claimed=new.amount_claimed,
            opened_at=now,
            updated_at=now,
        )
        self._session.add(case)
        self._session.flush()
        return case

    def case_invoices(self, case_id: int) -> list[InvoiceRecord]:
        return list(case_invoices(self._session, case_id))

    def add_case_invoices(self, case_id: int, invoice_ids: Iterable[int]) -> None:
        """Link the invoices to the case, once each; the invoices are locked first, so that
        a transaction holding an invoice locked (an ingest batch, ``Batch.prefetch``) sees no
        case join it before it commits."""
        invoice_ids = list(dict.fromkeys(invoice_ids))
        if self._postgres() and invoice_ids:
            self._session.connection().execute(_LOCK_INVOICES, {"ids": invoice_ids}).all()
        batch = self.batch
        if batch is not None:  # the cases holding them are read again (``cases_holding``)
            for invoice_id in invoice_ids:
                batch.cases.pop(invoice_id, None)
        known = set(
            self._session.execute(
                select(CaseInvoice.invoice_id).where(CaseInvoice.case_id == case_id)
            ).scalars()
        )
        for invoice_id in invoice_ids:
            if invoice_id not in known:
                self._session.add(CaseInvoice(case_id=case_id, invoice_id=invoice_id))
        self._session.flush()

    # -- the inbox of accounting events -------------------------------------------------------

    def inbox_digest(self, event_id: str) -> str | None:
        return self._session.execute(
            select(InboxEvent.content_sha256).where(InboxEvent.event_id == event_id)
        ).scalar_one_or_none()

    def add_inbox(
        self, *, event_id: str, type: str, occurred_at: datetime, raw: str, digest: str, received_at: datetime
    ) -> InboxRecord:
        if self.batch is not None and not self.in_savepoint():  # a plain row (``adapters.uow``)
            draft = InboxDraft(
                event_id=event_id,
                type=type,
                occurred_at=occurred_at,
                raw=raw,
                digest=digest,
                received_at=received_at,
            )
            self._uow.add_inbox_row(draft)
            return cast(InboxRecord, draft)
        row = InboxEvent(
            event_id=event_id,
            type=type,
            occurred_at=occurred_at,
            raw=raw,
            content_sha256=digest,
            status="applied",
            received_at=received_at,
        )
        self._session.add(row)
        return row

    def parked(self, key: str) -> list[InboxRecord]:
        return list(
            self._session.execute(
                select(InboxEvent)
                .where(InboxEvent.status == "parked", InboxEvent.waiting_for == key)
                .order_by(InboxEvent.occurred_at, InboxEvent.id)
            ).scalars()
        )

    def applied_raws(self, event_type: str) -> list[str]:
        return list(
            self._session.execute(
                select(InboxEvent.raw)
                .where(InboxEvent.type == event_type, InboxEvent.status == "applied")
                .order_by(InboxEvent.occurred_at.desc(), InboxEvent.id.desc())
            ).scalars()
        )

    def store_rejected(self, **rejected: Any) -> None:
        self._uow.store_rejected(**rejected)

    # -- hand-overs ------------------------------------------------------------------------

    def handovers_of(self, case_id: int) -> list[HandoverRecord]:
        return list(
            self._session.execute(
                select(HandoverRow)
                .where(HandoverRow.case_id == case_id)
                .order_by(HandoverRow.id)
                .execution_options(populate_existing=True)  # the outbox updates it by statement
            ).scalars()
        )

    def handover(self, handover_id: int) -> HandoverRecord | None:
        # the outbox updates hand-overs by statement: read the row as it is now
        return self._session.get(HandoverRow, handover_id, populate_existing=True)

    def add_handover(self, new: NewHandover, now: datetime) -> HandoverRecord:
        row = HandoverRow(**asdict(new), status="pending", attempts=0, created_at=now)
        self._session.add(row)
        self._session.flush()
        return row

    def handovers(self) -> SqlOutbox:
        return SqlOutbox(self._session, "handovers")

    # -- signals ---------------------------------------------------------------------------

    def signal_creditor(self) -> str:
        creditor = self._uow.creditor
        if creditor is None:
            raise RuntimeError("a signal is recorded by a unit of work of no creditor")
        return str(creditor)

    def steps_reached(self, debtor_id: str) -> list[tuple[str, str]]:
        claimed = (
            select(MessageItem.id)
            .join(MessageRow, MessageRow.id == MessageItem.message_pk)
            .where(MessageItem.invoice_id == PlannedStep.invoice_id, MessageItem.step == PlannedStep.step)
        )
        unsent = exists(claimed.where(MessageRow.status.in_(NOT_SENT)))
        sent = exists(claimed.where(MessageRow.status.not_in(NOT_SENT)))
        rows = self._session.execute(
            select(InvoiceRow.number, PlannedStep.step)
            .join(PlannedStep, PlannedStep.invoice_id == InvoiceRow.id)
            .where(
                InvoiceRow.debtor_id == debtor_id,
                InvoiceRow.status == "open",
                PlannedStep.status == "done",
                or_(~unsent, sent),  # a step only drafted, rejected or withdrawn is not reached
            )
            .order_by(InvoiceRow.number, PlannedStep.step)
        ).all()
        return [(number, step) for number, step in rows]

    def subscribers(self, signal_type: str) -> list[str]:
        """From the webhooks the sessions were configured with (``config.bootstrap``)."""
        webhooks = self._session.info.get("webhooks")
        if webhooks is None:
            return []
        return [s.name for s in webhooks.for_signal(signal_type, self.signal_creditor())]

    def add_signal(self, new: NewSignal, now: datetime) -> int:
        row = SignalRow(**asdict(new), status="pending", attempts=0, created_at=now)
        self._session.add(row)
        self._session.flush()
        return row.id

    def signals(self) -> SqlOutbox:
        return SqlOutbox(self._session, "signals")


def _step_row(invoice_id: int, debtor_id: str, name: str, event: str, due_at: datetime) -> dict[str, Any]:
    """A new ``planned_steps`` row but its id and creditor (``UnitOfWork.add_steps``)."""
    return {
        "invoice_id": invoice_id,
        "debtor_id": debtor_id,
        "step": name,
        "event": event,
        "due_at": due_at,
        "status": "planned",
        "lease_until": None,
        "emit_count": 0,
        "done_at": None,
        "reason": None,
    }


def _new_debtor(debtor_id: str) -> dict[str, Any]:
    """A new debtor's columns before the caller fills its details (``add_debtor``)."""
    return {
        "id": debtor_id,
        "email_bounced": False,
        "opt_out": False,
        "address": {},
        "language": "fr",
        "timezone": "Europe/Paris",
        "country": "FR",
    }


def _new_invoice(new: NewInvoice, now: datetime) -> dict[str, Any]:
    """A new open invoice's columns but its id (``add_invoice``)."""
    return {
        **_fields_of(new),
        "paid": ZERO,
        "credited": ZERO,
        "status": "open",
        "disputed": False,
        "ever_disputed": False,
        "in_payment_plan": False,
        "created_at": now,
        "updated_at": now,
    }


_NEW_INVOICE_FIELDS = tuple(f.name for f in fields(NewInvoice))


def _fields_of(new: NewInvoice) -> dict[str, Any]:
    """``asdict`` without its deep copies: the values are immutable (one ``invoice.issued``
    spent more in ``asdict`` than in the rest of ``add_invoice``)."""
    return {name: getattr(new, name) for name in _NEW_INVOICE_FIELDS}


class InboxDraft:
    """An inbox row of a ``relance ingest`` batch (``handlers.records.InboxRecord``), a plain
    object until the flush that inserts it (``UnitOfWork.add_inbox_row``): the inbox sets
    its status once its event is applied or parked, and nothing reads it back by id."""

    __slots__ = (
        "applied_at",
        "content_sha256",
        "creditor_id",
        "event_id",
        "id",
        "occurred_at",
        "raw",
        "received_at",
        "status",
        "type",
        "waiting_for",
    )

    def __init__(
        self, *, event_id: str, type: str, occurred_at: datetime, raw: str, digest: str, received_at: datetime
    ) -> None:
        self.id: int | None = None
        self.creditor_id: str | None = None
        self.event_id, self.type, self.occurred_at, self.raw = event_id, type, occurred_at, raw
        self.content_sha256, self.received_at = digest, received_at
        self.status: str = "applied"
        self.waiting_for: str | None = None
        self.applied_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {
            "creditor_id": self.creditor_id,
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": self.occurred_at,
            "raw": self.raw,
            "content_sha256": self.content_sha256,
            "status": self.status,
            "waiting_for": self.waiting_for,
            "received_at": self.received_at,
            "applied_at": self.applied_at,
        }


# the cases of some statuses holding an invoice, locked: a payment reads them (built once: an
# ORM statement, which the unit of work's ``do_orm_execute`` filter limits to its creditor)
_CASES_HOLDING = {
    postgres: select(CaseRow)
    .join(CaseInvoice, CaseInvoice.case_id == CaseRow.id)
    .where(CaseInvoice.invoice_id == bindparam("invoice"), one_of(CaseRow.status, "statuses", postgres))
    .order_by(CaseRow.id)
    .with_for_update()
    for postgres in (True, False)
}

# the invoices a case is about to hold, locked in the order of their ids (PostgreSQL)
_LOCK_INVOICES = (
    select(InvoiceRow.__table__.c.id)
    .where(one_of(InvoiceRow.__table__.c.id, "ids", True))
    .order_by(InvoiceRow.__table__.c.id)
    .with_for_update()
)

# the same read as Core, its ids only (``SqlStore._any_case_holding``), for a unit of work of
# one creditor (``True``: the condition its ``do_orm_execute`` filter adds) or of all
_CASE_IDS_HOLDING = {
    (scoped, postgres): select(CaseRow.__table__.c.id)
    .join(CaseInvoice.__table__, CaseInvoice.__table__.c.case_id == CaseRow.__table__.c.id)
    .where(
        CaseInvoice.__table__.c.invoice_id == bindparam("invoice"),
        one_of(CaseRow.__table__.c.status, "statuses", postgres),
        *([CaseRow.__table__.c.creditor_id == bindparam("creditor")] if scoped else []),
    )
    .order_by(CaseRow.__table__.c.id)
    .with_for_update()
    for scoped in (True, False)
    for postgres in (True, False)
}
