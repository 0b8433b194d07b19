"""Several due steps in one broker message (``StepsDue``): one transaction for the batch,
one per step when any of them fails, and nothing sent twice whatever is delivered twice."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest
from sqlalchemy import func, select

from adapters.orm import MessageRow, PlannedStep
from adapters.store import transaction
from handlers import service
from handlers.messages import DeliverMessage, StepDue, StepsDue
from handlers.ports import VirtualClock
from relance.reports import verify_chain
from scheduler.tick import tick
from tests.integration.test_flow import at
from tests.support import DEBTOR, InlinePublisher, ingest, invoice_issued, make_test_app, run_task

DUE_DAY = at("2026-03-27 09:00")  # the pre-due step of invoices due on 1 April
DEBTORS = ("D-1", "D-2", "D-3", "D-4")


def debtor(debtor_id: str) -> dict[str, Any]:
    return {**DEBTOR, "id": debtor_id, "email": f"{debtor_id.lower()}@acme.example"}


def app_with_debtors(database_url, tmp_path, debtors=DEBTORS):
    app = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    ingest(app, *(invoice_issued(f"F-{d}", "2026-04-01", debtor=debtor(d)) for d in debtors))
    return app


def emitted(app, now=DUE_DAY, worker_batch: int = 50) -> list[object]:
    """Tick at ``now`` with ``worker_batch``; the tasks it published, taken off the queue."""
    cast(VirtualClock, app.clock).set(now)
    publisher = cast(InlinePublisher, app.publisher)
    tick(app.sessions, publisher, now, lease=app.ctx.lease, batch_size=500, worker_batch=worker_batch)
    tasks = list(publisher.queue)
    publisher.queue.clear()
    return tasks


def messages_by_debtor(app) -> dict[str, int]:
    with transaction(app.sessions) as session:
        rows = session.execute(
            select(MessageRow.debtor_id, func.count()).group_by(MessageRow.debtor_id)
        ).all()
    return {debtor_id: n for debtor_id, n in rows}


def sent(app) -> int:
    with transaction(app.sessions) as session:
        return session.execute(
            select(func.count()).select_from(MessageRow).where(MessageRow.status == "sent")
        ).scalar_one()


def emails(app) -> list:
    folder = app.settings.outbox_dir / "email"
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def failing_for(monkeypatch, debtor_id: str) -> None:
    """The reminder handler raises for ``debtor_id``'s steps, as a bug on its data would."""
    real = service.STEP_HANDLERS["invoice.due"]

    def handler(uow, step_id, now, ctx):
        step = uow.store.step(step_id)
        if step is not None and step.debtor_id == debtor_id:
            raise RuntimeError(f"cannot compose for {debtor_id}")
        return real(uow, step_id, now, ctx)

    monkeypatch.setitem(service.STEP_HANDLERS, "invoice.due", handler)


def test_the_due_steps_of_a_creditor_go_out_as_one_batch_and_each_debtor_gets_one_email(
    database_url, tmp_path
):
    app = app_with_debtors(database_url, tmp_path)
    (batch,) = emitted(app)
    assert isinstance(batch, StepsDue)
    assert batch.creditor_id == "default"
    assert sorted(step.debtor_id for step in batch.steps) == sorted(DEBTORS)

    run_task(app, batch)
    cast(InlinePublisher, app.publisher).drain()

    assert messages_by_debtor(app) == dict.fromkeys(DEBTORS, 1)
    assert sent(app) == len(DEBTORS) and len(emails(app)) == len(DEBTORS)
    with transaction(app.sessions) as session:
        statuses = session.execute(select(PlannedStep.status).where(PlannedStep.step == "pre_due")).scalars()
        assert set(statuses) == {"done"}
    assert verify_chain(app).ok
    app.dispose()


def test_a_batch_delivered_twice_sends_nothing_twice(database_url, tmp_path):
    app = app_with_debtors(database_url, tmp_path)
    (batch,) = emitted(app)
    run_task(app, batch)
    again = service.run_steps(
        app.units, app.publisher, batch.message_id, batch.creditor_id, batch.steps, DUE_DAY, app.ctx
    )
    assert again is False  # the inbox knew the batch
    # and each step's own message, as the fallback or an older emission would send it
    for step in batch.steps:
        run_task(app, step)
    cast(InlinePublisher, app.publisher).drain()
    assert messages_by_debtor(app) == dict.fromkeys(DEBTORS, 1)
    assert len(emails(app)) == len(DEBTORS)
    app.dispose()


