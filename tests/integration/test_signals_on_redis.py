"""Signals through a real Dramatiq worker on the Redis broker and the PostgreSQL store: the
reminder's level signal, retried by the scheduler after a 503, and the payment's signals
sent by the accounting_event actor, all received signed by a loopback server."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from adapters.orm import SignalRow
from adapters.publisher import QUEUE
from adapters.store import transaction
from handlers.messages import AccountingEventReceived
from scheduler.tick import tick
from tests.brokered import brokered, on_redis
from tests.integration.test_flow import at
from tests.integration.test_handover import PartnerEndpoint
from tests.integration.test_signals_out import ALL, SECRET, SECRET_ENV, timestamp_signed, webhooks_file
from tests.support import ingest, invoice_issued, payment

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def erp():
    with PartnerEndpoint(SECRET, [503, 200], signed=timestamp_signed) as endpoint:
        yield endpoint


@pytest.fixture
def running(postgres_url, redis_url, redis_namespace, smtp_server, tmp_path, monkeypatch, erp):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    settings = on_redis(
        tmp_path,
        postgres_url,
        redis_url,
        redis_namespace,
        smtp_server,
        webhooks_file=webhooks_file(tmp_path, erp.url, ALL),
    )
    with brokered(settings, threads=2) as (app, broker):
        assert type(broker).__name__ == "RedisBroker"
        yield app, broker


def rows(app) -> list[SignalRow]:
    with transaction(app.sessions) as session:
        session.scope(None)
        return list(session.execute(select(SignalRow).order_by(SignalRow.id)).scalars())


def test_signals_go_through_the_broker_and_are_retried_from_the_database(running, erp):
    app, broker = running
    ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
    now = at("2026-03-27 09:00")
    app.clock.set(now)
    tick(app.sessions, app.publisher, now, lease=app.ctx.lease, batch_size=50)
    broker.join(QUEUE, timeout=20_000)
    [level] = rows(app)
    assert (level.signal_type, level.status, level.attempts, level.response_code) == (
        "debtor.level_changed",
        "pending",
        1,
        503,
    )
    later = now + timedelta(seconds=30)
    app.clock.set(later)
    result = tick(app.sessions, app.publisher, later, lease=app.ctx.lease, batch_size=50)
    assert result.signals == 1
    broker.join(QUEUE, timeout=20_000)
    [level] = rows(app)
    assert (level.status, level.attempts, level.response_code) == ("delivered", 2, 200)

    app.clock.set(at("2026-03-30 09:00"))
    raw = json.dumps(payment("F-1", "1200.00", "2026-03-30"))
    app.publisher.publish([AccountingEventReceived(raw, "erp")])
    broker.join(QUEUE, timeout=20_000)
    for _ in range(50):  # the actor publishes the signals' tasks once its event committed
        if all(r.status == "delivered" for r in rows(app)) and len(rows(app)) == 3:
            break
        broker.join(QUEUE, timeout=20_000)
    done = rows(app)
    assert [(r.signal_type, r.status) for r in done] == [
        ("debtor.level_changed", "delivered"),
        ("invoice.settled", "delivered"),
        ("debtor.level_changed", "delivered"),
    ]
    assert [r["answered"] for r in erp.requests] == [503, 200, 200, 200]
    assert all(r["verified"] for r in erp.requests)
    bodies = [json.loads(r["body"]) for r in erp.requests]
    assert bodies[0] == bodies[1]  # the retry: the same body, the same key
    assert erp.requests[0]["headers"]["Idempotency-Key"] == erp.requests[1]["headers"]["Idempotency-Key"]
    assert bodies[1]["data"]["level"] == "pre_due" and bodies[3]["data"]["level"] is None
    assert bodies[2]["data"] == {
        "debtor_id": "D-1",
        "invoice_number": "F-1",
        "currency": "EUR",
        "amount_due": "1200.00",
        "paid": "1200.00",
        "credited": "0.00",
    }
