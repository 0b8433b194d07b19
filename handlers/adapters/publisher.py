"""Publish task messages to Dramatiq with the ids the core chose (no actor import needed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dramatiq

QUEUE = "relance"


class DramatiqPublisher:
    """Builds ``dramatiq.Message`` objects by hand so each carries a stable message id."""

    def __init__(self, broker: dramatiq.Broker, queue: str = QUEUE) -> None:
        self.broker = broker
        self.queue = queue

    def publish(self, tasks: Sequence[Any]) -> None:
        for task in tasks:
            self.broker.enqueue(dramatiq.Message(
                queue_name=self.queue, actor_name=task.actor, args=(),
                kwargs=task.payload(), options={}, message_id=task.message_id))
