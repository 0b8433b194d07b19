"""Checks of the database and Redis URLs, so that a wrong one is one line naming the setting.

The checks are on the text only (scheme, driver, port): whether the service answers is
checked when a command starts (``config.bootstrap.prepare_store``, ``worker.broker``).
Passwords never appear in the messages.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DATABASE_FORMS = "expected postgresql://USER@HOST:PORT/NAME or sqlite:///PATH"
REDIS_FORMS = "expected redis://HOST:PORT/DB, rediss://HOST:PORT/DB or unix://PATH"
DATABASE_DRIVERS = {"postgresql": ("psycopg",), "postgres": (), "sqlite": ("pysqlite",)}
REDIS_SCHEMES = ("redis", "rediss", "unix")


def check_database_url(url: str) -> str:
    """Return ``url`` when relance can use it, else raise ValueError saying why."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError(f"not a valid URL; {DATABASE_FORMS}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in DATABASE_DRIVERS or (driver and driver not in DATABASE_DRIVERS[backend]):
        shown = parsed.render_as_string(hide_password=True)
        raise ValueError(f"unsupported database {parsed.drivername!r} in {shown}; {DATABASE_FORMS}")
    return url


def check_redis_url(url: str) -> str:
    """Return ``url`` when it is a Redis URL redis-py accepts, else raise ValueError."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks the port is a number
    except ValueError:
        raise ValueError(f"not a valid URL; {REDIS_FORMS}") from None
    if not parts.scheme or (parts.scheme != "unix" and not parts.hostname):
        raise ValueError(f"not a valid URL; {REDIS_FORMS}")
    if parts.scheme not in REDIS_SCHEMES:
        raise ValueError(f"unsupported scheme {parts.scheme!r} in {redact_redis_url(url)}; {REDIS_FORMS}")
    return url


def redact_redis_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return "<unparseable Redis URL>"
    return _without_password(parts)


def _without_password(parts: SplitResult) -> str:
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
