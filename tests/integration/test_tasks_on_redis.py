"""The call step through a real Dramatiq worker on the Redis broker and the PostgreSQL store.

F-1 (1200.00) and F-2 (300.00) of a business with a phone, due Wed 1 April 2026; the call
D+35 = Wed 6 May 09:00 Paris. The scheduler ticks once, then, at 09:00."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from adapters.orm import EvidenceRecord, MessageRow, PlannedStep, TaskRow
from adapters.publisher import QUEUE
from adapters.store import transaction
from handlers.messages import StepDue
from scheduler.tick import tick
from tests.brokered import brokered, on_redis
from tests.integration.test_flow import at
from tests.integration.test_tasks import CALLED, PHONE
from tests.support import ingest, invoice_issued

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def running(postgres_url, redis_url, redis_namespace, tmp_path):
    settings = on_redis(tmp_path, postgres_url, redis_url, redis_namespace)
    with brokered(settings, threads=2) as (app, broker):
        assert type(broker).__name__ == "RedisBroker"
        yield app, broker


def test_a_call_step_handled_by_the_worker_records_one_task_even_when_delivered_again(running):
    """Given both invoices' steps planned and nothing sent yet, when the scheduler ticks at
    the call's instant (a catch-up: every step up to the call is due), then the worker sends
    reminder_3 (the most severe message step) and records one call task for both invoices,
    1500.00 EUR with the phone; when the call steps are published again (a lease that ran
    out), no second task and no second evidence record appear."""
    app, broker = running
    ingest(
        app,
        invoice_issued("F-1", "2026-04-01", "1200.00", debtor=CALLED),
        invoice_issued("F-2", "2026-04-01", "300.00", debtor=CALLED),
    )
    now = at("2026-05-06 09:00")
    app.clock.set(now)
    tick(app.sessions, app.publisher, now, lease=app.ctx.lease, batch_size=50)
    broker.join(QUEUE, timeout=30_000)
    with transaction(app.sessions) as session:
        (task,) = session.execute(select(TaskRow)).scalars().all()
        assert (task.kind, task.phone, task.invoice_numbers, task.amounts) == (
            "call",
            PHONE,
            ["F-1", "F-2"],
            {"EUR": "1500.00"},
        )
        steps = {s.step for s in session.execute(select(MessageRow)).scalars()}
        assert steps == {"reminder_3"}
        calls = session.execute(select(PlannedStep).where(PlannedStep.step == "call")).scalars().all()
        assert {c.status for c in calls} == {"done"}

    app.publisher.publish([StepDue(c.event, c.id, c.due_at, 2) for c in calls])
    broker.join(QUEUE, timeout=30_000)
    with transaction(app.sessions) as session:
        assert session.execute(select(func.count()).select_from(TaskRow)).scalar_one() == 1
        created = (
            select(func.count()).select_from(EvidenceRecord).where(EvidenceRecord.kind == "task.created")
        )
        assert session.execute(created).scalar_one() == 1
