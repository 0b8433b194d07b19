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
from decimal import Decimal
from typing import Any, Protocol

import structlog

from handlers.context import Context
from handlers.messages import DeliverSignal, stable_id
from handlers.outbox import Outbox, Refusal, gives_up, is_permanent, refusal
from handlers.policy import PolicySet
from handlers.ports import PermanentFailure, TransientFailure, UnitsOfWork, units_of_row
from handlers.records import CaseRecord, DebtorRecord, InvoiceRecord
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


# --- the debtor's level -----------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """The most severe step already sent among the debtor's open invoices.

    A step is reached when its reminder is recorded (the step is ``done``); its severity is
    its place in the invoice's policy, mildest first (1, 2, …); 0 and None: no step reached.
    """

    step: str | None
    severity: int
    invoices: tuple[dict[str, Any], ...] = ()  # each open invoice, its step and balance


NO_LEVEL = Level(None, 0)


def level_of(store: Store, debtor: DebtorRecord, policies: PolicySet) -> Level:
    """The debtor's level now, with each open invoice's step and balance."""
    reached: dict[str, tuple[int, str]] = {}
    for number, step in store.steps_reached(debtor.id):
        # a call or task is no level: the ladder of messages is what the debtor was told
        names = [s.name for s in policies.for_debtor(debtor, number).steps if not s.manual]
        if step in names:
            reached[number] = max(reached.get(number, (0, "")), (names.index(step) + 1, step))
    invoices = tuple(
        {
            "number": i.number,
            "step": reached[i.number][1] if i.number in reached else None,
            "currency": i.currency,
            "balance": str(i.balance),
        }
        for i in store.open_invoices(debtor.id)
    )
    if not reached:
        return Level(None, 0, invoices)
    severity, step = max(reached.values())
    return Level(step, severity, invoices)


def watching_levels(store: Store) -> bool:
    """Whether anyone subscribes to ``debtor.level_changed`` (the level is read only then)."""
    return bool(store.subscribers("debtor.level_changed"))


def level_changed(
    store: Store, debtor: DebtorRecord, policies: PolicySet, before: Level, now: datetime, cause: str
) -> None:
    """Record ``debtor.level_changed`` if the debtor's level is no longer ``before``."""
    after = level_of(store, debtor, policies)
    if after.step == before.step:
        return
    record(
        store,
        "debtor.level_changed",
        now,
        {
            "debtor_id": debtor.id,
            "level": after.step,
            "severity": after.severity,
            "previous_level": before.step,
            "previous_severity": before.severity,
            "cause": cause,
            "outstanding": _outstanding(after.invoices),
            "invoices": list(after.invoices),
        },
    )


def _outstanding(invoices: tuple[dict[str, Any], ...]) -> list[dict[str, str]]:
    """The open balances summed by currency, as decimal strings."""
    totals: dict[str, Decimal] = {}
    for i in invoices:
        totals[i["currency"]] = totals.get(i["currency"], Decimal(0)) + Decimal(i["balance"])
    return [{"currency": c, "amount": str(amount)} for c, amount in sorted(totals.items())]


# --- the other facts ------------------------------------------------------------------------


def invoice_settled(store: Store, invoice: InvoiceRecord, now: datetime) -> None:
    record(
        store,
        "invoice.settled",
        now,
        {
            "debtor_id": invoice.debtor_id,
            "invoice_number": invoice.number,
            "currency": invoice.currency,
            "amount_due": str(invoice.amount_due),
            "paid": str(invoice.paid),
            "credited": str(invoice.credited),
        },
    )


def case_fact(
    store: Store, signal_type: str, case: CaseRecord, now: datetime, cause: str | None = None
) -> None:
    """``case.opened`` or ``case.closed``: the case, its invoices and its amounts."""
    record(
        store,
        signal_type,
        now,
        {
            "case_id": case.id,
            "kind": case.kind,
            "status": case.status,
            "debtor_id": case.debtor_id,
            "invoice_numbers": sorted(i.number for i in store.case_invoices(case.id)),
            "recommended_procedure": case.recommended_procedure,
            "currency": case.currency,
            "principal": str(case.principal),
            "late_interest": str(case.late_interest),
            "recovery_indemnity": str(case.indemnities),
            "amount_claimed": str(case.amount_claimed),
            **({"cause": cause} if cause else {}),
        },
    )


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
