"""A formal notice held for approval, through the Redis broker, the PostgreSQL store and
loopback SMTP: drafted by the worker, approved with the ``relance approve`` command, then
received exactly once, whether the command's publish reaches the broker or not.

F-1 (1 200,00 €, due Wed 1 April 2026) with examples/policies/approval.toml: its formal
notice falls at D+40 = Mon 11 May 2026, 09:00 in Paris. Handled then, every step of the
ladder is due at once (a catch-up): one message per channel led by the formal notice, each a
draft. The approval comes an hour later.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.orm import MessageRow, PlannedStep
from adapters.publisher import QUEUE
from adapters.store import transaction
from handlers.messages import DeliverMessage
from scheduler.tick import tick
from tests.brokered import brokered, on_redis
from tests.support import ingest, invoice_issued

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "policies" / "approval.toml"
RELANCE = str(Path(sys.executable).with_name("relance"))


@pytest.fixture
def running(postgres_url, redis_url, redis_namespace, smtp_server, tmp_path):
    settings = on_redis(tmp_path, postgres_url, redis_url, redis_namespace, smtp_server, policy_file=POLICY)
    with brokered(settings) as (app, broker):
        yield app, broker, smtp_server


def _statuses(app) -> dict[str, str]:
    with transaction(app.sessions) as session:
        return dict(session.execute(select(MessageRow.channel, MessageRow.status)).all())


def _drafted(app, broker, sink) -> None:
    """Tick at the formal notice's instant and let the worker draft it."""
    ingest(app, invoice_issued("F-1", "2026-04-01", "1200.00"))
    with transaction(app.sessions) as session:
        notice = session.execute(
            select(PlannedStep.due_at).where(PlannedStep.step == "formal_notice")
        ).scalar_one()
    app.clock.set(notice)
    tick(app.sessions, app.publisher, notice, lease=app.ctx.lease, batch_size=50)
    broker.join(QUEUE, timeout=20_000)
    assert sink.messages == []
    assert _statuses(app) == {"registered_letter": "draft", "email": "draft"}


def _approve(app, *, through_redis: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    settings = app.settings
    env |= {
        "RELANCE_DATABASE_URL": settings.database_url,
        "RELANCE_POLICY_FILE": str(POLICY),
        "RELANCE_NOW": (app.clock.now() + timedelta(hours=1)).isoformat(),
        "RELANCE_DATA_DIR": str(settings.data_dir),
    }
    if through_redis:
        env |= {"RELANCE_REDIS_URL": settings.redis_url, "RELANCE_REDIS_NAMESPACE": settings.redis_namespace}
    return subprocess.run(
        [RELANCE, "approve", "--all", "--step", "formal_notice", "--by", "marie"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_formal_notice_approved_with_the_command_reaches_the_debtor_once_through_redis(running):
    app, broker, sink = running
    # Given F-1's formal notice drafted by the worker: nothing received yet
    _drafted(app, broker, sink)
    # When marie approves it with the command, which publishes to the broker after commit
    done = _approve(app, through_redis=True)
    assert done.returncode == 0, done.stderr
    broker.join(QUEUE, timeout=20_000)
    # Then the e-mail is received once, the notice's subject naming F-1, and both are sent
    assert len(sink.messages) == 1
    assert "F-1" in sink.messages[0]["Subject"] and sink.messages[0]["To"] == "compta@acme.example"
    assert _statuses(app) == {"registered_letter": "sent", "email": "sent"}
    # And neither a duplicate task nor the scheduler once the lease has run out sends it again
    with transaction(app.sessions) as session:
        email = session.execute(select(MessageRow.id).where(MessageRow.channel == "email")).scalar_one()
    app.publisher.publish([DeliverMessage(email, 0)])
    later = app.clock.now() + timedelta(hours=1) + app.ctx.lease + timedelta(seconds=1)
    app.clock.set(later)
    tick(app.sessions, app.publisher, later, lease=app.ctx.lease, batch_size=50)
    broker.join(QUEUE, timeout=20_000)
    assert len(sink.messages) == 1


def test_an_approval_whose_publish_never_reached_the_broker_is_delivered_by_the_next_tick(running):
    app, broker, sink = running
    # Given F-1's formal notice drafted, approved by a command that publishes nothing
    _drafted(app, broker, sink)
    done = _approve(app, through_redis=False)
    assert done.returncode == 0, done.stderr
    broker.join(QUEUE, timeout=20_000)
    assert sink.messages == []
    # When the scheduler ticks after the approval
    later = app.clock.now() + timedelta(hours=1, seconds=1)
    app.clock.set(later)
    tick(app.sessions, app.publisher, later, lease=app.ctx.lease, batch_size=50)
    broker.join(QUEUE, timeout=20_000)
    # Then the stored approval alone delivers it: the e-mail is received once
    assert len(sink.messages) == 1
    assert _statuses(app) == {"registered_letter": "sent", "email": "sent"}
