"""Per-message log context: every log line of an actor carries its message id and actor."""

from __future__ import annotations

from typing import Any

import dramatiq
import structlog


class LogContext(dramatiq.Middleware):
    """Clear and bind structlog context vars around each message (threads are reused)."""

    def before_process_message(self, broker: Any, message: Any) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(message_id=message.message_id,
                                               actor=message.actor_name)

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None,
                              exception: Any = None) -> None:
        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message
