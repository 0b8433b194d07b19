"""Thin actors: decode ids, hand them to the use cases. Every message may arrive twice."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from adapters.publisher import QUEUE
from config.bootstrap import App
from handlers.delivery import deliver, deliver_many
from handlers.handover import deliver_handover
from handlers.messages import DeliverMessage, StepDue
from handlers.money import MissingRate
from handlers.service import ingest_one, run_step, run_steps
from handlers.signals import deliver_signal
from intake.upload import import_upload
from worker import runtime
from worker.broker import ensure_configured

ensure_configured()  # the broker must exist before the actors are declared

OPTIONS: dict[str, Any] = {"queue_name": QUEUE, "max_retries": 5, "min_backoff": 1000, "max_backoff": 60_000}


def _message_id() -> str:
    message = CurrentMessage.get_current_message()
    return message.message_id if message else f"direct-{datetime.now(UTC).isoformat()}"


class _DeliverHere:
    """A publisher that makes first deliveries itself and passes every other task on.

    A step's message is transmitted by the worker that recorded it, right after that
    commit, instead of going through the queue once more: no second broker message, no
    wait behind the other steps. The messages of one publish (one step's or many's) go
    together: in turn over one connection, each accepted one marked sent in its own short
    transaction, their evidence records written together (``deliver_many``). Losing this
    process then is the same as losing a ``deliver_message`` task: the message's lease runs
    out and the scheduler emits it.

    A batch's messages are transmitted after the whole batch's transaction, one after the
    other, so they may start late in their lease (which runs from before the handling
    began), and the scheduler's clock may be ahead of this one. The recorded bytes are sent
    as they are only within the first tenth of the lease, as a step alone is; after that
    each message is claimed first (compare-and-set on its attempt count, with a new lease,
    as a ``deliver_message`` task is), so that a lease running out meanwhile cannot have
    the scheduler's retry and this worker send it both.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.fresh_until = app.clock.now() + app.ctx.lease / 10

    def publish(self, tasks: Sequence[object]) -> None:
        """The first deliveries of these tasks, in turn over one connection per channel
        (``deliver_many``); the other tasks to the broker."""
        first = [t for t in tasks if isinstance(t, DeliverMessage) and t.attempt == 0]
        later = [t for t in tasks if not (isinstance(t, DeliverMessage) and t.attempt == 0)]
        if first:
            app = self.app
            deliver_many(
                app.units, first, app.clock.now, app.transports, app.ctx, fresh_until=self.fresh_until
            )
        if later and self.app.publisher is not None:
            self.app.publisher.publish(later)


def _run(event: str, step_id: int) -> None:
    app = runtime.current()
    with _noting_missing_rates():
        run_step(app.units, _DeliverHere(app), _message_id(), event, step_id, app.clock.now(), app.ctx)


@contextmanager
def _noting_missing_rates() -> Iterator[None]:
    """A missing rate is noted when the runtime collects them (simulation), else raised."""
    try:
        yield
    except MissingRate as missing:
        if not runtime.note_missing_rate(missing.half_year):
            raise


@dramatiq.actor(actor_name="invoice_due", throws=(MissingRate,), **OPTIONS)
def invoice_due(step_id: int, due_at: str) -> None:
    """A pre-due or due-date step of an invoice reached its instant."""
    _run("invoice.due", step_id)


@dramatiq.actor(actor_name="invoice_overdue", throws=(MissingRate,), **OPTIONS)
def invoice_overdue(step_id: int, due_at: str) -> None:
    """An after-due-date step (notice, reminders, formal notice) reached its instant."""
    _run("invoice.overdue", step_id)


@dramatiq.actor(actor_name="deadline_expired", throws=(MissingRate,), **OPTIONS)
def deadline_expired(step_id: int, due_at: str) -> None:
    """A deadline passed: formal notice unanswered, promise to pay broken."""
    _run("deadline.expired", step_id)


@dramatiq.actor(actor_name="steps_due", throws=(MissingRate,), **OPTIONS)
def steps_due(creditor_id: str, steps: list[list[Any]]) -> None:
    """Several due steps of one creditor, ``[event, step_id, due_at, emission]`` each: one
    transaction for all of them, or one per step when any of them fails."""
    app = runtime.current()
    due = [StepDue.from_item(item, creditor_id) for item in steps]
    with _noting_missing_rates():
        run_steps(app.units, _DeliverHere(app), _message_id(), creditor_id, due, app.clock.now(), app.ctx)


@dramatiq.actor(actor_name="deliver_message", **OPTIONS)
def deliver_message(message_pk: int, attempt: int) -> None:
    """Transmit one recorded message on its channel (retries are driven by the database)."""
    app = runtime.current()
    deliver(app.units, message_pk, attempt, app.clock.now, app.transports, app.ctx)


@dramatiq.actor(actor_name="handover_case", **OPTIONS)
def handover_case(handover_pk: int, attempt: int) -> None:
    """Hand one case to its partner (retries are driven by the database)."""
    app = runtime.current()
    deliver_handover(app.units, handover_pk, attempt, app.clock.now, app.transports, app.ctx)


@dramatiq.actor(actor_name="deliver_signal", **OPTIONS)
def deliver_signal_task(signal_pk: int, attempt: int) -> None:
    """Post one signal to its webhook subscriber (retries are driven by the database)."""
    app = runtime.current()
    deliver_signal(app.units, signal_pk, attempt, app.clock.now, app.ctx)


@dramatiq.actor(actor_name="accounting_event", **OPTIONS)
def accounting_event(raw: str, source: str | None = None) -> None:
    """An accounting event sent by a producer (same contract as ``relance ingest``)."""
    app = runtime.current()
    with app.units() as uow:
        ingest_one(uow, raw, app.clock.now(), app.ctx, source=source or "broker")
        tasks = uow.take_tasks()  # signals of the facts it recorded: published once committed
    if tasks and app.publisher is not None:
        app.publisher.publish(tasks)


@dramatiq.actor(actor_name="import_document", **OPTIONS)
def import_document(name: str, content: str, creditor: str | None = None) -> None:
    """One e-invoice, status message or bank statement sent by a producer: the file ``name``
    with its bytes in base64, imported as ``relance import`` does (docs/import.md)."""
    import_upload(runtime.current(), name, content, creditor)


ACTORS = (
    invoice_due,
    invoice_overdue,
    deadline_expired,
    steps_due,
    deliver_message,
    handover_case,
    deliver_signal_task,
    accounting_event,
    import_document,
)


def bind(broker: dramatiq.Broker) -> None:
    """Attach every actor to ``broker`` (the broker can change between runs in one process)."""
    for actor in ACTORS:
        actor.broker = broker
        broker.declare_actor(actor)
