"""The decision on steps done by a person (channels call and task): a task, never a message."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from handlers.decide import NO_PHONE, decide
from handlers.policy import Step
from handlers.snapshot import DebtorSnapshot, DueStep
from tests.unit.test_decide import MINIMUM, NAMES, NOW, invoice, snapshot, step

WITH_PHONE = DebtorSnapshot("D-1", has_phone=True)


def call(step_id: int, invoice_id: int, kinds: tuple[str, ...] = ("business",)) -> DueStep:
    return DueStep(
        step_id=step_id,
        invoice_id=invoice_id,
        name="call",
        event="invoice.overdue",
        severity=NAMES.index("reminder_3") + 1,  # between reminder_3 and the formal notice
        channels=("call",),
        minimum_balance=MINIMUM,
        manual=True,
        debtor_kinds=kinds,
    )


def chore(step_id: int, invoice_id: int) -> DueStep:
    return DueStep(
        step_id=step_id,
        invoice_id=invoice_id,
        name="check_file",
        event="invoice.overdue",
        severity=NAMES.index("reminder_3") + 1,
        channels=("task",),
        minimum_balance=MINIMUM,
        manual=True,
    )


def test_given_a_due_call_step_then_the_decision_makes_a_task_and_no_message():
    """Given a business debtor with a phone and its invoice's call step due, when deciding,
    then one call task claims the invoice, no message is built and nothing is skipped."""
    decision = decide(snapshot([invoice(1, date(2026, 1, 5))], [call(10, 1)], debtor=WITH_PHONE), NOW)
    assert decision.messages == ()
    (task,) = decision.tasks
    assert (task.kind, task.lead_step, task.claimed_invoice_ids) == ("call", "call", (1,))
    assert decision.task_step_ids == {10} and not decision.skipped and not decision.done


def test_given_three_invoices_calls_due_the_same_day_then_one_task_covers_them_in_due_date_order():
    """Given three invoices of one debtor (two currencies) whose call is due together, then
    one task covers all three, the oldest due first: the debtor is called once."""
    invoices = [
        invoice(1, date(2026, 1, 9)),
        invoice(2, date(2026, 1, 5), currency="USD"),
        invoice(3, date(2026, 1, 7)),
    ]
    decision = decide(snapshot(invoices, [call(10, 1), call(20, 2), call(30, 3)], debtor=WITH_PHONE), NOW)
    (task,) = decision.tasks
    assert task.claimed_invoice_ids == (2, 3, 1)


def test_given_a_call_and_a_reminder_of_another_invoice_then_each_goes_its_own_way():
    """Given invoice 1's call and invoice 2's reminder_3 due together, then the call is a task
    and the reminder a message on e-mail and letter; neither passes over the other."""
    invoices = [invoice(1, date(2026, 1, 5)), invoice(2, date(2026, 1, 10))]
    decision = decide(snapshot(invoices, [call(10, 1), step(20, 2, "reminder_3")], debtor=WITH_PHONE), NOW)
    assert [t.claimed_invoice_ids for t in decision.tasks] == [(1,)]
    assert {m.channel: m.claimed_invoice_ids for m in decision.messages} == {"email": (2,), "letter": (2,)}


def test_given_a_catch_up_with_a_call_and_the_formal_notice_of_one_invoice_then_both_happen():
    """Given one invoice caught up late with its call and formal notice due together, then
    the notice is sent and the call task is still made: a task never replaces a message."""
    decision = decide(
        snapshot(
            [invoice(1, date(2026, 1, 5))], [call(10, 1), step(20, 1, "formal_notice")], debtor=WITH_PHONE
        ),
        NOW,
    )
    assert [t.claimed_invoice_ids for t in decision.tasks] == [(1,)]
    assert {m.channel for m in decision.messages} == {"registered_letter", "email"}
    assert decision.escalate == (1,)


def test_given_no_phone_known_then_the_call_step_is_passed_with_its_reason_and_no_task():
    """Given a debtor without a phone number, then its call step is done with the reason
    "no phone number known", and neither a task nor a skip (nothing was done) is recorded."""
    decision = decide(snapshot([invoice(1, date(2026, 1, 5))], [call(10, 1)]), NOW)
    assert decision.tasks == () and decision.skipped == ()
    assert [(d.step_id, d.reason) for d in decision.done] == [(10, NO_PHONE)]


def test_given_a_public_debtor_then_a_call_for_businesses_only_is_passed():
    """Given a public debtor with a phone and a call step for business debtors, then the
    step is done with a reason naming the kinds it is for."""
    public = DebtorSnapshot("D-1", has_phone=True, kind="public")
    decision = decide(snapshot([invoice(1, date(2026, 1, 5))], [call(10, 1)], debtor=public), NOW)
    assert decision.tasks == ()
    assert [d.reason for d in decision.done] == ["call is for business debtors only"]


def test_given_a_task_step_then_it_needs_no_phone_and_makes_a_task_of_kind_task():
    """Given a `task` step (a manual action, not a call) for a debtor with no phone nor
    e-mail nor address, then a task of kind "task" is made: it needs no contact details."""
    nobody = DebtorSnapshot("D-1", has_email=False, has_address=False)
    decision = decide(snapshot([invoice(1, date(2026, 1, 5))], [chore(10, 1)], debtor=nobody), NOW)
    assert [(t.kind, t.lead_step) for t in decision.tasks] == [("task", "check_file")]
    assert decision.skipped == ()


def test_given_no_phone_and_a_disputed_invoice_then_the_call_is_passed_not_skipped():
    """Given a debtor without a phone whose invoice is disputed, then the call step is
    passed (no phone) rather than skipped: a step not for this debtor is never a skip."""
    decision = decide(snapshot([invoice(1, date(2026, 1, 5), disputed=True)], [call(10, 1)]), NOW)
    assert decision.skipped == () and [d.reason for d in decision.done] == [NO_PHONE]


def test_given_a_disputed_invoice_then_its_call_is_skipped_like_a_message():
    """Given the call step of a disputed invoice, then it is skipped with the hold's reason,
    as a reminder would be: a person is not sent to chase a disputed claim."""
    decision = decide(
        snapshot([invoice(1, date(2026, 1, 5), disputed=True)], [call(10, 1)], debtor=WITH_PHONE), NOW
    )
    assert decision.tasks == ()
    assert [s.step_id for s in decision.skipped] == [10]


def test_a_step_cannot_mix_a_call_with_a_message_channel():
    """Given a policy step asking for e-mail and a call, then the policy is refused with a
    line telling to make two steps."""
    with pytest.raises(ValidationError, match="make two steps"):
        Step(name="mixed", offset_days=35, event="invoice.overdue", channels=("email", "call"))


_NAMES = [*NAMES, "call"]


@st.composite
def _debtor_day(draw):
    count = draw(st.integers(1, 5))
    invoices = [invoice(i, date(2026, 1, draw(st.integers(1, 28)))) for i in range(1, count + 1)]
    due = []
    for inv in invoices:
        for name in draw(st.lists(st.sampled_from(_NAMES), max_size=3, unique=True)):
            step_id = len(due) + 1
            due.append(call(step_id, inv.id) if name == "call" else step(step_id, inv.id, name))
    phone = draw(st.booleans())
    return snapshot(invoices, due, debtor=DebtorSnapshot("D-1", has_phone=phone)), phone


@settings(max_examples=150, deadline=None)
@given(_debtor_day())
def test_a_step_is_never_both_a_task_and_a_message_and_a_call_always_ends_somewhere(drawn):
    """For any debtor's due steps, no step is claimed by both a task and a message, and each
    call step is in a task (a phone is known) or done with NO_PHONE (none is)."""
    snap, phone = drawn
    decision = decide(snap, NOW)
    assert not decision.task_step_ids & decision.claimed_step_ids
    calls = {s.step_id for s in snap.due if s.manual}
    done_no_phone = {d.step_id for d in decision.done if d.reason == NO_PHONE}
    assert decision.task_step_ids == (calls if phone else set())
    assert done_no_phone == (set() if phone else calls)
    assert len(decision.tasks) <= 1  # one call per debtor and day, whatever the invoices


def test_debtor_kinds_is_refused_on_a_message_step():
    """Given an e-mail step naming debtor kinds, then the policy is refused: message steps
    are chosen per kind by the consumer policy and segments."""
    with pytest.raises(ValidationError, match="debtor_kinds goes with a call or task step only"):
        Step(
            name="notice",
            offset_days=3,
            event="invoice.overdue",
            channels=("email",),
            debtor_kinds=("business",),
        )
