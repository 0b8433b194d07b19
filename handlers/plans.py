"""Payment plans (``payment_plan.agreed``): installments stored, reminded, paid or missed.

A plan covers invoices of one debtor; they leave the ladder while it is active. Each
installment is reminded like a small invoice: the policy's ``pre_due`` and ``due`` offsets
and channels (D − 5 and D, e-mail, by default), with the ``installment_pre_due`` /
``installment_due`` templates. Each also has a deadline at the end of its due day (the
next business day when it falls on a weekend or holiday): still unpaid then, the plan is
broken and dunning resumes on the whole remaining balance (handlers.escalation).

The installment steps live in ``planned_steps`` on the plan's first open invoice (its
anchor), named ``<stem>_pre_due``, ``<stem>_due`` and ``<stem>_deadline`` where the stem
is ``installment_<n>`` (``installment_<n>_r<k>`` for the k-th plan of the same anchor, so a
renegotiated plan never collides with the steps of an earlier one). Ordinary cancellations
(``planning.cancel_pending`` without names) leave them alone: they end with the plan.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapters.orm import (
    DebtorRow,
    InvoiceRow,
    PaymentPlanRow,
    PlanInstallment,
    PlanInvoice,
    PlannedStep,
)
from handlers import evidence, holds
from handlers.calendar import local_date, next_business_day, window_opening
from handlers.money import ZERO
from handlers.planning import INSTALLMENT_PREFIX, cancel_pending, end_of_day, resume_invoice, schedule
from handlers.policy import Policy, Step

log = structlog.get_logger("relance.plans")

ACTIVE, COMPLETED, BROKEN = "active", "completed", "broken"
REMINDERS = ("pre_due", "due")  # the ladder steps an installment mirrors
DEADLINE = "deadline"
NOTHING_LEFT = "nothing left to pay"
TEMPLATES = tuple(f"installment_{kind}" for kind in REMINDERS)
_DEFAULT_OFFSETS = {"pre_due": -5, "due": 0}


class InstallmentStep(Step):
    """An installment reminder, sent by the ordinary send path with its own template."""

    kind: Literal["pre_due", "due"]

    @property
    def template(self) -> str:
        return f"installment_{self.kind}"


def split_step(name: str) -> tuple[str, str] | None:
    """``(stem, kind)`` of an installment step name, or None for any other step."""
    if not name.startswith(INSTALLMENT_PREFIX):
        return None
    for kind in ("pre_due", "due", DEADLINE):  # "_pre_due" before "_due"
        if name.endswith(f"_{kind}"):
            return name[: -len(kind) - 1], kind
    return None


def is_deadline(name: str) -> bool:
    parts = split_step(name)
    return parts is not None and parts[1] == DEADLINE


def _twin(policy: Policy, kind: str) -> tuple[int, tuple[str, ...]]:
    """Offset and channels of the ladder step an installment reminder mirrors."""
    try:
        step = policy.step(kind)
    except KeyError:
        return _DEFAULT_OFFSETS[kind], ("email",)
    return step.offset_days, tuple(step.channels)


def installment_step(name: str, policy: Policy) -> InstallmentStep | None:
    """The step to send for a planned installment reminder, or None if ``name`` is not one."""
    parts = split_step(name)
    if parts is None or parts[1] == DEADLINE:
        return None
    offset, channels = _twin(policy, parts[1])
    return InstallmentStep(
        name=name, offset_days=offset, event="invoice.due", channels=channels, kind=parts[1]
    )


# ---- agreeing ----------------------------------------------------------------------------


def active_plan_of(session: Session, invoice_id: int, *, lock: bool = False) -> PaymentPlanRow | None:
    query = (
        select(PaymentPlanRow)
        .join(PlanInvoice, PlanInvoice.plan_id == PaymentPlanRow.id)
        .where(PlanInvoice.invoice_id == invoice_id, PaymentPlanRow.status == ACTIVE)
    )
    if lock:
        query = query.with_for_update(of=PaymentPlanRow).execution_options(populate_existing=True)
    return session.execute(query).scalars().first()


def agree(
    session: Session, event: Any, invoices: list[InvoiceRow], debtor: DebtorRow, policy: Policy, now: datetime
) -> PaymentPlanRow:
    """Store the plan and its installments and plan their steps on the anchor invoice."""
    anchor = next(i for i in invoices if i.status == "open")
    earlier = session.execute(
        select(func.count()).select_from(PaymentPlanRow).where(PaymentPlanRow.anchor_invoice_id == anchor.id)
    ).scalar_one()
    plan = PaymentPlanRow(
        debtor_id=debtor.id,
        event_id=event.event_id,
        anchor_invoice_id=anchor.id,
        currency=anchor.currency,
        status=ACTIVE,
        agreed_at=now,
    )
    session.add(plan)
    session.flush()
    for invoice in invoices:
        session.add(PlanInvoice(plan_id=plan.id, invoice_id=invoice.id))
    today = local_date(now, debtor.timezone)
    dated = sorted(event.installments, key=lambda i: i.due_date)
    for seq, item in enumerate(dated, start=1):
        stem = f"installment_{seq}" + (f"_r{earlier + 1}" if earlier else "")
        installment = PlanInstallment(
            plan_id=plan.id,
            seq=seq,
            step_stem=stem,
            due_date=item.due_date,
            amount=item.amount,
            paid=ZERO,
            status="open",
        )
        session.add(installment)
        _plan_steps(session, anchor, debtor, installment, policy, today)
    session.flush()
    log.info(
        "payment_plan.agreed",
        plan_id=plan.id,
        debtor_id=debtor.id,
        invoice_numbers=[i.number for i in invoices],
        installments=len(dated),
    )
    return plan


def deadline_day(installment: PlanInstallment, country: str) -> date:
    """The last day to pay an installment: its due date, or the next business day."""
    return next_business_day(installment.due_date, country)


def _plan_steps(
    session: Session,
    anchor: InvoiceRow,
    debtor: DebtorRow,
    installment: PlanInstallment,
    policy: Policy,
    today: date,
) -> None:
    days: dict[str, date] = {}
    for kind in REMINDERS:
        offset, _ = _twin(policy, kind)
        days[kind] = next_business_day(installment.due_date + timedelta(days=offset), debtor.country)
    if days["pre_due"] >= days["due"]:
        del days["pre_due"]
    for kind, day in days.items():
        if day >= today:  # a reminder dated in the past is not sent late
            schedule(
                session,
                anchor,
                f"{installment.step_stem}_{kind}",
                "invoice.due",
                window_opening(day, debtor.timezone, policy.window),
            )
    schedule(
        session,
        anchor,
        f"{installment.step_stem}_{DEADLINE}",
        "deadline.expired",
        end_of_day(deadline_day(installment, debtor.country), debtor.timezone),
    )


# ---- reading -----------------------------------------------------------------------------


def installments_of(session: Session, plan: PaymentPlanRow) -> list[PlanInstallment]:
    return list(
        session.execute(
            select(PlanInstallment)
            .where(PlanInstallment.plan_id == plan.id)
            .order_by(PlanInstallment.seq)
            .execution_options(populate_existing=True)
        ).scalars()
    )


def invoices_of(session: Session, plan: PaymentPlanRow) -> list[InvoiceRow]:
    return list(
        session.execute(
            select(InvoiceRow)
            .join(PlanInvoice, PlanInvoice.invoice_id == InvoiceRow.id)
            .where(PlanInvoice.plan_id == plan.id)
            .order_by(InvoiceRow.due_date, InvoiceRow.number)
        ).scalars()
    )


def installment_of(
    session: Session, step_row: PlannedStep, *, lock: bool = False
) -> tuple[PaymentPlanRow, PlanInstallment] | None:
    """The plan (locked when asked) and installment an installment step belongs to."""
    parts = split_step(step_row.step)
    if parts is None:
        return None
    query = (
        select(PaymentPlanRow)
        .join(PlanInstallment, PlanInstallment.plan_id == PaymentPlanRow.id)
        .where(PaymentPlanRow.anchor_invoice_id == step_row.invoice_id, PlanInstallment.step_stem == parts[0])
    )
    if lock:
        query = query.with_for_update(of=PaymentPlanRow)
    plan = session.execute(query.execution_options(populate_existing=True)).scalars().first()
    if plan is None:
        return None
    installment = next(i for i in installments_of(session, plan) if i.step_stem == parts[0])
    return plan, installment


def _owed(invoices: list[InvoiceRow]) -> list[InvoiceRow]:
    return [i for i in invoices if not holds.settled(i)]


def blocker(
    session: Session, plan: PaymentPlanRow, installment: PlanInstallment, debtor: DebtorRow
) -> str | None:
    """Why an installment must be neither reminded nor enforced now, or None."""
    if plan.status != ACTIVE:
        return f"payment plan {plan.status}"
    if installment.status == "paid":
        return f"installment {installment.seq} paid"
    owed = _owed(invoices_of(session, plan))
    if not owed:
        return NOTHING_LEFT
    if all(holds.frozen_by_insolvency(i, debtor) for i in owed):
        return f"debtor in insolvency proceedings ({debtor.insolvency_procedure})"
    return None


def send_blocker(session: Session, step_row: PlannedStep, debtor: DebtorRow) -> str | None:
    """The re-check at send time of an installment reminder (replaces ``skip_reason``)."""
    found = installment_of(session, step_row, lock=True)
    if found is None:
        return "payment plan unknown"
    reason = blocker(session, *found, debtor)
    if reason is None and debtor.opt_out:
        return "debtor opted out of automatic contact"
    return reason


def message_context(session: Session, step_rows: list[PlannedStep]) -> dict[str, Any]:
    """What the installment templates show: the installments due, the plan's remainder."""
    shown: list[dict[str, Any]] = []
    plans: dict[int, tuple[PaymentPlanRow, list[PlanInstallment]]] = {}
    for row in step_rows:
        found = installment_of(session, row)
        if found is None:
            continue
        plan, installment = found
        if plan.id not in plans:
            plans[plan.id] = (plan, installments_of(session, plan))
        count = len(plans[plan.id][1])
        shown.append(
            {
                "seq": installment.seq,
                "count": count,
                "due_date": installment.due_date,
                "amount": installment.amount,
                "paid": installment.paid,
                "due": installment.amount - installment.paid,
            }
        )
    numbers: list[str] = []
    for plan, _ in plans.values():
        numbers.extend(i.number for i in invoices_of(session, plan) if i.number not in numbers)
    remaining = sum(
        (i.amount - i.paid for _, rows in plans.values() for i in rows if i.status != "paid"), ZERO
    )
    left = sum(1 for _, rows in plans.values() for i in rows if i.status != "paid")
    due = sum((s["due"] for s in shown), ZERO)
    return {
        "installments": shown,
        "plan": {"invoices": numbers, "remaining": remaining, "installments_left": left},
        "totals": {"balance": due, "late_interest": ZERO, "indemnity": ZERO, "claimed": due},
    }


