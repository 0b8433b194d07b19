"""One scheduler tick: claim due steps in the database, commit, then publish.

Claiming is ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (serialised writers on SQLite) with a
lease: a claimed step is ``emitted`` until its lease ends; if no worker finished it by then
(message lost, worker killed) the next tick emits it again under the same message id.
Several schedulers may run at once: each step is claimed by one of them per lease, and the
workers' inbox and step states make a second emission harmless anyway.

Cost: every query reads an index range that starts at the first row it wants
(``ix_planned_steps_due`` in claim order, ``ix_planned_steps_lease``, ``ix_messages_pending``,
``ix_handovers_pending``, ``ix_signals_pending``), and the in-flight count stops at the cap,
so a tick that finds nothing due costs a few index probes whatever the number of invoices. A tick holds one
batch in memory at a time.

Messages, hand-overs and signals whose lease or back-off ran out are claimed through the leased
outbox (``handlers.outbox``, ``claim_expired``): ids and attempt numbers only, in bounded
batches, each published as the next attempt's task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Integer, any_, func, literal, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from adapters.orm import PlannedStep
from adapters.store import transaction
from handlers.delivery import claim_overdue_deliveries
from handlers.handover import claim_overdue_handovers
from handlers.messages import StepDue, batch_steps
from handlers.ports import Publisher
from handlers.signals import claim_overdue_signals

log = structlog.get_logger("relance.scheduler")


@dataclass(frozen=True)
class TickResult:
    steps: int
    deliveries: int
    handovers: int = 0
    signals: int = 0


def _room(session: Session, now: datetime, max_in_flight: int | None) -> int | None:
    """How many more steps may be in flight (emitted, lease running); None = no cap.

    The count stops at ``max_in_flight``: it reads at most that many entries of
    ``ix_planned_steps_lease`` (an index-only range), however many steps are in flight.
    """
    if max_in_flight is None:
        return None
    in_flight = (
        select(PlannedStep.id)
        .where(
            PlannedStep.status == "emitted",
            PlannedStep.lease_until > now,
        )
        .limit(literal(max_in_flight, Integer, literal_execute=True))
    )
    count = session.execute(select(func.count()).select_from(in_flight.subquery())).scalar_one()
    return max(max_in_flight - count, 0)


@dataclass
class _Pass:
    """One ordered pass of a tick over one kind of claimable steps, and where it stands.

    ``fresh``: planned steps that are due, by due instant then plan order (``id``);
    ``expired``: emitted steps whose lease ran out, the oldest lease first. Each batch
    starts after the last row the previous batch claimed (``(key, id) > after``), so it
    does not walk again over the index entries the tick's own claims left behind (the old
    versions of the rows it updated stay in the index until vacuum). A row skipped because
    another scheduler held it is left to the next tick.
    """

    status: str
    key: Any
    after: tuple[Any, Any] | None = None

    def where(self, now: datetime) -> list[Any]:
        conditions = [PlannedStep.status == self.status, self.key <= now]
        if self.after is not None:
            conditions.append(tuple_(self.key, PlannedStep.id) > self.after)
        return conditions

    @property
    def order(self) -> list[Any]:
        return [self.key, PlannedStep.id]


@dataclass
class _Passes:
    fresh: _Pass = field(default_factory=lambda: _Pass("planned", PlannedStep.due_at))
    expired: _Pass = field(default_factory=lambda: _Pass("emitted", PlannedStep.lease_until))


def _claim_returning(
    session: Session, now: datetime, lease: timedelta, limit: int, which: _Pass
) -> list[StepDue]:
    """PostgreSQL: pick, lock and lease up to ``limit`` steps in one statement::

        WITH picked AS (SELECT id, key … ORDER BY key, id LIMIT n FOR UPDATE SKIP LOCKED),
             updated AS (UPDATE planned_steps SET … WHERE id = ANY(array((SELECT id FROM picked)))
                         RETURNING …)
        SELECT … FROM updated JOIN picked …

    One round trip per batch. ``id = ANY(array(…))`` makes the update a primary-key lookup
    of the picked rows whatever the planner thinks of the table (joined to ``picked``
    directly, a table of tens of thousands of rows gets a hash join over a sequential scan).
    The limit is written into the statement, so a generic plan of the prepared statement
    knows it too. The rows come back in no set order: they are put back in claim order by
    the keys ``picked`` read before the update. Run on the session's connection (Core), so
    the ORM does not try to synchronise objects it does not hold.
    """
    picked = (
        select(PlannedStep.id.label("pick_id"), which.key.label("pick_key"))
        .where(*which.where(now))
        .order_by(*which.order)
        .limit(literal(limit, Integer, literal_execute=True))
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    updated = (
        update(PlannedStep)
        .where(PlannedStep.id == any_(func.array(select(picked.c.pick_id).scalar_subquery())))
        .values(status="emitted", lease_until=now + lease, emit_count=PlannedStep.emit_count + 1)
        .returning(
            PlannedStep.id,
            PlannedStep.event,
            PlannedStep.due_at,
            PlannedStep.emit_count,
            PlannedStep.creditor_id,
            PlannedStep.debtor_id,
        )
        .cte("updated")
    )
    rows = sorted(
        session.connection()
        .execute(
            select(
                updated.c.id,
                updated.c.event,
                updated.c.due_at,
                updated.c.emit_count,
                updated.c.creditor_id,
                updated.c.debtor_id,
                picked.c.pick_key,
            ).join_from(updated, picked, updated.c.id == picked.c.pick_id)
        )
        .all(),
        key=lambda row: (row.pick_key, row.id),
    )
    if rows:
        which.after = (rows[-1].pick_key, rows[-1].id)
    return [StepDue(r.event, r.id, r.due_at, r.emit_count, r.creditor_id, r.debtor_id) for r in rows]


def _claim_select_update(
    session: Session, now: datetime, lease: timedelta, limit: int, which: _Pass
) -> list[StepDue]:
    """Any database (SQLite, whose writers are serialised): select in order, then update."""
    rows = session.execute(
        select(
            PlannedStep.id,
            PlannedStep.event,
            PlannedStep.due_at,
            PlannedStep.emit_count,
            PlannedStep.creditor_id,
            PlannedStep.debtor_id,
            which.key.label("pick_key"),
        )
        .where(*which.where(now))
        .order_by(*which.order)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        session.execute(
            update(PlannedStep)
            .where(PlannedStep.id.in_([r.id for r in rows]))
            .values(status="emitted", lease_until=now + lease, emit_count=PlannedStep.emit_count + 1)
        )
        which.after = (rows[-1].pick_key, rows[-1].id)
    return [StepDue(r.event, r.id, r.due_at, r.emit_count + 1, r.creditor_id, r.debtor_id) for r in rows]


def _claim_steps(
    session: Session, now: datetime, lease: timedelta, limit: int, passes: _Passes | None = None
) -> list[StepDue]:
    """Up to ``limit`` due steps, then steps whose lease ran out, leased and ready to emit."""
    if limit <= 0:
        return []
    passes = passes or _Passes()
    claim = _claim_returning if session.get_bind().dialect.name == "postgresql" else _claim_select_update
    fresh = claim(session, now, lease, limit, passes.fresh)
    if len(fresh) < limit:
        return [*fresh, *claim(session, now, lease, limit - len(fresh), passes.expired)]
    return fresh


def tick(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    now: datetime,
    *,
    lease: timedelta,
    batch_size: int,
    max_in_flight: int | None = None,
    worker_batch: int = 1,
) -> TickResult:
    """Claim and emit what is due at ``now``, in batches, keeping at most ``max_in_flight``.

    The steps of a batch go out as broker messages of up to ``worker_batch`` steps of one
    creditor each (``handlers.messages.batch_steps``; 1: one message per step).

    The cap keeps a burst from outrunning the workers: a step whose lease ends while it
    still waits in the broker would be emitted again, and again, while the queue grows.
    Steps beyond the cap stay ``planned`` and go out at the next ticks. The steps in flight
    are counted once per tick; each batch then takes its own steps off the room left.
    Each batch is published once its claim has committed; if publishing fails, the tick
    stops and raises, and the steps of that batch go out again when their lease ends.
    """
    started = time.perf_counter()
    steps = deliveries = handovers = signals = 0
    room: int | None = None
    counted = False
    more_retries = more_handing = more_signals = True
    passes = _Passes()
    while True:
        with transaction(sessions) as session:
            session.scope(None)  # every creditor's steps: a task names its row, the row its creditor
            if not counted:
                room, counted = _room(session, now, max_in_flight), True
            limit = batch_size if room is None else min(batch_size, room)
            tasks = _claim_steps(session, now, lease, limit, passes)
            retries = claim_overdue_deliveries(session, now, lease, batch_size) if more_retries else []
            handing = claim_overdue_handovers(session.store, now, lease, batch_size) if more_handing else []
            posting = claim_overdue_signals(session.store, now, lease, batch_size) if more_signals else []
        if tasks or retries or handing or posting:
            publisher.publish([*batch_steps(tasks, worker_batch), *retries, *handing, *posting])
        steps, deliveries = steps + len(tasks), deliveries + len(retries)
        handovers, signals = handovers + len(handing), signals + len(posting)
        if room is not None:
            room -= len(tasks)
        more_retries = more_retries and len(retries) >= batch_size
        more_handing = more_handing and len(handing) >= batch_size
        more_signals = more_signals and len(posting) >= batch_size
        if len(tasks) < max(limit, 1) and not (more_retries or more_handing or more_signals):
            break
    log.info(
        "scheduler.tick",
        now=now.isoformat(),
        emitted=steps,
        redelivered=deliveries,
        handovers=handovers,
        signals=signals,
        room_left=room,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return TickResult(steps, deliveries, handovers, signals)
