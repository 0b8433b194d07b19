"""Ports: what the core needs from the outside world, as small protocols, and the clocks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

import structlog

from handlers.conformance import conforms

if TYPE_CHECKING:
    from handlers.delivery import Messages
    from handlers.outbox import Item
    from handlers.store import Store


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OffsetClock:
    """Real time, started at a chosen instant (RELANCE_NOW): time still runs.

    ``since`` is the Unix time at which the clock read ``start`` (RELANCE_NOW_SINCE): processes
    given the same pair share one clock, whenever each finished starting. Without it the clock
    reads ``start`` when it is made, so each process's clock lags by its own start-up.
    """

    def __init__(self, start: datetime, since: float | None = None) -> None:
        self._start = start.astimezone(UTC)
        self._origin = time.monotonic() - (0.0 if since is None else time.time() - since)

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin)


class VirtualClock:
    """A clock that only moves when told to (simulation, tests)."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._now = instant.astimezone(UTC)


@dataclass(frozen=True)
class Outgoing:
    """A recorded message ready to leave: exact bytes and where to."""

    message_id: str
    channel: str  # email | letter | registered_letter
    recipient: str
    subject: str
    content: bytes
    debtor_id: str


class TransientFailure(Exception):
    """The channel failed for now (connection refused, 4xx): retry later.

    ``code`` is the channel's answer when there was one (an SMTP reply code).
    """

    def __init__(self, detail: str = "", *, code: int | None = None) -> None:
        super().__init__(detail)
        self.code = code


class PermanentFailure(Exception):
    """The channel refused the message for good (5xx, a refused login, a policy refusal).

    Our failure unless a subclass says otherwise: the debtor is not blamed for it.
    """

    def __init__(self, detail: str = "", *, code: int | None = None) -> None:
        super().__init__(detail)
        self.code = code


class RecipientRefused(PermanentFailure):
    """The recipient's address was refused for good (RCPT TO answered 550, 551 or 553):
    the debtor's e-mail bounced, and their steps go by post."""


class AddressUnusable(PermanentFailure):
    """The address cannot be carried by the server (a non-ASCII local part and no SMTPUTF8):
    the steps go by post, without blaming the debtor's mailbox."""


class AmbiguousTransmission(TransientFailure):
    """The connection was lost after the whole message was sent, before the server's answer:
    a copy may have been received. Retried, up to a bound on the copies that may exist."""


class Transport(Protocol):
    def transmit(self, message: Outgoing) -> str | None:
        """Hand the message over; return a tracking id when the channel gives one.

        Must be idempotent per ``message.message_id``: sending the same message again
        carries the same identifier, so the recipient's side can discard the copy.
        """


class Publisher(Protocol):
    def publish(self, tasks: Sequence[object]) -> None:
        """Send task messages (handlers.messages) to the workers, after commit."""


@runtime_checkable
class TaskSink(Protocol):
    """A unit of work, as far as tasks to publish after its commit go."""

    def after_commit(self, task: object) -> None: ...


def after_commit(uow: object, task: object) -> None:
    """Have ``task`` published once the unit of work ``uow`` has committed."""
    if not conforms(uow, TaskSink):
        raise TypeError(f"tasks are published after a unit of work commits, not a {type(uow).__name__}")
    cast(TaskSink, uow).after_commit(task)


class UnitOfWork(TaskSink, Protocol):
    """One transaction of a use case, as the core sees it.

    It commits when its block ends normally and rolls back on any exception
    (``UnitsOfWork``); what it is asked to do below becomes part of that transaction.
    """

    def remember_message(self, message_id: str, actor: str, at: datetime) -> bool:
        """Note broker message ``message_id`` as processed by ``actor``, at once.

        False when it was already processed (its key is taken): the transaction can then
        only be rolled back. A second copy running at the same time waits on the key.
        """

    def store_rejected(
        self,
        *,
        event_id: str | None,
        raw: str,
        reason: str,
        source: str | None,
        line_no: int | None,
        received_at: datetime,
    ) -> None:
        """Keep a refused event, with why it was refused, for ``relance inbox``."""

    def creditor_of(self, table: str, row_id: int) -> str | None:
        """The creditor of row ``row_id`` of ``table`` (``planned_steps``, ``messages``,
        ``handovers`` or ``signals``), whatever the scope; None when there is no such row."""

    def creditors_of(self, table: str, row_ids: Iterable[int]) -> dict[int, str]:
        """``creditor_of`` for several rows at once: the creditor of each row found."""

    def scope(self, creditor: str | None) -> None:
        """Act for ``creditor`` from now on: read its rows only, add rows and evidence as its
        own (None: read every creditor's rows, add none). A unit of work starts scoped to
        the creditor ``default``."""

    def savepoint(self) -> AbstractContextManager[object]:
        """A block that, if it raises, is undone alone (tasks and evidence it added too)."""

    def take_tasks(self) -> list[object]:
        """The tasks added so far, handed to the caller to publish once committed."""

    def messages(self) -> Messages:
        """The leased outbox of recorded messages, inside this transaction."""

    @property
    def store(self) -> Store:
        """This transaction as the store port of the appliers, escalation and hand-overs."""


