"""One scheduler tick: claim due steps in the database, commit, then publish.

Claiming is ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (serialised writers on SQLite) with a
lease: a claimed step is ``emitted`` until its lease ends; if no worker finished it by then
(message lost, worker killed) the next tick emits it again under the same message id.
Several schedulers may run at once: each step is claimed by one of them per lease, and the
workers' inbox and step states make a second emission harmless anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from handlers.adapters.orm import PlannedStep
from handlers.adapters.store import transaction
from handlers.delivery import claim_overdue_deliveries
from handlers.handover import claim_overdue_handovers
from handlers.messages import StepDue
from handlers.ports import Publisher

log = structlog.get_logger("relance.scheduler")


@dataclass(frozen=True)
class TickResult:
    steps: int
    deliveries: int
    handovers: int = 0


def _room(session: Session, now: datetime, max_in_flight: int | None) -> int | None:
    """How many more steps may be in flight (emitted, lease running); None = no cap."""
    if max_in_flight is None:
        return None
    in_flight = session.execute(
        select(func.count()).select_from(PlannedStep)
        .where(PlannedStep.status == "emitted", PlannedStep.lease_until > now)).scalar_one()
    return max(max_in_flight - in_flight, 0)


def _claim_steps(session: Session, now: datetime, lease: timedelta, limit: int) -> list[StepDue]:
    if limit <= 0:
        return []
    due = select(PlannedStep.id, PlannedStep.event, PlannedStep.due_at, PlannedStep.emit_count)
    fresh = session.execute(
        due.where(PlannedStep.status == "planned", PlannedStep.due_at <= now)
        .order_by(PlannedStep.due_at, PlannedStep.id).limit(limit).with_for_update(skip_locked=True)
    ).all()
    expired = session.execute(
        due.where(PlannedStep.status == "emitted", PlannedStep.lease_until <= now)
        .order_by(PlannedStep.lease_until).limit(max(limit - len(fresh), 0))
        .with_for_update(skip_locked=True)
    ).all() if len(fresh) < limit else []
    rows = [*fresh, *expired]
    if rows:
        session.execute(
            update(PlannedStep).where(PlannedStep.id.in_([r.id for r in rows]))
            .values(status="emitted", lease_until=now + lease,
                    emit_count=PlannedStep.emit_count + 1))
    return [StepDue(r.event, r.id, r.due_at, r.emit_count + 1) for r in rows]


def tick(sessions: sessionmaker[Session], publisher: Publisher, now: datetime, *,
         lease: timedelta, batch_size: int, max_in_flight: int | None = None) -> TickResult:
    """Claim and emit what is due at ``now``, in batches, keeping at most ``max_in_flight``.

    The cap keeps a burst from outrunning the workers: a step whose lease ends while it
    still waits in the broker would be emitted again, and again, while the queue grows.
    Steps beyond the cap stay ``planned`` and go out at the next ticks.
    """
    steps = deliveries = handovers = 0
    while True:
        with transaction(sessions) as session:
            room = _room(session, now, max_in_flight)
            limit = batch_size if room is None else min(batch_size, room)
            tasks = _claim_steps(session, now, lease, limit)
            retries = claim_overdue_deliveries(session, now, lease, batch_size)
            handing = claim_overdue_handovers(session, now, lease, batch_size)
        if tasks or retries or handing:
            publisher.publish([*tasks, *retries, *handing])
        steps, deliveries = steps + len(tasks), deliveries + len(retries)
        handovers += len(handing)
        if len(tasks) < max(limit, 1) and len(retries) < batch_size and len(handing) < batch_size:
            break
    log.info("scheduler.tick", now=now.isoformat(), emitted=steps, redelivered=deliveries,
             handovers=handovers)
    return TickResult(steps, deliveries, handovers)
