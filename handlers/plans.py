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

from handlers import evidence, holds
from handlers.calendar import local_date, next_business_day, window_opening
from handlers.money import ZERO
from handlers.planning import INSTALLMENT_PREFIX, cancel_pending, end_of_day, resume_invoice, schedule
from handlers.policy import Policy, Step
from handlers.records import DebtorRecord, InstallmentRecord, InvoiceRecord, PlanRecord, StepRecord
from handlers.store import Store

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


def active_plan_of(store: Store, invoice_id: int, *, lock: bool = False) -> PlanRecord | None:
    return store.active_plan(invoice_id, lock=lock)


def agree(
    store: Store,
    event: Any,
    invoices: list[InvoiceRecord],
    debtor: DebtorRecord,
    policy: Policy,
    now: datetime,
) -> PlanRecord:
    """Store the plan and its installments and plan their steps on the anchor invoice."""
    anchor = next(i for i in invoices if i.status == "open")
    earlier = store.plans_anchored_on(anchor.id)
    plan = store.add_plan(
        debtor_id=debtor.id,
        event_id=event.event_id,
        anchor=anchor,
        invoice_ids=[i.id for i in invoices],
        now=now,
    )
    today = local_date(now, debtor.timezone)
    dated = sorted(event.installments, key=lambda i: i.due_date)
    for seq, item in enumerate(dated, start=1):
        stem = f"installment_{seq}" + (f"_r{earlier + 1}" if earlier else "")
        installment = store.add_installment(plan.id, seq, stem, item.due_date, item.amount)
        _plan_steps(store, anchor, debtor, installment, policy, today)
    log.info(
        "payment_plan.agreed",
        plan_id=plan.id,
        debtor_id=debtor.id,
        invoice_numbers=[i.number for i in invoices],
        installments=len(dated),
    )
    return plan


def deadline_day(installment: InstallmentRecord, country: str) -> date:
    """The last day to pay an installment: its due date, or the next business day."""
    return next_business_day(installment.due_date, country)


def _plan_steps(
    store: Store,
    anchor: InvoiceRecord,
    debtor: DebtorRecord,
    installment: InstallmentRecord,
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
                store,
                anchor,
                f"{installment.step_stem}_{kind}",
                "invoice.due",
                window_opening(day, debtor.timezone, policy.window),
            )
    schedule(
        store,
        anchor,
        f"{installment.step_stem}_{DEADLINE}",
        "deadline.expired",
        end_of_day(deadline_day(installment, debtor.country), debtor.timezone),
    )


# ---- reading -----------------------------------------------------------------------------


def installments_of(store: Store, plan: PlanRecord) -> list[InstallmentRecord]:
    return store.installments(plan.id)


def invoices_of(store: Store, plan: PlanRecord) -> list[InvoiceRecord]:
    return store.plan_invoices(plan.id)


def installment_of(
    store: Store, step_row: StepRecord, *, lock: bool = False
) -> tuple[PlanRecord, InstallmentRecord] | None:
    """The plan (locked when asked) and installment an installment step belongs to."""
    parts = split_step(step_row.step)
    if parts is None:
        return None
    plan = store.plan_with_stem(step_row.invoice_id, parts[0], lock=lock)
    if plan is None:
        return None
    installment = next(i for i in installments_of(store, plan) if i.step_stem == parts[0])
    return plan, installment


def _owed(invoices: list[InvoiceRecord]) -> list[InvoiceRecord]:
    return [i for i in invoices if not holds.settled(i)]


def blocker(
    store: Store, plan: PlanRecord, installment: InstallmentRecord, debtor: DebtorRecord
) -> str | None:
    """Why an installment must be neither reminded nor enforced now, or None."""
    if plan.status != ACTIVE:
        return f"payment plan {plan.status}"
    if installment.status == "paid":
        return f"installment {installment.seq} paid"
    owed = _owed(invoices_of(store, plan))
    if not owed:
        return NOTHING_LEFT
    if all(holds.frozen_by_insolvency(i, debtor) for i in owed):
        return f"debtor in insolvency proceedings ({debtor.insolvency_procedure})"
    return None


