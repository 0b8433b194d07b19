"""``relance dlq``: messages that exhausted their retries in Redis, and replaying them.

Dramatiq's Redis broker keeps a dead-lettered message for ``dead_message_ttl`` (7 days by
default) in ``<namespace>:<queue>.XQ`` (ids by time) and ``.XQ.msgs`` (the encoded
messages). Replaying enqueues the same message again, with the same id, and removes it
from the dead letters. The database stays the source of truth: a replayed message whose
work was done meanwhile changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq

from adapters.publisher import QUEUE
from config.settings import Settings


@dataclass(frozen=True)
class DeadLetter:
    key: str  # the broker's own id of this copy (what Redis stores it under)
    message_id: str  # the message's id (stable across retries and re-emissions)
    dead_at: datetime
    actor: str
    kwargs: dict
    retries: int
    error: str

    def line(self) -> str:
        return (
            f"{self.key}\t{self.message_id}\t{self.dead_at.isoformat()}\t{self.actor}\t"
            f"{self.kwargs}\tretries {self.retries}\t{self.error}"
        )


def _keys(settings: Settings) -> tuple[str, str]:
    base = f"{settings.redis_namespace}:{QUEUE}.XQ"
    return base, f"{base}.msgs"


def _client(settings: Settings) -> Any:
    import redis

    if not settings.redis_url:  # checked by the caller: the dead letters live in Redis
        raise ValueError("RELANCE_REDIS_URL is not set")
    return redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5)


def _last_error(message: dramatiq.Message, notes: dict) -> str:
    note = notes.get(message.message_id.encode())
    if note:
        return note.decode()
    trace = message.options.get("traceback") or ""
    lines = [line for line in str(trace).strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no error recorded"


def _notes_key(settings: Settings) -> str:
    from worker.middleware import ERRORS_KEY

    return ERRORS_KEY.format(namespace=settings.redis_namespace)


def dead_letters(settings: Settings) -> Iterator[DeadLetter]:
    """Every dead-lettered message of the relance queue, oldest first."""
    ids_key, messages_key = _keys(settings)
    client = _client(settings)
    try:
        notes = client.hgetall(_notes_key(settings))
        for raw_id, score in client.zrange(ids_key, 0, -1, withscores=True):
            data = client.hget(messages_key, raw_id)
            if data is None:
                continue
            message = dramatiq.Message.decode(data)
            yield DeadLetter(
                raw_id.decode(),
                message.message_id,
                datetime.fromtimestamp(score / 1000, UTC),
                message.actor_name,
                dict(message.kwargs),
                int(message.options.get("retries", 0)),
                _last_error(message, notes),
            )
    finally:
        client.close()


def replay(settings: Settings, broker: dramatiq.Broker, wanted: str) -> bool:
    """Enqueue a dead letter again (same message id, retries reset); False if none matches.

    ``wanted`` is the dead letter's key or its message id.
    """
    ids_key, messages_key = _keys(settings)
    key = next((d.key for d in dead_letters(settings) if wanted in (d.key, d.message_id)), None)
    if key is None:
        return False
    client = _client(settings)
    try:
        data = client.hget(messages_key, key)
        if data is None:
            return False
        message = dramatiq.Message.decode(data)
        options = {
            k: v for k, v in message.options.items() if k not in ("retries", "traceback", "redis_message_id")
        }
        broker.enqueue(
            dramatiq.Message(
                queue_name=message.queue_name,
                actor_name=message.actor_name,
                args=message.args,
                kwargs=message.kwargs,
                options=options,
                message_id=message.message_id,
            )
        )
        client.zrem(ids_key, key)
        client.hdel(messages_key, key)
        client.hdel(_notes_key(settings), message.message_id)
        return True
    finally:
        client.close()
