"""Transmit recorded messages on their channel, after the transaction that recorded them.

A message is transmitted under a lease: the row is marked with an attempt and a lease in
one short transaction, sent, then marked sent. If the process dies after the channel
accepted the message but before ``sent`` is committed, the lease runs out and the same
bytes, with the same Message-ID, go out once more: the only duplicate the debtor can get,
and one their mail client recognises as the same message.

Marking a message sent is one short write of its row, committed before the next message
goes; its ``message.transmitted`` evidence record is written after, together with the
records of the other messages the batch marked (one append to the creditor's chain:
``record_transmitted``). Marking a message sent makes its record due (``record_due`` on
the row); writing the record takes it (compare-and-set), so it is written once whoever
writes it. A record a crash left unwritten, between the marking and the batch's append, is
written by the scheduler's sweep (``record_left_transmissions``), dated when the channel
accepted the message, as the batch would have.

The row's life is the leased outbox's (``handlers.outbox``): this module decides what each
outcome means for a message (its evidence, its log line, the fall-back to post of a refused
e-mail) and leaves the row's state to the outbox port of the store. Each of its short
transactions is a unit of work (``handlers.ports.UnitOfWork``) opened by the factory it is
given; the messages' outbox is the one of that unit of work.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from handlers import evidence
from handlers.context import Context
from handlers.messages import DeliverMessage
from handlers.outbox import Item, Outbox, Refusal, is_permanent
from handlers.outbox import backoff as backoff
from handlers.ports import (
    AddressUnusable,
    AmbiguousTransmission,
    Marks,
    Outgoing,
    PermanentFailure,
    RecipientRefused,
    ScopedUnits,
    TransientFailure,
    Transport,
    UnitOfWork,
    UnitsOfWork,
    log_as,
)

log = structlog.get_logger("relance.delivery")


class Messages(Outbox, Protocol):
    """The outbox of recorded messages, and what a refused e-mail changes beyond its row."""

    def fall_back_to_post(self, item_id: int, now: datetime) -> int:
        """Mark the debtor's e-mail bounced and plan the message's steps again at ``now``;
        return how many steps were planned again."""

    def unrecorded(self, sent_before: datetime, limit: int) -> list[int]:
        """Up to ``limit`` messages marked sent at or before ``sent_before`` whose
        ``message.transmitted`` record is still to be written, oldest first (a read)."""

    def take_unrecorded(self, item_ids: Sequence[int]) -> list[Item]:
        """Those of these messages whose record is still to be written, in id order, each
        with its ``sent_at`` and ``tracking_id`` in its details: taken (compare-and-set), so
        that no other transaction takes it again once this one commits."""


def claim_for_delivery(
    uow: UnitOfWork, message_pk: int, attempt: int, now: datetime, ctx: Context
) -> Outgoing | None:
    """Take attempt number ``attempt`` of a pending message (compare-and-set on the count).

    A duplicate of the same task, or a stale one, finds the count moved on and does nothing.
    """
    taken = uow.messages().claim(message_pk, attempt, now, ctx.lease)
    if isinstance(taken, Refusal):
        return None
    return _outgoing(taken)


def _outgoing(item: Item) -> Outgoing:
    d = item.details
    return Outgoing(
        str(d["message_id"]),
        str(d["channel"]),
        str(d["recipient"]),
        str(d["subject"]),
        bytes(d["content"]),  # type: ignore[call-overload]  # the row's bytes, as stored
        str(d["debtor_id"]),
    )


def deliver(
    units: UnitsOfWork,
    message_pk: int,
    attempt: int,
    clock: Callable[[], datetime],
    transports: Mapping[str, Transport],
    ctx: Context,
    *,
    recorded: Outgoing | None = None,
) -> str:
    """Transmit one recorded message; return 'sent', 'skipped', 'retry' or 'failed'.

    A transient failure is recorded with a back-off; the scheduler re-emits the delivery
    when it has passed, so retries survive a lost broker message or a restart.

    ``recorded`` is given by the worker that has just committed the message (first attempt):
    the message's lease, set in that transaction, is its own, so no claim is needed and the
    attempt is counted when its outcome is written.
    """
    task = DeliverMessage(message_pk, attempt, recorded)
    return deliver_many(units, [task], clock, transports, ctx)[0]


def deliver_many(
    units: UnitsOfWork,
    tasks: Sequence[DeliverMessage],
    clock: Callable[[], datetime],
    transports: Mapping[str, Transport],
    ctx: Context,
    *,
    fresh_until: datetime | None = None,
) -> list[str]:
    """Transmit several messages in turn; return each one's outcome, as ``deliver`` does.

    ``fresh_until``: the bytes a task carries from the transaction that recorded them are
    sent as they are only until then; a message reached later is claimed first, as a
    ``deliver_message`` task is (its lease may have run out while the others went).

    The messages go one after the other on their channel (over SMTP, the thread's one
    connection, pipelined where the server offers it). Each outcome is written before the
    next message goes: a failure in its own transaction with its evidence, an accepted
    message marked sent in its own (one statement). So a crash leaves at most one message
    accepted by its channel and not marked sent per thread, the worst case of a single
    delivery (docs/reliability.md), whatever the size of the batch. The
    ``message.transmitted`` records of the messages marked sent are written together, in
    one transaction per ``RECORD_EVERY`` messages and at the end of each creditor's group
    (``record_transmitted``): one lock of the creditor's chain head for all of them. One
    message's failure never marks another. A copy of a task already in the list is skipped.

    An unexpected error (not a channel's failure: the store gone, a bug) stops the batch as
    a crash would: its message and the ones not yet tried are left to their leases (the
    scheduler emits them again), and the error is raised. Transmitting on while the store
    cannot write the outcomes would only add copies to send again.
    """
    outcomes: dict[tuple[int, int], str] = {}
    errors: list[Exception] = []
    for creditor, group in _by_creditor(units, tasks):
        try:
            batch = _Batch.of_creditor(creditor, units, clock, transports, ctx)
            batch.fresh_until = fresh_until
        except Exception as exc:  # an unknown creditor: raised below
            errors.append(exc)
            continue
        try:
            with batch.marking():
                for task in group:
                    key = (task.message_pk, task.attempt)
                    if key not in outcomes:
                        outcomes[key] = batch.deliver(task)  # an unexpected error stops the batch here
        except BaseException:
            # the records of the messages marked so far, if the store can still write them
            # (else the scheduler's sweep writes them); the error is the one raised
            with contextlib.suppress(Exception):
                batch.record_marked()
            raise
        batch.record_marked()
    if errors:
        raise errors[0]
    return [outcomes[key] if first else "skipped" for key, first in _first_of_each(tasks)]


def _by_creditor(
    units: UnitsOfWork, tasks: Sequence[DeliverMessage]
) -> list[tuple[str | None, list[DeliverMessage]]]:
    """The tasks grouped by the creditor of their message (read in one transaction, one
    statement), in the order each creditor first appears."""
    with units() as uow:
        creditors = uow.creditors_of("messages", [task.message_pk for task in tasks])
    groups: dict[str | None, list[DeliverMessage]] = {}
    for task in tasks:
        groups.setdefault(creditors.get(task.message_pk), []).append(task)
    return list(groups.items())


def _first_of_each(tasks: Sequence[DeliverMessage]) -> list[tuple[tuple[int, int], bool]]:
    seen: set[tuple[int, int]] = set()
    keys = []
    for task in tasks:
        key = (task.message_pk, task.attempt)
        keys.append((key, key not in seen))
        seen.add(key)
    return keys


class _Batch:
    """The messages of one creditor delivered in turn, each outcome written before the next."""

    def __init__(
        self,
        units: UnitsOfWork,
        clock: Callable[[], datetime],
        transports: Mapping[str, Transport],
        ctx: Context,
    ) -> None:
        self.units, self.clock, self.transports, self.ctx = units, clock, transports, ctx
        self.fresh_until: datetime | None = None
        self.marked: list[int] = []  # marked sent, their records not written by this batch yet
        self.marks: Marks = units  # each marking alone, outside a block of ``marking``

    @classmethod
    def of_creditor(
        cls,
        creditor: str | None,
        units: UnitsOfWork,
        clock: Callable[[], datetime],
        transports: Mapping[str, Transport],
        ctx: Context,
    ) -> _Batch:
        """A batch of ``creditor``'s messages: its units of work, context and channels (the
        service's own when the rows name no creditor)."""
        log_as(creditor)
        if creditor is None:
            return cls(units, clock, transports, ctx)
        own = ctx.for_creditor(creditor)
        return cls(ScopedUnits(units, creditor), clock, own.channels(transports), own)

    def deliver(self, task: DeliverMessage) -> str:
        fresh = self.fresh_until is None or self.clock() < self.fresh_until
        recorded = task.recorded if fresh else None
        outgoing = recorded
        if outgoing is None:
            with self.units() as uow:
                outgoing = claim_for_delivery(uow, task.message_pk, task.attempt, self.clock(), self.ctx)
            if outgoing is None:
                return "skipped"
        counted = recorded is None
        try:
            tracking = self.transports[outgoing.channel].transmit(outgoing)
        except (TransientFailure, PermanentFailure) as exc:
            return _record_failure(
                self.units,
                task.message_pk,
                self.clock(),
                exc,
                counted=counted,
                max_copies=self.ctx.max_copies,
            )
        # committed before the next message goes: at most one unmarked
        sent = _mark_sent(self.marks, task.message_pk, self.clock(), tracking, counted=counted)
        if sent is not None:  # else marked sent already, or gone: left as it is
            _log_sent(sent, tracking)
            self.marked.append(task.message_pk)
            if len(self.marked) >= RECORD_EVERY:
                self.record_marked()
        return "sent"

    @contextmanager
    def marking(self) -> Iterator[None]:
        """A block whose markings share what the units' ``markings`` hold (on PostgreSQL one
        connection, checked out once, not once per message)."""
        with self.units.markings() as marks:
            self.marks = marks
            try:
                yield
            finally:
                self.marks = self.units

    def record_marked(self) -> None:
        """Write the records of the messages this batch marked sent so far, together."""
        marked, self.marked = self.marked, []
        if marked:
            with self.units() as uow:
                record_transmitted(uow, marked)


RECORD_EVERY = 50
"""A batch writes the records of the messages it marked sent at least every this many
messages (and at the end): a chain append per this many, and the records of a long batch
are not all left to wait for its last message."""


def _mark_sent(
    marks: Marks, message_pk: int, at: datetime, tracking: str | None, *, counted: bool
) -> Item | None:
    """Mark a message its channel accepted sent at ``at``, with its tracking id and attempt
    count, committed at once: one ``UPDATE`` of its row, which also makes its record due
    (``UnitsOfWork.mark_sent``). None if it was marked sent already, or is gone."""
    return marks.mark_sent(message_pk, at, tracking, count_attempt=not counted)


def _log_sent(sent: Item, tracking: str | None) -> None:
    """The log line of a message marked sent: one per message, at once."""
    d = sent.details
    log.info(
        "message.transmitted",
        message_id=d["message_id"],
        channel=d["channel"],
        debtor_id=d["debtor_id"],
        tracking_id=tracking,
        attempts=sent.attempts,
    )


def record_transmitted(uow: UnitOfWork, message_pks: Sequence[int]) -> int:
    """Append the ``message.transmitted`` record of each of these messages whose record is
    due (``Messages.take_unrecorded``: one that has it already, or is not sent, is passed
    over), in id order; return how many. The unit of work chains them when it commits: one
    lock of the creditor's chain head, the records written set-based.

    Each record is dated when the message was marked sent (the instant its channel accepted
    it), not when the record is written; its payload is the one written with the marking
    before records were deferred: Message-ID, channel, SHA-256 of the bytes, tracking id,
    attempts."""
    taken = uow.messages().take_unrecorded(message_pks)
    for sent in taken:
        d = sent.details
        evidence.append(
            uow,
            "message.transmitted",
            _instant(d["sent_at"]),
            {
                "message_id": d["message_id"],
                "channel": d["channel"],
                "content_sha256": d["content_sha256"],
                "tracking_id": d["tracking_id"],
                "attempts": sent.attempts,
            },
            debtor_id=str(d["debtor_id"]),
            message_id=str(d["message_id"]),
        )
    return len(taken)


def _instant(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"a message marked sent has no sending time: {value!r}")
    return value


def record_left_transmissions(units: UnitsOfWork, now: datetime, grace: timedelta, limit: int = 500) -> int:
    """The scheduler's sweep: write the records a crash left behind, of the messages marked
    sent at or before ``now - grace`` whose record is still due (a batch writes its own
    within moments; ``grace`` leaves them to it). One read of the messages of every
    creditor, then one transaction per creditor (``record_transmitted``); return how many
    records were written. Two sweeps, or a sweep and a batch, never write a record twice:
    each takes its messages by compare-and-set."""
    with units() as uow:
        uow.scope(None)  # every creditor's messages
        due = uow.messages().unrecorded(now - grace, limit)
        creditors = uow.creditors_of("messages", due) if due else {}
    by_creditor: dict[str, list[int]] = {}
    for pk in due:
        if pk in creditors:
            by_creditor.setdefault(creditors[pk], []).append(pk)
    written = 0
    for creditor, pks in by_creditor.items():
        with ScopedUnits(units, creditor)() as uow:
            count = record_transmitted(uow, pks)
        if count:
            log.warning("message.records_caught_up", creditor_id=creditor, records=count)
        written += count
    return written


_COPIES = re.compile(r"^\[copies possibly received: (\d+)\] ")


def possible_copies(last_error: str | None) -> int:
    """How many copies of a message may have reached the server through lost answers, as
    the message's last error keeps it (a prefix carried from one failure to the next)."""
    found = _COPIES.match(last_error or "")
    return int(found.group(1)) if found else 0


def _with_copies(error: str, copies: int) -> str:
    return f"[copies possibly received: {copies}] {error}" if copies else error


def _record_failure(
    units: UnitsOfWork,
    message_pk: int,
    now: datetime,
    failure: TransientFailure | PermanentFailure,
    *,
    counted: bool = True,
    max_copies: int = 2,
) -> str:
    """Store a failure of a pending message: a back-off to wait, or the end of the row;
    return 'retry' or 'failed'.

    A transmission whose answer was lost (``AmbiguousTransmission``) counts one copy that may
    have been received; once ``max_copies`` may have been, the message is failed for good
    (``message.resend_limit``) instead of being sent again. A message that is no longer
    pending (sent meanwhile by a later attempt) keeps its state.
    """
    ambiguous = isinstance(failure, AmbiguousTransmission)
    with units() as uow:
        outbox = uow.messages()
        current = outbox.get(message_pk)
        copies = possible_copies(current.last_error if current else None) + int(ambiguous)
        error = _with_copies(str(failure), copies)
        at_limit = ambiguous and copies >= max_copies
        if not (is_permanent(failure) or at_limit):
            written = outbox.record_retry(message_pk, now, error, count_attempt=not counted)
        else:
            written = outbox.record_failure(message_pk, now, error, count_attempt=not counted)
            if written is not None:
                _failed(uow, outbox, written, now, failure, copies=copies if at_limit else None)
    if written is not None and written.status == "pending":
        log.warning(
            "message.retry",
            message_id=written.details["message_id"],
            error=error[:200],
            smtp_code=failure.code,
        )
    return "retry" if written is not None and written.status == "pending" else "failed"


def _failed(
    uow: UnitOfWork,
    outbox: Messages,
    message: Item,
    now: datetime,
    failure: TransientFailure | PermanentFailure,
    *,
    copies: int | None = None,
) -> None:
    """A message failed for good: its evidence, its log line and, when the address is at
    fault, its steps planned again by post.

    Only a refused recipient (``RecipientRefused``: the debtor's bounce) or an address the
    server cannot carry (``AddressUnusable``) send the steps by post; any other permanent
    failure is ours (login, size, policy) and is logged at error level for the operator.
    """
    d = message.details
    evidence.append(
        uow,
        "message.failed",
        now,
        {"message_id": d["message_id"], "channel": d["channel"], "error": message.last_error},
        debtor_id=str(d["debtor_id"]),
        message_id=str(d["message_id"]),
    )
    about = {"message_id": d["message_id"], "debtor_id": d["debtor_id"], "channel": d["channel"]}
    if copies is not None:  # our failure too: an operator decides (the debtor may have it)
        log.error("message.resend_limit", **about, copies=copies, error=str(failure)[:200])
        return
    if d["channel"] != "email" or not isinstance(failure, (RecipientRefused, AddressUnusable)):
        log.error("message.failed", **about, error=str(failure)[:200], smtp_code=failure.code)
        return
    # the steps go back to ``planned`` at once, and the send path records a letter for
    # each, since the debtor's e-mail is now marked as not usable
    steps = outbox.fall_back_to_post(message.id, now)
    event = "message.bounced" if isinstance(failure, RecipientRefused) else "message.address_unusable"
    log.warning(event, **about, steps=steps, error=str(failure)[:200], smtp_code=failure.code)


def claim_overdue_deliveries(
    uow: UnitOfWork, now: datetime, lease: timedelta, limit: int
) -> list[DeliverMessage]:
    """Pending messages whose lease ran out (lost task, crash, back-off over): emit again.

    Only the id and the attempt count are read (not a message's content).
    """
    return [DeliverMessage(due.id, due.attempt) for due in uow.messages().claim_expired(now, lease, limit)]
