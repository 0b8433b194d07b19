"""Send the steps of the ladder: one message per debtor, channel and day, re-checked at send.

``handle_step_due`` runs when a scheduler event arrives. Under a lock on the debtor it takes
every step of that debtor due by now, re-checks each invoice, merges what is left into one
message per channel (the most severe step's template, every invoice listed), records the
messages with their exact bytes and marks the steps done, all in the caller's transaction.
The records are transmitted after commit (handlers.delivery).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.compose import email_bytes, letter_pdf
from adapters.orm import DebtorRow, InvoiceRow, MessageItem, MessageRow, PlannedStep
from handlers import evidence, holds, plans
from handlers.amounts import InvoiceAmounts, amounts_on
from handlers.calendar import local_date, next_sending_time
from handlers.context import Context
from handlers.messages import DeliverMessage, stable_id
from handlers.money import ZERO, MissingRate
from handlers.planning import PENDING, end_of_day, schedule
from handlers.policy import ESCALATION, FORMAL_NOTICE, Policy, Step
from handlers.ports import Outgoing
from handlers.render import helpers

log = structlog.get_logger("relance.reminders")


@dataclass(frozen=True)
class Due:
    step_row: PlannedStep
    invoice: InvoiceRow
    step: Step
    policy: Policy  # the invoice's policy (segment, overrides)


def lock_debtor(session: Session, debtor_id: str) -> DebtorRow | None:
    return session.get(DebtorRow, debtor_id, with_for_update=True, populate_existing=True)


def handle_step_due(session: Session, step_id: int, now: datetime, ctx: Context) -> list[object]:
    """Send what is due for the debtor of ``step_id``; return tasks to publish after commit."""
    first = session.get(PlannedStep, step_id)
    if first is None or first.status not in PENDING:
        return []
    debtor = lock_debtor(session, first.debtor_id)
    if debtor is None:
        return []
    due = _due_steps(session, debtor, now, ctx)  # re-reads ``first`` too, under the lock
    if not any(item.step_row is first for item in due):
        session.refresh(first)  # done meanwhile, or not due yet by this worker's clock
        if first.status in PENDING and first.due_at > now:
            first.status, first.lease_until = "planned", None  # leave it to a later emission
        return []
    opening = next_sending_time(now, debtor.timezone, debtor.country, ctx.policy_for(debtor).window)
    if opening > now:
        _postpone(due, opening, "outside the sending window")
        return []
    sendable = [d for d in due if _still_sendable(session, d, debtor, now, ctx)]
    return _send_merged(session, debtor, sendable, now, ctx)


def _due_steps(session: Session, debtor: DebtorRow, now: datetime, ctx: Context) -> list[Due]:
    rows = session.execute(
        select(PlannedStep, InvoiceRow)
        .join(InvoiceRow, InvoiceRow.id == PlannedStep.invoice_id)
        .where(
            PlannedStep.debtor_id == debtor.id,
            PlannedStep.status.in_(PENDING),
            PlannedStep.event.in_(("invoice.due", "invoice.overdue")),
            PlannedStep.due_at <= now,
        )
        .order_by(InvoiceRow.due_date, InvoiceRow.number)
        .with_for_update(of=InvoiceRow)  # re-checked below, against payments arriving now
        .execution_options(populate_existing=True)
    ).all()
    found = []
    for step_row, invoice in rows:
        policy = ctx.policy_for(debtor, invoice.number)
        try:
            step: Step | None = policy.step(step_row.step)
        except KeyError:  # a payment plan's installment reminder, or a step since removed
            step = plans.installment_step(step_row.step, policy)
        if step is None:
            _skip(session, step_row, invoice, debtor, now, "step no longer in the policy")
        else:
            found.append(Due(step_row, invoice, step, policy))
    return found


def _postpone(due: list[Due], until: datetime, reason: str) -> None:
    for item in due:
        item.step_row.status, item.step_row.due_at, item.step_row.lease_until = "planned", until, None
        log.info(
            "reminder.postponed",
            debtor_id=item.invoice.debtor_id,
            step=item.step.name,
            invoice_number=item.invoice.number,
            until=until.isoformat(),
            reason=reason,
        )


def _still_sendable(session: Session, item: Due, debtor: DebtorRow, now: datetime, ctx: Context) -> bool:
    if isinstance(item.step, plans.InstallmentStep):  # judged on the plan, not the invoice
        reason = plans.send_blocker(session, item.step_row, debtor)
    else:
        minimum = item.policy.money.minimum_for(item.invoice.currency)
        reason = holds.chase_hold(item.invoice, debtor, local_date(now, debtor.timezone), minimum)
    if reason is None and not _channels_for(item.step, debtor):
        reason = "no valid contact details"
    if reason is not None:
        _skip(session, item.step_row, item.invoice, debtor, now, reason)
        if debtor.opt_out and item.step.name == FORMAL_NOTICE and item.invoice.status == "open":
            # no automatic contact, but the case still reaches a person
            plan_escalation(session, item.invoice, debtor, local_date(now, debtor.timezone), item.policy)
        return False
    return True


def _skip(
    session: Session,
    step_row: PlannedStep,
    invoice: InvoiceRow,
    debtor: DebtorRow,
    now: datetime,
    reason: str,
) -> None:
    step_row.status, step_row.reason, step_row.done_at = "skipped", reason[:300], now
    payload = {
        "action": "reminder.skipped",
        "step": step_row.step,
        "reason": reason,
        "event": step_row.event,
        "debtor_id": debtor.id,
        "invoice_numbers": [invoice.number],
    }
    evidence.append(
        session, "reminder.skipped", now, payload, debtor_id=debtor.id, invoice_numbers=[invoice.number]
    )
    log.info(
        "reminder.skipped",
        debtor_id=debtor.id,
        invoice_number=invoice.number,
        step=step_row.step,
        reason=reason,
    )


def _channels_for(step: Step, debtor: DebtorRow) -> list[str]:
    """The step's channels, e-mail replaced by a letter when there is no usable address."""
    channels: list[str] = []
    for channel in step.channels:
        if channel == "email" and (not debtor.email or debtor.email_bounced):
            channel = "letter"
        if channel == "letter" and not debtor.address:
            continue
        if channel not in channels and not (channel == "letter" and "registered_letter" in channels):
            channels.append(channel)
    return channels


