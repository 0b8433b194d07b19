"""``invoice.status_changed``: the e-invoicing lifecycle statuses and their effects, on the
memory unit of work (the table: handlers/lifecycle.py; docs/import.md)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.memory_store import MemoryData
from config.bootstrap import make_context
from config.settings import Settings
from handlers import lifecycle
from handlers.statuses import business_days_after
from tests.support import invoice_issued, payment
from tests.unit.test_events_on_memory import NOW, ctx, data, expire, feed, invoice, steps

__all__ = ["ctx", "data"]  # the fixtures, shared with test_events_on_memory

LADDER = {"pre_due", "due", "notice", "reminder_1", "reminder_2", "reminder_3", "formal_notice"}
# F-1: 1200.00 EUR issued 2 March 2026, due 1 April; its ladder runs 27 March (D-5) to 11 May


def status(code: str, *, at: str = "2026-03-10T10:00:00+01:00", number: str = "F-1", **extra: str) -> dict:
    return {
        "event_id": f"status-{code}-{at}",
        "type": "invoice.status_changed",
        "occurred_at": at,
        "invoice_number": number,
        "status_code": code,
        "at": at,
    } | extra


def status_records(data) -> list[dict]:
    return [json.loads(r.payload) for r in data.evidence if r.kind == "invoice.status_changed"]


def test_every_code_of_the_table_is_accepted_and_recorded_as_evidence_with_its_label(data, ctx):
    """Given one open invoice per status code, when each receives its status, then every
    status is accepted and leaves one evidence record naming its code and label."""
    for entry in lifecycle.STATUSES:
        number = f"F-{entry.code}"
        extra = {"amount": "600.00"} if entry.code in lifecycle.AMOUNT_REQUIRED else {}
        assert feed(
            data, ctx, NOW, invoice_issued(number, "2026-04-01"), status(entry.code, number=number, **extra)
        ) == [
            "accepted",
            "accepted",
        ], entry.code
    recorded = {r["status_code"]: r["label"] for r in status_records(data)}
    assert recorded == {s.code: s.label for s in lifecycle.STATUSES}


def test_the_four_statuses_the_reform_makes_mandatory_are_in_the_table():
    assert {s.code for s in lifecycle.STATUSES if s.mandatory} == {"200", "210", "212", "213"}


def test_an_unknown_status_code_is_rejected_with_a_reason_naming_status_code(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    assert feed(data, ctx, NOW, status("215")) == ["rejected"]
    (reason,) = [r.reason for r in data.rejected.values()]
    assert reason.startswith("status_code: unknown status code '215'")


@pytest.mark.parametrize("code", ["213", "501"])
def test_a_rejected_invoice_is_deemed_never_issued_and_nothing_of_it_is_left(data, ctx, code):
    """Given an open invoice, when the platform rejects it, then it is never_issued and no
    step is planned any more, not even the prescription warning: there is no claim."""
    assert feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), status(code)) == ["accepted"] * 2
    assert invoice(data, "F-1").status == "never_issued"
    assert steps(data, "F-1", "planned") == set()
    assert steps(data, "F-1", "cancelled") >= LADDER | {"prescription_warning"}
    (record,) = status_records(data)
    assert record["outcome"] == "deemed never issued: dunning stopped"


def test_a_rejection_after_the_formal_notice_is_a_warning_and_an_evidence_record(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    notice = next(s for s in data.steps.values() if s.step == "formal_notice")
    notice.status = "done"  # as if sent on 11 May
    assert feed(data, ctx, NOW, status("213", at="2026-05-20T10:00:00+02:00")) == ["accepted"]
    kinds = [r.kind for r in data.evidence]
    assert "invoice.cancelled_after_formal_notice" in kinds


def test_a_refused_invoice_is_closed_as_refused_and_never_chased(data, ctx):
    assert (
        feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), status("210", reason_code="DOUBLON"))
        == ["accepted"] * 2
    )
    assert invoice(data, "F-1").status == "refused"
    assert not steps(data, "F-1", "planned") & LADDER
    (record,) = status_records(data)
    assert (record["reason_code"], record["label"]) == ("DOUBLON", "Refusée")


def test_a_status_in_dispute_disputes_the_invoice_like_invoice_disputed(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), status("207"))
    found = invoice(data, "F-1")
    assert (found.disputed, found.ever_disputed) == (True, True)
    assert not steps(data, "F-1", "planned") & LADDER


def test_a_suspended_invoice_is_held_until_completed_then_resumes_on_that_day(data, ctx):
    """Given a 208 on 10 March, the ladder waits; when 209 comes on 20 April, it resumes
    that day (nothing was sent: its first step moves to 20 April)."""
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), status("208"))
    assert invoice(data, "F-1").hold_reason == lifecycle.SUSPENDED_HOLD
    assert not steps(data, "F-1", "planned") & LADDER
    later = datetime(2026, 4, 20, 8, 0, tzinfo=UTC)
    assert feed(data, ctx, later, status("209", at="2026-04-20T10:00:00+02:00")) == ["accepted"]
    assert invoice(data, "F-1").hold_reason is None
    assert "pre_due" in steps(data, "F-1", "planned")


def test_a_completion_without_suspension_leaves_a_persons_hold_alone(data, ctx):
    held = {
        "event_id": "held-1",
        "type": "invoice.held",
        "occurred_at": "2026-03-10T10:00:00+01:00",
        "invoice_number": "F-1",
        "reason": "Négociation",
    }
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), held, status("208"), status("209"))
    assert invoice(data, "F-1").hold_reason == "Négociation"
    outcomes = [r["outcome"] for r in status_records(data)]
    assert outcomes == ["already held (Négociation): that hold stands", "not suspended: evidence only"]


def test_payment_transmitted_holds_five_business_days_then_resumes_if_no_funds(data, ctx):
    """211 on Thursday 2 April 2026: five business days later is Friday 10 April (Easter
    Monday, 6 April, is a holiday in France): 3, 7, 8, 9, 10 April."""
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), status("211", at="2026-04-02T10:00:00+02:00"))
    found = invoice(data, "F-1")
    assert (found.hold_reason, found.held_until) == (lifecycle.PAYMENT_SENT_HOLD, date(2026, 4, 10))
    expire(data, ctx, "hold_expired", datetime(2026, 4, 10, 22, 0, tzinfo=UTC))
    assert invoice(data, "F-1").hold_reason is None
    assert steps(data, "F-1", "planned") & LADDER  # no funds came: dunning resumes


def test_payment_transmitted_then_cashed_settles_and_nothing_resumes(data, ctx):
    feed(
        data,
        ctx,
        NOW,
        invoice_issued("F-1", "2026-04-01"),
        status("211", at="2026-04-02T10:00:00+02:00"),
        status("212", at="2026-04-03T10:00:00+02:00"),
    )
    found = invoice(data, "F-1")
    assert (found.status, found.paid) == ("settled", Decimal("1200.00"))  # no amount: the balance


def test_cashed_with_an_amount_is_a_payment_of_that_amount_counted_once(data, ctx):
    """The same 212 sent again under another event id is not counted twice."""
    cashed = status("212", amount="500.00")
    again = cashed | {"event_id": "status-212-again"}
    assert feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), cashed, again) == ["accepted"] * 3
    found = invoice(data, "F-1")
    assert (found.paid, found.balance) == (Decimal("500.00"), Decimal("700.00"))
    (recorded,) = data.payments.values()
    assert recorded.payment_id.startswith("status-212-")


def test_cashed_after_a_rejection_records_no_payment_only_evidence(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), status("213"), status("212", amount="100.00"))
    assert not data.payments
    assert status_records(data)[-1]["outcome"] == "invoice is never_issued: evidence only"


def test_partly_approved_chases_only_the_approved_amount(data, ctx):
    """1200.00 invoiced, 900.00 approved: the balance chased is 900.00; a payment of 900.00
    settles it."""
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), status("206", amount="900.00"))
    assert (invoice(data, "F-1").amount_due, invoice(data, "F-1").balance) == (Decimal("900.00"),) * 2
    feed(data, ctx, NOW, payment("F-1", "900.00", "2026-04-15"))
    assert invoice(data, "F-1").status == "settled"


def test_partly_approved_above_the_invoice_is_rejected_naming_amount(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    assert feed(data, ctx, NOW, status("206", amount="1300.00")) == ["rejected"]
    assert [r.reason for r in data.rejected.values()] == [
        "amount: 1300.00 approved is more than invoice F-1's 1200.00"
    ]


def test_partly_approved_without_an_amount_is_rejected_naming_amount(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    assert feed(data, ctx, NOW, status("206")) == ["rejected"]
    assert [r.reason for r in data.rejected.values()] == [
        "amount: required for status 206 (the amount approved)"
    ]


@pytest.mark.parametrize("code", ["225", "226"])
def test_a_factored_invoice_stops_dunning_the_factor_collects(data, ctx, code):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), status(code))
    assert invoice(data, "F-1").factored_by == f"factor (status {code})"
    assert not steps(data, "F-1", "planned") & LADDER
    assert "invoice.factored" in [r.kind for r in data.evidence]


@pytest.mark.parametrize("code", ["203", "205", "220", "228"])
def test_a_status_without_effect_is_evidence_only(data, ctx, code):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    planned = steps(data, "F-1", "planned")
    feed(data, ctx, NOW, status(code))
    assert steps(data, "F-1", "planned") == planned and invoice(data, "F-1").status == "open"
    assert status_records(data)[-1]["outcome"] == "evidence only"


def test_a_status_before_its_invoice_waits_parked_and_applies_when_it_arrives(data, ctx):
    assert feed(data, ctx, NOW, status("210")) == ["parked"]
    assert feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01")) == ["accepted"]
    assert invoice(data, "F-1").status == "refused"


def test_business_days_skip_weekends_and_holidays():
    # Friday 1 May 2026 (holiday) → Monday 4, Tuesday 5, Wednesday 6, Thursday 7, Monday 11
    # (Friday 8 May is a holiday too)
    assert business_days_after(date(2026, 4, 30), 5, "FR") == date(2026, 5, 11)


@pytest.fixture(scope="module")
def shared_ctx(tmp_path_factory):
    return make_context(Settings(data_dir=tmp_path_factory.mktemp("statuses")))


FINAL = {"213": "never_issued", "501": "never_issued", "210": "refused"}


def _status_after(codes: list[str]) -> str:
    """The invoice's status after ``codes``: statuses act on an open invoice only, so the
    first 213, 501 or 210 is final, and so is a 212 without an amount (the whole balance
    cashed: settled) that comes before them."""
    status = "open"
    for code in codes:
        if status != "open":
            break
        if code == "212":
            status = "settled"
        elif code in FINAL:
            status = FINAL[code]
    return status


@settings(max_examples=40, deadline=None)
@example(codes=["212", "501"])  # cashed, then deemed never issued: the payment stands
@given(codes=st.lists(st.sampled_from([s.code for s in lifecycle.STATUSES]), min_size=1, max_size=6))
def test_any_sequence_of_statuses_is_all_evidence_and_a_final_one_stays_final(shared_ctx, codes):
    """Whatever statuses come, in any order: each leaves one evidence record; after a 213,
    501 or 210 on an open invoice it keeps that status and nothing of its dunning is planned;
    a 212 for the whole balance settles it for good; the money recorded never exceeds what
    the 212s cashed."""
    data = MemoryData()
    feed(data, shared_ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    events = [
        status(
            code, at=f"2026-03-{10 + n:02d}T10:00:00+01:00", **({"amount": "600.00"} if code == "206" else {})
        )
        for n, code in enumerate(codes)
    ]
    assert feed(data, shared_ctx, NOW, *events) == ["accepted"] * len(codes)
    assert [r["status_code"] for r in status_records(data)] == codes
    found = invoice(data, "F-1")
    expected = _status_after(codes)
    if expected in FINAL.values():
        assert found.status == expected
        assert not steps(data, "F-1", "planned") & LADDER
    if expected == "settled":
        assert found.status == "settled"
    assert found.paid <= Decimal("1200.00") * codes.count("212")
