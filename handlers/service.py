"""The application's use cases, each one transaction: what actors, scheduler and CLI call.

Every use case commits first and publishes the tasks it produced afterwards. Broker
messages are remembered as processed in the same transaction as their effects, so a
message delivered twice changes nothing the second time. Transactions are units of work
(``handlers.ports.UnitOfWork``) opened by the factory the composition root built: the
reminder path reads and writes through the dunning store the context builds on it, every
other handler through its store port (``uow.store``, ``handlers.store``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import structlog

from handlers import approval, inbox, signals
from handlers.batching import IngestBatch
from handlers.context import Context, UnknownCreditor
from handlers.escalation import handle_deadline
from handlers.events import (
    DEFAULT_CREDITOR,
    KEPT_BYTES,
    MAX_LINE_BYTES,
    EventRejected,
    check_signature,
    decode_json,
    validate_event,
)
from handlers.messages import StepDue, StepsDue
from handlers.money import MissingRate
from handlers.ports import Publisher, ScopedUnits, UnitOfWork, UnitsOfWork, log_as, units_of_row
from handlers.reminders import handle_step_due

log = structlog.get_logger("relance.service")

StepHandler = Callable[[UnitOfWork, int, datetime, Context], list[object]]


def _deadlines(uow: UnitOfWork, step_id: int, now: datetime, ctx: Context) -> list[object]:
    return handle_deadline(uow.store, step_id, now, ctx)


def _reminders(uow: UnitOfWork, step_id: int, now: datetime, ctx: Context) -> list[object]:
    """Send what is due; a subscriber to levels hears of the debtor's new level, if any."""
    store = uow.store
    step = store.step(step_id) if signals.watching_levels(store) else None
    # locked before its level is read, as the reminder path locks it: no level read in between
    debtor = store.debtor(step.debtor_id, lock=True) if step is not None else None
    if debtor is None:
        return handle_step_due(uow, step_id, now, ctx)
    before = signals.level_of(store, debtor, ctx.policies)
    tasks = handle_step_due(uow, step_id, now, ctx)
    signals.level_changed(store, debtor, ctx.policies, before, now, "reminder recorded")
    return tasks


def approve_draft(
    uow: UnitOfWork, draft_id: int, by: str, now: datetime, ctx: Context, *, publishing: bool = True
) -> approval.Outcome:
    """Approve a draft (``handlers.approval.approve``) in ``uow``; a subscriber to levels
    hears of the debtor's new level: a drafted step is reached once it is approved."""
    drafts = cast(approval.ApprovalStore, ctx.dunning_store(uow))
    store = uow.store
    if not signals.watching_levels(store):
        return approval.approve(drafts, draft_id, by, now, ctx, publishing=publishing)
    draft = approval.awaiting(drafts, draft_id)
    debtor = store.debtor(draft.debtor_id, lock=True)  # locked before its level is read
    before = signals.level_of(store, debtor, ctx.policies) if debtor is not None else None
    outcome = approval.approve(drafts, draft_id, by, now, ctx, publishing=publishing)
    if debtor is not None and before is not None:
        signals.level_changed(store, debtor, ctx.policies, before, now, "message approved")
    return outcome


STEP_HANDLERS: dict[str, StepHandler] = {
    "invoice.due": _reminders,
    "invoice.overdue": _reminders,
    "deadline.expired": _deadlines,
}


class _Duplicate(Exception):
    """Leaves the unit of work of a message already processed, rolling it back."""


def process_once(
    units: UnitsOfWork,
    publisher: Publisher,
    message_id: str,
    actor: str,
    work: Callable[[UnitOfWork], list[object]],
    now: datetime,
) -> bool:
    """Run ``work`` unless ``message_id`` was processed; return False for a duplicate."""
    try:
        with units() as uow:
            # written first: a second copy running at the same time waits on this key
            if not uow.remember_message(message_id, actor, now):
                raise _Duplicate
            tasks = [*work(uow), *uow.take_tasks()]  # published once committed
    except _Duplicate:
        log.info("message.duplicate", message_id=message_id, actor=actor)
        return False
    if tasks:
        publisher.publish(tasks)
    return True


