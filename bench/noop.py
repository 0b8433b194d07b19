"""A no-op Dramatiq actor on the broker ``relance worker`` uses, with the same settings.

Run by the benchmark as ``python -m dramatiq bench.noop -p 2 -t 8``. The broker is built by
relance's own ``make_broker`` from the environment (RELANCE_REDIS_URL,
RELANCE_REDIS_NAMESPACE, heartbeat and maintenance settings): same Redis, same middleware.
The actor does nothing; the benchmark knows every message was handled when the queue and
its hash of unacknowledged messages are both empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq

from config.settings import load_settings
from worker.broker import make_broker

QUEUE = "bench_noop"

broker = make_broker(load_settings())
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="bench_noop", queue_name=QUEUE, max_retries=0)
def noop(index: int) -> None:
    """Nothing: the cost measured is Dramatiq's own (fetch, decode, middleware, ack)."""


@dataclass(frozen=True)
class NoopTask:
    """One message for the no-op actor, in the shape relance's publisher takes."""

    index: int
    actor = "bench_noop"

    @property
    def message_id(self) -> str:
        return f"bench-noop-{self.index}"

    def payload(self) -> dict:
        return {"index": self.index}
