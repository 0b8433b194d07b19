"""One contract for the leased outbox, held by every implementation and for every kind of row.

Each test runs on the in-memory outbox, on SQLite and on PostgreSQL (``postgres`` marker),
for messages and for hand-overs. The clock is pinned: every instant is an argument.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from adapters.memory_outbox import MemoryOutboxes
from adapters.orm import CaseRow, HandoverRow, MessageRow, SignalRow
from adapters.outbox import SqlMessages, SqlOutbox
from adapters.store import make_engine, migrate, session_factory, transaction
from handlers.outbox import (
    KINDS,
    Due,
    Item,
    Kind,
    Outbox,
    Refusal,
    backoff,
    gives_up,
    is_permanent,
    refusal,
)
from handlers.ports import PermanentFailure, TransientFailure

T = TypeVar("T")

T0 = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


class MemoryHarness:
    def __init__(self) -> None:
        self.store = MemoryOutboxes()

    def add(self, kind: Kind, *, lease_until: datetime | None, attempts: int = 0) -> int:
        return self.store.add(kind, lease_until=lease_until, attempts=attempts)

    def run(self, kind: Kind, work: Callable[[Outbox], T]) -> T:
        with self.store.transaction():
            return work(self.store.outbox(kind))


class SqlHarness:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        migrate(self.engine)
        self.sessions = session_factory(self.engine)
        self.added = 0

    def add(self, kind: Kind, *, lease_until: datetime | None, attempts: int = 0) -> int:
        self.added += 1
        n = self.added
        with transaction(self.sessions) as session:
            row: MessageRow | HandoverRow | SignalRow
            if kind == "signals":
                row = SignalRow(
                    subscriber="erp",
                    signal_type="invoice.settled",
                    idempotency_key=f"signal-{n}",
                    payload="{}",
                    status="pending",
                    attempts=attempts,
                    lease_until=lease_until,
                    created_at=T0,
                )
            elif kind == "messages":
                content = f"message {n}".encode()
                row = MessageRow(
                    message_id=f"<m-{n}@test>",
                    debtor_id="D-1",
                    channel="email",
                    step="reminder_1",
                    local_day=date(2026, 3, 27),
                    recipient="compta@acme.example",
                    subject=f"Relance {n}",
                    body_text="…",
                    content=content,
                    content_sha256=hashlib.sha256(content).hexdigest(),
                    amounts={},
                    status="pending",
                    attempts=attempts,
                    lease_until=lease_until,
                    created_at=T0,
                )
            else:
                case = _case()
                session.add(case)
                session.flush()
                row = HandoverRow(
                    case_id=case.id,
                    partner="etude_martin",
                    partner_kind="bailiff",
                    channel="webhook",
                    idempotency_key=f"key-{n}",
                    status="pending",
                    attempts=attempts,
                    lease_until=lease_until,
                    created_at=T0,
                )
            session.add(row)
            session.flush()
            return row.id

    def run(self, kind: Kind, work: Callable[[Outbox], T]) -> T:
        with transaction(self.sessions) as session:
            return work(SqlMessages(session) if kind == "messages" else SqlOutbox(session, kind))

    def clear(self) -> None:
        with transaction(self.sessions) as session:
            for model in (MessageRow, HandoverRow, SignalRow, CaseRow):
                session.execute(delete(model))


def _case() -> CaseRow:
    zero = Decimal("0.00")
    return CaseRow(
        debtor_id="D-1",
        kind="escalation",
        status="open",
        recommended_procedure="injonction_de_payer",
        reasons=[],
        alternatives=[],
        currency="EUR",
        principal=Decimal("1200.00"),
        late_interest=zero,
        indemnities=Decimal("40.00"),
        amount_claimed=Decimal("1240.00"),
        notes=[],
        opened_at=T0,
        updated_at=T0,
    )


Harness = MemoryHarness | SqlHarness


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def outbox(request) -> Iterator[Harness]:
    if request.param == "memory":
        yield MemoryHarness()
        return
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    harness = SqlHarness(url)
    yield harness
    harness.engine.dispose()


@pytest.fixture(params=KINDS)
def kind(request) -> Kind:
    return request.param


def read(outbox: Harness, kind: Kind, item_id: int) -> Item:
    item = outbox.run(kind, lambda o: o.get(item_id))
    assert item is not None
    return item


def claimed(result: Item | Refusal) -> Item:
    assert isinstance(result, Item), result
    return result


# --- the record of a message sent -------------------------------------------------------------


def _messages(outbox: Harness, work: Callable[[Any], T]) -> T:
    """``work`` on the outbox of messages (``handlers.delivery.Messages``'s record operations)."""
    return outbox.run("messages", work)


def test_a_message_marked_sent_has_its_record_due_until_a_transaction_takes_it(outbox):
    first, second, pending = (outbox.add("messages", lease_until=T0) for _ in range(3))
    later = T0 + timedelta(minutes=1)
    _messages(outbox, lambda o: o.mark_done(first, T0, count_attempt=True, tracking_id="t-1"))
    _messages(outbox, lambda o: o.mark_done(second, later))

    assert _messages(outbox, lambda o: o.unrecorded(T0 - timedelta(seconds=1), 10)) == []
    assert _messages(outbox, lambda o: o.unrecorded(T0, 10)) == [first]
    assert _messages(outbox, lambda o: o.unrecorded(later, 10)) == [first, second]
    assert _messages(outbox, lambda o: o.unrecorded(later, 1)) == [first]  # oldest first

    taken = _messages(outbox, lambda o: o.take_unrecorded([second, pending, first, first]))
    assert [(t.id, t.status, t.attempts, t.details["sent_at"], t.details["tracking_id"]) for t in taken] == [
        (first, "sent", 1, T0, "t-1"),
        (second, "sent", 0, later, None),
    ]
    # taken once: nothing is due any more, and marking a message sent again makes nothing due
    assert _messages(outbox, lambda o: o.take_unrecorded([first, second])) == []
    assert _messages(outbox, lambda o: o.mark_done(first, later)) is None
    assert _messages(outbox, lambda o: o.unrecorded(later + timedelta(days=1), 10)) == []


def test_two_takers_of_the_same_records_at_once_take_each_once(outbox):
    ids = [outbox.add("messages", lease_until=T0) for _ in range(5)]
    for item_id in ids:
        _messages(outbox, lambda o, item_id=item_id: o.mark_done(item_id, T0))
    barrier = threading.Barrier(2)
    taken: list[list[int]] = []

    def take(order: list[int]) -> None:
        barrier.wait()
        taken.append([t.id for t in _messages(outbox, lambda o: o.take_unrecorded(order))])

    threads = [threading.Thread(target=take, args=(order,)) for order in (ids, ids[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(taken[0] + taken[1]) == ids


# --- taking an attempt ----------------------------------------------------------------------


def test_two_claimers_of_the_same_attempt_at_once_one_takes_it_and_the_other_is_told_stale(outbox, kind):
    item_id = outbox.add(kind, lease_until=T0)
    barrier = threading.Barrier(2)
    results: list[Item | Refusal] = []

    def claim() -> None:
        barrier.wait()
        results.append(outbox.run(kind, lambda o: o.claim(item_id, 0, T0, LEASE)))

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [r for r in results if isinstance(r, Item)]
    assert len(winners) == 1 and winners[0].attempts == 1
    assert [r for r in results if not isinstance(r, Item)] == [Refusal.STALE]
    assert read(outbox, kind, item_id).attempts == 1


def test_a_claim_counts_the_attempt_and_leases_the_item_until_now_plus_the_lease(outbox, kind):
    item_id = outbox.add(kind, lease_until=T0)

    item = claimed(outbox.run(kind, lambda o: o.claim(item_id, 0, T0, LEASE)))

    assert (item.id, item.status, item.attempts) == (item_id, "pending", 1)
    assert item.lease_until == datetime(2026, 3, 27, 9, 5, tzinfo=UTC)
    assert read(outbox, kind, item_id).lease_until == datetime(2026, 3, 27, 9, 5, tzinfo=UTC)


def test_a_stale_attempt_changes_nothing(outbox, kind):
    item_id = outbox.add(kind, lease_until=T0)
    outbox.run(kind, lambda o: o.claim(item_id, 0, T0, LEASE))

    later = T0 + timedelta(minutes=1)
    again = outbox.run(kind, lambda o: o.claim(item_id, 0, later, LEASE))
    ahead = outbox.run(kind, lambda o: o.claim(item_id, 5, later, LEASE))

    assert (again, ahead) == (Refusal.STALE, Refusal.STALE)
    item = read(outbox, kind, item_id)
    assert (item.attempts, item.lease_until) == (1, T0 + LEASE)  # the first claim's lease


def test_an_unknown_item_is_refused_as_missing(outbox, kind):
    assert outbox.run(kind, lambda o: o.claim(424242, 0, T0, LEASE)) is Refusal.MISSING
    assert outbox.run(kind, lambda o: o.get(424242)) is None
    assert outbox.run(kind, lambda o: o.mark_done(424242, T0)) is None


def test_an_unknown_column_cannot_be_set_through_the_outbox(outbox, kind):
    item_id = outbox.add(kind, lease_until=T0)

    with pytest.raises(ValueError, match="cannot set"):
        outbox.run(kind, lambda o: o.claim(item_id, 0, T0, LEASE, status="sent"))

    assert read(outbox, kind, item_id).attempts == 0  # the transaction was rolled back


# --- leases and back-off --------------------------------------------------------------------


def test_when_the_lease_runs_out_the_item_is_claimed_again_with_its_next_attempt(outbox, kind):
    item_id = outbox.add(kind, lease_until=T0)
    outbox.run(kind, lambda o: o.claim(item_id, 0, T0, LEASE))

    still_leased = outbox.run(kind, lambda o: o.claim_expired(T0 + LEASE - timedelta(seconds=1), LEASE, 10))
    expired = outbox.run(kind, lambda o: o.claim_expired(T0 + LEASE, LEASE, 10))
    second = claimed(outbox.run(kind, lambda o: o.claim(item_id, 1, T0 + LEASE, LEASE)))

    assert still_leased == []
    assert expired == [Due(item_id, 1)]
    assert second.attempts == 2 and second.lease_until == T0 + 2 * LEASE


def test_the_tick_leases_what_it_claims_so_the_next_tick_does_not_emit_it_again(outbox, kind):
    item_id = outbox.add(kind, lease_until=T0)

    first = outbox.run(kind, lambda o: o.claim_expired(T0, LEASE, 10))
    second = outbox.run(kind, lambda o: o.claim_expired(T0 + timedelta(minutes=1), LEASE, 10))

    assert (first, second) == ([Due(item_id, 0)], [])
    assert read(outbox, kind, item_id).lease_until == T0 + LEASE


def test_a_transient_failure_waits_30_seconds_then_60_before_the_next_attempt(outbox, kind):
    item_id = outbox.add(kind, lease_until=T0)
    outbox.run(kind, lambda o: o.claim(item_id, 0, T0, LEASE))
    failed_at = T0 + timedelta(seconds=10)

    retry = outbox.run(kind, lambda o: o.record_retry(item_id, failed_at, "451 try later"))

    assert retry is not None
    # attempt 1 failed: 30 s from the failure, 09:00:10 + 30 s = 09:00:40
    assert (retry.status, retry.attempts, retry.last_error) == ("pending", 1, "451 try later")
    assert retry.lease_until == datetime(2026, 3, 27, 9, 0, 40, tzinfo=UTC)
    assert (
        outbox.run(kind, lambda o: o.claim_expired(retry.lease_until - timedelta(seconds=1), LEASE, 10)) == []
    )
    assert outbox.run(kind, lambda o: o.claim_expired(retry.lease_until, LEASE, 10)) == [Due(item_id, 1)]

    outbox.run(kind, lambda o: o.claim(item_id, 1, retry.lease_until, LEASE))
    second = outbox.run(kind, lambda o: o.record_retry(item_id, retry.lease_until, "451 again"))
    assert second is not None
    # attempt 2 failed at 09:00:40: 60 s, so 09:01:40
    assert second.lease_until == datetime(2026, 3, 27, 9, 1, 40, tzinfo=UTC)


def test_a_first_attempt_made_without_a_claim_is_counted_when_its_outcome_is_written(outbox, kind):
    item_id = outbox.add(kind, lease_until=T0 + LEASE)

    retry = outbox.run(kind, lambda o: o.record_retry(item_id, T0, "timeout", count_attempt=True))

    assert retry is not None and retry.attempts == 1
    assert retry.lease_until == T0 + timedelta(seconds=30)


def test_the_expired_claim_is_bounded_by_the_batch_oldest_first_and_never_repeats_a_row(outbox, kind):
    # five rows whose leases ran out at 08:55, 08:56, … 08:59, added in the reverse order
    ids = {
        minute: outbox.add(kind, lease_until=T0 - timedelta(minutes=minute), attempts=minute % 2)
        for minute in (1, 2, 3, 4, 5)
    }
    batches = [outbox.run(kind, lambda o: o.claim_expired(T0, LEASE, 2)) for _ in range(4)]

    assert [len(batch) for batch in batches] == [2, 2, 1, 0]
    claimed_ids = [due.id for batch in batches for due in batch]
    assert claimed_ids == [ids[5], ids[4], ids[3], ids[2], ids[1]]
    assert {due.id: due.attempt for batch in batches for due in batch} == {
        ids[m]: m % 2 for m in (1, 2, 3, 4, 5)
    }


def test_a_batch_of_zero_claims_nothing(outbox, kind):
    outbox.add(kind, lease_until=T0)
    assert outbox.run(kind, lambda o: o.claim_expired(T0, LEASE, 0)) == []


def test_rows_without_a_lease_or_leased_in_the_future_are_not_claimed(outbox, kind):
    outbox.add(kind, lease_until=None)
    outbox.add(kind, lease_until=T0 + timedelta(seconds=1))
    assert outbox.run(kind, lambda o: o.claim_expired(T0, LEASE, 10)) == []


# --- outcomes -------------------------------------------------------------------------------


def test_a_transient_failure_then_a_success_marks_the_item_done_once(outbox, kind):
    item_id = outbox.add(kind, lease_until=T0)
    outbox.run(kind, lambda o: o.claim(item_id, 0, T0, LEASE))
    retry = outbox.run(kind, lambda o: o.record_retry(item_id, T0, "connection refused"))
    assert retry is not None and retry.lease_until is not None
    outbox.run(kind, lambda o: o.claim(item_id, 1, retry.lease_until, LEASE))

    done = outbox.run(kind, lambda o: o.mark_done(item_id, retry.lease_until))
    twice = outbox.run(kind, lambda o: o.mark_done(item_id, retry.lease_until + timedelta(hours=1)))

    assert done is not None and twice is None
    expected = "sent" if kind == "messages" else "delivered"
    assert (done.status, done.attempts, done.lease_until) == (expected, 2, None)
    assert outbox.run(kind, lambda o: o.claim_expired(T0 + timedelta(days=1), LEASE, 10)) == []
    assert outbox.run(kind, lambda o: o.claim(item_id, 2, T0, LEASE)) is Refusal.SETTLED


def test_a_permanent_failure_marks_the_item_failed_and_nothing_takes_it_again(outbox, kind):
    item_id = outbox.add(kind, lease_until=T0)
    outbox.run(kind, lambda o: o.claim(item_id, 0, T0, LEASE))

    failed = outbox.run(kind, lambda o: o.record_failure(item_id, T0, "550 no such user " + "x" * 600))

    assert failed is not None
    assert (failed.status, failed.attempts, failed.lease_until) == ("failed", 1, None)
    assert failed.last_error is not None and len(failed.last_error) == 500
    assert outbox.run(kind, lambda o: o.record_retry(item_id, T0, "late answer")) is None
    assert outbox.run(kind, lambda o: o.record_failure(item_id, T0, "late answer")) is None
    assert outbox.run(kind, lambda o: o.claim(item_id, 1, T0, LEASE)) is Refusal.SETTLED
    assert outbox.run(kind, lambda o: o.claim_expired(T0 + timedelta(days=1), LEASE, 10)) == []
    assert read(outbox, kind, item_id).last_error == failed.last_error


def test_the_hand_over_records_its_channel_on_the_claim_and_its_answer_on_a_failure(outbox):
    item_id = outbox.add("handovers", lease_until=T0)

    item = claimed(outbox.run("handovers", lambda o: o.claim(item_id, 0, T0, LEASE, channel="email")))
    retry = outbox.run("handovers", lambda o: o.record_retry(item_id, T0, "HTTP 503", response_code=503))

    assert item.details["channel"] == "email"
    assert retry is not None and retry.details["response_code"] == 503


# --- the pure decisions ---------------------------------------------------------------------


def test_the_back_off_is_30_seconds_doubling_up_to_one_hour():
    # 30, 60, 120, 240, 480, 960, 1920, then 3840 capped at 3600
    assert [backoff(n).total_seconds() for n in range(1, 9)] == [30, 60, 120, 240, 480, 960, 1920, 3600]
    assert backoff(0) == timedelta(seconds=30)


@given(st.integers(min_value=0, max_value=10_000))
def test_the_back_off_never_shrinks_and_never_exceeds_one_hour(attempts: int):
    assert backoff(attempts) <= backoff(attempts + 1) <= timedelta(hours=1)


@pytest.mark.parametrize(
    ("status", "attempts", "attempt", "expected"),
    [
        (None, None, 0, Refusal.MISSING),
        ("sent", 1, 1, Refusal.SETTLED),
        ("cancelled", 0, 0, Refusal.SETTLED),
        ("pending", 2, 1, Refusal.STALE),
        ("pending", 1, 2, Refusal.STALE),
        ("pending", 1, 1, None),
    ],
)
def test_a_claim_is_refused_for_a_missing_settled_or_stale_row(
    status: str | None, attempts: int | None, attempt: int, expected: Any
):
    assert refusal(status, attempts, attempt) is expected


def test_a_refusal_is_the_channel_s_word_and_the_limit_ends_transient_failures():
    assert is_permanent(PermanentFailure("550")) and not is_permanent(TransientFailure("451"))
    assert gives_up(1, 10, permanent=True)
    assert not gives_up(9, 10, permanent=False) and gives_up(10, 10, permanent=False)
    assert not gives_up(1000, None, permanent=False)


# --- the memory outbox against SQLite, on random histories ----------------------------------

Step = tuple[str, int, int]  # (operation, row index, argument)

steps = st.lists(
    st.tuples(
        st.sampled_from(["claim", "expired", "retry", "fail", "done", "wait"]),
        st.integers(min_value=0, max_value=2),
        st.integers(min_value=0, max_value=3),
    ),
    max_size=25,
)


def _answer(outbox: Outbox, operation: str, item_id: int, argument: int, now: datetime) -> object:
    if operation == "claim":
        return outbox.claim(item_id, argument, now, LEASE)
    if operation == "expired":
        return outbox.claim_expired(now, LEASE, argument)
    if operation == "retry":
        return outbox.record_retry(item_id, now, f"retry {argument}")
    if operation == "fail":
        return outbox.record_failure(item_id, now, f"fail {argument}")
    if operation == "done":
        return outbox.mark_done(item_id, now)
    return outbox.get(item_id)


def _play(harness: Harness, kind: Kind, history: list[Step]) -> list[object]:
    """Apply ``history`` to three fresh rows; return every answer, ids as row indexes."""
    ids = [harness.add(kind, lease_until=T0 + timedelta(seconds=10 * i)) for i in range(3)]
    index = {item_id: i for i, item_id in enumerate(ids)}

    def plain(answer: object) -> object:
        if isinstance(answer, Item):
            return (index[answer.id], answer.status, answer.attempts, answer.lease_until, answer.last_error)
        if isinstance(answer, list):
            return [(index[due.id], due.attempt) for due in answer]
        return answer

    now = T0
    answers: list[object] = []
    for operation, i, argument in history:
        if operation == "wait":
            now += timedelta(seconds=25 * (argument + 1))
            continue
        answer = harness.run(
            kind, partial(_answer, operation=operation, item_id=ids[i], argument=argument, now=now)
        )
        answers.append((operation, i, argument, plain(answer)))
    for item_id in ids:
        answers.append(
            plain(harness.run(kind, partial(_answer, operation="get", item_id=item_id, argument=0, now=now)))
        )
    return answers


@pytest.fixture(scope="module")
def sqlite_for_histories(tmp_path_factory) -> Iterator[SqlHarness]:
    harness = SqlHarness(f"sqlite:///{tmp_path_factory.mktemp('histories') / 'relance.db'}")
    yield harness
    harness.engine.dispose()


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=60, deadline=None)  # each step is a committed SQLite transaction
@given(history=steps)
def test_the_memory_outbox_answers_every_history_as_sqlite_does(sqlite_for_histories, kind, history):
    sqlite_for_histories.clear()  # one database for every example: each starts with no rows
    assert _play(MemoryHarness(), kind, history) == _play(sqlite_for_histories, kind, history)