def _send_merged(
    session: Session, debtor: DebtorRow, sendable: list[Due], now: datetime, ctx: Context
) -> list[object]:
    # installment reminders are never merged with ladder steps: they go first, on their own
    by_channel: dict[tuple[str, bool], list[Due]] = defaultdict(list)
    recorded = _recorded_channels(session, [i.step_row for i in sendable])
    for item in sendable:
        for channel in _channels_for(item.step, debtor):
            if (item.invoice.id, item.step.name, channel) not in recorded:
                by_channel[(channel, isinstance(item.step, plans.InstallmentStep))].append(item)
    today = local_date(now, debtor.timezone)
    tasks: list[object] = []
    try:
        for (channel, _), items in sorted(by_channel.items(), key=lambda kv: not kv[0][1]):
            if _already_sent_today(session, debtor.id, channel, today):
                _postpone(
                    items,
                    next_sending_time(
                        end_of_day(today, debtor.timezone),
                        debtor.timezone,
                        debtor.country,
                        ctx.policy_for(debtor).window,
                    ),
                    "one message per debtor and channel per day",
                )
                continue
            tasks.append(_record_message(session, debtor, channel, items, now, today, ctx))
    except MissingRate as exc:
        log.error("reminder.failed", debtor_id=debtor.id, reason=str(exc), half_year=exc.half_year)
        raise
    for item in sendable:
        if item.step_row.status in PENDING and item.step_row.due_at <= now:
            item.step_row.status, item.step_row.done_at = "done", now
            if item.step.name == FORMAL_NOTICE:
                plan_escalation(session, item.invoice, debtor, today, item.policy)
    return tasks