# ---- paying, completing, breaking ----------------------------------------------------------


def apply_money(
    session: Session, invoice: InvoiceRow, amount: Decimal, now: datetime, policy: Policy
) -> None:
    """A payment or credit on a plan invoice pays the oldest unpaid installments first."""
    plan = active_plan_of(session, invoice.id, lock=True)
    if plan is None:
        return
    left = amount
    installments = installments_of(session, plan)
    for installment in installments:
        if left <= 0:
            break
        if installment.status == "paid":
            continue
        taken = min(left, installment.amount - installment.paid)
        installment.paid += taken
        left -= taken
        if installment.paid >= installment.amount:
            installment.status = "paid"
    invoices = invoices_of(session, plan)
    if all(i.status == "paid" for i in installments):
        complete(session, plan, invoices, now, policy, "every installment paid")
    elif not _owed(invoices):
        complete(session, plan, invoices, now, policy, "invoices settled")


def _step_names(session: Session, plan: PaymentPlanRow) -> list[str]:
    return [
        f"{i.step_stem}_{kind}" for i in installments_of(session, plan) for kind in (*REMINDERS, DEADLINE)
    ]


def _end(
    session: Session,
    plan: PaymentPlanRow,
    invoices: list[InvoiceRow],
    status: str,
    now: datetime,
    reason: str,
) -> None:
    plan.status, plan.ended_at, plan.reason = status, now, reason[:300]
    cancel_pending(
        session, plan.anchor_invoice_id, f"payment plan {status}", steps=_step_names(session, plan)
    )
    for invoice in invoices:
        invoice.in_payment_plan, invoice.updated_at = False, now


