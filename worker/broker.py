"""Broker set-up, imported before the actors. Redis when RELANCE_REDIS_URL is set.

``dramatiq worker.actors`` imports this module in every worker process: it configures JSON
logging and the broker from the environment. The CLI calls ``use`` first to choose another
broker (in-process for the embedded mode and ``simulate``).
"""

from __future__ import annotations

import sys

import dramatiq

from config.bootstrap import make_broker
from config.logging import configure_logging
from config.settings import load_settings

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
