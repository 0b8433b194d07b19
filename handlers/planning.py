"""Write the ladder of an invoice into ``planned_steps`` and take it back out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from handlers.adapters.orm import DebtorRow, InvoiceRow, PlannedStep
from handlers.calendar import local_date, window_opening, zone
from handlers.ladder import StepDate, plan_new_invoice, plan_resumed
from handlers.policy import ESCALATION, FORMAL_NOTICE, Policy

PENDING = ("planned", "emitted")
FINISHED = ("done", "skipped", "failed")


def schedule(
    session: Session, invoice: InvoiceRow, step: str, event: str, due_at: datetime
) -> None:
    """Plan (or re-plan) one step; a finished step is never planned again."""
    row = session.execute(
        select(PlannedStep).where(PlannedStep.invoice_id == invoice.id, PlannedStep.step == step)
    ).scalar_one_or_none()
    if row is None:
        session.add(PlannedStep(
            invoice_id=invoice.id, debtor_id=invoice.debtor_id, step=step, event=event,
            due_at=due_at, status="planned", emit_count=0,
        ))
    elif row.status not in FINISHED:
        row.event, row.due_at, row.status, row.lease_until, row.reason = (
            event, due_at, "planned", None, None)


def cancel_pending(session: Session, invoice_id: int, reason: str, *, steps: Iterable[str] = ()) -> int:
    """Take every pending step of an invoice out of the schedule (or only ``steps``)."""
    query = update(PlannedStep).where(
        PlannedStep.invoice_id == invoice_id, PlannedStep.status.in_(PENDING))
    names = list(steps)
    if names:
        query = query.where(PlannedStep.step.in_(names))
    result = session.execute(query.values(status="cancelled", reason=reason[:300]))
    return result.rowcount or 0


def finished_steps(session: Session, invoice_id: int) -> set[str]:
    return set(session.execute(
        select(PlannedStep.step).where(
            PlannedStep.invoice_id == invoice_id, PlannedStep.status.in_(FINISHED))
    ).scalars())


def _write(session: Session, invoice: InvoiceRow, debtor: DebtorRow, policy: Policy,
           dates: list[StepDate]) -> None:
    for item in dates:
        due_at = window_opening(item.day, debtor.timezone, policy.window)
        schedule(session, invoice, item.step.name, item.step.event, due_at)


def plan_invoice(session: Session, invoice: InvoiceRow, debtor: DebtorRow, policy: Policy,
                 now: datetime) -> None:
    """Plan the ladder of an invoice that has just become known."""
    today = local_date(now, debtor.timezone)
    _write(session, invoice, debtor, policy,
           plan_new_invoice(invoice.due_date, today, policy, debtor.country))


def resume_invoice(session: Session, invoice: InvoiceRow, debtor: DebtorRow, policy: Policy,
                   now: datetime) -> None:
    """Re-plan the steps not yet taken, the next one no earlier than today."""
    done = finished_steps(session, invoice.id)
    last_done = max((policy.severity(s) for s in done), default=-1)
    remaining = [s for s in policy.steps[last_done + 1:] if s.name not in done]
    today = local_date(now, debtor.timezone)
    _write(session, invoice, debtor, policy,
           plan_resumed(invoice.due_date, remaining, today, debtor.country))
    if FORMAL_NOTICE in done and ESCALATION not in done:
        # the notice was sent before the pause: its deadline runs again from today
        deadline = today + timedelta(days=policy.escalation.deadline_days)
        schedule(session, invoice, ESCALATION, "deadline.expired",
                 end_of_day(deadline, debtor.timezone))


def end_of_day(day: date, tz: str) -> datetime:
    """The first instant after ``day`` in time zone ``tz`` (a deadline's expiry), in UTC."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone(tz)).astimezone(UTC)
