"""Turn a missing-service exception from a library into one line for people."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError


def describe_service_error(exc: BaseException) -> str | None:
    import redis

    if isinstance(exc, redis.exceptions.ConnectionError):
        return f"RELANCE_REDIS_URL: Redis unreachable: {exc}"
    if isinstance(exc, OperationalError):
        first = str(exc.orig or exc).strip().splitlines()[0]
        return f"database error: {first}"
    return None
