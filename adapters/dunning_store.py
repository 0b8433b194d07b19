"""The dunning store on SQL: the reminder path's port (``handlers.dunning.DunningStore``)
over one unit of work.

It keeps the rows it loaded, by key, so that what the core decides about a step lands on
the row read under the debtor's lock; the session flushes those changes with its next
statement, exactly as when the handler changed the rows itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.orm import (
    DebtorRow,
    InvoiceRow,
    MessageItem,
    MessageRow,
    PlannedStep,
    lock_debtor,
    movements_of,
)
from adapters.sql_store import SqlStore
from handlers import plans
from handlers.dunning import DebtorFacts, InvoiceFacts, NewMessage, StepFacts
from handlers.evidence import EvidenceSink, PendingRecord
from handlers.money import Movement
from handlers.planning import PENDING, schedule


def step_facts(row: PlannedStep) -> StepFacts:
    return StepFacts(row.id, row.invoice_id, row.debtor_id, row.step, row.event, row.status, row.due_at)


def invoice_facts(row: InvoiceRow) -> InvoiceFacts:
    return InvoiceFacts(
        id=row.id,
        number=row.number,
        debtor_id=row.debtor_id,
        status=row.status,
        currency=row.currency,
        amount_due=row.amount_due,
        paid=row.paid,
        credited=row.credited,
        issue_date=row.issue_date,
        due_date=row.due_date,
        late_penalty_rate=row.late_penalty_rate,
        payment_url=row.payment_url,
        disputed=row.disputed,
        in_payment_plan=row.in_payment_plan,
        paused_until=row.paused_until,
        ever_disputed=row.ever_disputed,
        delivered_on=row.delivered_on,
        factored_by=row.factored_by,
        hold_reason=row.hold_reason,
        held_until=row.held_until,
    )


def debtor_facts(row: DebtorRow) -> DebtorFacts:
    return DebtorFacts(
        id=row.id,
        name=row.name,
        kind=row.kind,
        language=row.language,
        timezone=row.timezone,
        country=row.country,
        email=row.email,
        email_bounced=row.email_bounced,
        address=dict(row.address or {}),
        segment=row.segment,
        opt_out=row.opt_out,
        insolvency_procedure=row.insolvency_procedure,
        insolvency_judgment_date=row.insolvency_judgment_date,
        hold_reason=row.hold_reason,
        held_until=row.held_until,
        creditor_id=row.creditor_id,
    )


class SqlDunningStore:
    """``handlers.dunning.DunningStore`` on a unit of work (``adapters.uow.UnitOfWork``)."""

    def __init__(self, uow: object) -> None:
        if not (isinstance(uow, Session) and isinstance(uow, EvidenceSink)):
            raise TypeError(f"the dunning store runs in a unit of work, not in a {type(uow).__name__}")
        self._session: Session = uow
        self._sink: EvidenceSink = uow
        self._records = SqlStore(uow)  # the store port, for the payment plans and planning
        self._steps: dict[int, PlannedStep] = {}
        self._invoices: dict[int, InvoiceRow] = {}
        self._debtor: DebtorRow | None = None

    def step(self, step_id: int) -> StepFacts | None:
        row = self._session.get(PlannedStep, step_id)
        if row is None:
            return None
        self._steps[row.id] = row
        return step_facts(row)

    def lock_debtor(self, debtor_id: str) -> DebtorFacts | None:
        self._debtor = lock_debtor(self._session, debtor_id)
        return None if self._debtor is None else debtor_facts(self._debtor)

    def due_steps(self, debtor_id: str, now: datetime) -> list[tuple[StepFacts, InvoiceFacts]]:
        rows = self._session.execute(
            select(PlannedStep, InvoiceRow)
            .join(InvoiceRow, InvoiceRow.id == PlannedStep.invoice_id)
            .where(
                PlannedStep.debtor_id == debtor_id,
                PlannedStep.status.in_(PENDING),
                PlannedStep.event.in_(("invoice.due", "invoice.overdue")),
                PlannedStep.due_at <= now,
            )
            .order_by(InvoiceRow.due_date, InvoiceRow.number)
            .with_for_update(of=InvoiceRow)  # re-checked by the core, against payments arriving now
            .execution_options(populate_existing=True)
        ).all()
        found = []
        for step_row, invoice in rows:
            self._steps[step_row.id], self._invoices[invoice.id] = step_row, invoice
            found.append((step_facts(step_row), invoice_facts(invoice)))
        return found

    def reread_step(self, step_id: int) -> StepFacts:
        row = self._steps[step_id]
        self._session.flush()  # a refresh would throw away what this unit of work changed (a skip)
        self._session.refresh(row)
        return step_facts(row)

    def open_invoices(self, debtor_id: str) -> list[InvoiceFacts]:
        rows = self._session.execute(
            select(InvoiceRow).where(InvoiceRow.debtor_id == debtor_id, InvoiceRow.status == "open")
        ).scalars()
        return [invoice_facts(row) for row in rows]

    def installment_blocker(self, step_id: int, debtor_id: str) -> str | None:
        assert self._debtor is not None and self._debtor.id == debtor_id  # locked first
        return plans.send_blocker(self._records, self._steps[step_id], self._debtor)

    def recorded_claims(self, invoice_ids: Iterable[int]) -> set[tuple[int, str, str]]:
        wanted = set(invoice_ids)
        if not wanted:
            return set()
        found = self._session.execute(
            select(MessageItem.invoice_id, MessageItem.step, MessageItem.channel).where(
                MessageItem.invoice_id.in_(wanted)
            )
        ).all()
        return {(i, s, c) for i, s, c in found}

    def messages_on(self, debtor_id: str, day: date) -> list[tuple[str, str | None]]:
        found = self._session.execute(
            select(MessageRow.channel, MessageRow.amounts).where(
                MessageRow.debtor_id == debtor_id, MessageRow.local_day == day
            )
        ).all()
        return [(channel, (amounts or {}).get("currency")) for channel, amounts in found]

    def movements(self, invoice_ids: Iterable[int]) -> dict[int, list[Movement]]:
        return movements_of(self._session, invoice_ids)

    def installment_context(self, step_ids: Sequence[int]) -> dict[str, Any]:
        return plans.message_context(self._records, [self._steps[i] for i in step_ids])

    def record_message(self, message: NewMessage) -> int:
        row = MessageRow(
            message_id=message.message_id,
            debtor_id=message.debtor_id,
            channel=message.channel,
            step=message.step,
            local_day=message.local_day,
            recipient=message.recipient,
            subject=message.subject,
            body_text=message.body_text,
            content=message.content,
            content_sha256=message.content_sha256,
            amounts=message.amounts,
            status="pending",
            attempts=0,
            lease_until=message.lease_until,
            created_at=message.created_at,
        )
        self._session.add(row)
        self._session.flush()
        for invoice_id, step in message.claims:
            self._session.add(
                MessageItem(message_pk=row.id, invoice_id=invoice_id, step=step, channel=message.channel)
            )
        return row.id

    def skip_step(self, step_id: int, reason: str, now: datetime) -> None:
        row = self._steps[step_id]
        row.status, row.reason, row.done_at = "skipped", reason[:300], now

    def postpone_step(self, step_id: int, until: datetime) -> None:
        row = self._steps[step_id]
        row.status, row.due_at, row.lease_until = "planned", until, None

    def release_step(self, step_id: int) -> None:
        row = self._steps[step_id]
        row.status, row.lease_until = "planned", None

    def finish_step(self, step_id: int, now: datetime, reason: str | None = None) -> None:
        row = self._steps[step_id]
        row.status, row.done_at = "done", now
        if reason is not None:
            row.reason = reason[:300]

    def plan_deadline(self, invoice_id: int, step: str, event: str, due_at: datetime) -> None:
        exists = self._session.execute(
            select(PlannedStep.id).where(PlannedStep.invoice_id == invoice_id, PlannedStep.step == step)
        ).first()
        if exists is None:
            schedule(self._records, self._invoices[invoice_id], step, event, due_at)

    def record_evidence(self, record: PendingRecord) -> None:
        self._sink.record_evidence(record)

    def write_evidence(self) -> int:
        return self._sink.write_evidence()
