"""Run the service: all-in-one (scheduler + in-process workers) or one part of it."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Mapping

import dramatiq
import structlog
from dramatiq import Worker

from config.bootstrap import App, attach_publisher, build_app, prepare_store, warn_at_start
from config.settings import Settings
from scheduler.loop import make_scheduler, replan_at_start
from worker.broker import check_redis, make_broker

log = structlog.get_logger("relance.service")


IDLE_POLL_MS = 250
"""The longest a worker's consumer sleeps between two fetches from an empty queue.

Dramatiq's consumer backs off from 5 ms to its ``worker_timeout`` (1 000 ms by default),
sleeping half to all of it between fetches once idle: the first steps a tick publishes
after a quiet spell waited up to a second (0.36 s on average for the first of two worker
processes, 0.63 s for the second) while the cores were free. At 250 ms they wait at most
a quarter of a second, for about 10 ms of worker CPU per second more while idle (two
processes, 8 threads each). ``dramatiq_worker_timeout`` in the environment overrides it."""


def start_workers(broker: dramatiq.Broker, threads: int) -> Worker:
    broker.emit_after("process_boot")  # time limits are enforced only after process_boot
    worker = Worker(broker, worker_threads=threads, worker_timeout=idle_poll_ms(os.environ))
    worker.start()
    return worker


def run_all_in_one(settings: Settings) -> int:
    """Scheduler and workers in this process until SIGINT/SIGTERM."""
    from worker import broker as broker_setup
    from worker import runtime

    app = build_app(settings)
    prepare_store(app, auto_migrate=True)
    check_broker(settings)
    warn_at_start(app)
    broker = broker_setup.use(make_broker(settings))
    import worker.actors  # noqa: F401 - declares the actors on the broker

    attach_publisher(app, broker)
    runtime.install(app)
    workers = start_workers(broker, settings.worker_threads)
    replan_at_start(app)
    scheduler = make_scheduler(app, blocking=False)
    scheduler.start()
    log.info("service.started", mode=describe(app, settings), data_dir=str(settings.data_dir))
    wait_for_stop()
    log.info("service.stopping")
    scheduler.shutdown(wait=True)
    workers.stop(timeout=30_000)
    broker.close()
    app.dispose()
    log.info("service.stopped")
    return 0


def describe(app: App, settings: Settings) -> dict:
    return {
        "store": app.engine.dialect.name,
        "broker": "redis" if settings.redis_url else "in-process",
        "email": "smtp" if settings.smtp_host else "files",
    }


def wait_for_stop() -> None:
    stop = threading.Event()

    def _handler(signum: int, _frame: object) -> None:
        log.info("service.signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)  # also when started in the background (SIGINT ignored)
    while not stop.wait(0.5):
        pass


def check_broker(settings: Settings) -> None:
    """Stop at start, in one line, when the configured Redis does not answer."""
    if settings.redis_url:
        check_redis(settings)


def run_scheduler_only(settings: Settings) -> int:
    app = build_app(settings)
    prepare_store(app, auto_migrate=False)
    check_broker(settings)
    warn_at_start(app)
    attach_publisher(app, make_broker(settings))
    replan_at_start(app)
    log.info("scheduler.started", mode=describe(app, settings))
    scheduler = make_scheduler(app, blocking=True)

    def _stop(signum: int, _frame: object) -> None:
        log.info("scheduler.signal", signal=signal.Signals(signum).name)
        # wait=True: a tick under way ends (and logs) before ``scheduler.stopped``
        scheduler.shutdown(wait=True)

    # our own handlers: a shell starts a background job with SIGINT ignored
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
    log.info("scheduler.stopped")
    return 0


def idle_poll_ms(environ: Mapping[str, str]) -> int:
    """The consumers' longest idle sleep (``IDLE_POLL_MS``), or ``dramatiq_worker_timeout``."""
    return int(environ.get("dramatiq_worker_timeout") or IDLE_POLL_MS)


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of ``dramatiq worker.actors``: ``environ`` with the consumers' idle
    poll (``dramatiq_worker_timeout``, read by every worker process) set."""
    return {**environ, "dramatiq_worker_timeout": str(idle_poll_ms(environ))}


def exec_dramatiq_workers(settings: Settings) -> int:
    """Replace this process with ``dramatiq worker.actors`` (N processes, T threads)."""
    app = build_app(settings)
    prepare_store(app, auto_migrate=False)
    check_broker(settings)
    warn_at_start(app)
    app.dispose()
    args = [
        sys.executable,
        "-m",
        "dramatiq",
        "worker.actors",
        "--skip-logging",
        "--processes",
        str(settings.worker_processes),
        "--threads",
        str(settings.worker_threads),
    ]
    os.execve(sys.executable, args, worker_environment(os.environ))
    return 0  # pragma: no cover - execve does not return