class UnitsOfWork(Protocol):
    """Opens units of work: ``with units() as uow:`` is one transaction."""

    def __call__(self) -> AbstractContextManager[UnitOfWork]: ...

    def mark_sent(
        self,
        message_pk: int,
        at: datetime,
        tracking_id: str | None,
        *,
        count_attempt: bool,
        creditor: str | None = None,
    ) -> Item | None:
        """Mark a message its channel accepted sent, committed at once and alone: what
        ``with units() as uow: uow.messages().mark_done(...)`` does (one ``UPDATE``, in a
        unit of work acting for ``creditor``, the units' own when None), as a store may do
        it more cheaply (a single statement needs no transaction around it)."""
        ...

    def markings(self) -> AbstractContextManager[Marks]:
        """A block in which messages are marked sent one after the other (``Marks``), each
        committed when its ``mark_sent`` returns, as ``UnitsOfWork.mark_sent`` commits it.
        A store may make them on one connection held for the block; it then gives that
        connection back whenever a unit of work opens meanwhile (a thread never waits for
        a second connection while it holds one) and takes one again at the next marking."""
        ...


class Marks(Protocol):
    """Marks messages sent: ``UnitsOfWork.mark_sent``, in a block of ``UnitsOfWork.markings``."""

    def mark_sent(
        self,
        message_pk: int,
        at: datetime,
        tracking_id: str | None,
        *,
        count_attempt: bool,
        creditor: str | None = None,
    ) -> Item | None: ...


@contextmanager
def markings_one_at_a_time(units: UnitsOfWork) -> Iterator[Marks]:
    """``UnitsOfWork.markings`` for stores with no cheaper way: each marking is the units' own."""
    yield units


def mark_sent_in_a_unit(
    units: UnitsOfWork,
    message_pk: int,
    at: datetime,
    tracking_id: str | None,
    *,
    count_attempt: bool,
    creditor: str | None = None,
) -> Item | None:
    """``UnitsOfWork.mark_sent`` in a unit of work of its own: for stores with no cheaper way."""
    with units() as uow:
        if creditor is not None:
            uow.scope(creditor)
        return uow.messages().mark_done(message_pk, at, count_attempt=count_attempt, tracking_id=tracking_id)


class ScopedMarks:
    """The markings of ``marks``, acting for ``creditor`` unless a marking names another."""

    def __init__(self, marks: Marks, creditor: str) -> None:
        self.marks, self.creditor = marks, creditor

    def mark_sent(
        self,
        message_pk: int,
        at: datetime,
        tracking_id: str | None,
        *,
        count_attempt: bool,
        creditor: str | None = None,
    ) -> Item | None:
        return self.marks.mark_sent(
            message_pk, at, tracking_id, count_attempt=count_attempt, creditor=creditor or self.creditor
        )


class ScopedUnits(ScopedMarks):
    """Units of work of ``units``, each scoped to ``creditor`` as it opens; the messages it
    marks sent, alone or in a block of ``markings``, are marked for ``creditor`` too."""

    def __init__(self, units: UnitsOfWork, creditor: str) -> None:
        super().__init__(units, creditor)
        self.units = units

    @contextmanager
    def __call__(self) -> Iterator[UnitOfWork]:
        with self.units() as uow:
            uow.scope(self.creditor)
            yield uow

    @contextmanager
    def markings(self) -> Iterator[Marks]:
        with self.units.markings() as marks:
            yield ScopedMarks(marks, self.creditor)


def units_of_row(units: UnitsOfWork, table: str, row_id: int) -> tuple[UnitsOfWork, str | None]:
    """Units of work scoped to the creditor of a row a task names by its id (a step, a
    message, a hand-over), and that creditor: the task carries the id only, the row says
    whose it is. No such row: ``units`` as given, and None."""
    with units() as uow:
        creditor = uow.creditor_of(table, row_id)
    log_as(creditor)
    return (units, None) if creditor is None else (ScopedUnits(units, creditor), creditor)


def log_as(creditor: str | None) -> None:
    """Name the creditor in every log line of the task or event under way (a worker clears
    the context between broker messages); the creditor ``default`` is not named."""
    if creditor is None or creditor == "default":
        structlog.contextvars.unbind_contextvars("creditor_id")
    else:
        structlog.contextvars.bind_contextvars(creditor_id=creditor)
