"""Signals out: facts posted to the webhook subscribers of the webhooks file.

Where a fact happens (an invoice settled, a case opened or closed, a debtor's level
changed), the same transaction inserts one ``pending`` signal row per subscriber of that
type and creditor, its JSON body fixed there, and publishes a ``deliver_signal`` task after
commit. The task takes attempt *n* by compare-and-set on ``attempts`` (the leased outbox of
``handlers.outbox``, as hand-overs and messages), posts the body signed, and marks the row
``delivered``; a transient failure (timeout, 408, 429, 5xx) keeps it pending with a
back-off that the scheduler tick honours; a refusal (another 4xx) or ``max_attempts``
transient failures mark it ``failed``, logged for the operator.

Body: ``{"id", "type", "occurred_at", "creditor_id", "data"}``; ``id`` is also the
``Idempotency-Key`` header, the same on every attempt. Amounts are decimal strings beside
their currency. See docs/webhooks.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from handlers.context import Context
from handlers.messages import DeliverSignal, stable_id
from handlers.outbox import Outbox, Refusal, gives_up, is_permanent, refusal
from handlers.ports import PermanentFailure, TransientFailure, UnitsOfWork, units_of_row
from handlers.store import NewSignal, Store
from handlers.webhooks import SIGNAL_TYPES, Subscriber

log = structlog.get_logger("relance.signals")

# how long a recorded signal waits for its first attempt before the scheduler emits it again
FIRST_LEASE = timedelta(minutes=5)
DEFAULT_MAX_ATTEMPTS = 10


class SignalLink(Protocol):
    """How a signal reaches its subscriber (``adapters.signals.SignalPoster``)."""

    def post(self, subscriber: Subscriber, body: bytes, timestamp: int, idempotency_key: str) -> int:
        """POST ``body`` signed; the HTTP status of a success.

        Raises ``TransientFailure`` or ``PermanentFailure`` (with ``status`` when answered).
        """


# --- recording (inside the transaction where the fact happens) ----------------------------


def record(store: Store, signal_type: str, now: datetime, data: Mapping[str, Any]) -> list[DeliverSignal]:
    """One pending signal per subscriber of ``signal_type``; their tasks go after commit."""
    assert signal_type in SIGNAL_TYPES, signal_type
    names = store.subscribers(signal_type)
    if not names:
        return []
    creditor = store.signal_creditor()
    fact = json.dumps(data, sort_keys=True, ensure_ascii=False)
    tasks = []
    for name in names:
        key = stable_id("signal", creditor, name, signal_type, now.isoformat(), fact)
        body = json.dumps(
            {
                "id": key,
                "type": signal_type,
                "occurred_at": now.isoformat(),
                "creditor_id": creditor,
                "data": data,
            },
            ensure_ascii=False,
            sort_keys=True,
        )
        new = NewSignal(name, signal_type, key, body, lease_until=now + FIRST_LEASE)
        signal_pk = store.add_signal(new, now)
        log.info(
            "signal.recorded",
            signal_id=signal_pk,
            signal_type=signal_type,
            subscriber=name,
            idempotency_key=key,
        )
        task = DeliverSignal(signal_pk, 0)
        store.after_commit(task)
        tasks.append(task)
    return tasks


# --- delivering (the deliver_signal actor) ------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    signal_pk: int
    signal_type: str
    idempotency_key: str
    attempts: int
    body: bytes
    subscriber: Subscriber


def deliver_signal(
    units: UnitsOfWork, signal_pk: int, attempt: int, clock: Callable[[], datetime], ctx: Context
) -> str:
    """Post one signal; return 'delivered', 'skipped', 'retry' or 'failed'."""
    units, _ = units_of_row(units, "signals", signal_pk)
    with units() as uow:
        claimed = _claim(uow.store.signals(), signal_pk, attempt, clock(), ctx)
    if isinstance(claimed, str):
        return claimed
    try:
        code = _link(ctx).post(
            claimed.subscriber, claimed.body, int(clock().timestamp()), claimed.idempotency_key
        )
    except (TransientFailure, PermanentFailure) as exc:
        return _record_failure(
            units, claimed, clock(), ctx, str(exc), _code(exc), permanent=is_permanent(exc)
        )
    with units() as uow:
        done = uow.store.signals().mark_done(signal_pk, clock(), response_code=code)
    if done is not None:
        log.info(
            "signal.delivered",
            signal_id=signal_pk,
            signal_type=claimed.signal_type,
            subscriber=claimed.subscriber.name,
            response_code=code,
            attempts=done.attempts,
        )
    return "delivered"


def _claim(outbox: Outbox, signal_pk: int, attempt: int, now: datetime, ctx: Context) -> _Claimed | str:
    """Take attempt number ``attempt``, or say why not; a subscriber gone from the file fails it."""
    current = outbox.get(signal_pk)
    why = refusal(current.status, current.attempts, attempt) if current else Refusal.MISSING
    if why is not None:
        return why.outcome
    assert current is not None
    name, signal_type = str(current.details["subscriber"]), str(current.details["signal_type"])
    subscriber = ctx.webhooks.get(name) if ctx.webhooks else None
    if subscriber is None:
        error = f"subscriber {name!r} is no longer in the webhooks file"
        failed = outbox.record_failure(signal_pk, now, error, count_attempt=True)
        assert failed is not None  # locked and pending above
        _log_failed(signal_pk, signal_type, name, failed.attempts, None, error)
        return "failed"
    taken = outbox.claim(signal_pk, attempt, now, ctx.lease)
    if isinstance(taken, Refusal):
        return taken.outcome
    body = str(taken.details["payload"]).encode("utf-8")
    key = str(taken.details["idempotency_key"])
    return _Claimed(signal_pk, signal_type, key, taken.attempts, body, subscriber)


def _link(ctx: Context) -> SignalLink:
    if ctx.signal_link is None:
        raise RuntimeError("this context has no signal link (config.bootstrap.make_context gives one)")
    link: SignalLink = ctx.signal_link
    return link


def _code(exc: Exception) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _record_failure(
    units: UnitsOfWork,
    claimed: _Claimed,
    now: datetime,
    ctx: Context,
    error: str,
    code: int | None,
    *,
    permanent: bool,
) -> str:
    limit = ctx.webhooks.max_attempts if ctx.webhooks else DEFAULT_MAX_ATTEMPTS
    name = claimed.subscriber.name
    with units() as uow:
        outbox = uow.store.signals()
        current = outbox.get(claimed.signal_pk)
        if current is None or current.status != "pending":
            return "skipped"
        if gives_up(current.attempts, limit, permanent=permanent):
            reason = error if permanent else f"{error} (after {current.attempts} attempts)"
            failed = outbox.record_failure(claimed.signal_pk, now, reason, response_code=code)
            assert failed is not None  # locked and pending above
            _log_failed(claimed.signal_pk, claimed.signal_type, name, failed.attempts, code, reason)
            return "failed"
        retry = outbox.record_retry(claimed.signal_pk, now, error, response_code=code)
        assert retry is not None and retry.lease_until is not None  # locked and pending above
    log.warning(
        "signal.retry",
        signal_id=claimed.signal_pk,
        signal_type=claimed.signal_type,
        subscriber=name,
        attempts=retry.attempts,
        response_code=code,
        next_attempt_at=retry.lease_until.isoformat(),
        error=error[:200],
    )
    return "retry"


def _log_failed(
    signal_pk: int, signal_type: str, subscriber: str, attempts: int, code: int | None, error: str
) -> None:
    log.error(
        "signal.failed",
        signal_id=signal_pk,
        signal_type=signal_type,
        subscriber=subscriber,
        attempts=attempts,
        response_code=code,
        error=error[:200],
    )


# --- the scheduler's part -------------------------------------------------------------------


def claim_overdue_signals(store: Store, now: datetime, lease: timedelta, limit: int) -> list[DeliverSignal]:
    """Pending signals whose lease or back-off ran out (lost task, crash): emit again."""
    return [DeliverSignal(due.id, due.attempt) for due in store.signals().claim_expired(now, lease, limit)]
