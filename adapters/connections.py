"""What an idle pooled connection tells without a round trip."""

from __future__ import annotations

import select
from typing import Any


def server_spoke(dbapi_connection: Any) -> bool:
    """Whether the server sent anything (an error, the end of the stream) on this idle
    connection; True when that cannot be told. A server that closes a connection (restart,
    crash, ``pg_terminate_backend``, idle timeout) leaves its socket readable; a healthy idle
    connection has nothing to read."""
    if getattr(dbapi_connection, "closed", False):
        return True
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except (AttributeError, OSError, ValueError, TypeError):
        return True
