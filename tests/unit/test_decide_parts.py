"""The decision taken part by part (handlers.parts) is the decision taken at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from handlers.decide import Claim, Claims, Decision, Done, PassedOver, decide
from handlers.parts import pass_over, passes_over
from handlers.snapshot import DebtorSnapshot, DueStep, InvoiceSnapshot, Snapshot
from tests.unit.test_decide import LADDER, MINIMUM, NAMES, NOW, TODAY, invoice, snapshot, step

# 23:00 in Paris on the same Monday: the sending window is closed
NIGHT = datetime(2026, 2, 16, 22, 0, tzinfo=UTC)


def manual(step_id: int, invoice_id: int, kind: str, kinds: tuple[str, ...]) -> DueStep:
    return DueStep(
        step_id=step_id,
        invoice_id=invoice_id,
        name=kind,
        event="invoice.overdue",
        severity=NAMES.index("reminder_3") + 1,
        channels=(kind,),
        minimum_balance=MINIMUM,
        manual=True,
        debtor_kinds=kinds,
    )


def installment(step_id: int, invoice_id: int, blocker: str | None) -> DueStep:
    return DueStep(
        step_id=step_id,
        invoice_id=invoice_id,
        name="installment_1_due",
        event="invoice.due",
        severity=-1,
        channels=("email",),
        minimum_balance=MINIMUM,
        installment=True,
        installment_blocker=blocker,
    )


def rarely(draw) -> bool:
    return draw(st.integers(0, 5)) == 0


@st.composite
def catch_ups(draw) -> tuple[Snapshot, datetime, list[int]]:
    """A debtor with several steps due per invoice (the steps of an invoice together, in the
    order the store's batches give them), holds, manual steps, contact pressure; the instant;
    the numbers of invoices in each part."""
    invoices: list[InvoiceSnapshot] = []
    due: list[DueStep] = []
    count = draw(st.integers(1, 8))
    for i in range(1, count + 1):
        holds = {}
        if rarely(draw):
            holds = draw(
                st.sampled_from(
                    [{"disputed": True}, {"hold_reason": "a person asked"}, {"in_payment_plan": True}]
                )
            )
        currency = draw(st.sampled_from(["EUR", "EUR", "USD"]))
        balance = "1.00" if rarely(draw) else "1000.00"
        invoices.append(
            invoice(i, TODAY - timedelta(days=draw(st.integers(-5, 60))), balance, currency, **holds)
        )
        for name in draw(
            st.lists(st.sampled_from([*NAMES, "call", "task", "plan"]), min_size=1, max_size=5, unique=True)
        ):
            step_id = len(due) + 1
            if name in ("call", "task"):
                kinds = draw(st.sampled_from([(), ("business",), ("consumer",)]))
                due.append(manual(step_id, i, name, kinds))
            elif name == "plan":
                due.append(installment(step_id, i, "plan broken" if rarely(draw) else None))
            else:
                due.append(step(step_id, i, name))
    recorded = frozenset(
        (s.invoice_id, s.name, c) for s in due if rarely(draw) for c in LADDER.get(s.name, ((), ()))[1]
    )
    used = frozenset(
        draw(st.sets(st.tuples(st.sampled_from(["email", "letter"]), st.just("EUR")), max_size=1))
    )
    debtor = DebtorSnapshot(
        "D-1",
        opt_out=rarely(draw),
        has_email=not rarely(draw),
        has_address=not rarely(draw),
        has_phone=draw(st.booleans()),
        kind=draw(st.sampled_from(["business", "consumer"])),
        hold_reason="a person asked" if rarely(draw) else None,
    )
    last = draw(st.sampled_from([None, TODAY - timedelta(days=1), TODAY - timedelta(days=10)]))
    snap = snapshot(
        invoices,
        due,
        debtor=debtor,
        recorded=recorded,
        used_today=used,
        last_contact=last,
        min_days_between_messages=draw(st.sampled_from([0, 0, 3])),
    )
    sizes = draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
    return snap, draw(st.sampled_from([NOW, NOW, NIGHT])), sizes


def in_parts(snap: Snapshot, now: datetime, sizes: list[int]) -> Decision:
    """What the reminder path does: each part of whole invoices reduced as it is read, then
    one decision on the steps kept."""
    if not passes_over(snap, now):
        return decide(snap, now)
    kept: list[DueStep] = []
    passed = PassedOver()
    order = list(dict.fromkeys(s.invoice_id for s in snap.due))
    start = 0
    for size in sizes:
        members = set(order[start : start + size])
        start += size
        part = [s for s in snap.due if s.invoice_id in members]
        steps, over = pass_over(part, snap.invoice, snap.debtor, now)
        kept.extend(steps)
        passed.extend(over)
    event(f"passed over early: {bool(passed)}, parts: {min(len(sizes), 2)}")
    assert start >= len(order)  # every invoice in a part
    return decide(replace(snap, due=tuple(kept)), now, passed)


@settings(max_examples=400, deadline=None)
@given(catch_ups())
def test_the_decision_taken_in_parts_is_the_decision_taken_at_once(drawn):
    """For any debtor, instant and cut of its invoices into parts, reducing each part first
    (the milder steps passed over for the most severe of their invoice) gives the same
    messages, tasks, skips, postponements, steps done and escalations, in the same order."""
    snap, now, sizes = drawn
    assert in_parts(snap, now, sizes).flattened() == decide(snap, now)


def test_given_a_catch_up_of_five_steps_then_one_step_per_invoice_is_kept_and_four_are_passed_over():
    # Given F-1 due 20 days ago with pre_due, due, notice, reminder_1 and reminder_2 due at once
    steps = [step(n, 1, name) for n, name in enumerate(NAMES[:5], start=1)]
    snap = snapshot([invoice(1, TODAY - timedelta(days=20))], steps)
    # When the part is reduced
    kept, passed = pass_over(steps, snap.invoice, snap.debtor, NOW)
    # Then reminder_2 alone is kept; the four milder steps are passed over for it
    assert [s.name for s in kept] == ["reminder_2"]
    assert [(d.step_id, d.lead_step_id) for d in passed] == [(1, 5), (2, 5), (3, 5), (4, 5)]
    # and the decision on what is kept claims F-1 once, the four others done for its step
    decision = decide(replace(snap, due=tuple(kept)), NOW, PassedOver(passed))
    assert decision.flattened() == decide(snap, NOW)
    assert list(decision.all_done()) == passed and decision.done == ()
    assert {(c.step_id, c.invoice_id) for m in decision.messages for c in m.claims} == {(5, 1)}
    assert {d.lead_step_id for d in decision.all_done()} == {5}


def test_given_the_window_closed_or_contact_pressure_then_nothing_is_passed_over_early():
    recent = snapshot([], [], last_contact=TODAY - timedelta(days=1), min_days_between_messages=3)
    assert passes_over(snapshot([], []), NOW)
    assert not passes_over(snapshot([], []), NIGHT)
    assert not passes_over(recent, NOW)
    assert passes_over(replace(recent, last_contact=TODAY - timedelta(days=3)), NOW)


def test_steps_passed_over_are_kept_as_ids_and_read_back_as_the_same_done_values_in_order():
    given = [
        Done(7, "passed over for reminder_2, due the same day", 9),
        Done(3, "passed over for formal_notice, due the same day", 4),
        Done(8, "passed over for reminder_2, due the same day", 9),
        Done(5, "already recorded on every channel"),
    ]
    passed = PassedOver(given[:2])
    passed.extend(given[2:])
    assert list(passed) == given and len(passed) == 4
    assert passed[2] == given[2] and passed[-1] == given[-1] and passed[1:3] == tuple(given[1:3])
    # one string per distinct reason, whatever the number of steps
    assert passed[0].reason is passed[2].reason


def test_the_claims_of_a_message_kept_compact_read_as_the_claims_given():
    given = [Claim(10, 1, "reminder_1"), Claim(11, 2, "notice"), Claim(2**40, 3, "reminder_1")]
    claims = Claims(given)
    # the same claims, in order, by index, by slice and as a whole: equal to a tuple of them
    assert list(claims) == given and claims[1] == given[1] and claims[-1] == given[-1]
    assert claims[1:] == tuple(given[1:]) and isinstance(claims[1:], Claims)
    assert claims == tuple(given) and tuple(given) == claims and claims == Claims(given)
    assert claims != tuple(given[:2]) and claims != Claims([*given[:2], Claim(12, 3, "notice")])
    assert hash(claims) == hash(Claims(given)) and not Claims() and len(claims) == 3
