"""One scheduler tick: claim due steps in the database, commit, then publish.

Claiming a step writes one narrow row, its lease (``step_leases``: step id, creditor,
``lease_until``, emission), and leaves the wide ``planned_steps`` row and its indexes alone:
the step stays ``planned`` while a live lease holds it in flight, and the worker that
finishes (or releases, or postpones) it deletes the lease. If no worker did so by the end of
the lease (message lost, worker killed), the next tick claims the step again under the next
emission number, so a new message id; the broker's own redeliveries keep the id. Several
schedulers may run at once: each step is leased by one of them per lease (a fresh step's
lease is an insert on its primary key, a run-out lease is locked ``FOR UPDATE SKIP LOCKED``
on PostgreSQL; writers are serialised on SQLite), and the workers' inbox and step states
make a second emission harmless anyway.

Cost: every query reads an index range that starts at the first row it wants
(``ix_planned_steps_due`` in claim order, probing each step's lease by its key;
``ix_step_leases_until``; ``ix_messages_pending``, ``ix_handovers_pending``,
``ix_signals_pending``), and the in-flight count stops at the cap, so a tick that finds
nothing due costs a few index probes whatever the number of invoices. The due pass walks
over the due steps still in flight (at most about ``max_in_flight`` of them when capped).
A tick holds at most two batches in memory: the one it claims and, on PostgreSQL, the one
before it, being committed and published meanwhile (``_Publishing``).

Messages, hand-overs and signals whose lease or back-off ran out are claimed through the leased
outbox (``handlers.outbox``, ``claim_expired``): ids and attempt numbers only, in bounded
batches, each published as the next attempt's task.
"""

from __future__ import annotations

import contextvars
import functools
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import starmap
from typing import Any

