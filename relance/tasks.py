"""``relance tasks`` and ``relance task done``: the calls and other manual actions people do.

Tasks are created by the reminder path (``handlers.manual``). Listing reads them; reporting
an outcome closes one, records its evidence and, for a promise or a dispute, ingests the
events it stands for in the same transaction, so that dunning pauses exactly as it would on
those events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import structlog
from sqlalchemy import select

from adapters.orm import TaskRow
from adapters.store import transaction
from config.bootstrap import App
from handlers import evidence
from handlers.calendar import local_date
from handlers.manual import DONE, OPEN, Outcome, done_payload, outcome_events, outcome_problem
from handlers.service import ingest_one

log = structlog.get_logger("relance.tasks")


class TaskRefused(Exception):
    """The operator asked for something that cannot be done: one line, exit 2."""


@dataclass(frozen=True)
class Reported:
    """What reporting an outcome did: the task and each event it stands for."""

    task_id: int
    outcome: str
    events: tuple[tuple[str, str, str | None], ...]  # (event id, status, reason)


def list_tasks(app: App, due: bool = False, creditor: str | None = None) -> Iterator[str]:
    """The open tasks, oldest due day first, one tab-separated line each; with ``due``
    only those due on or before today (the policy's time zone, the service's clock)."""
    today = local_date(app.clock.now(), app.ctx.policy.timezone)
    with transaction(app.sessions) as session:
        session.scope(creditor)
        query = select(TaskRow).where(TaskRow.status == OPEN)
        if due:
            query = query.where(TaskRow.due_on <= today)
        rows = session.execute(query.order_by(TaskRow.due_on, TaskRow.id)).scalars().all()
        lines = [_line(row, today) for row in rows]
    yield from lines
    yield f"{len(lines)} open task(s)" + (f" due by {today.isoformat()}" if due else "")


def _line(row: TaskRow, today: date) -> str:
    amounts = ", ".join(f"{amount} {currency}" for currency, amount in sorted(row.amounts.items()))
    late = " (overdue)" if row.due_on < today else ""
    return "\t".join(
        [
            str(row.id),
            row.creditor_id,
            row.kind,
            row.step,
            row.debtor_id,
            row.phone or "no phone",
            ",".join(row.invoice_numbers),
            amounts,
            f"due {row.due_on.isoformat()}{late}",
        ]
    )


def complete_task(app: App, task_id: int, outcome: Outcome) -> Reported:
    """Close task ``task_id`` with ``outcome``; raises TaskRefused for an unknown id, a task
    already done or an outcome that does not hold."""
    now = app.clock.now()
    with transaction(app.sessions) as session:
        session.scope(None)
        found = session.get(TaskRow, task_id, with_for_update=True)
        if found is None:
            raise TaskRefused(f"no task {task_id}")
        creditor = found.creditor_id
        session.scope(creditor)
        if found.status == DONE:
            raise TaskRefused(f"task {task_id} is already done ({found.outcome}, {found.done_at:%Y-%m-%d})")
        problem = outcome_problem(outcome, local_date(now, app.ctx.policy.timezone))
        if problem is not None:
            raise TaskRefused(problem)
        found.status, found.outcome, found.note = DONE, outcome.outcome, outcome.note
        found.promised_date, found.done_by, found.done_at = outcome.promised_date, outcome.by, now
        numbers = list(found.invoice_numbers)
        payload = done_payload(task_id, found.debtor_id, numbers, outcome)
        evidence.append(
            session, "task.done", now, payload, debtor_id=found.debtor_id, invoice_numbers=numbers
        )
        results = []
        for event in outcome_events(task_id, numbers, outcome, now, creditor):
            result = ingest_one(session, json.dumps(event), now, app.ctx, source=f"task {task_id}")
            results.append((event["event_id"], result.status, result.reason))
    log.info(
        "task.done",
        task_id=task_id,
        creditor_id=creditor,
        outcome=outcome.outcome,
        by=outcome.by,
        events=[{"event_id": e, "status": s} for e, s, _ in results],
    )
    return Reported(task_id, outcome.outcome, tuple(results))
