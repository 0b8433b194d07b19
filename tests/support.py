"""Test helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from adapters.store import make_engine, transaction
from config.bootstrap import App, build_app, prepare_store
from config.settings import Settings
from handlers.delivery import deliver
from handlers.handover import deliver_handover
from handlers.messages import (
    AccountingEventReceived,
    DeliverMessage,
    DeliverSignal,
    HandoverCase,
    StepDue,
    StepsDue,
)
from handlers.ports import Publisher, VirtualClock
from handlers.service import ingest_one, run_step, run_steps
from handlers.signals import deliver_signal
from scheduler.tick import tick


class InlinePublisher:
    """A working in-memory broker: keeps published tasks, runs them on ``drain``.

    ``deliveries`` > 1 hands every task to the handlers that many times, as an
    at-least-once broker may.
    """

    def __init__(self) -> None:
        self.queue: deque[Any] = deque()  # taken from the left: a tick may publish 100 000
        self.published: list[Any] = []
        self.app: App | None = None

    def publish(self, tasks: Sequence[object]) -> None:
        self.queue.extend(tasks)
        self.published.extend(tasks)

    def drain(self, *, deliveries: int = 1) -> int:
        ran = 0
        while self.queue:
            task = self.queue.popleft()
            for _ in range(deliveries):
                run_task(cast(App, self.app), task)
            ran += 1
        return ran


def run_task(app: App, task: Any) -> None:
    now = app.clock.now()
    if isinstance(task, StepDue):
        publisher = cast(Publisher, app.publisher)
        run_step(app.units, publisher, task.message_id, task.event, task.step_id, now, app.ctx)
    elif isinstance(task, StepsDue):
        publisher = cast(Publisher, app.publisher)
        run_steps(app.units, publisher, task.message_id, task.creditor_id, task.steps, now, app.ctx)
    elif isinstance(task, DeliverMessage):
        deliver(app.units, task.message_pk, task.attempt, app.clock.now, app.transports, app.ctx)
    elif isinstance(task, HandoverCase):
        deliver_handover(app.units, task.handover_pk, task.attempt, app.clock.now, app.transports, app.ctx)
    elif isinstance(task, DeliverSignal):
        deliver_signal(app.units, task.signal_pk, task.attempt, app.clock.now, app.ctx)
    elif isinstance(task, AccountingEventReceived):
        with app.units() as uow:
            ingest_one(uow, task.raw, now, app.ctx, source=task.source)
    else:  # pragma: no cover
        raise TypeError(task)


def make_test_app(database_url: str, data_dir: Path, start: datetime, **settings: Any) -> App:
    clock = VirtualClock(start)
    publisher = InlinePublisher()
    engine = make_engine(database_url, **(_engine_args(settings)))
    app = build_app(
        Settings(data_dir=data_dir, database_url=database_url, **settings),
        clock=clock,
        publisher=publisher,
        engine=engine,
    )
    publisher.app = app
    prepare_store(app, auto_migrate=True)
    return app


def _engine_args(settings: dict[str, Any]) -> dict[str, Any]:
    return {}


def ingest(app: App, *events: dict[str, Any]) -> list[str | None]:
    statuses: list[str | None] = []
    with app.units() as uow:
        for event in events:
            result = ingest_one(uow, json.dumps(event), app.clock.now(), app.ctx)
            statuses.append(result.status if result.status != "rejected" else result.reason)
    return statuses


def next_planned(app: App) -> datetime | None:
    """The due instant of the earliest planned step not in flight, if any."""
    from sqlalchemy import exists, func, select

    from adapters.orm import PlannedStep, StepLease

    with transaction(app.sessions) as session:
        return session.execute(
            select(func.min(PlannedStep.due_at)).where(
                PlannedStep.status == "planned",
                ~exists().where(StepLease.step_id == PlannedStep.id),  # not in flight
            )
        ).scalar()


def run_until(app: App, end: datetime) -> None:
    """Advance from one planned step to the next while they fall at or before ``end``."""
    while (instant := next_planned(app)) is not None and instant <= end:
        advance(app, instant)


def advance(app: App, to: datetime) -> int:
    """Move the clock, tick once and run everything published; return tasks run."""
    cast(VirtualClock, app.clock).set(to)
    publisher = cast(InlinePublisher, app.publisher)
    tick(app.sessions, publisher, to, lease=app.ctx.lease, batch_size=500)
    return publisher.drain()


DEBTOR = {
    "id": "D-1",
    "name": "ACME Industrie SAS",
    "kind": "business",
    "email": "compta@acme.example",
    "language": "fr",
    "timezone": "Europe/Paris",
    "address": {"line1": "12 rue des Forges", "postal_code": "69007", "city": "Lyon", "country": "FR"},
}


def invoice_issued(
    number: str,
    due: str,
    amount: str = "1200.00",
    *,
    debtor: dict | None = None,
    event_id: str | None = None,
    issued: str = "2026-03-02",
    at: str = "2026-03-02T10:00:00+01:00",
) -> dict[str, Any]:
    debtor = debtor or DEBTOR
    return {
        "event_id": event_id or f"issued-{number}",
        "type": "invoice.issued",
        "occurred_at": at,
        "invoice": {
            "number": number,
            "debtor_id": debtor["id"],
            "issue_date": issued,
            "due_date": due,
            "currency": "EUR",
            "amount_due": amount,
        },
        "debtor": debtor,
    }


def payment(number: str, amount: str, paid_on: str, event_id: str | None = None) -> dict:
    return {
        "event_id": event_id or f"pay-{number}-{amount}-{paid_on}",
        "type": "payment.received",
        "occurred_at": f"{paid_on}T08:00:00+02:00",
        "invoice_number": number,
        "amount": amount,
        "paid_on": paid_on,
    }


# A policy of one step with its creditor and consumer mediator (Code de la consommation L612-1)
POLICY_WITH_MEDIATOR = """
name = "main"
[[steps]]
name = "notice"
offset_days = 3
event = "invoice.overdue"
channels = ["email"]
[creditor]
name = "Atelier Durand SARL"
address = ["3 quai des Arts", "69002 Lyon"]
[mediator]
name = "Médiateur de la consommation CM2C"
website = "https://www.cm2c.net"
address = ["14 rue Saint-Jean", "75017 Paris"]
"""
