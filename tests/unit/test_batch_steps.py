"""How claimed steps become broker messages (``handlers.messages.batch_steps``): the rules of
docs/architecture.md, as properties."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from handlers.messages import StepDue, StepsDue, batch_steps, stable_id

T0 = datetime(2026, 3, 27, 8, 0, tzinfo=UTC)


def step(
    step_id: int, creditor: str | None = "default", debtor: str | None = "D-1", emission: int = 1
) -> StepDue:
    return StepDue("invoice.overdue", step_id, T0 + timedelta(minutes=step_id), emission, creditor, debtor)


def steps_of(message: StepDue | StepsDue) -> tuple[StepDue, ...]:
    return message.steps if isinstance(message, StepsDue) else (message,)


claims = st.lists(
    st.tuples(
        st.sampled_from(["default", "atelier", "negoce"]), st.sampled_from([f"D-{n}" for n in range(8)])
    ),
    max_size=60,
).map(lambda owners: [step(n, creditor, debtor) for n, (creditor, debtor) in enumerate(owners)])


@given(claims, st.integers(min_value=1, max_value=12))
def test_every_step_goes_out_once_in_a_message_of_one_creditor_within_the_size(steps, size):
    messages = batch_steps(steps, size)
    carried = [s for m in messages for s in steps_of(m)]
    assert sorted(s.step_id for s in carried) == [s.step_id for s in steps]
    for message in messages:
        inside = steps_of(message)
        assert 1 <= len(inside) <= size
        assert len({s.creditor_id for s in inside}) == 1
        assert isinstance(message, StepDue) == (len(inside) == 1)  # a batch of one is the step itself


@given(claims, st.integers(min_value=1, max_value=12))
def test_a_debtors_steps_take_as_few_messages_as_the_size_allows(steps, size):
    messages = batch_steps(steps, size)
    spread: Counter[tuple[str | None, str | None]] = Counter()
    for message in messages:
        for owner in {(s.creditor_id, s.debtor_id) for s in steps_of(message)}:
            spread[owner] += 1
    own = Counter((s.creditor_id, s.debtor_id) for s in steps)
    for owner, n in own.items():
        assert spread[owner] == -(-n // size)  # ceil(n / size): together whenever they fit


@given(claims)
def test_a_worker_batch_of_one_is_one_message_per_step_in_claim_order(steps):
    assert batch_steps(steps, 1) == steps


def test_a_steps_creditor_and_debtor_unknown_goes_alone():
    known, unknown = step(1), step(2, None, None)
    assert batch_steps([known, unknown, step(3)], 50) == [StepsDue("default", (known, step(3))), unknown]


def test_a_batch_keeps_its_id_on_redelivery_and_a_re_emission_is_a_new_message():
    first = StepsDue("default", (step(1), step(2, debtor="D-2")))
    assert first.message_id == StepsDue("default", (step(1), step(2, debtor="D-2"))).message_id
    again = StepsDue("default", (step(1, emission=2), step(2, debtor="D-2", emission=2)))
    assert again.message_id != first.message_id
    assert first.message_id not in {s.message_id for s in first.steps}


def test_the_payload_gives_back_the_steps_with_their_own_ids():
    batch = StepsDue("atelier", (step(1, "atelier"), step(2, "atelier", "D-2", emission=3)))
    payload = batch.payload()
    back = [StepDue.from_item(item, payload["creditor_id"]) for item in payload["steps"]]
    assert [s.message_id for s in back] == [s.message_id for s in batch.steps]
    assert all(s.creditor_id == "atelier" and s.due_at.tzinfo is not None for s in back)


def test_the_scheduler_makes_batches_smaller_when_the_in_flight_cap_would_starve_the_threads():
    from config.settings import Settings
    from scheduler.loop import worker_batch

    assert worker_batch(Settings()) == 50  # 2 000 in flight, 2 x 8 threads: 62 per thread pair
    assert worker_batch(Settings(max_in_flight=150)) == 4  # 150 // (2 x 16)
    assert worker_batch(Settings(max_in_flight=150, worker_threads=1, worker_processes=1)) == 50
    assert worker_batch(Settings(max_in_flight=10)) == 1
    assert worker_batch(Settings(worker_batch=1)) == 1


def test_the_objects_of_the_start_up_are_out_of_the_collectors_sight_before_the_first_tick():
    import gc
    import weakref

    from config.process import freeze_start_up_objects

    class Held:  # a container the collector tracks, alive at start-up
        pass

    held, garbage = Held(), Held()
    garbage.cycle = garbage  # type: ignore[attr-defined]
    gone = weakref.ref(garbage)
    del garbage
    try:
        assert freeze_start_up_objects() > 0
        tracked = {id(o) for o in gc.get_objects()}
        assert id(held) not in tracked and id(Held) not in tracked  # frozen: never walked again
        assert gone() is None  # a cycle left at start-up is collected first, not kept for ever
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert id(held) in {id(o) for o in gc.get_objects()}


@given(st.lists(st.one_of(st.integers(), st.text(), st.datetimes(timezones=st.just(UTC))), max_size=5))
def test_a_stable_id_is_the_uuid5_of_its_parts(parts):
    import uuid

    from handlers.messages import _NAMESPACE, stable_id

    assert stable_id(*parts) == str(uuid.uuid5(_NAMESPACE, "|".join(str(p) for p in parts)))


@given(claims, st.integers(min_value=2, max_value=12))
def test_a_messages_id_and_payload_are_its_steps_own(steps, size):
    from handlers.messages import stable_id

    for message in batch_steps(steps, size):
        if isinstance(message, StepsDue):
            assert message.message_id == stable_id("steps", *(s.message_id for s in message.steps))
            assert message.payload()["steps"] == [s.as_item() for s in message.steps]
        else:
            assert message.message_id == stable_id("step", message.step_id, message.due_at.isoformat(), 1)


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3),
            st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))]),
        ),
        min_size=2,
        max_size=30,
    )
)
def test_steps_sharing_an_instant_each_carry_their_own_due_instant(instants):
    """Equal instants in other zones are equal datetimes that read differently: each step's
    item and id keep its own text."""
    steps = tuple(
        StepDue("invoice.due", n, (T0 + timedelta(hours=h)).astimezone(zone), 1, "default", "D-1")
        for n, (h, zone) in enumerate(instants)
    )
    batch = StepsDue("default", steps)
    assert batch.payload()["steps"] == [s.as_item() for s in steps]
    assert batch.message_id == stable_id("steps", *(s.message_id for s in steps))
