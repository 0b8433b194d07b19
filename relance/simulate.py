"""``relance simulate``: replay events on a virtual clock through the real service parts.

The store is a SQLite file (a throwaway folder, or ``--data-dir``), the broker is the
in-process one with a real Dramatiq worker, e-mails and letters go to the outbox files.
The clock jumps from one interesting instant to the next: an event's ``occurred_at`` or a
planned step's due instant; at each, events are ingested, the scheduler ticks and the
workers drain the queue. Every action is read back from the evidence chain, and every signal
for a webhook subscriber from the signals table: a simulation lists them as
``signal.recorded`` and sends none (``NotSent``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr
from sqlalchemy import ColumnElement, and_, exists, func, or_, select

from adapters.orm import EvidenceRecord, MessageRow, PlannedStep, SignalRow, StepLease
from adapters.publisher import QUEUE
from adapters.store import transaction
from config.bootstrap import App, attach_publisher, build_app, prepare_store
from config.creditor import Seller, example_keys, seller_as_creditor, with_creditor
from config.errors import ConfigError
from config.settings import Settings
from handlers.calendar import zone
from handlers.events import DEFAULT_CREDITOR, EventRejected, decode_json
from handlers.ports import VirtualClock
from handlers.service import ingest_one
from scheduler.tick import tick
from worker.broker import make_broker

ACTIONS = (
    "reminder.sent",
    "message.drafted",
    "message.approved",
    "message.withdrawn",
    "reminder.skipped",
    "task.created",
    "case.escalated",
    "case.opened",
    "deadline.expired",
    "deadline.moved",
    "prescription.warning",
    "insolvency.origin_presumed",
    "insolvency.converted",
    "insolvency.plan_adopted",
    "insolvency.closed",
    "invoice.factored",
    "invoice.unfactored",
    "invoice.status_changed",
)
FIELDS = (
    "at",
    "action",
    "creditor_id",  # only for a creditor other than default
    "step",
    "event",
    "debtor_id",
    "invoice_numbers",
    "mentioned_invoice_numbers",
    "channel",
    "to",
    "subject",
    "body_text",
    "amount_due",
    "late_interest",
    "recovery_indemnity",
    "currency",
    "message_id",
    "task_id",
    "phone",
    "amounts",
    "due_on",
    "reason",
    "by",
    "recommended_procedure",
    "amount_claimed",
    "case_id",
    "deadline",
    "declared_to",
    "signal_type",
    "subscriber",
    "level",
    "previous_level",
    "status_code",  # invoice.status_changed: the lifecycle status, its label and what it did
    "label",
    "outcome",
)


@dataclass(frozen=True)
class InputEvent:
    line_no: int
    raw: str
    at: datetime | None  # None when occurred_at cannot be read: applied at the start


def read_events(lines: list[str]) -> list[InputEvent]:
    events = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        events.append(InputEvent(number, raw.rstrip("\n"), _occurred_at(raw)))
    return events


def _occurred_at(raw: str) -> datetime | None:
    try:
        value = decode_json(raw).get("occurred_at")
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except (EventRejected, ValueError):
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


class NotSent:
    """The signal link of a simulation: nothing leaves, the signal counts as delivered (204)."""

    def post(self, subscriber: object, body: bytes, timestamp: int, idempotency_key: str) -> int:
        return 204


# what a preview calls a draft: the message that would wait for a person (docs/cli.md)
SHOWN_AS = {"message.drafted": "message.awaiting_approval"}
APPROVER = "simulate --approve-all"

# a simulation's messages go nowhere: a key known to all keeps their ids reproducible
SIMULATION_KEY = "relance simulate"


class Simulation:
    def __init__(
        self, settings: Settings, events: list[InputEvent], until: date, *, approve_all: bool = False
    ) -> None:
        self.approve_all = approve_all
        known = [e.at for e in events if e.at is not None]
        start = min(known) if known else datetime.now(UTC)
        self.clock = VirtualClock(start)
        if settings.message_id_key is None:  # the same Message-IDs on every run (docs/events.md)
            settings = settings.model_copy(update={"message_id_key": SecretStr(SIMULATION_KEY)})
        self.app: App = build_app(settings, clock=self.clock)
        self.app.ctx = replace(self.app.ctx, signal_link=NotSent())  # a preview posts nothing
        prepare_store(self.app, auto_migrate=True)
        self.tz = self.app.ctx.policy.timezone
        self.end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=zone(self.tz))
        self.pending = sorted(events, key=lambda e: (e.at or start, e.line_no))
        self.start = start
        self.seen: dict[str, int] = {}  # the last record shown, per creditor's chain
        with transaction(self.app.sessions) as session:
            session.scope(None)
            self.last_signal = session.execute(select(func.coalesce(func.max(SignalRow.id), 0))).scalar_one()
            for creditor, last in session.execute(
                select(EvidenceRecord.creditor_id, func.max(EvidenceRecord.seq)).group_by(
                    EvidenceRecord.creditor_id
                )
            ).all():
                self.seen[creditor] = last

    def run(self) -> Iterator[dict[str, Any]]:
        from worker import broker as broker_setup
        from worker import runtime

        broker = broker_setup.use(make_broker(self.app.settings, stub=True))
        import worker.actors  # noqa: F401

        attach_publisher(self.app, broker)
        publisher = self.app.publisher
        assert publisher is not None  # just attached
        runtime.install(self.app)
        runtime.collect_missing_rates()
        from relance.service import start_workers

        workers = start_workers(broker, 1)  # one thread: actions in a repeatable order
        try:
            while (instant := self._next_instant()) is not None:
                self.clock.set(instant)
                yield from self._ingest_until(instant)
                tick(
                    self.app.sessions,
                    publisher,
                    instant,
                    lease=self.app.ctx.lease,
                    batch_size=self.app.settings.batch_size,
                    worker_batch=self.app.settings.worker_batch,
                )
                broker.join(QUEUE, fail_fast=True)  # type: ignore[call-arg]  # StubBroker.join
                workers.join()
                if self.approve_all and self._approve_drafts():
                    broker.join(QUEUE, fail_fast=True)  # type: ignore[call-arg]
                    workers.join()
                yield from self._new_actions()
                _stop_if_a_rate_is_missing(runtime.missing_rates(), self.app.settings)
        finally:
            runtime.collect_missing_rates(on=False)
            workers.stop()
            broker.close()
            self.app.dispose()

    def _approve_drafts(self) -> int:
        """``--approve-all``: approve every draft at once, as a person would; how many."""
        from relance.drafts import approve_drafts, list_drafts

        drafts = list_drafts(self.app, None)
        approve_drafts(self.app, [d.id for d in drafts], APPROVER)
        return len(drafts)

    def _next_instant(self) -> datetime | None:
        candidates = [self.pending[0].at or self.start] if self.pending else []
        with transaction(self.app.sessions) as session:
            session.scope(None)  # every creditor's steps
            due = session.execute(
                select(func.min(PlannedStep.due_at)).where(
                    PlannedStep.status == "planned",
                    ~exists().where(StepLease.step_id == PlannedStep.id),  # not in flight
                )
            ).scalar()
        if due is not None:
            candidates.append(due.replace(tzinfo=UTC) if due.tzinfo is None else due)
        candidates = [c for c in candidates if c < self.end]
        return max(min(candidates), self.clock.now()) if candidates else None

    def _ingest_until(self, instant: datetime) -> Iterator[dict[str, Any]]:
        while self.pending and (self.pending[0].at or self.start) <= instant:
            item = self.pending.pop(0)
            with self.app.units() as uow:
                result = ingest_one(
                    uow, item.raw, instant, self.app.ctx, source="simulate", line_no=item.line_no
                )
                tasks = uow.take_tasks()  # the signals of what it recorded
            if tasks and self.app.publisher is not None:
                self.app.publisher.publish(tasks)
            if result.status == "rejected":
                yield {
                    "at": self._local(instant),
                    "action": "event.rejected",
                    "reason": f"line {item.line_no}: {result.reason}",
                }

    def _new_actions(self) -> Iterator[dict[str, Any]]:
        with transaction(self.app.sessions) as session:
            session.scope(None)  # every creditor's chain, in the order things happened
            records = sorted(
                session.execute(select(EvidenceRecord).where(self._not_shown())).scalars().all(),
                key=lambda r: (r.at, r.creditor_id != DEFAULT_CREDITOR, r.creditor_id, r.seq),
            )
            bodies = {}
            ids = [r.message_id for r in records if r.message_id]
            if ids:
                bodies = dict(
                    session.execute(
                        select(MessageRow.message_id, MessageRow.body_text).where(
                            MessageRow.message_id.in_(ids)
                        )
                    ).all()
                )
        for record in records:
            self.seen[record.creditor_id] = record.seq
            payload = json.loads(record.payload)
            if payload.get("action") not in ACTIONS:
                continue
            payload["at"] = self._local(record.at)
            payload["action"] = SHOWN_AS.get(payload["action"], payload["action"])
            if record.creditor_id != DEFAULT_CREDITOR:
                payload["creditor_id"] = record.creditor_id
            if record.message_id in bodies:
                payload["body_text"] = bodies[record.message_id]
            yield {k: payload[k] for k in FIELDS if payload.get(k) not in (None, "", [])}
        yield from self._new_signals()

    def _new_signals(self) -> Iterator[dict[str, Any]]:
        """The signals recorded since the last ones shown, one ``signal.recorded`` each."""
        with transaction(self.app.sessions) as session:
            session.scope(None)
            rows = (
                session.execute(
                    select(SignalRow).where(SignalRow.id > self.last_signal).order_by(SignalRow.id)
                )
                .scalars()
                .all()
            )
        for row in rows:
            self.last_signal = row.id
            data = json.loads(row.payload)["data"]
            numbers = data.get("invoice_numbers") or [
                n for n in [data.get("invoice_number")] + [i["number"] for i in data.get("invoices", [])] if n
            ]
            action = {
                **data,
                "at": self._local(row.created_at),
                "action": "signal.recorded",
                "signal_type": row.signal_type,
                "subscriber": row.subscriber,
                "invoice_numbers": numbers,
                "creditor_id": row.creditor_id if row.creditor_id != DEFAULT_CREDITOR else None,
            }
            yield {k: action[k] for k in FIELDS if action.get(k) not in (None, "", [])}

    def _not_shown(self) -> ColumnElement[bool]:
        """The records after the last one shown of each chain, and those of new chains."""
        shown = [
            and_(EvidenceRecord.creditor_id == creditor, EvidenceRecord.seq > last)
            for creditor, last in self.seen.items()
        ]
        return or_(EvidenceRecord.creditor_id.not_in(list(self.seen)), *shown)

    def _local(self, instant: datetime) -> str:
        return instant.astimezone(zone(self.tz)).isoformat()


def _stop_if_a_rate_is_missing(half_years: list[str], settings: Settings) -> None:
    """A step needed a half-year the rate table lacks: say which and where to add it."""
    if not half_years:
        return
    table = settings.rates_file or "config/rates.toml"
    raise ConfigError(
        f"no rate for {half_years[0]}: add it to {table} (or to the file RELANCE_RATES_FILE "
        "names) and simulate again; see docs/configuration.md#rate-table"
    )


def _debtor(action: dict[str, Any]) -> str:
    """The debtor, and its creditor when it is not ``default``: ``CLI-001 (atelier)``."""
    debtor = str(action.get("debtor_id", ""))
    return f"{debtor} ({action['creditor_id']})" if action.get("creditor_id") else debtor


def _task(action: dict[str, Any]) -> str:
    """What a task's line shows: the phone to call and the amounts."""
    if "task_id" not in action:
        return ""
    amounts = ", ".join(f"{amount} {currency}" for currency, amount in action.get("amounts", {}).items())
    return f"{action.get('phone', 'no phone')}  {amounts}"


