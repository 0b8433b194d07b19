"""Broker set-up, imported before the actors. Redis when RELANCE_REDIS_URL is set.

``dramatiq worker.actors`` imports this module in every worker process: it configures JSON
logging and the broker from the environment. The CLI calls ``use`` first to choose another
broker (in-process for the embedded mode and ``simulate``).
"""

from __future__ import annotations

import sys

import dramatiq

from config.errors import ConfigError
from config.logging import configure_logging
from config.settings import Settings, load_settings


def make_broker(settings: Settings, *, stub: bool | None = None) -> dramatiq.Broker:
    """Redis when a URL is set (and ``stub`` is not forced), else the in-process broker."""
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.middleware import CurrentMessage

    from worker.middleware import FailureNotes, LogContext, WarmUp

    if stub or (stub is None and not settings.redis_url):
        broker: dramatiq.Broker = StubBroker()
    else:
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(
            url=settings.redis_url,
            namespace=settings.redis_namespace,
            heartbeat_timeout=settings.heartbeat_timeout_ms,
            maintenance_chance=settings.maintenance_chance,
        )
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(LogContext())
    broker.add_middleware(WarmUp())
    if not isinstance(broker, StubBroker):
        broker.add_middleware(FailureNotes())
    return broker


def check_redis(settings: Settings) -> None:
    """Raise ConfigError in one line when the Redis of RELANCE_REDIS_URL does not answer."""
    import redis

    from config.urls import redact_redis_url

    client = redis.Redis.from_url(settings.redis_url or "", socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        shown = redact_redis_url(settings.redis_url or "")
        raise ConfigError(f"RELANCE_REDIS_URL: Redis {shown} unreachable: {exc}") from exc
    finally:
        client.close()


_configured = False


def use(broker: dramatiq.Broker) -> dramatiq.Broker:
    """Make ``broker`` the global broker and bind the actors to it."""
    global _configured
    dramatiq.set_broker(broker)
    _configured = True
    actors = sys.modules.get("worker.actors")
    if actors is not None and hasattr(actors, "bind"):  # not while it is being imported
        actors.bind(broker)
    return broker


def ensure_configured() -> None:
    if not _configured:
        settings = load_settings()
        configure_logging(settings.log_level)
        use(make_broker(settings))