def test_one_debtor_failing_in_a_batch_fails_alone_and_the_others_are_sent_once(
    database_url, tmp_path, monkeypatch
):
    app = app_with_debtors(database_url, tmp_path)
    (batch,) = emitted(app)
    failing_for(monkeypatch, "D-3")

    with pytest.raises(RuntimeError, match="cannot compose for D-3"):
        run_task(app, batch)  # the broker will retry the batch
    cast(InlinePublisher, app.publisher).drain()
    assert messages_by_debtor(app) == {"D-1": 1, "D-2": 1, "D-4": 1}
    assert len(emails(app)) == 3

    with pytest.raises(RuntimeError):
        run_task(app, batch)  # a retry while the fault lasts: the others stay as they were
    cast(InlinePublisher, app.publisher).drain()
    assert messages_by_debtor(app) == {"D-1": 1, "D-2": 1, "D-4": 1}

    monkeypatch.undo()  # the fault is repaired before the last retry
    run_task(app, batch)
    cast(InlinePublisher, app.publisher).drain()
    assert messages_by_debtor(app) == dict.fromkeys(DEBTORS, 1)
    assert sent(app) == 4 and len(emails(app)) == 4
    assert verify_chain(app).ok
    app.dispose()


def test_a_failed_debtor_left_to_its_lease_is_emitted_again_and_sent_once(
    database_url, tmp_path, monkeypatch
):
    app = app_with_debtors(database_url, tmp_path)
    (batch,) = emitted(app)
    failing_for(monkeypatch, "D-2")
    with pytest.raises(RuntimeError):
        run_task(app, batch)  # every retry failed: the broker gives the batch up
    monkeypatch.undo()
    cast(InlinePublisher, app.publisher).drain()

    again = emitted(app, DUE_DAY + app.ctx.lease + app.ctx.lease / 10)
    assert [type(task) for task in again] == [StepDue]  # D-2's step alone, a new emission
    (retry,) = again
    assert cast(StepDue, retry).debtor_id == "D-2" and cast(StepDue, retry).emission == 2
    run_task(app, retry)
    cast(InlinePublisher, app.publisher).drain()
    assert messages_by_debtor(app) == dict.fromkeys(DEBTORS, 1)
    assert len(emails(app)) == 4
    app.dispose()


def test_a_batch_of_one_is_the_steps_own_message_and_a_worker_batch_of_one_is_todays_path(
    database_url, tmp_path
):
    app = app_with_debtors(database_url, tmp_path)
    tasks = emitted(app, worker_batch=1)
    assert [type(task) for task in tasks] == [StepDue] * len(DEBTORS)
    for task in tasks:
        run_task(app, task)
    cast(InlinePublisher, app.publisher).drain()
    assert messages_by_debtor(app) == dict.fromkeys(DEBTORS, 1)
    app.dispose()


def test_batches_are_cut_at_the_worker_batch_and_every_debtor_is_sent_once(database_url, tmp_path):
    app = app_with_debtors(database_url, tmp_path)
    tasks = emitted(app, worker_batch=3)
    assert sorted(len(cast(StepsDue, t).steps) if isinstance(t, StepsDue) else 1 for t in tasks) == [1, 3]
    for task in tasks:
        run_task(app, task)
    cast(InlinePublisher, app.publisher).drain()
    assert messages_by_debtor(app) == dict.fromkeys(DEBTORS, 1)
    app.dispose()


@pytest.mark.postgres
def test_the_same_batch_handled_by_two_threads_at_once_sends_each_message_once(postgres_url, tmp_path):
    app = app_with_debtors(postgres_url, tmp_path)
    (batch,) = emitted(app)
    batch = cast(StepsDue, batch)
    barrier = threading.Barrier(2)
    outcomes: list[bool] = []

    def handle() -> None:
        barrier.wait()
        outcomes.append(
            service.run_steps(
                app.units, app.publisher, batch.message_id, batch.creditor_id, batch.steps, DUE_DAY, app.ctx
            )
        )

    threads = [threading.Thread(target=handle) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False, True]  # one did the work, one saw a duplicate
    cast(InlinePublisher, app.publisher).drain()
    assert messages_by_debtor(app) == dict.fromkeys(DEBTORS, 1)
    assert len(emails(app)) == len(DEBTORS)
    app.dispose()


class Kept:
    """A publisher that keeps the tasks it is given (the worker's own, before it sends)."""

    def __init__(self) -> None:
        self.tasks: list[object] = []

    def publish(self, tasks) -> None:
        self.tasks.extend(tasks)


def test_a_message_a_batch_reaches_late_is_claimed_first_and_not_sent_twice(smtp_server, tmp_path):
    """The last messages of a long batch may start after the scheduler, its lease run out,
    has handed them to another worker: past a tenth of the lease, the worker claims each first."""
    from worker.actors import _DeliverHere

    app = make_test_app(
        f"sqlite:///{tmp_path / 'r.db'}",
        tmp_path,
        at("2026-03-02 10:00"),
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_tls="none",
    )
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    (step,) = emitted(app, worker_batch=1)
    here = _DeliverHere(app)  # the worker starts on the step at DUE_DAY
    kept = Kept()
    service.run_steps(app.units, kept, "batch-1", "default", [cast(StepDue, step)], DUE_DAY, app.ctx)
    (recorded,) = kept.tasks

    # the batch ran past the message's lease: the scheduler re-emitted it, another worker sent it
    later = DUE_DAY + app.ctx.lease + app.ctx.lease / 10
    retries = emitted(app, later)
    assert len(retries) == 1
    cast(InlinePublisher, app.publisher).queue.extend(retries)
    cast(InlinePublisher, app.publisher).drain()
    assert len(smtp_server.messages) == 1

    here.publish([recorded])  # then this worker comes to it
    assert len(smtp_server.messages) == 1
    assert sent(app) == 1
    app.dispose()


