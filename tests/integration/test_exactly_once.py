"""Exactly-once effects on at-least-once delivery: concurrent duplicates and a crash window."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import cast

import pytest
from sqlalchemy import func, select

from adapters.orm import MessageRow, PlannedStep
from adapters.store import transaction
from handlers import delivery
from handlers.messages import StepDue
from handlers.ports import VirtualClock
from handlers.service import run_step
from scheduler.tick import tick
from tests.integration.test_flow import at
from tests.support import InlinePublisher, ingest, invoice_issued, make_test_app


@pytest.mark.postgres
def test_the_same_message_handled_by_two_threads_at_once_sends_one_message(postgres_url, tmp_path):
    app = make_test_app(postgres_url, tmp_path, at("2026-03-02 10:00"))
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    now = at("2026-03-27 09:00")
    cast(VirtualClock, app.clock).set(now)
    publisher = cast(InlinePublisher, app.publisher)
    tick(app.sessions, publisher, now, lease=app.ctx.lease, batch_size=10)
    (task,) = publisher.queue
    publisher.queue.clear()
    barrier = threading.Barrier(2)
    outcomes: list[bool] = []

    def handle() -> None:
        barrier.wait()
        outcomes.append(
            run_step(app.units, publisher, task.message_id, task.event, task.step_id, now, app.ctx)
        )

    threads = [threading.Thread(target=handle) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with transaction(app.sessions) as session:
        messages = session.execute(select(func.count()).select_from(MessageRow)).scalar_one()
    assert messages == 1
    assert sorted(outcomes) == [False, True]  # one did the work, one saw a duplicate
    app.dispose()


def test_a_crash_after_the_server_accepted_resends_the_same_bytes_once(smtp_server, tmp_path, monkeypatch):
    """Worst case of the design: the debtor can get one identical copy, same Message-ID."""
    app = make_test_app(
        f"sqlite:///{tmp_path / 'r.db'}",
        tmp_path,
        at("2026-03-02 10:00"),
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_tls="none",
    )
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    real_mark_sent = delivery._mark_sent

    def crash(*_args, **_kwargs):
        raise SystemExit("process killed between SMTP acceptance and commit")

    monkeypatch.setattr(delivery, "_mark_sent", crash)
    with pytest.raises(SystemExit):
        tick_and_run(app, at("2026-03-27 09:00"))
    assert len(smtp_server.messages) == 1
    with transaction(app.sessions) as session:
        assert session.execute(select(MessageRow.status)).scalar_one() == "pending"

    monkeypatch.setattr(delivery, "_mark_sent", real_mark_sent)
    tick_and_run(app, at("2026-03-27 09:00") + app.ctx.lease - timedelta(seconds=1))
    assert len(smtp_server.messages) == 1  # the lease still runs: nothing re-sent
    tick_and_run(app, at("2026-03-27 09:00") + app.ctx.lease + timedelta(seconds=1))
    first, second = smtp_server.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert first.as_bytes() == second.as_bytes()
    tick_and_run(app, at("2026-03-28 09:00"))
    assert len(smtp_server.messages) == 2  # sent: no third copy
    with transaction(app.sessions) as session:
        assert session.execute(select(MessageRow.status)).scalar_one() == "sent"
        assert (
            session.execute(select(PlannedStep.status).where(PlannedStep.step == "pre_due")).scalar_one()
            == "done"
        )
    app.dispose()


def tick_and_run(app, now) -> None:
    app.clock.set(now)
    tick(app.sessions, app.publisher, now, lease=app.ctx.lease, batch_size=50)
    app.publisher.drain()


def test_a_step_message_whose_step_was_done_elsewhere_changes_nothing(tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'r.db'}", tmp_path, at("2026-03-02 10:00"))
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    tick_and_run(app, at("2026-03-27 09:00"))
    with transaction(app.sessions) as session:
        step = session.execute(select(PlannedStep).where(PlannedStep.step == "pre_due")).scalar_one()
    # a stale copy with another id (an old emission) arrives after the work was done
    stale = StepDue("invoice.due", step.id, step.due_at, 7)
    assert (
        run_step(
            app.units,
            cast(InlinePublisher, app.publisher),
            stale.message_id,
            stale.event,
            stale.step_id,
            app.clock.now(),
            app.ctx,
        )
        is True
    )
    with transaction(app.sessions) as session:
        assert session.execute(select(func.count()).select_from(MessageRow)).scalar_one() == 1
    app.dispose()