def _recorded_channels(session: Session, rows: list[PlannedStep]) -> set[tuple[int, str, str]]:
    if not rows:
        return set()
    found = session.execute(
        select(MessageItem.invoice_id, MessageItem.step, MessageItem.channel).where(
            MessageItem.invoice_id.in_({r.invoice_id for r in rows})
        )
    ).all()
    return {(i, s, c) for i, s, c in found}


def _already_sent_today(session: Session, debtor_id: str, channel: str, today: date) -> bool:
    return (
        session.execute(
            select(MessageRow.id)
            .where(
                MessageRow.debtor_id == debtor_id,
                MessageRow.channel == channel,
                MessageRow.local_day == today,
            )
            .limit(1)
        ).first()
        is not None
    )


def plan_escalation(
    session: Session, invoice: InvoiceRow, debtor: DebtorRow, today: date, policy: Policy
) -> None:
    """Plan the formal notice's deadline, once: a notice re-sent by post keeps the first one."""
    exists = session.execute(
        select(PlannedStep.id).where(PlannedStep.invoice_id == invoice.id, PlannedStep.step == ESCALATION)
    ).first()
    if exists is not None:
        return
    deadline = today + timedelta(days=policy.escalation.deadline_days)
    schedule(session, invoice, ESCALATION, "deadline.expired", end_of_day(deadline, debtor.timezone))


def message_id_for(channel: str, items: list[Due], domain: str) -> str:
    key = sorted(f"{i.invoice.number}/{i.step.name}" for i in items)
    return f"<{stable_id(channel, *key)}@{domain}>"


def _record_message(
    session: Session,
    debtor: DebtorRow,
    channel: str,
    items: list[Due],
    now: datetime,
    today: date,
    ctx: Context,
) -> DeliverMessage:
    lead = max(items, key=lambda i: i.policy.severity(i.step.name))
    policy = lead.policy
    amounts = {
        i.invoice.id: amounts_on(
            session, i.invoice, debtor, today, policy, ctx.rates, with_penalties=lead.step.states_penalties
        )
        for i in items
    }
    context = template_context(session, debtor, items, amounts, today, policy)
    if isinstance(lead.step, plans.InstallmentStep):
        context |= plans.message_context(session, [i.step_row for i in items])
    rendered = ctx.renderer.render(lead.step.template, debtor.language, context)
    message_id = message_id_for(channel, items, ctx.message_domain)
    recipient, content = _compose(
        channel,
        debtor,
        rendered,
        message_id,
        now,
        lead.step,
        ctx,
        helpers(debtor.language)["day"](today),
        policy,
    )
    totals = context["totals"]
    row = MessageRow(
        message_id=message_id,
        debtor_id=debtor.id,
        channel=channel,
        step=lead.step.name,
        local_day=today,
        recipient=recipient,
        subject=rendered.subject,
        body_text=rendered.body_text,
        content=content,
        content_sha256=hashlib.sha256(content).hexdigest(),
        amounts={k: str(v) for k, v in totals.items()} | {"currency": context["currency"]},
        status="pending",
        attempts=0,
        lease_until=now + ctx.lease,
        created_at=now,
    )
    session.add(row)
    session.flush()
    for item in items:
        session.add(
            MessageItem(message_pk=row.id, invoice_id=item.invoice.id, step=item.step.name, channel=channel)
        )
    numbers = [i.invoice.number for i in items]
    evidence.append(
        session,
        "reminder.sent",
        now,
        {
            "action": "reminder.sent",
            "step": lead.step.name,
            "event": lead.step.event,
            "steps": {i.invoice.number: i.step.name for i in items},
            "channel": channel,
            "to": recipient,
            "subject": rendered.subject,
            "message_id": message_id,
            "content_sha256": row.content_sha256,
            "currency": context["currency"],
            "amount_due": str(totals["balance"]),
            "late_interest": str(totals["late_interest"]),
            "recovery_indemnity": str(totals["indemnity"]),
            "debtor_id": debtor.id,
            "invoice_numbers": numbers,
        },
        debtor_id=debtor.id,
        invoice_numbers=numbers,
        message_id=message_id,
    )
    log.info(
        "reminder.sent",
        debtor_id=debtor.id,
        step=lead.step.name,
        channel=channel,
        message_id=message_id,
        invoice_numbers=numbers,
    )
    return DeliverMessage(
        row.id, 0, Outgoing(message_id, channel, recipient, rendered.subject, content, debtor.id)
    )