import structlog
from sqlalchemy import (
    Integer,
    Select,
    any_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, sessionmaker

from adapters.orm import PlannedStep, StepLease
from adapters.store import transaction
from handlers.delivery import claim_overdue_deliveries
from handlers.handover import claim_overdue_handovers
from handlers.messages import StepDue, batch_steps
from handlers.ports import Publisher
from handlers.signals import claim_overdue_signals
from handlers.store import PENDING

log = structlog.get_logger("relance.scheduler")


@dataclass(frozen=True)
class TickResult:
    steps: int
    deliveries: int
    handovers: int = 0
    signals: int = 0


def _room(session: Session, now: datetime, max_in_flight: int | None) -> int | None:
    """How many more steps may be in flight (a live lease); None = no cap.

    The count stops at ``max_in_flight``: it reads at most that many entries of
    ``ix_step_leases_until`` (an index-only range), however many steps are in flight.
    """
    if max_in_flight is None:
        return None
    count = session.connection().execute(_in_flight(), {"now": now, "cap": max_in_flight}).scalar_one()
    return max(max_in_flight - count, 0)


# The statements a tick runs on PostgreSQL are built once per process, with their values as
# parameters (``now``, the lease's end, the limits, where a pass resumes): building one
# and working out its cache key cost more Python than running it. A limit is written into
# the statement at each execution (``literal_execute``), so that a generic plan of the
# prepared statement knows it.


def _limit(name: str) -> Any:
    return bindparam(name, type_=Integer, literal_execute=True)


def _instant(name: str) -> Any:
    return bindparam(name, type_=StepLease.lease_until.type)


@functools.cache
def _in_flight() -> Select[Any]:
    """The count of live leases, stopping at ``cap``."""
    in_flight = select(StepLease.step_id).where(StepLease.lease_until > _instant("now")).limit(_limit("cap"))
    return select(func.count()).select_from(in_flight.subquery())


@dataclass
class _Pass:
    """One ordered pass of a tick over one kind of claimable steps, and where it stands.

    ``fresh`` (``expired`` false): planned steps that are due and hold no lease, by due
    instant then plan order (``ix_planned_steps_due``, each step's lease looked up by its
    key); ``expired``: leases that ran out, of steps still planned and due, the oldest
    lease first (``ix_step_leases_until``). Each batch starts after the last row the
    previous batch claimed (``(key, id) > after``), so it does not walk again over the steps
    the tick itself just leased. A row another scheduler leased meanwhile is left to it.
    """

    expired: bool
    after: tuple[Any, Any] | None = None

    @property
    def key(self) -> Any:
        return StepLease.lease_until if self.expired else PlannedStep.due_at

    @property
    def order(self) -> list[Any]:
        return [self.key, PlannedStep.id]

    def where(self, now: Any, after: Any) -> list[Any]:
        """The conditions of the pass at ``now``, resuming after ``after`` (None: from the
        start); values or parameters."""
        conditions = [PlannedStep.status == "planned", PlannedStep.due_at <= now]
        if self.expired:
            conditions.append(StepLease.lease_until <= now)
        else:
            conditions.append(~exists().where(StepLease.step_id == PlannedStep.id))
        if after is not None:
            conditions.append(tuple_(self.key, PlannedStep.id) > after)
        return conditions

    def after_parameters(self) -> Any:
        """Where the pass resumes, as the parameters ``after_key`` and ``after_id``."""
        return tuple_(_instant("after_key"), bindparam("after_id", type_=PlannedStep.id.type))

    def resume(self) -> dict[str, Any]:
        """The values of ``after_parameters`` (none before the pass has claimed a row)."""
        return {} if self.after is None else {"after_key": self.after[0], "after_id": self.after[1]}

    def advance(self, last: tuple[Any, Any]) -> None:
        """The pass resumes after ``last`` (its key and id), unless already further."""
        if self.after is None or last > self.after:
            self.after = last

    def pick(self, now: Any, limit: Any, after: Any) -> Select[Any]:
        """The steps this pass would claim next, in claim order, and what a task needs;
        ``limit`` a number, a parameter, or None."""
        query = select(
            PlannedStep.event,
            PlannedStep.id,
            PlannedStep.due_at,
            (PlannedStep.emit_count + (StepLease.emission if self.expired else literal(0, Integer))).label(
                "emission"
            ),
            PlannedStep.creditor_id,
            PlannedStep.debtor_id,
            self.key.label("pick_key"),
        )
        if self.expired:
            query = query.select_from(StepLease).join(PlannedStep, PlannedStep.id == StepLease.step_id)
        query = query.where(*self.where(now, after)).order_by(*self.order)
        if isinstance(limit, int):
            limit = literal(limit, Integer, literal_execute=True)
        return query if limit is None else query.limit(limit)


@dataclass
class _Passes:
    fresh: _Pass = field(default_factory=lambda: _Pass(expired=False))
    expired: _Pass = field(default_factory=lambda: _Pass(expired=True))


def _due(rows: Sequence[Any]) -> list[StepDue]:
    """Claimed rows ``(event, id, due_at, emission, creditor_id, debtor_id)`` in claim order,
    ``emission`` the step's after the claim (its ``emit_count`` plus its lease's), as tasks."""
    return list(starmap(StepDue, rows))


def _claim_returning(
    session: Session, now: datetime, lease: timedelta, limit: int, which: _Pass
) -> list[StepDue]:
    """PostgreSQL: pick and lease up to ``limit`` steps in one statement, one round trip per
    batch, and no write to ``planned_steps``.

    The limit is written into the statement, so a generic plan of the prepared statement
    knows it too. Run on the session's connection (Core), so the ORM does not try to
    synchronise objects it does not hold.
    """
    claim = _lease_expired_returning if which.expired else _lease_fresh_returning
    return claim(session.connection(), now, now + lease, limit, which)


# the two-key advisory locks (this number, step id) the claim of fresh steps takes on
# PostgreSQL; the one-key locks of intake (a bigint) are another space and never meet these
STEP_LOCKS = 19

# how far past its batch the fresh claim looks for steps no other scheduler is claiming
WINDOW = 4


def _lease_fresh_returning(
    connection: Any, now: datetime, until: datetime, limit: int, which: _Pass
) -> list[StepDue]:
    """Due steps without a lease, each given one::

        WITH picked AS (SELECT … FROM (SELECT … FROM planned_steps WHERE planned, due,
                                       no lease ORDER BY due_at, id LIMIT 4n) due
                        WHERE pg_try_advisory_xact_lock(19, id) ORDER BY … LIMIT n),
             leased AS (INSERT INTO step_leases SELECT … FROM picked
                        ON CONFLICT (step_id) DO NOTHING RETURNING step_id, emission)
        SELECT … FROM leased JOIN picked …

    The steps' rows are not locked (a row lock is a write of the row): a scheduler skips the
    steps another one is claiming by their advisory lock, held to the commit, taken on at
    most ``4n`` rows in claim order once the steps with a lease are left out; two
    schedulers that pick one step all the same (one committed in between) meet on the
    lease's primary key, and the second one's insert does nothing.
    """
    values = {"now": now, "until": until, "limit": limit, "window": limit * WINDOW, **which.resume()}
    rows = connection.execute(_fresh_claim(which.after is not None), values).all()
    if rows:
        which.advance((rows[-1].due_at, rows[-1].id))
    return _due(rows)


@functools.cache
def _fresh_claim(resuming: bool) -> Select[Any]:
    """The statement of ``_lease_fresh_returning``; ``resuming``: after the pass's last row."""
    which = _Pass(expired=False)
    after = which.after_parameters() if resuming else None
    due = which.pick(_instant("now"), _limit("window"), after).subquery("due")
    picked = (
        select(*due.c)
        .where(func.pg_try_advisory_xact_lock(STEP_LOCKS, due.c.id))
        .order_by(due.c.pick_key, due.c.id)
        .limit(_limit("limit"))
        .cte("picked")
    )
    leased = (
        pg_insert(StepLease)
        .from_select(
            ["step_id", "creditor_id", "lease_until", "emission"],
            select(picked.c.id, picked.c.creditor_id, _instant("until"), literal(1, Integer)),
        )
        .on_conflict_do_nothing(index_elements=[StepLease.step_id])
        .returning(StepLease.step_id, StepLease.emission)
        .cte("leased")
    )
    return (
        select(
            picked.c.event,
            picked.c.id,
            picked.c.due_at,
            (picked.c.emission + leased.c.emission).label("emission"),
            picked.c.creditor_id,
            picked.c.debtor_id,
        )
        .join_from(leased, picked, leased.c.step_id == picked.c.id)
        .order_by(picked.c.due_at, picked.c.id)
    )


def _lease_expired_returning(
    connection: Any, now: datetime, until: datetime, limit: int, which: _Pass
) -> list[StepDue]:
    """Leases that ran out, oldest first, moved on where their step is still planned and due::

        WITH picked AS (SELECT step_id, lease_until FROM step_leases WHERE lease_until <= now
                        ORDER BY lease_until, step_id LIMIT n FOR UPDATE SKIP LOCKED),
             leased AS (UPDATE step_leases SET lease_until, emission + 1 FROM planned_steps
                        WHERE step_id = ANY(array(…)) AND the step is planned and due
                        RETURNING …)
        SELECT … FROM picked LEFT JOIN leased …

    ``picked`` reads ``ix_step_leases_until`` alone and the update looks each step up by
    its key (``step_id = ANY(array(…))``), whatever the planner thinks of the tables. The
    same statement deletes the picked leases of steps no longer pending (finished by a path
    that left its lease, or gone: ``swept``); a lease picked but neither moved on nor
    deleted (its step re-planned later) is passed over.
    """
    values = {"now": now, "until": until, "limit": limit, **which.resume()}
    rows = connection.execute(_expired_claim(which.after is not None), values).all()
    if rows:
        which.advance((rows[-1].pick_key, rows[-1].id))
    return _due(
        [
            (r.event, r.id, r.due_at, r.emission, r.creditor_id, r.debtor_id)
            for r in rows
            if r.emission is not None
        ]
    )


@functools.cache
def _expired_claim(resuming: bool) -> Select[Any]:
    """The statement of ``_lease_expired_returning``; ``resuming``: after the pass's last row."""
    now = _instant("now")
    conditions = [StepLease.lease_until <= now]
    if resuming:
        conditions.append(
            tuple_(StepLease.lease_until, StepLease.step_id) > _Pass(expired=True).after_parameters()
        )
    picked = (
        select(StepLease.step_id.label("id"), StepLease.lease_until.label("pick_key"))
        .where(*conditions)
        .order_by(StepLease.lease_until, StepLease.step_id)
        .limit(_limit("limit"))
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    leased = (
        update(StepLease)
        .where(
            StepLease.step_id == any_(func.array(select(picked.c.id).scalar_subquery())),
            PlannedStep.id == StepLease.step_id,
            PlannedStep.status == "planned",
            PlannedStep.due_at <= now,
        )
        .values(lease_until=_instant("until"), emission=StepLease.emission + 1)
        .returning(
            StepLease.step_id,
            StepLease.emission,
            PlannedStep.creditor_id,
            PlannedStep.debtor_id,
            PlannedStep.event,
            PlannedStep.due_at,
            PlannedStep.emit_count,
        )
        .cte("leased")
    )
    swept = (
        delete(StepLease)
        .where(
            StepLease.step_id == any_(func.array(select(picked.c.id).scalar_subquery())),
            ~_pending(StepLease.step_id),
        )
        .returning(StepLease.step_id)
        .cte("swept")
    )
    return (
        select(
            picked.c.id,
            picked.c.pick_key,
            leased.c.event,
            leased.c.due_at,
            (leased.c.emit_count + leased.c.emission).label("emission"),
            leased.c.creditor_id,
            leased.c.debtor_id,
        )
        .outerjoin_from(picked, leased, leased.c.step_id == picked.c.id)
        .add_cte(swept)
        .order_by(picked.c.pick_key, picked.c.id)
    )


def _claim_select_update(
    session: Session, now: datetime, lease: timedelta, limit: int, which: _Pass
) -> list[StepDue]:
    """Any database (SQLite, whose writers are serialised): select in order, then lease."""
    rows = session.connection().execute(which.pick(now, limit, which.after)).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    if which.expired:
        _sweep_finished(session, now, limit)
        session.connection().execute(
            update(StepLease)
            .where(StepLease.step_id.in_(ids))
            .values(lease_until=now + lease, emission=StepLease.emission + 1)
        )
    else:
        session.connection().execute(
            insert(StepLease),
            [
                {"step_id": r.id, "creditor_id": r.creditor_id, "lease_until": now + lease, "emission": 1}
                for r in rows
            ],
        )
    which.advance((rows[-1].pick_key, rows[-1].id))
    return _due([(r.event, r.id, r.due_at, r.emission + 1, r.creditor_id, r.debtor_id) for r in rows])


def _pending(step_id: Any) -> Any:
    """The step ``step_id`` names exists and is pending."""
    return exists().where(PlannedStep.id == step_id, PlannedStep.status.in_(PENDING))


def _sweep_finished(session: Session, now: datetime, limit: int) -> int:
    """Delete up to ``limit`` leases that ran out on steps no longer pending (or gone).

    The worker deletes the lease of each step it finishes, releases or postpones; a step
    finished elsewhere (a cancellation by an event, a deadline done by its handler) may
    keep its lease: it counts as in flight until it ends, then goes here (on PostgreSQL,
    within the claim of leases that ran out).
    """
    stale = select(StepLease.step_id).where(StepLease.lease_until <= now, ~_pending(StepLease.step_id))
    result = session.connection().execute(delete(StepLease).where(StepLease.step_id.in_(stale.limit(limit))))
    return int(getattr(result, "rowcount", 0) or 0)


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


class _Publishing:
    """The end of each batch of a tick: its transaction committed, then its broker messages
    published. On PostgreSQL (``overlap``) every batch but the last ends in one worker
    thread while the tick claims the next batch on another connection: the claim waits on
    the database, the commit on its WAL flush, the publication on Python and Redis, and
    they overlap. The next claim commits only once this batch has ended well; if it did not
    (commit or publication failed), the next claim rolls back and the tick raises.

    At most one batch is ending at a time; ``wait`` waits for it (raising its error),
    ``close`` waits for it whatever happens and stops the thread. A tick of one batch (an
    idle tick) starts no thread, nor one on SQLite: its writers are serialised, and the next
    claim would hold the database while the last commit waits for it.
    """

    def __init__(self, publisher: Publisher, worker_batch: int) -> None:
        self.publisher = publisher
        self.worker_batch = worker_batch
        self.overlap = False  # set from the tick's first transaction
        self.pool: ThreadPoolExecutor | None = None
        self.under_way: Future[None] | None = None

    def _end(self, transaction: ExitStack, steps: list[StepDue], others: list[Any]) -> None:
        transaction.close()  # commit (transaction(): rolled back if the commit fails)
        if steps or others:
            self.publisher.publish([*batch_steps(steps, self.worker_batch), *others])

    def start(self, transaction: ExitStack, steps: list[StepDue], others: list[Any], *, wait: bool) -> None:
        """End a claimed batch: commit ``transaction``, then publish what it claimed; now
        (``wait``), or in the background."""
        self.wait()
        if wait or not self.overlap:
            self._end(transaction, steps, others)
            return
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relance-publish")
        context = contextvars.copy_context()  # the tick's log context, in the thread too
        self.under_way = self.pool.submit(context.run, self._end, transaction, steps, others)

    def wait(self) -> None:
        """The batch ending, if any, ended; its error raised."""
        under_way, self.under_way = self.under_way, None
        if under_way is not None:
            under_way.result()

    def close(self) -> None:
        """No batch ending nor thread left, whatever the tick raised (an error of the batch
        left is then the tick's second one: not raised again)."""
        try:
            if self.under_way is not None:
                wait_for([self.under_way])
            self.under_way = None
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
                self.pool = None


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
    Steps beyond the cap stay unleased and go out at the next ticks. The steps in flight
    are counted once per tick; each batch then takes its own steps off the room left.
    Each batch is published once its claim has committed. On PostgreSQL, while one batch
    is committed and published (in a thread of the tick's own), the next one is claimed on
    another connection, and that claim commits only once the batch before it ended well: if
    its commit or its publication fails, the tick stops and raises, the claim under way
    rolls back, and the steps of the batch that failed go out again when their lease ends
    (or at the next tick, if its commit failed), as when a tick claimed, committed and
    published one batch after the other.
    """
    started = time.perf_counter()
    publishing = _Publishing(publisher, worker_batch)
    try:
        result, room = _batches(sessions, publishing, now, lease, batch_size, max_in_flight)
    finally:
        publishing.close()
    log.info(
        "scheduler.tick",
        now=now.isoformat(),
        emitted=result.steps,
        redelivered=result.deliveries,
        handovers=result.handovers,
        signals=result.signals,
        room_left=room,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return result


def _batches(
    sessions: sessionmaker[Session],
    publishing: _Publishing,
    now: datetime,
    lease: timedelta,
    batch_size: int,
    max_in_flight: int | None,
) -> tuple[TickResult, int | None]:
    """The tick's batches, one transaction each, published by ``publishing``; what they
    emitted and the room left."""
    steps = deliveries = handovers = signals = 0
    room: int | None = None
    counted = False
    more_retries = more_handing = more_signals = True
    passes = _Passes()
    while True:
        # the batch's transaction, committed by ``publishing`` once the previous batch ended
        claim = ExitStack()
        try:
            session = claim.enter_context(transaction(sessions))
            session.scope(None)  # every creditor's steps: a task names its row, the row its creditor
            if not counted:
                room, counted = _room(session, now, max_in_flight), True
                publishing.overlap = session.get_bind().dialect.name == "postgresql"
            limit = batch_size if room is None else min(batch_size, room)
            tasks = _claim_steps(session, now, lease, limit, passes)
            retries = claim_overdue_deliveries(session, now, lease, batch_size) if more_retries else []
            handing = claim_overdue_handovers(session.store, now, lease, batch_size) if more_handing else []
            posting = claim_overdue_signals(session.store, now, lease, batch_size) if more_signals else []
            publishing.wait()  # the previous batch committed and out before this one commits
        except BaseException:
            claim.__exit__(*sys.exc_info())  # rolls the claim back, and raises again
            raise
        steps, deliveries = steps + len(tasks), deliveries + len(retries)
        handovers, signals = handovers + len(handing), signals + len(posting)
        if room is not None:
            room -= len(tasks)
        more_retries = more_retries and len(retries) >= batch_size
        more_handing = more_handing and len(handing) >= batch_size
        more_signals = more_signals and len(posting) >= batch_size
        last = len(tasks) < max(limit, 1) and not (more_retries or more_handing or more_signals)
        publishing.start(claim, tasks, [*retries, *handing, *posting], wait=last)
        if last:
            return TickResult(steps, deliveries, handovers, signals), room
