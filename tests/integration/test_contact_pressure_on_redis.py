"""Contact pressure through the Redis broker, a real Dramatiq worker, the PostgreSQL store
and loopback SMTP: e-mails to one debtor keep the policy's three days apart.

examples/contact_pressure.jsonl: CLI-ROSE owes F-2026-0301 (800.00, due Mon 6 April 2026)
and F-2026-0302 (450.00, due Tue 7 April). Without the rule its e-mails would leave on
consecutive days (pre_due of each, then due of each, notice of each…). With it, as
``relance simulate`` prints: 1 April (pre_due F-0301), 7 April (due, both: 1 + 3 = 4 April
is a Saturday, the next business day 6 April is Easter Monday), 10 April (notice, both:
7 + 3), 16 April (reminder_1 F-0301, its own day D+10) and 20 April (reminder_1 F-0302:
D+10 = 17 April would be 1 day after the 16th; 16 + 3 = 19 is a Sunday → Monday 20).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from adapters.orm import MessageRow
from adapters.publisher import QUEUE
from adapters.store import transaction
from scheduler.tick import tick
from tests.brokered import brokered, on_redis
from tests.support import ingest, next_planned

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contact_pressure.jsonl"
END = datetime(2026, 4, 21, 0, 0, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.fixture
def running(postgres_url, redis_url, redis_namespace, smtp_server, tmp_path):
    settings = on_redis(tmp_path, postgres_url, redis_url, redis_namespace, smtp_server)
    with brokered(settings, threads=2) as (app, broker):
        yield app, broker, smtp_server


def test_e_mails_to_one_debtor_keep_three_days_apart_through_the_broker(running):
    app, broker, sink = running
    events = [json.loads(line) for line in EXAMPLE.read_text(encoding="utf-8").splitlines()]
    assert ingest(app, *events) == ["accepted", "accepted"]
    # When the scheduler ticks at each planned instant up to 21 April, the worker sending
    while (instant := next_planned(app)) is not None and instant < END:
        app.clock.set(instant)
        tick(app.sessions, app.publisher, instant, lease=app.ctx.lease, batch_size=50)
        broker.join(QUEUE, timeout=20_000)
    # Then five e-mails left, on the days simulate shows, never fewer than 3 days apart
    with transaction(app.sessions) as session:
        sent = session.execute(
            select(MessageRow.local_day, MessageRow.step)
            .where(MessageRow.channel == "email")
            .order_by(MessageRow.local_day)
        ).all()
    assert [(day, step) for day, step in sent] == [
        (date(2026, 4, 1), "pre_due"),
        (date(2026, 4, 7), "due"),
        (date(2026, 4, 10), "notice"),
        (date(2026, 4, 16), "reminder_1"),
        (date(2026, 4, 20), "reminder_1"),
    ]
    assert len(sink.messages) == 5
    days = [day for day, _ in sent]
    assert all((b - a).days >= 3 for a, b in pairwise(days))
