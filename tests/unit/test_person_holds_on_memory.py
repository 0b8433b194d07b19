"""A person's hold on an invoice or a debtor (``invoice.held``, ``debtor.held``) on the memory
unit of work: the steps it cancels, the end it plans, and how dunning resumes after it."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support import invoice_issued
from tests.unit.test_events_on_memory import NOW, ctx, data, expire, feed, invoice, steps

__all__ = ["ctx", "data"]  # the fixtures, shared with test_events_on_memory

LADDER = {"pre_due", "due", "notice", "reminder_1", "reminder_2", "reminder_3", "formal_notice"}
# 1 April is due day: the ladder runs from 27 March (D-5) to 11 May (D+40)


def held(until: str | None = None, *, number: str = "F-1", event_id: str = "held-1") -> dict:
    event = {
        "event_id": event_id,
        "type": "invoice.held",
        "occurred_at": "2026-03-10T10:00:00+01:00",
        "invoice_number": number,
        "reason": "Négociation commerciale en cours",
    }
    return event | ({"until": until} if until else {})


def released(number: str = "F-1", event_id: str = "released-1") -> dict:
    return {
        "event_id": event_id,
        "type": "invoice.released",
        "occurred_at": "2026-04-20T10:00:00+02:00",
        "invoice_number": number,
    }


def debtor_event(kind: str, event_id: str, **fields: str) -> dict:
    return {
        "event_id": event_id,
        "type": f"debtor.{kind}",
        "occurred_at": "2026-03-10T10:00:00+01:00",
        "debtor_id": "D-1",
    } | fields


def ladder_days(data, number: str) -> list[str]:
    found = invoice(data, number)
    return sorted(
        s.due_at.date().isoformat()
        for s in data.steps.values()
        if s.invoice_id == found.id and s.status == "planned" and s.step in LADDER
    )


def test_a_held_invoice_has_no_step_left_but_its_end_and_no_legal_effect(data, ctx):
    assert feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), held("2026-04-15")) == ["accepted"] * 2
    assert steps(data, "F-1", "planned") == {"hold_expired", "prescription_warning"}
    assert steps(data, "F-1", "cancelled") >= LADDER
    found = invoice(data, "F-1")
    assert found.hold_reason == "Négociation commerciale en cours"
    assert found.held_until.isoformat() == "2026-04-15"
    assert not found.disputed and not found.ever_disputed  # a hold is no dispute
    (end,) = [s for s in data.steps.values() if s.step == "hold_expired"]
    assert end.due_at == datetime(2026, 4, 15, 22, 0, tzinfo=UTC)  # end of 15 April in Paris (UTC+2)


def test_at_the_end_of_its_last_day_the_hold_ends_and_the_ladder_resumes_without_a_burst(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), held("2026-04-15"))
    ended_at = datetime(2026, 4, 15, 22, 0, tzinfo=UTC)
    expire(data, ctx, "hold_expired", ended_at)
    found = invoice(data, "F-1")
    assert (found.hold_reason, found.held_until) == (None, None)
    # nothing was sent: the ladder resumes at its first step on 16 April, the others keep
    # their spacing from it (pre_due D-5 moved to 16 April: everything shifted by 20 days)
    days = ladder_days(data, "F-1")
    assert days[0] == "2026-04-16" and len(days) == len(LADDER)
    assert len(set(days[:3])) == 3  # pre_due, due, notice on three different days, not at once
    assert data.evidence[-1].kind == "deadline.expired"


def test_a_released_invoice_resumes_on_the_day_of_its_release_and_its_end_is_dropped(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), held("2026-05-31"))
    assert feed(data, ctx, datetime(2026, 4, 20, 8, 0, tzinfo=UTC), released()) == ["accepted"]
    assert "hold_expired" in steps(data, "F-1", "cancelled")
    assert ladder_days(data, "F-1")[0] == "2026-04-20"
    assert invoice(data, "F-1").hold_reason is None


def test_releasing_an_invoice_that_is_not_held_is_rejected_with_its_reason(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    assert feed(data, ctx, NOW, released()) == ["rejected"]
    assert [r.reason for r in data.rejected.values()] == ["invoice_number: invoice F-1 is not held"]


def test_a_hold_on_an_unknown_invoice_waits_for_it(data, ctx):
    assert feed(data, ctx, NOW, held(number="F-9")) == ["parked"]
    assert feed(data, ctx, NOW, invoice_issued("F-9", "2026-04-01")) == ["accepted"]
    assert invoice(data, "F-9").hold_reason == "Négociation commerciale en cours"
    assert not steps(data, "F-9", "planned") & LADDER


def test_a_dispute_during_a_hold_keeps_the_hold_end_and_the_ladder_waits_for_both(data, ctx):
    dispute = {
        "event_id": "dispute-1",
        "type": "invoice.disputed",
        "occurred_at": "2026-03-12T10:00:00+01:00",
        "invoice_number": "F-1",
        "reason": "Quantités contestées",
    }
    rejected = {
        "event_id": "resolved-1",
        "type": "dispute.resolved",
        "occurred_at": "2026-05-04T10:00:00+02:00",
        "invoice_number": "F-1",
        "outcome": "rejected",
    }
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), held("2026-04-15"), dispute)
    assert "hold_expired" in steps(data, "F-1", "planned")
    expire(data, ctx, "hold_expired", datetime(2026, 4, 16, 7, 0, tzinfo=UTC))
    assert invoice(data, "F-1").hold_reason is None and ladder_days(data, "F-1") == []  # still disputed
    feed(data, ctx, datetime(2026, 5, 4, 8, 0, tzinfo=UTC), rejected)
    assert ladder_days(data, "F-1")[0] == "2026-05-04"


def test_a_held_debtor_pauses_its_invoices_and_those_issued_while_held(data, ctx):
    hold = debtor_event("held", "dheld-1", reason="Appel du directeur commercial")
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), hold, invoice_issued("F-2", "2026-04-10"))
    assert ladder_days(data, "F-1") == [] and ladder_days(data, "F-2") == []
    later = datetime(2026, 4, 20, 8, 0, tzinfo=UTC)
    assert feed(data, ctx, later, debtor_event("released", "dreleased-1")) == ["accepted"]
    assert ladder_days(data, "F-1")[0] == "2026-04-20" and ladder_days(data, "F-2")[0] == "2026-04-20"
    assert data.debtors["D-1"].hold_reason is None


def test_a_debtor_hold_with_a_last_day_ends_once_for_all_its_invoices(data, ctx):
    hold = debtor_event("held", "dheld-1", reason="Appel du directeur commercial", until="2026-04-15")
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), invoice_issued("F-2", "2026-04-10"), hold)
    assert "debtor_hold_expired" in steps(data, "F-1", "planned") & steps(data, "F-2", "planned")
    expire(data, ctx, "debtor_hold_expired", datetime(2026, 4, 16, 7, 0, tzinfo=UTC))
    assert data.debtors["D-1"].held_until is None
    assert ladder_days(data, "F-1")[0] == "2026-04-16" and ladder_days(data, "F-2")[0] == "2026-04-16"
    # both ends were due together: the first released the debtor, the second found it released
    assert {s.status for s in data.steps.values() if s.step == "debtor_hold_expired"} <= {"done", "cancelled"}


def test_releasing_a_debtor_that_is_not_held_is_rejected(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    assert feed(data, ctx, NOW, debtor_event("released", "dreleased-1")) == ["rejected"]
    assert [r.reason for r in data.rejected.values()] == ["debtor_id: debtor D-1 is not held"]


def test_a_second_hold_after_one_ended_plans_its_own_end(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), held("2026-04-15"))
    expire(data, ctx, "hold_expired", datetime(2026, 4, 16, 7, 0, tzinfo=UTC))
    again = held("2026-05-10", event_id="held-2") | {"occurred_at": "2026-04-20T10:00:00+02:00"}
    feed(data, ctx, datetime(2026, 4, 20, 8, 0, tzinfo=UTC), again)
    (end,) = [s for s in data.steps.values() if s.step == "hold_expired"]
    assert (end.status, end.due_at) == ("planned", datetime(2026, 5, 10, 22, 0, tzinfo=UTC))
    assert ladder_days(data, "F-1") == []
