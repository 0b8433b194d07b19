"""Steps done by a person: the tasks a ``call`` or ``task`` step creates, and their outcomes.

A step whose channels are ``call`` or ``task`` sends nothing: the reminder path records one
task per debtor and kind for the steps due together (``handlers.decide.Task``), with the
debtor's phone, the invoices, their balances per currency and the day it is due. An
operator closes it with an outcome (``relance task done``); a promise or a dispute becomes
the accounting event it stands for (``outcome_events``), ingested like any other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import structlog

from handlers import evidence
from handlers.decide import Task
from handlers.dunning import DebtorFacts, DunningStore, InvoiceFacts, NewTask
from handlers.messages import keyed_id

log = structlog.get_logger("relance.tasks")

OUTCOMES = ("promise", "dispute", "no_answer", "wrong_number", "paid_claimed", "other")
OPEN, DONE = "open", "done"


class _DueItem(Protocol):
    """What the reminder path knows of a due step (``handlers.reminders.Due``)."""

    @property
    def invoice(self) -> InvoiceFacts: ...


def task_key(key: bytes, creditor: str, kind: str, claims: list[tuple[str, str]]) -> str:
    """Stable for a creditor, a kind and the (invoice number, step) covered; keyed like a
    Message-ID, so that a redelivered step never records its task twice."""
    parts = sorted(f"{number}/{step}" for number, step in claims)
    return keyed_id(key, "task", creditor, kind, *parts)


def balances(invoices: list[InvoiceFacts]) -> dict[str, str]:
    """The balance of ``invoices`` per currency, as exact decimal text."""
    totals: dict[str, Decimal] = {}
    for invoice in invoices:
        totals[invoice.currency] = totals.get(invoice.currency, Decimal("0.00")) + invoice.balance
    return {currency: str(amount) for currency, amount in sorted(totals.items())}


def record_task(
    store: DunningStore,
    debtor: DebtorFacts,
    task: Task,
    by_step: Mapping[int, _DueItem],
    now: datetime,
    today: date,
    message_key: bytes,
) -> str:
    """Record ``task`` (once), its evidence and log; the reason its steps are done."""
    items = [(c, by_step[c.step_id]) for c in task.claims]
    invoices = list({item.invoice.id: item.invoice for _, item in items}.values())
    numbers = tuple(i.number for i in invoices)
    claimed = [(item.invoice.number, claim.step) for claim, item in items]
    new = NewTask(
        key=task_key(message_key, debtor.creditor_id, task.kind, claimed),
        debtor_id=debtor.id,
        kind=task.kind,
        step=task.lead_step,
        phone=debtor.phone,
        invoice_numbers=numbers,
        amounts=balances(invoices),
        due_on=today,
        created_at=now,
        claims=tuple((item.invoice.id, claim.step) for claim, item in items),
    )
    task_id, created = store.record_task(new)
    if created:
        payload = {
            "action": "task.created",
            "task_id": task_id,
            "step": task.lead_step,
            "channel": task.kind,
            "debtor_id": debtor.id,
            "phone": debtor.phone,
            "invoice_numbers": list(numbers),
            "amounts": new.amounts,
            "due_on": today.isoformat(),
        }
        evidence.append(
            store, "task.created", now, payload, debtor_id=debtor.id, invoice_numbers=list(numbers)
        )
        log.info(
            "task.created",
            task_id=task_id,
            debtor_id=debtor.id,
            step=task.lead_step,
            kind=task.kind,
            invoice_numbers=list(numbers[:50]),
            invoice_count=len(numbers),
        )
    return f"task {task_id} created for a person ({task.kind})"


@dataclass(frozen=True)
class Outcome:
    """What an operator reports of a done task."""

    outcome: str
    note: str | None = None
    promised_date: date | None = None
    by: str = "operator"


def outcome_problem(outcome: Outcome, today: date) -> str | None:
    """Why the outcome cannot be recorded (None: it can)."""
    if outcome.outcome not in OUTCOMES:
        return f"--outcome {outcome.outcome!r}: use one of {', '.join(OUTCOMES)}"
    if outcome.outcome == "promise" and outcome.promised_date is None:
        return "--outcome promise needs --promised-date YYYY-MM-DD"
    if outcome.promised_date is not None and outcome.promised_date < today:
        return f"--promised-date {outcome.promised_date.isoformat()} is before today ({today.isoformat()})"
    if outcome.outcome != "promise" and outcome.promised_date is not None:
        return "--promised-date goes with --outcome promise only"
    if outcome.note is not None and any(ord(c) < 32 and c not in "\n\t" for c in outcome.note):
        return "--note: no control characters"
    if outcome.note is not None and len(outcome.note) > 2000:
        return "--note: at most 2000 characters"
    return None


def outcome_events(
    task_id: int, invoice_numbers: list[str], outcome: Outcome, now: datetime, creditor: str
) -> list[dict[str, Any]]:
    """The accounting events a promise or a dispute stands for, one per invoice of the task;
    their ids come from the task's, so that reporting the outcome again adds nothing."""
    if outcome.outcome not in ("promise", "dispute"):
        return []
    events = []
    for number in invoice_numbers:
        event: dict[str, Any] = {
            "event_id": f"task-{task_id}-{outcome.outcome}-{number}",
            "occurred_at": now.isoformat(),
            "creditor_id": creditor,
            "invoice_number": number,
        }
        if outcome.outcome == "promise":
            assert outcome.promised_date is not None
            event |= {"type": "promise_to_pay.recorded", "promised_date": outcome.promised_date.isoformat()}
        else:
            reason = outcome.note or f"disputed during task {task_id}"
            event |= {"type": "invoice.disputed", "reason": reason}
        events.append(event)
    return events


def done_payload(task_id: int, debtor_id: str, numbers: list[str], outcome: Outcome) -> dict[str, Any]:
    """The evidence of a done task: the note is kept on the task row, its digest here."""
    note = outcome.note
    return {
        "action": "task.done",
        "task_id": task_id,
        "outcome": outcome.outcome,
        "promised_date": outcome.promised_date.isoformat() if outcome.promised_date else None,
        "note_sha256": hashlib.sha256(note.encode("utf-8")).hexdigest() if note else None,
        "by": outcome.by,
        "debtor_id": debtor_id,
        "invoice_numbers": numbers,
    }