def template_context(
    session: Session,
    debtor: DebtorRow,
    items: list[Due],
    amounts: dict[int, InvoiceAmounts],
    today: date,
    policy: Policy,
) -> dict:
    listed = []
    for item in items:
        a = amounts[item.invoice.id]
        listed.append(_invoice_view(item.invoice, a))
    numbers = {i.invoice.number for i in items}
    others = (
        session.execute(
            select(InvoiceRow)
            .where(
                InvoiceRow.debtor_id == debtor.id,
                InvoiceRow.status == "open",
                InvoiceRow.due_date < today,
                InvoiceRow.number.not_in(numbers),
            )
            .order_by(InvoiceRow.due_date)
        )
        .scalars()
        .all()
    )
    others = [o for o in others if holds.listed_as_other(o, debtor)]
    totals = {
        "balance": sum((a.balance for a in amounts.values()), ZERO),
        "late_interest": sum((a.late_interest for a in amounts.values()), ZERO),
        "indemnity": sum((a.indemnity for a in amounts.values()), ZERO),
    }
    totals["claimed"] = totals["balance"] + totals["late_interest"] + totals["indemnity"]
    return {
        "debtor": {"name": debtor.name, "address": debtor.address, "id": debtor.id},
        "creditor": policy.creditor,
        "invoices": listed,
        "totals": totals,
        "currency": items[0].invoice.currency,
        "today": today,
        "deadline": today + timedelta(days=policy.escalation.deadline_days),
        "consumer": debtor.kind == "consumer",
        "others": [
            {"number": o.number, "due_date": o.due_date, "balance": o.balance, "currency": o.currency}
            for o in others
            if o.balance > 0
        ],
        "payment_urls": [i.invoice.payment_url for i in items if i.invoice.payment_url],
    }


def _invoice_view(invoice: InvoiceRow, a: InvoiceAmounts) -> dict:
    return {
        "number": invoice.number,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "currency": invoice.currency,
        "amount_due": invoice.amount_due,
        "balance": a.balance,
        "paid_so_far": invoice.paid + invoice.credited,
        "paid_on_penalties": a.interest_paid,
        "late_interest": a.late_interest,
        "indemnity": a.indemnity,
        "rate": a.rate,
    }


def address_lines(debtor: DebtorRow) -> list[str]:
    address = debtor.address or {}
    lines = [debtor.name, address.get("line1", "")]
    if address.get("line2"):
        lines.append(address["line2"])
    lines.append(f"{address.get('postal_code', '')} {address.get('city', '')}".strip())
    if address.get("country", "FR") != "FR":
        lines.append(address["country"])
    return [line for line in lines if line]


def _compose(
    channel: str,
    debtor: DebtorRow,
    rendered,
    message_id: str,
    now: datetime,
    step: Step,
    ctx: Context,
    today_text: str,
    policy: Policy,
) -> tuple[str, bytes]:
    if channel == "email":
        content = email_bytes(
            sender=ctx.sender,
            recipient=debtor.email or "",
            subject=rendered.subject,
            body_text=rendered.body_text,
            body_html=rendered.body_html,
            message_id=message_id,
            at=now,
            step=step.name,
        )
        return debtor.email or "", content
    lines = address_lines(debtor)
    creditor = policy.creditor
    city = creditor.address[-1].split(" ", 1)[-1] if creditor.address else ""
    content = letter_pdf(
        creditor=creditor,
        recipient_lines=lines,
        subject=rendered.subject,
        body_text=rendered.body_text,
        reference=message_id.strip("<>"),
        at=now,
        place_date=f"{city}, le {today_text}" if city else today_text,
        registered=channel == "registered_letter",
    )
    return ", ".join(lines), content