def run_step(
    units: UnitsOfWork,
    publisher: Publisher,
    message_id: str,
    event: str,
    step_id: int,
    now: datetime,
    ctx: Context,
) -> bool:
    """Handle one scheduler event (invoice.due / invoice.overdue / deadline.expired)."""
    handler = STEP_HANDLERS[event]
    units, creditor = units_of_row(units, "planned_steps", step_id)
    ctx = ctx.for_creditor(creditor) if creditor is not None else ctx
    return process_once(units, publisher, message_id, event, lambda uow: handler(uow, step_id, now, ctx), now)


def run_steps(
    units: UnitsOfWork,
    publisher: Publisher,
    message_id: str,
    creditor: str,
    steps: Sequence[StepDue],
    now: datetime,
    ctx: Context,
) -> bool:
    """Handle a batch of scheduler events of ``creditor`` (``StepsDue``) in one transaction.

    The batch's ``message_id`` is remembered once, each step's handler runs in turn, and
    the commit chains the evidence once per chain. If anything fails, the transaction is
    rolled back and each step runs on its own as ``run_step`` runs it, deduplicated by the
    step's own ``StepDue`` id (``_one_by_one``): one step's failure undoes no other step.
    The creditor comes with the batch: no transaction to look it up. Return False for a
    duplicate of a batch already handled.
    """
    log_as(creditor)
    ctx = ctx.for_creditor(creditor)
    units = ScopedUnits(units, creditor)
    try:
        with units() as uow:
            # written first: a second copy running at the same time waits on this key
            if not uow.remember_message(message_id, StepsDue.actor, now):
                raise _Duplicate
            tasks = [*_each_step(uow, steps, now, ctx), *uow.take_tasks()]  # published once committed
    except _Duplicate:
        log.info("message.duplicate", message_id=message_id, actor=StepsDue.actor)
        return False
    except Exception as exc:  # rolled back: every step again, each in its own transaction
        log.warning("steps.batch_failed", message_id=message_id, steps=len(steps), error=_said(exc))
        _one_by_one(units, publisher, steps, now, ctx)
        return True
    if tasks:
        publisher.publish(tasks)
    return True


def _each_step(uow: UnitOfWork, steps: Sequence[StepDue], now: datetime, ctx: Context) -> list[object]:
    # what the first step of each debtor reads, read at once for the batch
    ctx.dunning_store(uow).read_ahead([step.step_id for step in steps], now)
    tasks: list[object] = []
    for step in steps:
        tasks.extend(STEP_HANDLERS[step.event](uow, step.step_id, now, ctx))
    return tasks


def _one_by_one(
    units: UnitsOfWork, publisher: Publisher, steps: Sequence[StepDue], now: datetime, ctx: Context
) -> None:
    """Each step of a failed batch in its own transaction, keyed by its own message id (a
    step done before is a duplicate, or a no-op by its state). A step that fails is logged
    and the others go on; the first failure is raised at the end (a missing rate only when
    nothing else failed), so the broker retries the batch, in which only the failed steps
    are left to do."""
    failure: Exception | None = None
    for step in steps:
        try:
            process_once(units, publisher, step.message_id, step.event, _work_of(step, now, ctx), now)
        except Exception as exc:
            log.warning("steps.step_failed", step_id=step.step_id, error=_said(exc))
            if failure is None or (isinstance(failure, MissingRate) and not isinstance(exc, MissingRate)):
                failure = exc
    if failure is not None:
        raise failure


def _work_of(step: StepDue, now: datetime, ctx: Context) -> Callable[[UnitOfWork], list[object]]:
    handler = STEP_HANDLERS[step.event]
    return lambda uow: handler(uow, step.step_id, now, ctx)


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


@dataclass(frozen=True)
class IngestResult:
    status: str  # accepted | duplicate | parked | rejected
    event_id: str | None
    reason: str | None = None


@dataclass(frozen=True)
class ParsedLine:
    """One raw event after validation: its text, decoded JSON and event, or the rejection."""

    text: str
    data: dict | None
    event: object | None
    rejected: EventRejected | None


