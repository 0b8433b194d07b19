"""Transmit recorded messages on their channel, after the transaction that recorded them.

A message is transmitted under a lease: the row is marked with an attempt and a lease in
one short transaction, sent, then marked sent. If the process dies after the channel
accepted the message but before ``sent`` is committed, the lease runs out and the same
bytes, with the same Message-ID, go out once more: the only duplicate the debtor can get,
and one their mail client recognises as the same message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from adapters.orm import DebtorRow, MessageItem, MessageRow, PlannedStep
from adapters.store import transaction
from handlers import evidence
from handlers.context import Context
from handlers.messages import DeliverMessage
from handlers.ports import Outgoing, PermanentFailure, TransientFailure, Transport

log = structlog.get_logger("relance.delivery")


def claim_for_delivery(
    session: Session, message_pk: int, attempt: int, now: datetime, ctx: Context
) -> Outgoing | None:
    """Take attempt number ``attempt`` of a pending message (compare-and-set on the count).

    A duplicate of the same task, or a stale one, finds the count moved on and does nothing.
    """
    row = session.get(MessageRow, message_pk, with_for_update=True)
    if row is None or row.status != "pending" or row.attempts != attempt:
        return None
    row.attempts += 1
    row.lease_until = now + ctx.lease
    return Outgoing(row.message_id, row.channel, row.recipient, row.subject, row.content, row.debtor_id)


def deliver(
    sessions: sessionmaker[Session],
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
    outgoing = recorded
    if outgoing is None:
        with transaction(sessions) as session:
            outgoing = claim_for_delivery(session, message_pk, attempt, clock(), ctx)
        if outgoing is None:
            return "skipped"
    counted = recorded is None
    try:
        tracking = transports[outgoing.channel].transmit(outgoing)
    except TransientFailure as exc:
        _record_failure(sessions, message_pk, clock(), str(exc), permanent=False, counted=counted)
        return "retry"
    except PermanentFailure as exc:
        _record_failure(sessions, message_pk, clock(), str(exc), permanent=True, counted=counted)
        return "failed"
    with transaction(sessions) as session:
        _mark_sent(session, message_pk, clock(), tracking, counted=counted)
    return "sent"


def _mark_sent(
    session: Session, message_pk: int, now: datetime, tracking: str | None, *, counted: bool = True
) -> None:
    row = session.execute(  # one statement: mark it and read what the evidence needs
        update(MessageRow)
        .where(MessageRow.id == message_pk, MessageRow.status != "sent")
        .values(
            status="sent",
            sent_at=now,
            tracking_id=tracking,
            lease_until=None,
            attempts=MessageRow.attempts + (0 if counted else 1),
        )
        .returning(
            MessageRow.message_id,
            MessageRow.channel,
            MessageRow.content_sha256,
            MessageRow.attempts,
            MessageRow.debtor_id,
        )
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:  # unknown, or already marked sent
        return
    evidence.append(
        session,
        "message.transmitted",
        now,
        {
            "message_id": row.message_id,
            "channel": row.channel,
            "content_sha256": row.content_sha256,
            "tracking_id": tracking,
            "attempts": row.attempts,
        },
        debtor_id=row.debtor_id,
        message_id=row.message_id,
    )
    log.info(
        "message.transmitted",
        message_id=row.message_id,
        channel=row.channel,
        debtor_id=row.debtor_id,
        tracking_id=tracking,
        attempts=row.attempts,
    )


def _record_failure(
    sessions: sessionmaker[Session],
    message_pk: int,
    now: datetime,
    error: str,
    *,
    permanent: bool,
    counted: bool = True,
) -> None:
    with transaction(sessions) as session:
        row = session.get(MessageRow, message_pk, with_for_update=True)
        if row is None:
            return
        if not counted:
            row.attempts += 1
        message_id = row.message_id
        row.last_error = error[:500]
        row.lease_until = now + backoff(row.attempts)
        if permanent:
            row.status = "failed"
            evidence.append(
                session,
                "message.failed",
                now,
                {"message_id": row.message_id, "channel": row.channel, "error": error[:500]},
                debtor_id=row.debtor_id,
                message_id=row.message_id,
            )
            if row.channel == "email":
                _fall_back_to_post(session, row, now)
    event = "message.failed" if permanent else "message.retry"
    log.warning(event, message_id=message_id, error=error[:200])


def _fall_back_to_post(session: Session, row: MessageRow, now: datetime) -> None:
    """A refused e-mail is a bounce: mark the address and send its steps again by post.

    The steps go back to ``planned`` at once; the send path then records a letter for each
    (invoice, step) that has none yet, since the debtor's e-mail is now marked bounced.
    """
    debtor = session.get(DebtorRow, row.debtor_id, with_for_update=True)
    if debtor is not None:
        debtor.email_bounced = True
    pairs = session.execute(
        select(MessageItem.invoice_id, MessageItem.step).where(MessageItem.message_pk == row.id)
    ).all()
    for invoice_id, step in pairs:
        session.execute(
            update(PlannedStep)
            .where(
                PlannedStep.invoice_id == invoice_id, PlannedStep.step == step, PlannedStep.status == "done"
            )
            .values(status="planned", due_at=now, lease_until=None, reason="e-mail refused: sent by post")
        )
    log.warning("message.bounced", message_id=row.message_id, debtor_id=row.debtor_id, steps=len(pairs))


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: 30 s doubling up to one hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def claim_expired_leases(
    session: Session, model: Any, now: datetime, lease: timedelta, limit: int
) -> list[Any]:
    """Pending rows of ``model`` whose lease or back-off ran out, leased again for emission.

    ``model`` has ``id``, ``attempts``, ``status`` and ``lease_until`` (messages,
    hand-overs); rows locked by another scheduler are skipped. Only the id and the attempt
    count are read (not a message's content).
    """
    rows = session.execute(
        select(model.id, model.attempts)
        .where(model.status == "pending", model.lease_until <= now)
        .order_by(model.lease_until)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        session.execute(
            update(model)
            .where(model.id.in_([row.id for row in rows]))
            .values(lease_until=now + lease)
            .execution_options(synchronize_session=False)
        )
    return list(rows)


def claim_overdue_deliveries(
    session: Session, now: datetime, lease: timedelta, limit: int
) -> list[DeliverMessage]:
    """Pending messages whose lease ran out (lost task, crash, back-off over): emit again."""
    rows = claim_expired_leases(session, MessageRow, now, lease, limit)
    return [DeliverMessage(row.id, row.attempts) for row in rows]
