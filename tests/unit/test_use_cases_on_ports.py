"""The use cases and the deliveries on the unit-of-work port alone, with no database.

A unit of work in memory (processed messages, rejected events, evidence, tasks and the
leased outbox of ``adapters.memory_outbox``) stands in for the SQL one: what
``handlers.service`` and ``handlers.delivery`` decide is checked without a store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.memory_outbox import MemoryOutbox, MemoryOutboxes
from handlers import delivery
from handlers.context import Context
from handlers.delivery import deliver, deliver_many
from handlers.evidence import PendingRecord
from handlers.messages import DeliverMessage
from handlers.ports import (
    Outgoing,
    PermanentFailure,
    RecipientRefused,
    TransientFailure,
    UnitOfWork,
    mark_sent_in_a_unit,
    markings_one_at_a_time,
)
from handlers.service import ingest_one, process_once

NOW = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)
# what deliver reads: one creditor, the service's channels
CTX = cast(
    Context,
    type(
        "Ctx",
        (),
        {
            "lease": timedelta(minutes=5),
            "max_copies": 2,
            "for_creditor": lambda self, creditor: self,
            "channels": lambda self, service: service,
        },
    )(),
)


class MemoryMessages(MemoryOutbox):
    def __init__(self, store: MemoryOutboxes, bounced: list[int]) -> None:
        super().__init__(store, "messages")
        self._bounced = bounced

    def fall_back_to_post(self, item_id: int, now: datetime) -> int:
        self._bounced.append(item_id)
        return 1


@dataclass
class Store:
    """What committed units of work left behind."""

    outboxes: MemoryOutboxes = field(default_factory=MemoryOutboxes)
    processed: dict[str, str] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[PendingRecord] = field(default_factory=list)
    bounced: list[int] = field(default_factory=list)
    commits: int = 0


class MemoryUnitOfWork:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.processed: dict[str, str] = {}
        self.rejected: list[dict[str, Any]] = []
        self.records: list[PendingRecord] = []
        self.tasks: list[object] = []

    def remember_message(self, message_id: str, actor: str, at: datetime) -> bool:
        if message_id in self.store.processed or message_id in self.processed:
            return False
        self.processed[message_id] = actor
        return True

    def store_rejected(self, **row: Any) -> None:
        self.rejected.append(row)

    def creditor_of(self, table: str, row_id: int) -> str | None:
        return "default"  # one creditor here

    def creditors_of(self, table: str, row_ids: Any) -> dict[int, str]:
        return dict.fromkeys(row_ids, "default")

    def scope(self, creditor: str | None) -> None:
        assert creditor in (None, "default")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        marks = len(self.rejected), len(self.records), len(self.tasks)
        try:
            yield
        except BaseException:
            del self.rejected[marks[0] :], self.records[marks[1] :], self.tasks[marks[2] :]
            raise

    def after_commit(self, task: object) -> None:
        self.tasks.append(task)

    def take_tasks(self) -> list[object]:
        tasks, self.tasks = self.tasks, []
        return tasks

    def messages(self) -> MemoryMessages:
        return MemoryMessages(self.store.outboxes, self.store.bounced)

    def record_evidence(self, record: PendingRecord) -> None:
        self.records.append(record)

    def write_evidence(self) -> int:
        return 0

    @property
    def session(self) -> Any:
        raise AssertionError("this use case needs no store session")

    def commit(self) -> None:
        self.store.processed.update(self.processed)
        self.store.rejected.extend(self.rejected)
        self.store.evidence.extend(self.records)
        self.store.commits += 1


class MemoryUnits:
    def __init__(self, store: Store) -> None:
        self.store = store

    @contextmanager
    def __call__(self) -> Iterator[UnitOfWork]:
        with self.store.outboxes.transaction():  # rows put back if the block raises
            uow = MemoryUnitOfWork(self.store)
            yield uow
            uow.commit()

    mark_sent = mark_sent_in_a_unit
    markings = markings_one_at_a_time


class Published:
    def __init__(self) -> None:
        self.tasks: list[object] = []

    def publish(self, tasks: Any) -> None:
        self.tasks.extend(tasks)


class Channel:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.sent: list[Outgoing] = []

    def transmit(self, message: Outgoing) -> str | None:
        if self.failure is not None:
            raise self.failure
        self.sent.append(message)
        return "track-1"


def test_a_message_handled_twice_runs_its_work_once_and_publishes_its_tasks_once() -> None:
    store, published = Store(), Published()
    ran: list[str] = []

    def work(uow: UnitOfWork) -> list[object]:
        ran.append("work")
        uow.after_commit("task-after-commit")
        return ["task-returned"]

    units = MemoryUnits(store)
    first = process_once(units, published, "msg-1", "invoice.due", work, NOW)
    second = process_once(units, published, "msg-1", "invoice.due", work, NOW)

    assert (first, second) == (True, False)
    assert ran == ["work"]
    assert published.tasks == ["task-returned", "task-after-commit"]
    assert store.processed == {"msg-1": "invoice.due"}
    assert store.commits == 1  # the duplicate's unit of work was rolled back


def test_work_that_fails_leaves_the_message_unprocessed_so_a_later_copy_runs_it() -> None:
    store, published = Store(), Published()
    units = MemoryUnits(store)

    def failing(uow: UnitOfWork) -> list[object]:
        uow.after_commit("never published")
        raise RuntimeError("store went away")

    with pytest.raises(RuntimeError):
        process_once(units, published, "msg-2", "invoice.overdue", failing, NOW)
    assert store.processed == {} and published.tasks == []

    assert process_once(units, published, "msg-2", "invoice.overdue", lambda uow: ["done"], NOW) is True
    assert published.tasks == ["done"]


def test_a_line_that_is_not_utf8_json_is_stored_as_rejected_with_its_bytes_escaped() -> None:
    store = Store()
    with MemoryUnits(store)() as uow:
        result = ingest_one(uow, b'{"event_id": "\xff\x00"', NOW, CTX, source="feed.jsonl", line_no=3)

    assert result.status == "rejected"
    (row,) = store.rejected
    # the byte 0xFF is not UTF-8 and NUL cannot be stored: both are written as \xNN
    assert row["raw"] == '{"event_id": "\\xff\\x00"'
    assert (row["source"], row["line_no"], row["received_at"]) == ("feed.jsonl", 3, NOW)
    assert row["reason"] == result.reason


def _recorded(store: Store, channel: str = "email") -> int:
    return store.outboxes.add(
        "messages",
        lease_until=NOW - timedelta(seconds=1),
        message_id="<m-1@creancier.example>",
        channel=channel,
        recipient="compta@acme.example",
        subject="Rappel",
        content=b"bytes as recorded",
        debtor_id="D-1",
        content_sha256="ab" * 32,
    )


def test_a_claimed_message_accepted_by_its_channel_is_marked_sent_with_its_evidence() -> None:
    store = Store()
    pk = _recorded(store)
    email = Channel()

    outcome = deliver(MemoryUnits(store), pk, 0, lambda: NOW, {"email": email}, CTX)

    assert outcome == "sent"
    assert [m.content for m in email.sent] == [b"bytes as recorded"]
    row = store.outboxes.rows("messages")[pk]
    assert (row.status, row.attempts, row.details["tracking_id"]) == ("sent", 1, "track-1")
    (record,) = store.evidence
    assert record.kind == "message.transmitted" and '"tracking_id":"track-1"' in record.payload
    # the same attempt again finds the count moved on: nothing leaves twice
    assert deliver(MemoryUnits(store), pk, 0, lambda: NOW, {"email": email}, CTX) == "skipped"
    assert len(email.sent) == 1


def test_an_email_whose_recipient_is_refused_fails_its_row_and_falls_back_to_post() -> None:
    store = Store()
    pk = _recorded(store)

    refused = RecipientRefused("550 no such user", code=550)
    outcome = deliver(MemoryUnits(store), pk, 0, lambda: NOW, {"email": Channel(refused)}, CTX)

    assert outcome == "failed"
    row = store.outboxes.rows("messages")[pk]
    assert (row.status, row.last_error) == ("failed", "550 no such user")
    assert [r.kind for r in store.evidence] == ["message.failed"]
    assert store.bounced == [pk]


def test_an_email_refused_for_good_for_our_own_fault_fails_its_row_and_leaves_the_debtor_alone() -> None:
    store = Store()
    pk = _recorded(store)

    refused = PermanentFailure("SMTP 535 to the login: bad credentials", code=535)
    outcome = deliver(MemoryUnits(store), pk, 0, lambda: NOW, {"email": Channel(refused)}, CTX)

    assert outcome == "failed"
    assert store.outboxes.rows("messages")[pk].status == "failed"
    assert [r.kind for r in store.evidence] == ["message.failed"]
    assert store.bounced == []


def test_a_transient_failure_keeps_the_message_pending_until_its_back_off_ends() -> None:
    store = Store()
    pk = _recorded(store, channel="letter")

    outcome = deliver(
        MemoryUnits(store), pk, 0, lambda: NOW, {"letter": Channel(TransientFailure("spool full"))}, CTX
    )

    assert outcome == "retry"
    row = store.outboxes.rows("messages")[pk]
    # first attempt failed: the back-off is 30 s from the failure
    assert (row.status, row.attempts, row.lease_until) == ("pending", 1, NOW + timedelta(seconds=30))
    assert store.evidence == [] and store.bounced == []


# --- several messages in turn (deliver_many) -----------------------------------------------


def _batch(store: Store, recipients: list[str]) -> list[DeliverMessage]:
    """Messages recorded for ``recipients``, as the tasks of their first attempt carry them."""
    tasks = []
    for n, recipient in enumerate(recipients, 1):
        details = {
            "message_id": f"<m-{n}@creancier.example>",
            "channel": "email",
            "recipient": recipient,
            "subject": "Rappel",
            "content": f"bytes of message {n}".encode(),
            "debtor_id": f"D-{n}",
        }
        pk = store.outboxes.add(
            "messages", lease_until=NOW + timedelta(minutes=5), content_sha256="ab" * 32, **details
        )
        recorded = Outgoing(
            *(str(details[k]) for k in ("message_id", "channel", "recipient", "subject")),
            cast(bytes, details["content"]),
            str(details["debtor_id"]),
        )
        tasks.append(DeliverMessage(pk, 0, recorded))
    return tasks


class Refusing(Channel):
    """Accepts every message but those to the addresses it is given failures for."""

    def __init__(self, failures: dict[str, Exception]) -> None:
        super().__init__()
        self.failures = failures
        self.tried: list[str] = []

    def transmit(self, message: Outgoing) -> str | None:
        self.tried.append(message.recipient)
        if message.recipient in self.failures:
            raise self.failures[message.recipient]
        return super().transmit(message)


def _states(store: Store) -> list[tuple[str, int]]:
    return [(row.status, row.attempts) for row in store.outboxes.rows("messages").values()]


def test_a_batch_writes_each_outcome_in_its_own_transaction_before_the_next_message_goes() -> None:
    store = Store()
    tasks = _batch(store, ["a@x.example", "gone@x.example", "c@x.example", "busy@x.example", "e@x.example"])
    email = Refusing(
        {
            "gone@x.example": RecipientRefused("550 no such user", code=550),
            "busy@x.example": TransientFailure("451 try later", code=451),
        }
    )

    outcomes = deliver_many(MemoryUnits(store), tasks, lambda: NOW, {"email": email}, CTX)

    assert outcomes == ["sent", "failed", "sent", "retry", "sent"]
    assert email.tried == ["a@x.example", "gone@x.example", "c@x.example", "busy@x.example", "e@x.example"]
    assert _states(store) == [("sent", 1), ("failed", 1), ("sent", 1), ("pending", 1), ("sent", 1)]
    busy = store.outboxes.rows("messages")[tasks[3].message_pk]
    assert (busy.last_error, busy.lease_until) == ("451 try later", NOW + timedelta(seconds=30))
    assert store.bounced == [tasks[1].message_pk]  # only the refused recipient goes by post
    assert sorted((r.kind, r.message_id) for r in store.evidence) == [
        ("message.failed", "<m-2@creancier.example>"),
        ("message.transmitted", "<m-1@creancier.example>"),
        ("message.transmitted", "<m-3@creancier.example>"),
        ("message.transmitted", "<m-5@creancier.example>"),
    ]
    # the creditors read, one transaction per outcome, then one for the records of the sent
    assert store.commits == 1 + 5 + 1


def test_each_accepted_message_is_marked_sent_before_the_next_is_transmitted() -> None:
    """A crash mid-batch leaves at most one message accepted and not marked sent: the one
    whose channel just accepted it (each is sent again once its lease runs out)."""
    store = Store()
    tasks = _batch(store, [f"d{n}@x.example" for n in range(6)])
    clock = [NOW]
    sent_before_each: list[int] = []

    class Slow(Channel):
        def transmit(self, message: Outgoing) -> str | None:
            sent_before_each.append(sum(status == "sent" for status, _ in _states(store)))
            clock[0] += timedelta(seconds=20)
            return super().transmit(message)

    outcomes = deliver_many(MemoryUnits(store), tasks, lambda: clock[0], {"email": Slow()}, CTX)

    assert outcomes == ["sent"] * 6
    assert sent_before_each == [0, 1, 2, 3, 4, 5]
    assert _states(store) == [("sent", 1)] * 6
    # each marked as of the instant its channel accepted it
    assert [r.at for r in store.evidence] == [NOW + timedelta(seconds=20 * n) for n in range(1, 7)]


def test_an_unexpected_error_stops_the_batch_and_leaves_the_rest_to_their_leases() -> None:
    store = Store()
    tasks = _batch(store, ["a@x.example", "bug@x.example", "c@x.example"])
    email = Refusing({"bug@x.example": RuntimeError("a bug in a channel")})

    with pytest.raises(RuntimeError, match="a bug in a channel"):
        deliver_many(MemoryUnits(store), tasks, lambda: NOW, {"email": email}, CTX)

    assert email.tried == ["a@x.example", "bug@x.example"]  # the third is not transmitted
    assert _states(store) == [("sent", 1), ("pending", 0), ("pending", 0)]
    for task in tasks[1:]:
        untouched = store.outboxes.rows("messages")[task.message_pk]
        assert (untouched.last_error, untouched.lease_until) == (None, NOW + timedelta(minutes=5))


def test_a_task_given_twice_in_a_batch_is_transmitted_once() -> None:
    store = Store()
    (task,) = _batch(store, ["a@x.example"])
    email = Channel()

    outcomes = deliver_many(MemoryUnits(store), [task, task], lambda: NOW, {"email": email}, CTX)

    assert outcomes == ["sent", "skipped"]
    assert len(email.sent) == 1 and _states(store) == [("sent", 1)]


def test_the_records_of_a_batch_are_written_together_after_each_message_is_marked_sent() -> None:
    """Marking a message sent is its own short transaction; the ``message.transmitted``
    records wait for the end of the batch (or ``RECORD_EVERY`` messages), then go together,
    each dated when its channel accepted it, with the payload written before."""
    store = Store()
    tasks = _batch(store, [f"d{n}@x.example" for n in range(delivery.RECORD_EVERY + 3)])
    clock = [NOW]
    records_before_each: list[int] = []

    class Slow(Channel):
        def transmit(self, message: Outgoing) -> str | None:
            records_before_each.append(len(store.evidence))
            clock[0] += timedelta(seconds=1)
            return super().transmit(message)

    outcomes = deliver_many(MemoryUnits(store), tasks, lambda: clock[0], {"email": Slow()}, CTX)

    count = delivery.RECORD_EVERY + 3
    assert outcomes == ["sent"] * count
    # none until RECORD_EVERY messages were marked, then those together, the rest at the end
    assert records_before_each == [0] * delivery.RECORD_EVERY + [delivery.RECORD_EVERY] * 3
    assert [r.message_id for r in store.evidence] == [
        f"<m-{n}@creancier.example>" for n in range(1, count + 1)
    ]
    assert [r.at for r in store.evidence] == [NOW + timedelta(seconds=n) for n in range(1, count + 1)]
    first = json.loads(store.evidence[0].payload)
    assert first == {
        "attempts": 1,
        "channel": "email",
        "content_sha256": "ab" * 32,
        "message_id": "<m-1@creancier.example>",
        "tracking_id": "track-1",
    }
    # the creditors read, one transaction per message marked, two for the records
    assert store.commits == 1 + count + 2
    assert not any(row.record_due for row in store.outboxes.rows("messages").values())


def test_a_crash_between_the_marking_and_the_records_leaves_them_to_the_sweep_which_writes_each_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Store()
    tasks = _batch(store, ["a@x.example", "b@x.example", "c@x.example"])
    times = iter(NOW + timedelta(seconds=n) for n in range(1, 10))

    def killed(*_args: object, **_kwargs: object) -> int:
        raise SystemExit("process killed before the batch's records were written")

    real = delivery.record_transmitted
    monkeypatch.setattr(delivery, "record_transmitted", killed)
    with pytest.raises(SystemExit):
        deliver_many(MemoryUnits(store), tasks, lambda: next(times), {"email": Channel()}, CTX)
    monkeypatch.setattr(delivery, "record_transmitted", real)

    rows = store.outboxes.rows("messages")
    assert [(r.status, r.record_due) for r in rows.values()] == [("sent", True)] * 3
    assert store.evidence == []
    units = MemoryUnits(store)
    # within the grace, the records are left to the batch that marked them
    assert delivery.record_left_transmissions(units, NOW + timedelta(seconds=2), CTX.lease) == 0
    # later, the sweep writes each once, dated when the channel accepted it
    assert delivery.record_left_transmissions(units, NOW + CTX.lease + timedelta(seconds=2), CTX.lease) == 2
    assert delivery.record_left_transmissions(units, NOW + CTX.lease + timedelta(minutes=1), CTX.lease) == 1
    assert delivery.record_left_transmissions(units, NOW + timedelta(days=1), CTX.lease) == 0
    assert [(r.kind, r.message_id, r.at) for r in store.evidence] == [
        ("message.transmitted", f"<m-{n}@creancier.example>", NOW + timedelta(seconds=n)) for n in (1, 2, 3)
    ]
    assert not any(row.record_due for row in rows.values())
    # a batch that comes after the sweep (or a sweep after the batch) writes nothing again
    with units() as uow:
        assert delivery.record_transmitted(uow, [t.message_pk for t in tasks]) == 0
    assert len(store.evidence) == 3


OUTCOMES = {
    "accepted": None,
    "refused": RecipientRefused("550 no such user", code=550),
    "ours": PermanentFailure("554 policy", code=554),
    "later": TransientFailure("451 try later", code=451),
    "bug": RuntimeError("a bug"),
}
# what each outcome leaves on its row: (status, attempts), and whether it falls back to post
LEFT = {
    "accepted": (("sent", 1), False),
    "refused": (("failed", 1), True),
    "ours": (("failed", 1), False),
    "later": (("pending", 1), False),
    "bug": (("pending", 0), False),
}


@given(st.lists(st.sampled_from(sorted(OUTCOMES)), min_size=1, max_size=12))
@settings(max_examples=60, deadline=None)
def test_each_message_tried_ends_as_it_would_alone_and_a_bug_stops_the_batch(outcomes: list[str]) -> None:
    store = Store()
    recipients = [f"{outcome}-{n}@x.example" for n, outcome in enumerate(outcomes)]
    tasks = _batch(store, recipients)
    failures = {r: OUTCOMES[o] for r, o in zip(recipients, outcomes, strict=True) if OUTCOMES[o] is not None}
    email = Refusing(cast(dict[str, Exception], failures))

    try:
        deliver_many(MemoryUnits(store), tasks, lambda: NOW, {"email": email}, CTX)
    except RuntimeError:
        assert "bug" in outcomes
    else:
        assert "bug" not in outcomes

    # every message is tried, in order, up to the first unexpected error, which stops the batch
    tried = outcomes[: outcomes.index("bug") + 1] if "bug" in outcomes else outcomes
    assert email.tried == recipients[: len(tried)]
    untried = [(("pending", 0), False)] * (len(outcomes) - len(tried))
    assert _states(store) == [LEFT[o][0] for o in tried] + [state for state, _ in untried]
    assert store.bounced == [t.message_pk for t, o in zip(tasks, tried, strict=False) if LEFT[o][1]]
    written = sum(o in ("refused", "ours", "later", "accepted") for o in tried)
    # the creditors read, one transaction per outcome written, one for the records of the
    # messages marked sent (even when a bug stopped the batch), each written once
    assert store.commits == 1 + written + ("accepted" in tried)
    transmitted = [r.message_id for r in store.evidence if r.kind == "message.transmitted"]
    assert transmitted == [f"<m-{n}@creancier.example>" for n, o in enumerate(tried, 1) if o == "accepted"]
    assert not any(row.record_due for row in store.outboxes.rows("messages").values())
