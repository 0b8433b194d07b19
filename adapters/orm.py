"""The tables of relance (SQLAlchemy 2 declarative). Migrations live in ``migrations/``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from adapters.sql_lists import one_of
from adapters.types import DecimalText, Money, UTCDateTime
from handlers.money import Movement

DEFAULT_CREDITOR = "default"  # the creditor of events that name none, and of stores before 0011


class Base(DeclarativeBase):
    pass


def _creditor_column() -> Mapped[str]:
    return mapped_column(String(100), server_default=DEFAULT_CREDITOR)


class Scoped:
    """A row of one creditor's collections: a unit of work scoped to a creditor reads only
    that creditor's rows and writes its own into new ones (``adapters.uow``)."""

    creditor_id: Mapped[str] = mapped_column(String(100), server_default=DEFAULT_CREDITOR)


class DebtorRow(Scoped, Base):
    __tablename__ = "debtors"

    creditor_id: Mapped[str] = mapped_column(String(100), primary_key=True, server_default=DEFAULT_CREDITOR)
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(10))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))  # personal data: erased with the name
    language: Mapped[str] = mapped_column(String(5), default="fr")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    country: Mapped[str] = mapped_column(String(2), default="FR")
    address: Mapped[dict] = mapped_column(JSON)
    siren: Mapped[str | None] = mapped_column(String(9))
    opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    segment: Mapped[str | None] = mapped_column(String(40))
    email_bounced: Mapped[bool] = mapped_column(Boolean, default=False)
    insolvency_procedure: Mapped[str | None] = mapped_column(String(20))
    insolvency_judgment_date: Mapped[date | None] = mapped_column(Date)
    # opened | liquidation | plan | closed (None: no procedure known)
    insolvency_stage: Mapped[str | None] = mapped_column(String(20))
    # who receives the claim declaration: {"name": ..., "address": [...]}
    insolvency_administrator: Mapped[dict | None] = mapped_column(JSON)
    insolvency_closed_on: Mapped[date | None] = mapped_column(Date)
    merchant: Mapped[bool | None] = mapped_column(Boolean)  # None: not said
    # debtor.held: all its invoices paused, no legal effect (handlers.holds); until its last day
    hold_reason: Mapped[str | None] = mapped_column(String(300))
    held_until: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # when `relance erase` removed its personal data (None: never)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DebtorSalt(Scoped, Base):
    """A debtor's random salt: the key sealing its personal values in version 3 evidence
    records (handlers.evidence). Deleted when the debtor is erased."""

    __tablename__ = "debtor_salts"

    creditor_id: Mapped[str] = mapped_column(String(100), primary_key=True, server_default=DEFAULT_CREDITOR)
    debtor_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))  # 32 random bytes, hexadecimal
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InvoiceRow(Scoped, Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("creditor_id", "number", name="uq_invoices_creditor_number"),
        ForeignKeyConstraint(
            ["creditor_id", "debtor_id"], ["debtors.creditor_id", "debtors.id"], name="fk_invoices_debtor"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creditor_id: Mapped[str] = _creditor_column()
    number: Mapped[str] = mapped_column(String(100))
    debtor_id: Mapped[str] = mapped_column(String(100), index=True)
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    amount_due: Mapped[Decimal] = mapped_column(Money)
    paid: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    credited: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    late_penalty_rate: Mapped[Decimal | None] = mapped_column(DecimalText)
    payment_url: Mapped[str | None] = mapped_column(String(2000))
    delivered_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)
    disputed: Mapped[bool] = mapped_column(Boolean, default=False)
    ever_disputed: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_until: Mapped[date | None] = mapped_column(Date)
    in_payment_plan: Mapped[bool] = mapped_column(Boolean, default=False)
    # handlers.ladder.policy_key of the policy its steps were planned on (None: not known)
    policy_key: Mapped[str | None] = mapped_column(String(80))
    factored_by: Mapped[str | None] = mapped_column(String(200))  # the factor who collects it
    # invoice.held: paused by a person, no legal effect (handlers.holds); until its last day
    hold_reason: Mapped[str | None] = mapped_column(String(300))
    held_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def balance(self) -> Decimal:
        return self.amount_due - self.paid - self.credited


class PaymentRow(Scoped, Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("creditor_id", "event_id", name="uq_payments_creditor_event"),
        # a payment_id is unique per creditor and invoice; payments without one are not
        # compared (NULLs are distinct in a unique index)
        Index("uq_payments_creditor_invoice_payment", "creditor_id", "invoice_id", "payment_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creditor_id: Mapped[str] = _creditor_column()
    event_id: Mapped[str] = mapped_column(String(200))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # payment | credit_note
    reference: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(Money)
    on_day: Mapped[date] = mapped_column(Date)
    payment_id: Mapped[str | None] = mapped_column(String(100))  # the payment's own id, if given
    # payment.reversed / credit_note.cancelled: kept, left out of the movements
    reversed_on: Mapped[date | None] = mapped_column(Date)


class PlannedStep(Scoped, Base):
    """One step of one invoice, due at an instant; the scheduler claims these."""

    __tablename__ = "planned_steps"
    __table_args__ = (
        UniqueConstraint("invoice_id", "step", name="uq_planned_step"),
        # the claim of due steps, in claim order (due_at, id); the leases of claimed steps
        # are in ``step_leases`` (migration 0019)
        Index("ix_planned_steps_due", "status", "due_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creditor_id: Mapped[str] = mapped_column(String(100), server_default=DEFAULT_CREDITOR, index=True)
    # no index of its own: uq_planned_step (invoice_id, step) serves lookups by invoice
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    debtor_id: Mapped[str] = mapped_column(String(100), index=True)
    step: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # planned -> done | skipped | cancelled | failed; in flight while a live ``step_leases``
    # row holds it (``emitted``: stores before migration 0019 only)
    status: Mapped[str] = mapped_column(String(10), default="planned")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # unused since 0019
    # emissions whose lease is closed; with the open lease's: ``StepLease``
    emit_count: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(300))


class StepLease(Scoped, Base):
    """A claimed step's lease: one narrow row per step in flight (``scheduler.tick``).

    Claiming writes this row instead of the wide ``planned_steps`` row and its five indexes;
    the step stays ``planned``. A live lease (``lease_until`` after now) is in flight; a lease
    that ran out, of a step still pending and due, is claimed again (``emission`` + 1). The
    step's emission number is ``planned_steps.emit_count + emission``: when a worker finishes,
    releases or postpones the step it adds ``emission`` to ``emit_count`` and deletes the
    lease. No foreign key: its check would lock the step's row, the write this table avoids.
    """

    __tablename__ = "step_leases"
    # the in-flight count (live leases) and the claim of leases that ran out, oldest first
    __table_args__ = (Index("ix_step_leases_until", "lease_until", "step_id"),)

    step_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    creditor_id: Mapped[str] = mapped_column(String(100), server_default=DEFAULT_CREDITOR)
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)
    emission: Mapped[int] = mapped_column(Integer, default=1)


class MessageRow(Scoped, Base):
    """One outgoing message or letter, its exact bytes kept; transmitted after commit."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_pending", "status", "lease_until"),
        # the messages marked sent whose message.transmitted record is still to be written
        Index(
            "ix_messages_record_due",
            "sent_at",
            postgresql_where=text("record_due"),
            sqlite_where=text("record_due = 1"),  # as SQLite is given a boolean test
        ),
        # a debtor's messages by debtor, creditor and day; none starts with the creditor alone
        # (migration 0021)
        Index("ix_messages_debtor_day", "debtor_id", "creditor_id", "local_day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creditor_id: Mapped[str] = mapped_column(String(100), server_default=DEFAULT_CREDITOR)
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    debtor_id: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))
    step: Mapped[str] = mapped_column(String(40))
    local_day: Mapped[date] = mapped_column(Date)
    recipient: Mapped[str] = mapped_column(String(600))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    content_sha256: Mapped[str] = mapped_column(String(64))
    amounts: Mapped[dict] = mapped_column(JSON)
    # pending -> sent | failed | cancelled; draft -> pending (approved) | rejected | withdrawn
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    tracking_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # sent, and its ``message.transmitted`` evidence record not written yet (handlers.delivery)
    record_due: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class MessageItem(Base):
    """Which (invoice, step) a message carries: at most one message per invoice, step, channel."""

    __tablename__ = "message_items"
    __table_args__ = (UniqueConstraint("invoice_id", "step", "channel", name="uq_sent_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    # found by invoice through uq_sent_step, which starts with it (migration 0021)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    step: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))


class InboxEvent(Scoped, Base):
    """Accepted accounting events, deduplicated by ``event_id`` per creditor; parked until
    applicable."""

    __tablename__ = "inbox_events"
    __table_args__ = (UniqueConstraint("creditor_id", "event_id", name="uq_inbox_events_creditor_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creditor_id: Mapped[str] = _creditor_column()
    event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    raw: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    # applied | parked
    status: Mapped[str] = mapped_column(String(10))
    waiting_for: Mapped[str | None] = mapped_column(String(100), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RejectedEvent(Base):
    """An event that broke the contract, kept with its raw text and reason for replay."""

    __tablename__ = "rejected_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # the creditor the event named (``default`` when it named none); None: not readable
    creditor_id: Mapped[str | None] = mapped_column(String(100), server_default=DEFAULT_CREDITOR, index=True)
    event_id: Mapped[str | None] = mapped_column(String(200), index=True)
    raw: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(1000))
    source: Mapped[str | None] = mapped_column(String(300))
    line_no: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProcessedMessage(Base):
    """Broker message ids whose effects are committed (written in the same transaction)."""

    __tablename__ = "processed_messages"

    message_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    actor: Mapped[str] = mapped_column(String(60))
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EvidenceRecord(Scoped, Base):
    """Append-only, hash-chained record of every action and fact: one chain per creditor."""

    __tablename__ = "evidence"

    creditor_id: Mapped[str] = mapped_column(String(100), primary_key=True, server_default=DEFAULT_CREDITOR)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    debtor_id: Mapped[str | None] = mapped_column(String(100), index=True)
    invoice_numbers: Mapped[list] = mapped_column(JSON)
    case_id: Mapped[int | None] = mapped_column(Integer, index=True)
    message_id: Mapped[str | None] = mapped_column(String(300))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # 1: the hash covers prev_hash, seq, at, kind, payload; 2: also debtor_id,
    # invoice_numbers, case_id and message_id; 3: as 2, with the personal values of the
    # payload sealed under the debtor's salt (handlers.evidence); 4: as 3, the creditor too
    version: Mapped[int] = mapped_column(Integer, server_default="1")


class EvidenceHead(Scoped, Base):
    """One row per creditor: its chain's last sequence number and hash; locked to append."""

    __tablename__ = "evidence_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creditor_id: Mapped[str] = mapped_column(String(100), unique=True, server_default=DEFAULT_CREDITOR)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class CaseRow(Scoped, Base):
    """An escalated case: a debtor's unpaid invoices handed to a person or partner."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creditor_id: Mapped[str] = mapped_column(String(100), server_default=DEFAULT_CREDITOR, index=True)
    debtor_id: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # escalation | claim_declaration
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)
    recommended_procedure: Mapped[str] = mapped_column(String(40))
    reasons: Mapped[list] = mapped_column(JSON)
    alternatives: Mapped[list] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))
    principal: Mapped[Decimal] = mapped_column(Money)
    late_interest: Mapped[Decimal] = mapped_column(Money)
    indemnities: Mapped[Decimal] = mapped_column(Money)
    amount_claimed: Mapped[Decimal] = mapped_column(Money)
    deadline: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[list] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseInvoice(Base):
    __tablename__ = "case_invoices"
    __table_args__ = (UniqueConstraint("case_id", "invoice_id", name="uq_case_invoice"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)


class HandoverRow(Scoped, Base):
    """A case handed to a partner (channel e-mail or webhook), delivered after commit."""

    __tablename__ = "handovers"
    __table_args__ = (
        UniqueConstraint("case_id", "partner", name="uq_handover_case_partner"),
        Index("ix_handovers_pending", "status", "lease_until"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creditor_id: Mapped[str] = mapped_column(String(100), server_default=DEFAULT_CREDITOR, index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    partner: Mapped[str] = mapped_column(String(40))
    partner_kind: Mapped[str] = mapped_column(String(30))
    channel: Mapped[str] = mapped_column(String(10))  # email | webhook
    # sent as Idempotency-Key: the same on every attempt
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    # pending -> delivered | failed | cancelled
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # lease of the attempt under way, or the back-off before the next one
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    response_code: Mapped[int | None] = mapped_column(Integer)
    dossier_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignalRow(Scoped, Base):
    """A fact for one webhook subscriber (``handlers.signals``), delivered after commit."""

    __tablename__ = "signals"
    __table_args__ = (Index("ix_signals_pending", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creditor_id: Mapped[str] = mapped_column(String(100), server_default=DEFAULT_CREDITOR, index=True)
    subscriber: Mapped[str] = mapped_column(String(40))
    signal_type: Mapped[str] = mapped_column(String(40))
    # sent as Idempotency-Key and as the body's "id": the same on every attempt
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[str] = mapped_column(Text)  # the exact JSON body
    # pending -> delivered | failed
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # lease of the attempt under way, or the back-off before the next one
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    response_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TaskRow(Scoped, Base):
    """A task for a person (a ``call`` or ``task`` step), open until an operator reports
    its outcome (``relance task done``)."""

    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("creditor_id", "task_key", name="uq_task_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creditor_id: Mapped[str] = mapped_column(String(100), server_default=DEFAULT_CREDITOR, index=True)
    # stable for the kind and the (invoice, step) covered: a redelivered step adds no task
    task_key: Mapped[str] = mapped_column(String(64))
    debtor_id: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # call | task
    step: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(String(40))  # as known when created; erased
    invoice_numbers: Mapped[list] = mapped_column(JSON)
    amounts: Mapped[dict] = mapped_column(JSON)  # balance per currency, decimal text
    due_on: Mapped[date] = mapped_column(Date)
    # open -> done
    status: Mapped[str] = mapped_column(String(10), default="open")
    outcome: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    promised_date: Mapped[date | None] = mapped_column(Date)
    done_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PaymentPlanRow(Scoped, Base):
    """A payment plan agreed with a debtor (``payment_plan.agreed``) and its fate."""

    __tablename__ = "payment_plans"
    __table_args__ = (UniqueConstraint("creditor_id", "event_id", name="uq_payment_plans_creditor_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creditor_id: Mapped[str] = _creditor_column()
    debtor_id: Mapped[str] = mapped_column(String(100), index=True)
    event_id: Mapped[str] = mapped_column(String(200))
    # the invoice whose planned_steps carry the installment steps
    anchor_invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    # active -> completed | broken
    status: Mapped[str] = mapped_column(String(12), default="active", index=True)
    agreed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(300))


class PlanInvoice(Base):
    """Which invoices a payment plan covers."""

    __tablename__ = "plan_invoices"
    __table_args__ = (UniqueConstraint("plan_id", "invoice_id", name="uq_plan_invoice"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("payment_plans.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)


class PlanInstallment(Base):
    """One installment of a plan; its steps are ``<step_stem>_pre_due|_due|_deadline``."""

    __tablename__ = "plan_installments"
    __table_args__ = (UniqueConstraint("plan_id", "seq", name="uq_plan_installment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("payment_plans.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    step_stem: Mapped[str] = mapped_column(String(30))
    due_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    paid: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    # open -> paid
    status: Mapped[str] = mapped_column(String(10), default="open")


# ---- reads shared by the store adapters and the core modules still on the session ---------


def creditor_of(session: Session) -> str:
    """The creditor a unit of work acts for (``adapters.uow``); ``default`` for another session."""
    creditor = getattr(session, "creditor", DEFAULT_CREDITOR)
    if creditor is None:
        raise RuntimeError("a debtor is looked up by its id in a unit of work of no creditor")
    return str(creditor)


def debtor_key(session: Session, debtor_id: str) -> tuple[str, str]:
    """The primary key of the session's creditor's debtor ``debtor_id``."""
    return (creditor_of(session), debtor_id)


def lock_debtor(session: Session, debtor_id: str) -> DebtorRow | None:
    """The debtor, locked for the transaction: one worker at a time acts on it."""
    return session.get(
        DebtorRow, debtor_key(session, debtor_id), with_for_update=True, populate_existing=True
    )


def movements_of(session: Session, invoice_ids: Iterable[int]) -> dict[int, list[Movement]]:
    """The payments and credit notes of the invoices, in one query; none: an empty list."""
    wanted = set(invoice_ids)
    found: dict[int, list[Movement]] = {i: [] for i in wanted}
    if not wanted:
        return found
    postgres = session.get_bind().dialect.name == "postgresql"
    rows = session.execute(_MOVEMENTS[postgres], {"ids": list(wanted)}).all()
    for invoice_id, on_day, amount, kind in rows:
        found[invoice_id].append(Movement(on_day, amount, kind))
    return found


_MOVEMENTS = {
    postgres: select(PaymentRow.invoice_id, PaymentRow.on_day, PaymentRow.amount, PaymentRow.kind).where(
        one_of(PaymentRow.invoice_id, "ids", postgres), PaymentRow.reversed_on.is_(None)
    )
    for postgres in (True, False)
}


def case_invoices(session: Session, case_id: int) -> list[InvoiceRow]:
    """The invoices of a case, oldest due date first."""
    return list(
        session.execute(
            select(InvoiceRow)
            .join(CaseInvoice, CaseInvoice.invoice_id == InvoiceRow.id)
            .where(CaseInvoice.case_id == case_id)
            .order_by(InvoiceRow.due_date, InvoiceRow.number)
        ).scalars()
    )


def debtor_salts(session: Session) -> dict[str, bytes]:
    """Every debtor's salt, by debtor id: what version 3 evidence records are verified with."""
    rows = session.execute(select(DebtorSalt.debtor_id, DebtorSalt.salt)).all()
    return {debtor_id: bytes.fromhex(salt) for debtor_id, salt in rows}


class BankEntryRow(Scoped, Base):
    """An entry of an imported bank statement and what became of it (``relance import``):
    ``matched`` (its payments were sent as ``payment.received``), ``reversed`` (a returned
    debit sent as ``payment.reversed``), ``unmatched`` or ``ambiguous`` (kept for
    ``relance payments match``), ``ignored`` (a debit that is no debtor's payment)."""

    __tablename__ = "bank_entries"
    __table_args__ = (UniqueConstraint("creditor_id", "entry_key", name="uq_bank_entries_creditor_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creditor_id: Mapped[str] = _creditor_column()
    entry_key: Mapped[str] = mapped_column(String(100))  # the payment_id of its payments
    source: Mapped[str] = mapped_column(String(500))  # the statement file it came from
    booking_date: Mapped[date | None] = mapped_column(Date)
    value_date: Mapped[date | None] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    credit: Mapped[bool] = mapped_column(Boolean)
    is_return: Mapped[bool] = mapped_column(Boolean)
    counterparty: Mapped[str | None] = mapped_column(String(300))
    remittance: Mapped[str] = mapped_column(Text)  # its remittance texts joined by " | "
    end_to_end_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    candidates: Mapped[str] = mapped_column(Text)  # JSON: lists of invoice numbers
    allocations: Mapped[str] = mapped_column(Text)  # JSON: [invoice number, amount] pairs
    matched_by: Mapped[str | None] = mapped_column(String(100))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
