"""``payment.reversed`` and ``credit_note.cancelled`` on the memory unit of work: the money
is owed again, a settled invoice reopens and its dunning resumes where it stopped."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from adapters.memory_store import MemoryUnitsOfWork
from tests.support import invoice_issued, payment
from tests.unit.test_events_on_memory import NOW, ctx, data, feed, invoice, steps

__all__ = ["ctx", "data"]  # the fixtures, shared with test_events_on_memory

LADDER = {"pre_due", "due", "notice", "reminder_1", "reminder_2", "reminder_3", "formal_notice"}
LATER = datetime(2026, 4, 20, 8, 0, tzinfo=UTC)


def paid(amount: str = "1200.00", payment_id: str = "SEPA-1", event_id: str = "pay-1") -> dict:
    return payment("F-1", amount, "2026-03-20", event_id) | {"payment_id": payment_id}


def reversed_(payment_id: str = "SEPA-1", event_id: str = "rev-1") -> dict:
    return {
        "event_id": event_id,
        "type": "payment.reversed",
        "occurred_at": "2026-04-20T10:00:00+02:00",
        "invoice_number": "F-1",
        "payment_id": payment_id,
        "reversed_on": "2026-04-18",
        "reason": "Prélèvement SEPA rejeté : provision insuffisante",
    }


def credit_note(event_id: str = "cn-1") -> dict:
    return {
        "event_id": event_id,
        "type": "credit_note.issued",
        "occurred_at": "2026-03-20T10:00:00+01:00",
        "invoice_number": "F-1",
        "credit_note_number": "AV-7",
        "amount": "1200.00",
    }


def credit_note_cancelled(number: str = "AV-7") -> dict:
    return {
        "event_id": f"cnc-{number}",
        "type": "credit_note.cancelled",
        "occurred_at": "2026-04-20T10:00:00+02:00",
        "invoice_number": "F-1",
        "credit_note_number": number,
    }


def movements(data, number: str) -> list:
    with MemoryUnitsOfWork(data)() as uow:
        found = invoice(data, number)
        return uow.store.movements([found.id])[found.id]


def planned_ladder(data, number: str) -> set[str]:
    return steps(data, number, "planned") & LADDER


def test_a_reversed_payment_reopens_the_settled_invoice_and_leaves_the_amounts(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), paid())
    assert invoice(data, "F-1").status == "settled" and planned_ladder(data, "F-1") == set()
    assert feed(data, ctx, LATER, reversed_()) == ["accepted"]
    reopened = invoice(data, "F-1")
    assert (reopened.status, reopened.paid, reopened.balance) == ("open", Decimal("0.00"), Decimal("1200.00"))
    (row,) = data.payments.values()  # kept, marked reversed, out of the movements
    assert (row.payment_id, row.reversed_on) == ("SEPA-1", date(2026, 4, 18))
    assert movements(data, "F-1") == []
    # nothing was sent before the payment: the ladder resumes from the reversal day, 20 April
    resumed = [s for s in data.steps.values() if s.status == "planned" and s.step in LADDER]
    assert resumed and min(s.due_at for s in resumed).date() == date(2026, 4, 20)


def test_steps_already_taken_are_not_planned_again_after_a_reversal(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    for step in data.steps.values():  # pre_due and due sent before the payment
        if step.step in ("pre_due", "due"):
            step.status, step.done_at = "done", step.due_at
    feed(data, ctx, NOW, paid())
    feed(data, ctx, LATER, reversed_())
    assert planned_ladder(data, "F-1") == LADDER - {"pre_due", "due"}


def test_a_partial_payment_reversed_restores_the_balance_and_the_ladder_goes_on(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), paid("200.00"))
    before = planned_ladder(data, "F-1")
    feed(data, ctx, LATER, reversed_())
    found = invoice(data, "F-1")
    assert (found.status, found.balance) == ("open", Decimal("1200.00"))
    assert planned_ladder(data, "F-1") == before == LADDER


def test_a_payment_id_given_twice_for_an_invoice_is_rejected(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), paid("200.00"))
    assert feed(data, ctx, NOW, paid("300.00", event_id="pay-2")) == ["rejected"]
    assert [r.reason for r in data.rejected.values()] == [
        "payment_id: invoice F-1 already has payment 'SEPA-1' (event pay-1)"
    ]
    assert invoice(data, "F-1").paid == Decimal("200.00")


def test_a_reversal_of_an_unknown_or_already_reversed_payment_is_rejected(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), paid())
    assert feed(data, ctx, LATER, reversed_("SEPA-404")) == ["rejected"]
    feed(data, ctx, LATER, reversed_())
    assert feed(data, ctx, LATER, reversed_(event_id="rev-2")) == ["rejected"]
    assert [r.reason for r in data.rejected.values()] == [
        "payment_id: invoice F-1 has no payment 'SEPA-404'",
        "payment_id: payment 'SEPA-1' of invoice F-1 is already reversed",
    ]
    assert invoice(data, "F-1").balance == Decimal("1200.00")  # taken back once only


def test_a_reversal_before_its_invoice_waits_for_it(data, ctx):
    assert feed(data, ctx, NOW, reversed_()) == ["parked"]


def test_a_cancelled_credit_note_reopens_the_invoice(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), credit_note())
    assert invoice(data, "F-1").status == "settled"
    assert feed(data, ctx, LATER, credit_note_cancelled()) == ["accepted"]
    found = invoice(data, "F-1")
    assert (found.status, found.credited, found.balance) == ("open", Decimal("0.00"), Decimal("1200.00"))
    assert movements(data, "F-1") == [] and planned_ladder(data, "F-1")
    assert feed(data, ctx, LATER, credit_note_cancelled("AV-9")) == ["rejected"]
    assert [r.reason for r in data.rejected.values()] == [
        "credit_note_number: invoice F-1 has no credit note 'AV-9'"
    ]
