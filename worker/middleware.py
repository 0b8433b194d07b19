"""Per-message log context: every log line of an actor carries its message id and actor."""

from __future__ import annotations

import os
from typing import Any

import dramatiq
import structlog

from config.process import freeze_start_up_objects


class LogContext(dramatiq.Middleware):
    """Clear and bind structlog context vars around each message (threads are reused)."""

    def before_process_message(self, broker: Any, message: Any) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(message_id=message.message_id, actor=message.actor_name)

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message


class WarmUp(dramatiq.Middleware):
    """Build the process's App (store check, policies, every template) when the worker
    boots, not on its first message; a failure here is logged and left to that message.
    Built, the objects of the start-up are frozen out of the garbage collector's sight
    (``config.process.freeze_start_up_objects``), as the scheduler's are."""

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        from worker import runtime

        log = structlog.get_logger("relance.worker")
        try:
            runtime.current()
        except Exception as exc:  # the first message will raise it again, and be retried
            log.warning("worker.warmup_failed", error=str(exc).splitlines()[0][:300])
            return
        freeze_start_up_objects()
        log.info("worker.ready", pid=os.getpid(), threads=len(getattr(worker, "workers", ())))

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        structlog.get_logger("relance.worker").info("worker.stopped", pid=os.getpid())


ERRORS_KEY = "{namespace}:relance.errors"


class FailureNotes(dramatiq.Middleware):
    """Keep each failed message's last error in Redis, for ``relance dlq`` to show.

    Dramatiq keeps no traceback for exceptions an actor lists in ``throws``, and a dead
    letter holds the message as it was enqueued; this note fills that gap.
    """

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        client = getattr(broker, "client", None)
        if exception is None or client is None:
            return
        note = f"{type(exception).__name__}: {exception}".splitlines()[0][:300]
        key = ERRORS_KEY.format(namespace=broker.namespace)
        try:
            client.hset(key, message.message_id, note)
        except Exception:  # a note must never break the handling of the message
            structlog.get_logger("relance.worker").warning("dlq.note_failed", message_id=message.message_id)
