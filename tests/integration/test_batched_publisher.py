"""The batched Dramatiq publisher on the real Redis: every message, its id, its payload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from adapters.publisher import QUEUE, DramatiqPublisher, unique_ids
from config.settings import Settings
from handlers.messages import DeliverMessage, HandoverCase, StepDue
from worker.broker import make_broker

pytestmark = pytest.mark.redis


@pytest.fixture
def broker(redis_url, redis_namespace, tmp_path):
    """The broker relance's scheduler uses (make_broker), on the test Redis."""
    broker = make_broker(Settings(data_dir=tmp_path, redis_url=redis_url, redis_namespace=redis_namespace))
    assert type(broker).__name__ == "RedisBroker"
    yield broker
    broker.close()


def tasks(count: int) -> list:
    due = datetime(2026, 5, 11, 7, 0, tzinfo=UTC)
    kinds = [
        lambda i: StepDue("invoice.overdue", i, due, 1 + i % 3),
        lambda i: StepDue("invoice.due", i, due, 1),
        lambda i: StepDue("deadline.expired", i, due, 2),
        lambda i: DeliverMessage(i, i % 4),
        lambda i: HandoverCase(i, 1),
    ]
    return [kinds[i % len(kinds)](i) for i in range(count)]


def drain(broker, count: int) -> list:
    """Fetch ``count`` messages the way a worker does (the dispatch script's fetch), acked."""
    broker.declare_queue(QUEUE)
    consumer = broker.consume(QUEUE, prefetch=500, timeout=1000)
    received = []
    try:
        while len(received) < count:
            proxy = next(consumer)
            if proxy is None:
                break
            received.append(proxy)
            consumer.ack(proxy)
        assert next(consumer) is None  # nothing more
    finally:
        consumer.close()
    return received


def test_a_batch_goes_to_redis_with_every_id_and_the_worker_decodes_the_same_payload(broker):
    sent = tasks(2345)  # more than two chunks of 1000
    publisher = DramatiqPublisher(broker)
    assert publisher.mode == "bulk"

    publisher.publish(sent)

    client = broker.client
    assert client.llen(f"{broker.namespace}:{QUEUE}") == len(sent)
    assert client.hlen(f"{broker.namespace}:{QUEUE}.msgs") == len(sent)
    received = drain(broker, len(sent))
    assert [m.message_id for m in received] == [t.message_id for t in sent]  # order kept
    for task, message in zip(sent, received, strict=True):
        assert message.actor_name == task.actor
        assert message.queue_name == QUEUE
        assert message.args == ()
        assert message.kwargs == task.payload()
        assert uuid.UUID(message.options["redis_message_id"]).version == 4
    assert len({m.options["redis_message_id"] for m in received}) == len(sent)
    assert client.hlen(f"{broker.namespace}:{QUEUE}.msgs") == 0  # all acked


def test_the_stored_bytes_are_what_dramatiq_itself_would_encode(broker):
    task = tasks(1)[0]
    DramatiqPublisher(broker).publish([task])
    ((redis_id, data),) = broker.client.hgetall(f"{broker.namespace}:{QUEUE}.msgs").items()
    stored = dramatiq.Message.decode(data)
    expected = dramatiq.Message(
        queue_name=QUEUE,
        actor_name=task.actor,
        args=(),
        kwargs=task.payload(),
        options={"redis_message_id": redis_id.decode()},
        message_id=task.message_id,
        message_timestamp=stored.message_timestamp,
    )
    assert data == expected.encode()


def test_enqueue_hooks_of_the_broker_middleware_run_for_each_message(broker):
    seen: list[tuple[str, str, str]] = []

    class Hooks(dramatiq.Middleware):
        def before_enqueue(self, broker, message, delay):
            seen.append(("before", message.message_id, message.options["redis_message_id"]))

        def after_enqueue(self, broker, message, delay):
            seen.append(("after", message.message_id, message.options["redis_message_id"]))

    broker.add_middleware(Hooks())
    sent = tasks(30)
    DramatiqPublisher(broker, chunk_size=20).publish(sent)

    received = drain(broker, len(sent))
    assert [m.message_id for m in received] == [t.message_id for t in sent]
    redis_ids = [m.options["redis_message_id"] for m in received]
    ids = [t.message_id for t in sent]
    # per chunk of 20: every before hook, the round trip, then every after hook
    expected = []
    for first in (0, 20):
        chunk = list(zip(ids[first : first + 20], redis_ids[first : first + 20], strict=True))
        expected += [("before", *pair) for pair in chunk] + [("after", *pair) for pair in chunk]
    assert seen == expected


def test_the_script_mode_runs_dramatiqs_own_enqueue_command(broker):
    sent = tasks(40)
    publisher = DramatiqPublisher(broker, chunk_size=15)
    publisher.mode = "script"  # what a Dramatiq whose enqueue script is not recognised gets
    publisher.publish(sent)
    received = drain(broker, len(sent))
    assert [(m.message_id, m.kwargs) for m in received] == [(t.message_id, t.payload()) for t in sent]


def test_other_brokers_get_one_enqueue_per_message():
    broker = StubBroker()
    broker.declare_queue(QUEUE)
    publisher = DramatiqPublisher(broker)
    assert publisher.mode is None
    sent = tasks(7)
    publisher.publish(sent)
    queued = [dramatiq.Message.decode(data) for data in broker.queues[QUEUE].queue]
    assert [(m.message_id, m.actor_name, m.kwargs) for m in queued] == [
        (t.message_id, t.actor, t.payload()) for t in sent
    ]
    broker.close()


def test_unique_ids_are_distinct_version_4_uuids():
    ids = unique_ids(5000)
    assert len(set(ids)) == 5000
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
