"""A batch of due steps reads at once what each debtor's first step reads (``adapters.
dunning_ahead``): as many reads for twenty debtors as for five, the same messages as
step by step, and what is read is read under the batch's locks."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, cast

import pytest
from sqlalchemy import event, func, select, text

from adapters.orm import MessageItem, MessageRow, PlannedStep
from adapters.store import transaction
from handlers import service
from handlers.messages import StepDue, StepsDue
from handlers.service import ingest_one
from relance.reports import verify_chain
from tests.integration.test_batched_steps import (
    DUE_DAY,
    Kept,
    app_with_debtors,
    debtor,
    emitted,
    messages_by_debtor,
)
from tests.support import InlinePublisher, ingest, invoice_issued, payment


def selects_of(app, work) -> int:
    """The SELECT statements sent while ``work`` runs."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(app.engine, "before_cursor_execute", count)
    try:
        work()
    finally:
        event.remove(app.engine, "before_cursor_execute", count)
    return len(seen)


def run_steps(app, message_id: str, steps: list[StepDue], publisher=None) -> bool:
    return service.run_steps(
        app.units, publisher or app.publisher, message_id, "default", steps, DUE_DAY, app.ctx
    )


@pytest.mark.postgres
def test_a_batch_of_twenty_debtors_reads_as_many_times_as_a_batch_of_five(postgres_url, tmp_path):
    debtors = tuple(f"D-{n:02d}" for n in range(25))
    app = app_with_debtors(postgres_url, tmp_path, debtors)
    (batch,) = emitted(app)
    steps = sorted(cast(StepsDue, batch).steps, key=lambda s: s.debtor_id)
    kept = Kept()  # the deliveries are not run: the batch's own statements only

    five = selects_of(app, lambda: run_steps(app, "batch-of-5", steps[:5], kept))
    twenty = selects_of(app, lambda: run_steps(app, "batch-of-20", steps[5:], kept))

    assert five == twenty
    assert twenty <= 10  # the read-ahead's seven reads, the chain head, and no read per debtor
    assert messages_by_debtor(app) == dict.fromkeys(debtors, 1)
    assert len(kept.tasks) == 25
    app.dispose()


def test_two_steps_of_one_debtor_in_a_batch_give_one_message_claiming_both(database_url, tmp_path):
    app = app_with_debtors(database_url, tmp_path)  # D-1 to D-4, one invoice each
    ingest(app, invoice_issued("F-D-1-bis", "2026-04-01", debtor=debtor("D-1")))
    (batch,) = emitted(app)
    steps = cast(StepsDue, batch).steps
    assert sum(1 for s in steps if s.debtor_id == "D-1") == 2

    run_steps(app, batch.message_id, list(steps))
    cast(InlinePublisher, app.publisher).drain()

    assert messages_by_debtor(app) == {"D-1": 1, "D-2": 1, "D-3": 1, "D-4": 1}
    with transaction(app.sessions) as session:
        claimed = session.execute(
            select(func.count())
            .select_from(MessageItem)
            .join(MessageRow, MessageRow.id == MessageItem.message_pk)
            .where(MessageRow.debtor_id == "D-1")
        ).scalar_one()
        pending = session.execute(
            select(func.count())
            .select_from(PlannedStep)
            .where(PlannedStep.step == "pre_due")
            .where(PlannedStep.status != "done")
        ).scalar_one()
    assert claimed == 2 and pending == 0
    # the steps' own messages, as the fallback would send them: nothing more
    for step in steps:
        service.run_step(
            app.units, app.publisher, step.message_id, step.event, step.step_id, DUE_DAY, app.ctx
        )
    cast(InlinePublisher, app.publisher).drain()
    assert messages_by_debtor(app) == {"D-1": 1, "D-2": 1, "D-3": 1, "D-4": 1}
    assert verify_chain(app).ok
    app.dispose()


def blocked_by(app, pid: int) -> int:
    """How many backends wait on a lock ``pid`` holds."""
    with app.engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
                {"pid": pid},
            ).scalar_one()
        )


@pytest.mark.postgres
def test_a_debtor_whose_invoice_is_paid_while_the_batch_waits_for_its_lock_is_not_reminded(
    postgres_url, tmp_path
):
    app = app_with_debtors(postgres_url, tmp_path)
    (batch,) = emitted(app)
    outcome: list[bool] = []
    with app.units() as uow:  # the payment of D-2's invoice, its transaction still open
        ingest_one(uow, _json(payment("F-D-2", "1200.00", "2026-03-26")), DUE_DAY, app.ctx)
        uow.flush()
        payer = int(uow.connection().execute(text("SELECT pg_backend_pid()")).scalar_one())
        worker = threading.Thread(
            target=lambda: outcome.append(run_steps(app, batch.message_id, batch.steps))
        )
        worker.start()
        waited_until = time.monotonic() + 60
        while not blocked_by(app, payer) and time.monotonic() < waited_until:
            time.sleep(0.02)  # the batch reaches D-2's lock
        assert blocked_by(app, payer) == 1
    worker.join()

    assert outcome == [True]
    cast(InlinePublisher, app.publisher).drain()
    assert messages_by_debtor(app) == {"D-1": 1, "D-3": 1, "D-4": 1}
    app.dispose()


def _json(event_: dict) -> str:
    return json.dumps(event_)


def test_a_batch_that_fails_reads_nothing_ahead_into_the_steps_run_one_by_one(
    database_url, tmp_path, monkeypatch
):
    app = app_with_debtors(database_url, tmp_path)
    (batch,) = emitted(app)
    real = service.STEP_HANDLERS["invoice.due"]
    seen: list[object] = []

    def handler(uow, step_id, now, ctx):
        seen.append(getattr(uow, "read_ahead", None))
        if len(seen) == len(batch.steps):  # the batch's last step fails: all is rolled back
            raise RuntimeError("fails once")
        return real(uow, step_id, now, ctx)

    monkeypatch.setitem(service.STEP_HANDLERS, "invoice.due", handler)
    run_steps(app, batch.message_id, batch.steps)
    cast(InlinePublisher, app.publisher).drain()

    steps = len(batch.steps)
    assert all(read is not None for read in seen[:steps])  # the batch read ahead
    assert seen[steps:] == [None] * steps  # each step again, alone: nothing kept from it
    assert messages_by_debtor(app) == dict.fromkeys(("D-1", "D-2", "D-3", "D-4"), 1)
    app.dispose()