def resumable(invoice: InvoiceRow, debtor: DebtorRow) -> bool:
    """Whether dunning of an invoice leaving a plan resumes now (else a later event does)."""
    return holds.may_resume(invoice, debtor)


def _resume(session: Session, invoice: InvoiceRow, debtor: DebtorRow, policy: Policy, now: datetime) -> None:
    """Back on the ladder; an invoice already past due resumes no earlier than ``resume_step``."""
    overdue = invoice.due_date < local_date(now, debtor.timezone)
    resume_invoice(session, invoice, debtor, policy, now, not_before=policy.resume_step if overdue else None)


def complete(
    session: Session,
    plan: PaymentPlanRow,
    invoices: list[InvoiceRow],
    now: datetime,
    policy: Policy,
    reason: str,
) -> None:
    """The plan is honoured; an invoice still owing something (amount raised since) resumes."""
    _end(session, plan, invoices, COMPLETED, now, reason)
    debtor = session.get_one(DebtorRow, plan.debtor_id)  # a plan always has its debtor
    for invoice in invoices:
        if resumable(invoice, debtor):
            _resume(session, invoice, debtor, policy, now)
    numbers = [i.number for i in invoices]
    evidence.append(
        session,
        "payment_plan.completed",
        now,
        {
            "action": "payment_plan.completed",
            "plan_id": plan.id,
            "reason": reason,
            "debtor_id": plan.debtor_id,
            "invoice_numbers": numbers,
        },
        debtor_id=plan.debtor_id,
        invoice_numbers=numbers,
    )
    log.info("payment_plan.completed", plan_id=plan.id, debtor_id=plan.debtor_id, reason=reason)


def break_plan(
    session: Session,
    plan: PaymentPlanRow,
    installment: PlanInstallment,
    debtor: DebtorRow,
    now: datetime,
    policy: Policy,
) -> list[InvoiceRow]:
    """A missed installment: the plan ends and dunning resumes on every invoice still owed.

    Returns the invoices still owed (the caller records the expired deadline on them).
    """
    invoices = invoices_of(session, plan)
    unpaid = installment.amount - installment.paid
    _end(
        session,
        plan,
        invoices,
        BROKEN,
        now,
        f"installment {installment.seq} unpaid ({unpaid} of {installment.amount})",
    )
    owed = _owed(invoices)
    for invoice in owed:
        if resumable(invoice, debtor):
            _resume(session, invoice, debtor, policy, now)
    log.warning(
        "payment_plan.broken",
        plan_id=plan.id,
        debtor_id=debtor.id,
        installment=installment.seq,
        unpaid=str(unpaid),
    )
    return owed