def format_table(action: dict[str, Any]) -> str:
    what = action.get("step") or action.get("signal_type") or action.get("recommended_procedure") or ""
    by = f"by {action['by']}" if action.get("by") else ""
    said = action.get("subject") or action.get("reason") or action.get("amount_claimed")
    extra = said or _task(action) or by
    return "  ".join(
        [
            action["at"][:16].replace("T", " "),
            f"{action['action']:<16}",
            f"{what:<22}",
            f"{_debtor(action):<10}",
            ",".join(action.get("invoice_numbers", [])),
            action.get("channel", ""),
            str(extra),
        ]
    ).rstrip()


def simulate(
    settings: Settings,
    source: TextIO,
    until: date,
    out: TextIO,
    output_format: str = "jsonl",
    sellers: Sequence[Seller] = (),
    *,
    approve_all: bool = False,
) -> int:
    """Print what the policy does to the events of ``source`` up to ``until``; ``sellers``,
    those of the e-invoices read, give the creditor shown where its identity is still the
    example's; with ``approve_all``, every draft is approved as soon as it is made."""
    simulation = Simulation(settings, read_events(source.readlines()), until, approve_all=approve_all)
    _seller_as_creditor(simulation, sellers)
    for action in simulation.run():
        if output_format == "table":
            out.write(format_table(action) + "\n")
        else:
            out.write(json.dumps(action, ensure_ascii=False) + "\n")
        out.flush()
    return 0


def _seller_as_creditor(simulation: Simulation, sellers: Sequence[Seller]) -> None:
    """A preview of e-invoices shows their seller as the creditor where no identity is
    configured (still the shipped example's): the first seller named. The others, if the
    files have several, are named on stderr."""
    creditors = [c for c in (seller_as_creditor(s) for s in sellers) if c is not None]
    if not creditors:
        return
    ctx = simulation.app.ctx
    if not any(example_keys(p.creditor) for p in ctx.policies.all):
        return  # the operator's identity stands
    simulation.app.ctx = replace(ctx, policies=with_creditor(ctx.policies, creditors[0]))
    shown = creditors[0].name
    others = sorted({c.name for c in creditors} - {shown})
    note = f"; the other sellers ({', '.join(others)}) are not shown" if others else ""
    sys.stderr.write(f"relance simulate: the creditor shown is the seller of the e-invoices, {shown}{note}\n")


def throwaway_dir() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="relance-simulate-"))