def parse_line(raw: str | bytes) -> ParsedLine:
    """Validate one raw event; nothing is stored or logged yet (``ingest_one`` does that)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        data = decode_json(raw)
        return ParsedLine(text, data, validate_event(data), None)
    except EventRejected as rejected:  # kept without its traceback (and the frames in it)
        return ParsedLine(text, None, None, EventRejected(rejected.reason, rejected.event_id))


def ingest_one(
    uow: UnitOfWork,
    raw: str | bytes,
    now: datetime,
    ctx: Context,
    *,
    source: str | None = None,
    line_no: int | None = None,
    parsed: ParsedLine | None = None,
    batch: IngestBatch | None = None,
) -> IngestResult:
    """Validate and apply one raw event inside ``uow``; a rejection is stored, not raised.

    ``relance ingest`` passes the line already parsed (``parse_line``) and the ``batch`` the
    event belongs to: the inbox is then read once per batch, and the event is applied
    without a savepoint unless the batch asks for them (see ``adapters.ingest_batch.Batch``).
    """
    if parsed is None:
        parsed = parse_line(raw)
    if parsed.rejected is not None:
        return _reject(uow, raw, parsed.rejected, now, source, line_no)
    creditor = getattr(parsed.event, "creditor_id", DEFAULT_CREDITOR)
    uow.scope(creditor)
    log_as(creditor)
    try:
        return _apply(uow, raw, parsed, now, ctx, creditor, source, line_no, batch)
    finally:
        log_as(None)  # the next event may be another creditor's


def _apply(
    uow: UnitOfWork,
    raw: str | bytes,
    parsed: ParsedLine,
    now: datetime,
    ctx: Context,
    creditor: str,
    source: str | None,
    line_no: int | None,
    batch: IngestBatch | None,
) -> IngestResult:
    store = uow.store
    try:
        ctx = _creditors_context(ctx, creditor, parsed)
        if parsed.data is not None and parsed.data.get("type") == "delivery.status":
            check_signature(parsed.data, ctx.status_key, parsed.data.get("event_id"))
        if batch is not None and not batch.savepoints:
            outcome = inbox.receive(
                store, parsed.event, parsed.text, now, ctx.policies, data=parsed.data, batch=batch
            )
        else:
            with uow.savepoint():
                outcome = inbox.receive(
                    store, parsed.event, parsed.text, now, ctx.policies, data=parsed.data, batch=batch
                )
    except EventRejected as rejected:
        return _reject(uow, raw, rejected, now, source, line_no)
    if outcome.status == "duplicate":
        log.info("event.duplicate", event_id=outcome.event_id)
    return IngestResult(outcome.status, outcome.event_id, outcome.detail)


def _creditors_context(ctx: Context, creditor: str, parsed: ParsedLine) -> Context:
    try:
        return ctx.for_creditor(creditor)
    except UnknownCreditor as exc:
        raise EventRejected(str(exc), getattr(parsed.event, "event_id", None)) from None


def _reject(
    uow: UnitOfWork,
    raw: str | bytes,
    rejected: EventRejected,
    now: datetime,
    source: str | None,
    line_no: int | None,
) -> IngestResult:
    """Store and log a rejected event."""
    uow.store_rejected(
        event_id=_storable_id(rejected.event_id),
        raw=_storable_raw(raw),
        reason=_no_nul(rejected.reason),
        source=_clip_source(source),
        line_no=line_no,
        received_at=now,
    )
    log.warning(
        "event.rejected", event_id=rejected.event_id, reason=rejected.reason, source=source, line=line_no
    )
    return IngestResult("rejected", rejected.event_id, rejected.reason)


def _no_nul(text: str) -> str:
    """PostgreSQL text cannot hold U+0000: write it as the four characters ``\\x00``."""
    return text.replace("\x00", "\\x00")


def _storable_raw(raw: str | bytes) -> str:
    """The rejected line as text, kept as it came: bytes that are not UTF-8 and NUL
    characters become ``\\xNN`` (so a replay of the stored text is still refused). Of a
    line longer than the limit, only the first ``KEPT_BYTES`` are kept (its reason gives
    its size and SHA-256)."""
    raw = _head_of_overlong(raw)
    text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
    return _no_nul(text.encode("utf-8", "backslashreplace").decode("utf-8"))  # lone surrogates


def _head_of_overlong(raw: str | bytes) -> str | bytes:
    if isinstance(raw, str):
        if len(raw) * 4 <= MAX_LINE_BYTES:
            return raw
        raw = raw.encode("utf-8", "surrogatepass")
    return raw[:KEPT_BYTES] if len(raw) > MAX_LINE_BYTES else raw


def _storable_id(event_id: str | None) -> str | None:
    """An event id fit for the column (at most 200 characters, no NUL), else none."""
    if event_id is None or len(event_id) > 200 or "\x00" in event_id:
        return None
    return event_id


def _clip_source(source: str | None) -> str | None:
    return source if source is None or len(source) <= 300 else "…" + source[-299:]
