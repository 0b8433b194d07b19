"""The scheduler process: an APScheduler interval job calling ``tick`` (local ticker only).

APScheduler keeps no state here: one in-memory interval job, one instance at a time,
coalesced, with a generous misfire grace time. What is due lives in the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from config.bootstrap import App
from config.process import freeze_start_up_objects
from config.settings import Settings
from handlers.delivery import record_left_transmissions
from scheduler.replan import ReplanPass, replan_changed_invoices
from scheduler.tick import tick

log = structlog.get_logger("relance.scheduler")


def safe_tick(app: App) -> None:
    """One tick, then the sweep of the ``message.transmitted`` records a crash left unwritten
    (``handlers.delivery.record_left_transmissions``: messages marked sent more than a lease
    ago); a failure (database or broker down) is logged and retried next tick."""
    structlog.contextvars.clear_contextvars()
    try:
        if app.publisher is None:
            raise RuntimeError("no publisher attached to the application")
        now = app.clock.now()
        tick(
            app.sessions,
            app.publisher,
            now,
            lease=app.ctx.lease,
            batch_size=app.settings.batch_size,
            max_in_flight=app.settings.max_in_flight,
            worker_batch=worker_batch(app.settings),
        )
        record_left_transmissions(app.units, now, app.ctx.lease, app.settings.batch_size)
    except Exception as exc:
        log.error("scheduler.tick_failed", error=f"{type(exc).__name__}: {exc}"[:500])


def worker_batch(settings: Settings) -> int:
    """Steps per broker message: ``RELANCE_WORKER_BATCH``, made smaller when the in-flight
    cap would not give every worker thread two batches (``RELANCE_MAX_IN_FLIGHT`` counts
    steps: 150 in flight in batches of 50 would keep 3 of 16 threads busy, each holding its
    50 steps for the whole of a long transaction)."""
    threads = settings.worker_processes * settings.worker_threads
    return max(1, min(settings.worker_batch, settings.max_in_flight // (2 * threads)))


def replan_at_start(app: App) -> ReplanPass:
    """Before the first tick: re-plan the open invoices planned on another policy than the
    one now loaded (scheduler/replan.py). A failure stops the start: ticking on would send
    steps of the old policy."""
    return replan_changed_invoices(
        app.sessions, app.ctx.policies, app.clock.now(), batch_size=app.settings.batch_size
    )


def make_scheduler(app: App, *, blocking: bool) -> BaseScheduler:
    """The interval job of ``tick`` on ``app``; the objects of the start-up are frozen first
    (``freeze_start_up_objects``)."""
    freeze_start_up_objects()
    scheduler: BaseScheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone=UTC)
    interval = app.settings.tick_seconds
    scheduler.add_job(
        safe_tick,
        "interval",
        args=(app,),
        seconds=interval,
        id="tick",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(int(interval * 10), 60),
        next_run_time=datetime.now(UTC) + timedelta(milliseconds=100),
    )
    return scheduler