def test_a_message_too_big_to_ride_with_its_task_is_read_back_and_sent_once_by_its_worker(
    monkeypatch, tmp_path
):
    """Past ``RECORDED_WITH_ITS_TASK`` bytes (a catch-up's statement), the delivery task
    carries no bytes: the worker that recorded the message claims it and sends the stored
    bytes, once."""
    from handlers import reminders
    from worker.actors import _DeliverHere

    monkeypatch.setattr(reminders, "RECORDED_WITH_ITS_TASK", 0)  # every message is "too big"
    app = make_test_app(f"sqlite:///{tmp_path / 'r.db'}", tmp_path, at("2026-03-02 10:00"))
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    (step,) = emitted(app, worker_batch=1)
    here = _DeliverHere(app)
    kept = Kept()
    service.run_steps(app.units, kept, "batch-1", "default", [cast(StepDue, step)], DUE_DAY, app.ctx)
    (task,) = kept.tasks
    assert isinstance(task, DeliverMessage) and task.recorded is None

    here.publish([task])
    here.publish([task])  # delivered twice: the second finds it taken
    with transaction(app.sessions) as session:
        (row,) = session.execute(select(MessageRow)).scalars().all()
        stored, status, attempts = row.content, row.status, row.attempts
    (email,) = emails(app)
    assert email.read_bytes() == stored
    assert (status, attempts) == ("sent", 1)
    app.dispose()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_batch_through_redis_and_dramatiq_sends_one_email_per_debtor_even_when_repeated(
    postgres_url, redis_url, redis_namespace, smtp_server, tmp_path
):
    from adapters.publisher import QUEUE
    from tests.brokered import brokered, on_redis

    settings = on_redis(tmp_path, postgres_url, redis_url, redis_namespace, smtp_server)
    with brokered(settings) as (app, broker):
        ingest(app, *(invoice_issued(f"F-{d}", "2026-04-01", debtor=debtor(d)) for d in DEBTORS))
        app.clock.set(DUE_DAY)
        result = tick(
            app.sessions, app.publisher, DUE_DAY, lease=app.ctx.lease, batch_size=50, worker_batch=50
        )
        assert result.steps == len(DEBTORS)
        broker.join(QUEUE, timeout=30_000)
        assert sorted(str(m["To"]) for m in smtp_server.messages) == sorted(
            f"{d.lower()}@acme.example" for d in DEBTORS
        )
        with transaction(app.sessions) as session:
            steps = session.execute(select(PlannedStep).where(PlannedStep.step == "pre_due")).scalars().all()
        again = StepsDue(
            "default",
            tuple(StepDue("invoice.due", s.id, s.due_at, 1, s.creditor_id, s.debtor_id) for s in steps),
        )
        app.publisher.publish([again, again])
        broker.join(QUEUE, timeout=30_000)
        assert len(smtp_server.messages) == len(DEBTORS)
        assert messages_by_debtor(app) == dict.fromkeys(DEBTORS, 1)


def test_a_debtors_several_due_steps_in_one_batch_make_the_messages_they_make_alone(database_url, tmp_path):
    """The first step's handler decides for all the debtor's due steps; the next steps of the
    batch find them done, in the same transaction, and add nothing."""
    batched = make_test_app(database_url, tmp_path / "batched", at("2026-03-02 10:00"))
    alone = make_test_app(f"sqlite:///{tmp_path / 'alone.db'}", tmp_path / "alone", at("2026-03-02 10:00"))
    now = at("2026-04-21 09:00")  # every step of F-1 up to reminder_1, and F-2's pre_due
    for app in (batched, alone):
        ingest(
            app,
            invoice_issued("F-1", "2026-03-20", "900.00", issued="2026-02-20"),
            invoice_issued("F-2", "2026-04-24", "300.00"),
            invoice_issued("F-9", "2026-04-24", debtor=debtor("D-9")),
        )
    (batch,) = emitted(batched, now)
    assert isinstance(batch, StepsDue) and len(batch.steps) >= 4
    run_task(batched, batch)
    cast(InlinePublisher, batched.publisher).drain()
    for task in emitted(alone, now, worker_batch=1):
        run_task(alone, task)
    cast(InlinePublisher, alone.publisher).drain()

    def made(app) -> list[tuple]:
        with transaction(app.sessions) as session:
            return sorted(
                session.execute(select(MessageRow.debtor_id, MessageRow.step, MessageRow.status)).all()
            )

    assert made(batched) == made(alone)
    # one decision for D-1's five due steps: reminder_3 by e-mail and by post, F-2 mentioned
    assert made(batched) == [
        ("D-1", "reminder_3", "sent"),
        ("D-1", "reminder_3", "sent"),
        ("D-9", "pre_due", "sent"),
    ]
    batched.dispose()
    alone.dispose()
