"""An app on the real Redis broker with Dramatiq worker threads, for the tests that go
through the broker: ``with brokered(settings) as (app, broker): …``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from config.bootstrap import App, attach_publisher, build_app, prepare_store
from config.settings import Settings
from handlers.ports import VirtualClock
from tests.flowtime import T0
from worker.broker import make_broker


@contextmanager
def brokered(settings: Settings, threads: int = 4) -> Iterator[tuple[App, Any]]:
    """The app (virtual clock at T0, store migrated) with its publisher on the broker of
    ``settings`` and ``threads`` worker threads; all stopped when the block ends."""
    from relance.service import start_workers
    from worker import broker as broker_setup
    from worker import runtime

    app = build_app(settings, clock=VirtualClock(T0))
    prepare_store(app, auto_migrate=True)
    broker = broker_setup.use(make_broker(settings))
    import worker.actors  # noqa: F401  (declares the actors on the broker)

    attach_publisher(app, broker)
    runtime.install(app)
    workers = start_workers(broker, threads)
    try:
        yield app, broker
    finally:
        workers.stop()
        broker.close()
        app.dispose()


def on_redis(
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    redis_namespace: str,
    smtp: Any = None,
    **extra: Any,
) -> Settings:
    """The settings of a brokered test: PostgreSQL, the test's Redis namespace, the test
    sender, and the loopback SMTP server ``smtp`` if given (else the outbox files)."""
    if smtp is not None:
        extra |= {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_tls": "none"}
    return Settings(
        data_dir=tmp_path,
        database_url=postgres_url,
        redis_url=redis_url,
        redis_namespace=redis_namespace,
        sender="Relance <relance@creancier.example>",
        **extra,
    )
