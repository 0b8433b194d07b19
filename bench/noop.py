"""A no-op Dramatiq actor on the same Redis broker settings as ``relance worker``.

Run by the benchmark as ``python -m dramatiq bench.noop -p 2 -t 8``. The broker comes from
the environment (BENCH_REDIS_URL, BENCH_NAMESPACE); each message only increments a Redis
counter, so the benchmark can tell when every message has been handled.
"""

from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
NAMESPACE = os.environ.get("BENCH_NAMESPACE", "relance-bench")
ACKS_KEY = f"{NAMESPACE}:bench.acks"

broker = RedisBroker(
    url=URL,
    namespace=NAMESPACE,
    heartbeat_timeout=int(os.environ.get("RELANCE_HEARTBEAT_TIMEOUT_MS", "5000")),
    maintenance_chance=int(os.environ.get("RELANCE_MAINTENANCE_CHANCE", "100000")),
)
dramatiq.set_broker(broker)
_counter = redis.Redis.from_url(URL)


@dramatiq.actor(queue_name="bench_noop", max_retries=0)
def noop(index: int) -> None:
    _counter.incr(ACKS_KEY)
