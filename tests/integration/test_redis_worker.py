"""A real Dramatiq worker on the real Redis broker, the PostgreSQL store and loopback SMTP."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from adapters.orm import MessageRow, PlannedStep
from adapters.publisher import QUEUE
from adapters.store import transaction
from handlers.messages import StepDue
from scheduler.tick import tick
from tests.brokered import brokered, on_redis
from tests.integration.test_flow import at
from tests.support import ingest, invoice_issued

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def running(postgres_url, redis_url, redis_namespace, smtp_server, tmp_path):
    settings = on_redis(tmp_path, postgres_url, redis_url, redis_namespace, smtp_server)
    with brokered(settings) as (app, broker):
        assert type(broker).__name__ == "RedisBroker"
        yield app, broker, smtp_server


def test_scheduler_events_through_redis_send_one_email_per_step_even_when_repeated(running):
    app, broker, sink = running
    ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
    now = at("2026-03-27 09:00")
    app.clock.set(now)
    result = tick(app.sessions, app.publisher, now, lease=app.ctx.lease, batch_size=50)
    assert result.steps == 1
    broker.join(QUEUE, timeout=20_000)
    assert len(sink.messages) == 1
    assert sink.messages[0]["To"] == "compta@acme.example"
    assert "F-1" in sink.messages[0]["Subject"]

    with transaction(app.sessions) as session:
        step = session.execute(select(PlannedStep).where(PlannedStep.step == "pre_due")).scalar_one()
        sent = session.execute(select(MessageRow)).scalar_one()
    assert step.status == "done" and sent.status == "sent"
    # the same scheduler event again, twice: nothing more leaves
    again = StepDue("invoice.due", step.id, step.due_at)
    app.publisher.publish([again, again])
    broker.join(QUEUE, timeout=20_000)
    assert len(sink.messages) == 1
    with transaction(app.sessions) as session:
        assert session.execute(select(func.count()).select_from(MessageRow)).scalar_one() == 1


def test_producers_can_send_accounting_events_to_the_actor(running):
    import json

    from handlers.messages import AccountingEventReceived

    app, broker, _ = running
    app.publisher.publish([AccountingEventReceived(json.dumps(invoice_issued("F-9", "2026-05-04")), "erp")])
    broker.join(QUEUE, timeout=20_000)
    with transaction(app.sessions) as session:
        steps = session.execute(
            select(func.count()).select_from(PlannedStep).where(PlannedStep.step != "prescription_warning")
        ).scalar_one()
    assert steps == 8  # the default ladder: seven messages and the call