def send_blocker(store: Store, step_row: StepRecord, debtor: DebtorRecord) -> str | None:
    """The re-check at send time of an installment reminder (replaces ``skip_reason``)."""
    found = installment_of(store, step_row, lock=True)
    if found is None:
        return "payment plan unknown"
    reason = blocker(store, *found, debtor)
    if reason is None and debtor.opt_out:
        return "debtor opted out of automatic contact"
    return reason


def message_context(store: Store, step_rows: list[StepRecord]) -> dict[str, Any]:
    """What the installment templates show: the installments due, the plan's remainder."""
    shown: list[dict[str, Any]] = []
    plans: dict[int, tuple[PlanRecord, list[InstallmentRecord]]] = {}
    for row in step_rows:
        found = installment_of(store, row)
        if found is None:
            continue
        plan, installment = found
        if plan.id not in plans:
            plans[plan.id] = (plan, installments_of(store, plan))
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
        numbers.extend(i.number for i in invoices_of(store, plan) if i.number not in numbers)
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


def apply_money(store: Store, invoice: InvoiceRecord, amount: Decimal, now: datetime, policy: Policy) -> None:
    """A payment or credit on a plan invoice pays the oldest unpaid installments first."""
    plan = active_plan_of(store, invoice.id, lock=True)
    if plan is None:
        return
    left = amount
    installments = installments_of(store, plan)
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
    invoices = invoices_of(store, plan)
    if all(i.status == "paid" for i in installments):
        complete(store, plan, invoices, now, policy, "every installment paid")
    elif not _owed(invoices):
        complete(store, plan, invoices, now, policy, "invoices settled")


def _step_names(store: Store, plan: PlanRecord) -> list[str]:
    return [f"{i.step_stem}_{kind}" for i in installments_of(store, plan) for kind in (*REMINDERS, DEADLINE)]


def _end(
    store: Store,
    plan: PlanRecord,
    invoices: list[InvoiceRecord],
    status: str,
    now: datetime,
    reason: str,
) -> None:
    plan.status, plan.ended_at, plan.reason = status, now, reason[:300]
    cancel_pending(store, plan.anchor_invoice_id, f"payment plan {status}", steps=_step_names(store, plan))
    for invoice in invoices:
        invoice.in_payment_plan, invoice.updated_at = False, now


def resumable(invoice: InvoiceRecord, debtor: DebtorRecord) -> bool:
    """Whether dunning of an invoice leaving a plan resumes now (else a later event does)."""
    return holds.may_resume(invoice, debtor)


def _resume(
    store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, policy: Policy, now: datetime
) -> None:
    """Back on the ladder; an invoice already past due resumes no earlier than ``resume_step``."""
    overdue = invoice.due_date < local_date(now, debtor.timezone)
    resume_invoice(store, invoice, debtor, policy, now, not_before=policy.resume_step if overdue else None)


def complete(
    store: Store,
    plan: PlanRecord,
    invoices: list[InvoiceRecord],
    now: datetime,
    policy: Policy,
    reason: str,
) -> None:
    """The plan is honoured; an invoice still owing something (amount raised since) resumes."""
    _end(store, plan, invoices, COMPLETED, now, reason)
    debtor = store.debtor(plan.debtor_id)
    if debtor is None:  # a plan always has its debtor
        raise LookupError(f"payment plan {plan.id}: debtor {plan.debtor_id} is not stored")
    for invoice in invoices:
        if resumable(invoice, debtor):
            _resume(store, invoice, debtor, policy, now)
    numbers = [i.number for i in invoices]
    evidence.append(
        store,
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
    store: Store,
    plan: PlanRecord,
    installment: InstallmentRecord,
    debtor: DebtorRecord,
    now: datetime,
    policy: Policy,
) -> list[InvoiceRecord]:
    """A missed installment: the plan ends and dunning resumes on every invoice still owed.

    Returns the invoices still owed (the caller records the expired deadline on them).
    """
    invoices = invoices_of(store, plan)
    unpaid = installment.amount - installment.paid
    _end(
        store,
        plan,
        invoices,
        BROKEN,
        now,
        f"installment {installment.seq} unpaid ({unpaid} of {installment.amount})",
    )
    owed = _owed(invoices)
    for invoice in owed:
        if resumable(invoice, debtor):
            _resume(store, invoice, debtor, policy, now)
    log.warning(
        "payment_plan.broken",
        plan_id=plan.id,
        debtor_id=debtor.id,
        installment=installment.seq,
        unpaid=str(unpaid),
    )
    return owed
