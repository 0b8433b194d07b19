"""Publish task messages to Dramatiq with the ids the core chose (no actor import needed).

On a Redis broker a whole batch goes out in one round trip per ``chunk_size`` messages.
Each message is the one ``RedisBroker.enqueue`` would store: the same fields, the core's
``message_id``, a fresh random ``redis_message_id`` option, encoded by Dramatiq's global
encoder. When a broker middleware overrides ``before_enqueue`` or ``after_enqueue``, the
``dramatiq.Message`` objects are built and the hooks run for each message, as in
``enqueue``: all the ``before`` hooks of a chunk, its round trip, then all the ``after``
hooks. When none does (the base hooks do nothing: the case of relance's brokers), the
message fields are encoded directly, which gives the same bytes.

The round trip is one of two kinds, chosen once from the broker's own Lua script:

- ``bulk``: the script's ``enqueue`` command is an ``HSET`` of the message into
  ``<namespace>:<queue>.msgs`` and an ``RPUSH`` of its id onto ``<namespace>:<queue>``
  (Dramatiq 1.x and 2.x). The chunk is then one ``MULTI`` with one ``HSET`` of every
  message and one ``RPUSH`` of every id: the same keys and values, all or nothing. The
  script's other side effects are left out on purpose: it records the caller in the
  workers' heartbeat set (a producer is no worker) and, by chance, runs queue maintenance
  (the workers run it on their own commands).
- ``script``: for any other script, a pipeline of the script's own ``enqueue`` commands.

Other brokers (the in-process ``StubBroker`` of the embedded mode and of the tests) get one
``broker.enqueue`` per message.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import dramatiq
from dramatiq.encoder import JSONEncoder
from dramatiq.message import get_encoder
from dramatiq.middleware import Middleware

QUEUE = "relance"
CHUNK_SIZE = 1000

# The lines of Dramatiq's dispatch.lua that make ``bulk`` the same as its ``enqueue``.
_LAYOUT = (
    'local queue_full_name = namespace .. ":" .. queue_name',
    'local queue_messages = queue_full_name .. ".msgs"',
    'if command == "enqueue" then',
    'redis.call("hset", queue_messages, message_id, message_data)',
    'redis.call("rpush", queue_full_name, message_id)',
)


def redis_mode(broker: dramatiq.Broker) -> str | None:
    """``bulk`` or ``script`` for a Dramatiq ``RedisBroker``; None for any other broker."""
    try:
        from dramatiq.brokers.redis import RedisBroker
    except ImportError:  # pragma: no cover - dramatiq without the redis extra
        return None
    if not isinstance(broker, RedisBroker):
        return None
    script = getattr(broker.scripts.get("dispatch"), "script", b"")
    if isinstance(script, bytes):
        script = script.decode("utf-8", "replace")
    source = " ".join(script.split())
    return "bulk" if all(" ".join(line.split()) in source for line in _LAYOUT) else "script"


def _hooks(broker: dramatiq.Broker) -> tuple[bool, bool]:
    """Whether any middleware overrides ``before_enqueue`` / ``after_enqueue`` (else no-ops)."""
    middleware = broker.middleware
    return (
        any(type(m).before_enqueue is not Middleware.before_enqueue for m in middleware),
        any(type(m).after_enqueue is not Middleware.after_enqueue for m in middleware),
    )


class DramatiqPublisher:
    """Sends the core's tasks as Dramatiq messages that carry the ids the core chose."""

    def __init__(self, broker: dramatiq.Broker, queue: str = QUEUE, *, chunk_size: int = CHUNK_SIZE) -> None:
        self.broker = broker
        self.queue = queue
        self.chunk_size = max(chunk_size, 1)
        self.mode = redis_mode(broker)

    def publish(self, tasks: Sequence[Any]) -> None:
        if self.mode is None:
            for task in tasks:
                self.broker.enqueue(
                    dramatiq.Message(
                        queue_name=self.queue,
                        actor_name=task.actor,
                        args=(),
                        kwargs=task.payload(),
                        options={},
                        message_id=task.message_id,
                    )
                )
            return
        for start in range(0, len(tasks), self.chunk_size):
            self._enqueue_chunk(tasks[start : start + self.chunk_size])

    def _enqueue_chunk(self, tasks: Sequence[Any]) -> None:
        broker: Any = self.broker
        queue = self.queue
        before, after = _hooks(broker)
        redis_ids = unique_ids(len(tasks))
        if before or after:
            # what RedisBroker.enqueue stores: the message with a unique redis_message_id
            messages: list[dramatiq.Message[Any]] = [
                dramatiq.Message(
                    queue_name=queue,
                    actor_name=task.actor,
                    args=(),
                    kwargs=task.payload(),
                    options={"redis_message_id": redis_id},
                    message_id=task.message_id,
                )
                for task, redis_id in zip(tasks, redis_ids, strict=True)
            ]
            if before:
                for message in messages:
                    broker.emit_before("enqueue", message, None)
            data = dict(zip(redis_ids, (message.encode() for message in messages), strict=True))
        else:
            # the same bytes as Message(...).encode(), without building the dataclass
            encode = _encoder()
            data = {
                redis_id: encode(
                    {
                        "queue_name": queue,
                        "actor_name": task.actor,
                        "args": (),
                        "kwargs": task.payload(),
                        "options": {"redis_message_id": redis_id},
                        "message_id": task.message_id,
                        "message_timestamp": int(time.time() * 1000),
                    }
                )
                for task, redis_id in zip(tasks, redis_ids, strict=True)
            }
        if self.mode == "bulk":
            pipe = broker.client.pipeline(transaction=True)
            key = f"{broker.namespace}:{queue}"
            pipe.hset(f"{key}.msgs", mapping=data)
            pipe.rpush(key, *data)
        else:
            pipe = broker.client.pipeline(transaction=False)
            for redis_id, encoded in data.items():
                _pipe_enqueue(broker, pipe, queue, redis_id, encoded)
        pipe.execute()
        if after:
            for message in messages:
                broker.emit_after("enqueue", message, None)


def unique_ids(count: int) -> list[str]:
    """``count`` random version-4 UUIDs as text, like ``str(uuid4())``, from one urandom call."""
    raw = os.urandom(16 * count).hex()
    return [
        f"{raw[i : i + 8]}-{raw[i + 8 : i + 12]}-4{raw[i + 13 : i + 16]}-"
        f"{_VARIANT[raw[i + 16]]}{raw[i + 17 : i + 20]}-{raw[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
_JSON = json.JSONEncoder(separators=(",", ":"))


def _encoder() -> Callable[[dict[str, Any]], bytes]:
    """Dramatiq's global encoder; its default JSON one as a reused ``json.JSONEncoder``."""
    encoder = get_encoder()
    if type(encoder) is JSONEncoder:  # json.dumps(data, separators=(",", ":")).encode()
        return lambda data: _JSON.encode(data).encode("utf-8")
    return encoder.encode


def _pipe_enqueue(broker: Any, pipe: Any, queue: str, redis_id: str, encoded: bytes) -> None:
    """Dramatiq's own ``enqueue`` command of its dispatch script, on a pipeline."""
    from dramatiq.common import current_millis

    broker.scripts["dispatch"](
        keys=[broker.namespace],
        args=[
            "enqueue",
            current_millis(),
            queue,
            broker.broker_id,
            broker.heartbeat_timeout,
            broker.dead_message_ttl,
            broker._should_do_maintenance("enqueue"),
            broker._max_unpack_size(),
            redis_id,
            encoded,
        ],
        client=pipe,
    )
