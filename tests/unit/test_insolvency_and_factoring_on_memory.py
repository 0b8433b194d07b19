"""Insolvency by the claim's origin, the procedure's later stages, and factored invoices,
end to end on the memory unit of work (events and deadlines; no database).

The default rate of 2026-H1 is ECB 2.15 % + 10 points = 12.15 %, actual/365.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from adapters.memory_store import MemoryData, MemoryUnitsOfWork
from config.bootstrap import make_context
from config.errors import ConfigError
from config.policy import load_policy
from config.settings import Settings
from handlers.context import Context
from handlers.service import run_step
from tests.support import invoice_issued
from tests.unit.test_events_on_memory import Published, expire, feed, invoice, steps

BUILT_IN = load_policy()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
APRIL_16 = datetime(2026, 4, 16, 8, 0, tzinfo=UTC)
LIQUIDATOR = {"name": "Me Paul Marchand", "address": ["8 rue Grenette", "69002 Lyon"]}
MANDATAIRE = {"name": "Me Claire Dubois", "address": ["3 quai Jules Courmont", "69002 Lyon"]}


@pytest.fixture
def ctx(tmp_path) -> Context:
    return make_context(Settings(data_dir=tmp_path))


@pytest.fixture
def data() -> MemoryData:
    return MemoryData()


def opened(judgment: str = "2026-04-10", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"opened-{judgment}",
        "type": "debtor.insolvency_opened",
        "occurred_at": "2026-04-16T10:00:00+02:00",
        "debtor_id": "D-1",
        "procedure": "redressement",
        "judgment_date": judgment,
        **extra,
    }


def stage(kind: str, event_id: str, **body: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": f"debtor.insolvency_{kind}",
        "occurred_at": "2026-06-16T10:00:00+02:00",
        "debtor_id": "D-1",
        **body,
    }


def delivered(number: str, due: str, on: str, issued: str, amount: str = "1200.00") -> dict[str, Any]:
    event = invoice_issued(number, due, amount, issued=issued)
    event["invoice"]["delivered_on"] = on
    return event


def expire_step_of(data: MemoryData, ctx: Context, number: str, name: str, now: datetime) -> None:
    """Run the ``deadline.expired`` of that invoice's step, as the worker would."""
    step = next(s for s in data.steps.values() if s.step == name and s.invoice_id == invoice(data, number).id)
    run_step(MemoryUnitsOfWork(data), Published(), f"msg-{step.id}", "deadline.expired", step.id, now, ctx)


def records(data: MemoryData, kind: str) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in data.evidence if r.kind == kind]


def declaration(data: MemoryData) -> Any:
    (case,) = [c for c in data.cases.values() if c.kind == "claim_declaration"]
    return case


# --- the claim's origin ------------------------------------------------------------------------


def test_goods_delivered_before_the_judgment_and_invoiced_after_it_are_frozen_and_declared(data, ctx):
    # F-1: 1200.00 due 1 April, delivered 25 February; judgment 10 April. F-3: goods delivered
    # 8 April, invoiced 20 April, due 20 May: born before the judgment too (L622-24)
    feed(data, ctx, NOW, delivered("F-1", "2026-04-01", "2026-02-25", "2026-03-02"))
    feed(data, ctx, APRIL_16, opened())
    expire(data, ctx, "claim_declaration", APRIL_16)
    later = datetime(2026, 4, 20, 8, 0, tzinfo=UTC)
    feed(data, ctx, later, delivered("F-3", "2026-05-20", "2026-04-08", "2026-04-20"))
    # its ladder never starts: only the prescription warning and the declaration are planned
    assert steps(data, "F-3", "planned") == {"prescription_warning", "claim_declaration"}
    assert "formal_notice" in steps(data, "F-3", "cancelled")
    expire_step_of(data, ctx, "F-3", "claim_declaration", later)
    case = declaration(data)  # F-3 joins the declaration already open, not a second case
    assert {link.invoice_id for link in data.case_invoices.values()} == {
        invoice(data, "F-1").id,
        invoice(data, "F-3").id,
    }
    # F-1: 2 to 9 April, 8 days: 1200 * 0.1215 * 8 / 365 = 3.1956... -> 3.20, and 40 €;
    # F-3 was never late before the judgment: no interest, no indemnity
    assert (case.principal, case.late_interest, case.indemnities) == (
        Decimal("2400.00"),
        Decimal("3.20"),
        Decimal("40.00"),
    )
    assert case.amount_claimed == Decimal("2443.20")
    assert records(data, "case.updated")[-1]["invoice_numbers"] == ["F-3"]
    assert records(data, "insolvency.origin_presumed") == []  # both gave their delivery date


def test_a_claim_delivered_after_the_judgment_is_chased_and_never_declared(data, ctx):
    # invoiced 3 April (before the judgment of 10 April) but delivered 14 April: born after
    # it (L622-17): its ladder stays, and no declaration case is opened
    feed(data, ctx, NOW, delivered("F-2", "2026-05-15", "2026-04-14", "2026-04-03"))
    feed(data, ctx, APRIL_16, opened())
    assert "formal_notice" in steps(data, "F-2", "planned")
    assert "claim_declaration" not in steps(data, "F-2", "planned")
    assert not data.cases


def test_without_a_delivery_date_the_origin_is_presumed_from_the_issue_date_with_a_warning(data, ctx):
    # F-1 issued 2 March (before the judgment of 10 April): presumed born before it, frozen;
    # F-2 issued 15 April: presumed born after it, chased. One warning per invoice.
    feed(
        data,
        ctx,
        NOW,
        invoice_issued("F-1", "2026-04-01"),
        invoice_issued("F-2", "2026-05-15", issued="2026-04-15"),
    )
    feed(data, ctx, APRIL_16, opened())
    warnings = {r["invoice_numbers"][0]: r for r in records(data, "insolvency.origin_presumed")}
    assert set(warnings) == {"F-1", "F-2"}
    assert warnings["F-1"]["frozen"] is True and warnings["F-2"]["frozen"] is False
    assert warnings["F-1"]["issue_date"] == "2026-03-02"
    assert "origin presumed from its issue date 2026-03-02" in warnings["F-1"]["reason"]
    expire(data, ctx, "claim_declaration", APRIL_16)
    assert declaration(data).notes == [
        "BODACC publication date unknown: the deadline is 2 months after it (L622-24, R622-24); "
        "record it when published",
        "invoice F-1: origin presumed from its issue date 2026-03-02 (no delivery date given); "
        "check when the delivery or service was completed",
    ]
    # an update of F-1 does not warn again
    feed(data, ctx, APRIL_16, {**invoice_issued("F-1", "2026-04-01", "1100.00"), "event_id": "again"})
    assert len(records(data, "insolvency.origin_presumed")) == 2


# --- the later stages --------------------------------------------------------------------------


def test_after_a_conversion_the_declaration_is_addressed_to_the_liquidator(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    feed(data, ctx, APRIL_16, opened(administrator=MANDATAIRE))
    expire(data, ctx, "claim_declaration", APRIL_16)
    case = declaration(data)
    assert case.reasons[1] == (
        "individual collection stops (L622-21); the claim must be declared to the mandataire "
        "judiciaire Me Claire Dubois, 3 quai Jules Courmont, 69002 Lyon (L622-24)"
    )
    june = datetime(2026, 6, 16, 8, 0, tzinfo=UTC)
    converted = stage(
        "converted", "conv-1", procedure="liquidation", judgment_date="2026-06-15", liquidator=LIQUIDATOR
    )
    assert feed(data, ctx, june, converted) == ["accepted"]
    debtor = data.debtors["D-1"]
    assert (debtor.insolvency_procedure, debtor.insolvency_stage) == ("liquidation", "liquidation")
    assert debtor.insolvency_administrator == LIQUIDATOR
    assert debtor.insolvency_judgment_date == date(2026, 4, 10)  # the origin still counts from the opening
    assert case.reasons == [
        "liquidation (liquidation stage); proceedings opened by judgment of 2026-04-10",
        "individual collection stops (L622-21); the claim must be declared to the liquidator "
        "Me Paul Marchand, 8 rue Grenette, 69002 Lyon (L641-3)",
    ]
    assert case.notes[-1] == (
        "converted to liquidation by judgment of 2026-06-15: the claim is declared to the "
        "liquidator Me Paul Marchand, 8 rue Grenette, 69002 Lyon"
    )
    (record,) = records(data, "insolvency.converted")
    assert record["case_ids"] == [case.id] and record["receiver"] == LIQUIDATOR
    # F-1 stays frozen: nothing of its ladder is planned again
    assert steps(data, "F-1", "planned") == {"prescription_warning"}


def test_a_plan_keeps_the_claims_frozen_and_a_closure_for_insufficient_assets_never_resumes_them(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    feed(data, ctx, APRIL_16, opened())
    expire(data, ctx, "claim_declaration", APRIL_16)
    september = datetime(2026, 9, 2, 8, 0, tzinfo=UTC)
    assert feed(data, ctx, september, stage("plan_adopted", "plan-1", judgment_date="2026-09-01")) == [
        "accepted"
    ]
    assert data.debtors["D-1"].insolvency_stage == "plan"
    assert (
        declaration(data).notes[-1].startswith("plan adopted by judgment of 2026-09-01: the declared claims")
    )
    closing = datetime(2027, 3, 2, 8, 0, tzinfo=UTC)
    closed = stage("closed", "close-1", closed_on="2027-03-01", outcome="insufficient_assets")
    assert feed(data, ctx, closing, closed) == ["accepted"]
    debtor = data.debtors["D-1"]
    assert (debtor.insolvency_stage, debtor.insolvency_closed_on) == ("closed", date(2027, 3, 1))
    note = declaration(data).notes[-1]
    assert note.startswith("proceedings closed for insufficient assets: creditors do not recover")
    assert "(L643-11)" in note and note.endswith("(closed on 2027-03-01)")
    assert [r["outcome"] for r in records(data, "insolvency.closed")] == ["insufficient_assets"]
    assert steps(data, "F-1", "planned") == {"prescription_warning"}  # never chased again
    # a dispute rejected afterwards does not resume it either (L622-21, L643-11)
    dispute = {"event_id": "d-1", "type": "invoice.disputed", "occurred_at": "2027-03-03T10:00:00+01:00"}
    resolved = {**dispute, "event_id": "d-2", "type": "dispute.resolved", "outcome": "rejected"}
    feed(
        data,
        ctx,
        closing,
        {**dispute, "invoice_number": "F-1", "reason": "x"},
        {**resolved, "invoice_number": "F-1"},
    )
    assert steps(data, "F-1", "planned") == {"prescription_warning"}
    # and a later stage of a closed procedure is refused, with the reason
    late = stage(
        "converted", "conv-2", procedure="liquidation", judgment_date="2027-03-05", liquidator=LIQUIDATOR
    )
    assert feed(data, ctx, closing, late) == ["rejected"]
    assert [r.reason for r in data.rejected.values()] == [
        "debtor D-1: insolvency proceedings closed on 2027-03-01"
    ]


def test_a_later_stage_received_before_the_opening_waits_for_it(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    plan = stage("plan_adopted", "plan-1", judgment_date="2026-09-01")
    assert feed(data, ctx, NOW, plan) == ["parked"]
    assert data.debtors["D-1"].insolvency_stage is None
    feed(data, ctx, APRIL_16, opened())
    assert data.debtors["D-1"].insolvency_stage == "plan"  # released by the opening and applied


def test_a_plan_is_refused_in_a_liquidation_and_a_conversion_dated_before_the_opening(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    feed(data, ctx, APRIL_16, opened())
    early = stage(
        "converted", "conv-0", procedure="liquidation", judgment_date="2026-04-01", liquidator=LIQUIDATOR
    )
    assert feed(data, ctx, APRIL_16, early) == ["rejected"]
    feed(
        data,
        ctx,
        APRIL_16,
        stage(
            "converted", "conv-1", procedure="liquidation", judgment_date="2026-06-15", liquidator=LIQUIDATOR
        ),
    )
    assert feed(data, ctx, APRIL_16, stage("plan_adopted", "plan-1", judgment_date="2026-09-01")) == [
        "rejected"
    ]
    assert [r.reason for r in data.rejected.values()] == [
        "judgment_date: before the opening judgment of 2026-04-10",
        "debtor_id: D-1 is in liquidation: no plan (L626-10) is adopted",
    ]


# --- the declaration deadline of a creditor outside metropolitan France ------------------------


def test_a_creditor_outside_metropolitan_france_has_four_months_after_the_bodacc(data, tmp_path):
    text = (BUILT_IN_POLICY := _policy_text()).replace(
        "[escalation]\n", "[escalation]\ncreditor_outside_metropolitan_france = true\n", 1
    )
    assert text != BUILT_IN_POLICY
    path = tmp_path / "overseas.toml"
    path.write_text(text, encoding="utf-8")
    ctx = make_context(Settings(data_dir=tmp_path, policy_file=path))
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    feed(data, ctx, APRIL_16, opened(bodacc_published_on="2026-04-15"))
    expire(data, ctx, "claim_declaration", APRIL_16)
    # BODACC 15 April 2026 + 4 months = 15 August 2026 (R622-24), not 15 June
    assert declaration(data).deadline == date(2026, 8, 15)


def test_the_overseas_setting_is_a_boolean_and_metropolitan_creditors_keep_two_months(tmp_path):
    assert BUILT_IN.escalation.claim_declaration_months == 2
    path = tmp_path / "bad.toml"
    path.write_text(
        _policy_text().replace(
            "[escalation]\n", '[escalation]\ncreditor_outside_metropolitan_france = "yes"\n', 1
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert "escalation.creditor_outside_metropolitan_france: Input should be a valid boolean" in str(
        caught.value
    )


def _policy_text() -> str:
    from pathlib import Path

    return (Path(__file__).resolve().parents[2] / "config" / "policy.toml").read_text(encoding="utf-8")


# --- factored invoices -------------------------------------------------------------------------


def factored(event: dict[str, Any], factor: str | None, event_id: str) -> dict[str, Any]:
    body = {**event["invoice"]}
    if factor is None:
        body.pop("factored_by", None)
    else:
        body["factored_by"] = factor
    return {
        "event_id": event_id,
        "type": "invoice.updated",
        "occurred_at": event["occurred_at"],
        "invoice": body,
    }


def test_an_invoice_issued_factored_has_no_ladder(data, ctx):
    issued = invoice_issued("F-1", "2026-04-01")
    issued["invoice"]["factored_by"] = "Factofrance"
    feed(data, ctx, NOW, issued)
    assert steps(data, "F-1", "planned") == {"prescription_warning"}
    cancelled = [s for s in data.steps.values() if s.status == "cancelled"]
    assert cancelled and {s.reason for s in cancelled} == {"invoice factored: collected by Factofrance"}
    (record,) = records(data, "invoice.factored")
    assert record["factored_by"] == "Factofrance" and record["case_ids"] == []


def test_an_invoice_factored_while_in_a_case_leaves_its_amounts_with_a_note_and_comes_back_when_returned(
    data, ctx
):
    one, two = invoice_issued("F-1", "2026-04-01", "4800.00"), invoice_issued("F-2", "2026-04-01", "1000.00")
    feed(data, ctx, NOW, one, two)
    deadline = datetime(2026, 5, 19, 22, 0, tzinfo=UTC)  # end of 19 May in Paris
    with MemoryUnitsOfWork(data)() as uow:
        for number in ("F-1", "F-2"):
            uow.store.add_step(invoice(data, number).id, "D-1", "escalation", "deadline.expired", deadline)
    expire(data, ctx, "escalation", deadline)
    (case,) = data.cases.values()
    # on 20 May, 2 April to 20 May = 49 days at 12.15 %: F-1 4800 -> 78.29, F-2 1000 -> 16.31
    assert (case.principal, case.late_interest, case.indemnities) == (
        Decimal("5800.00"),
        Decimal("94.60"),
        Decimal("80.00"),
    )
    may_22 = datetime(2026, 5, 22, 8, 0, tzinfo=UTC)
    assert feed(data, ctx, may_22, factored(two, "Factofrance", "fact-1")) == ["accepted"]
    # F-2 leaves; F-1 counted again on 22 May as a joining invoice would be: 2 April to
    # 22 May = 51 days, 4800 * 0.1215 * 51 / 365 = 81.488... -> 81.49, and its 40 €
    assert (case.principal, case.late_interest, case.indemnities, case.amount_claimed) == (
        Decimal("4800.00"),
        Decimal("81.49"),
        Decimal("40.00"),
        Decimal("4921.49"),
    )
    assert case.status == "open"
    assert case.notes[-1] == "invoice F-2 factored: collected by Factofrance, left out of this case's amounts"
    assert records(data, "case.factored_out")[-1]["computed_on"] == "2026-05-22"
    assert records(data, "invoice.factored")[-1]["case_ids"] == [case.id]
    # a payment on F-1 does not bring F-2's principal back
    from tests.support import payment

    feed(data, ctx, may_22, payment("F-1", "800.00", "2026-05-22"))
    assert case.principal == Decimal("4000.00")
    # returned by the factor on 26 May: dunning resumes, as after a rejected dispute
    may_26 = datetime(2026, 5, 26, 8, 0, tzinfo=UTC)
    assert feed(data, ctx, may_26, factored(two, None, "fact-2")) == ["accepted"]
    resumed = [
        s
        for s in data.steps.values()
        if s.invoice_id == invoice(data, "F-2").id and s.status == "planned" and s.event != "deadline.expired"
    ]
    assert resumed and all(s.due_at.date() >= may_26.date() for s in resumed)
    assert records(data, "invoice.unfactored")[-1]["previous_factor"] == "Factofrance"


def test_a_case_whose_only_invoice_is_factored_is_closed(data, ctx):
    one = invoice_issued("F-1", "2026-04-01", "4800.00")
    feed(data, ctx, NOW, one)
    deadline = datetime(2026, 5, 19, 22, 0, tzinfo=UTC)
    with MemoryUnitsOfWork(data)() as uow:
        uow.store.add_step(invoice(data, "F-1").id, "D-1", "escalation", "deadline.expired", deadline)
    expire(data, ctx, "escalation", deadline)
    feed(data, ctx, datetime(2026, 5, 22, 8, 0, tzinfo=UTC), factored(one, "Factofrance", "fact-1"))
    (case,) = data.cases.values()
    assert (case.status, case.principal, case.late_interest, case.indemnities) == (
        "closed",
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("0.00"),
    )
    assert records(data, "case.closed")[-1]["cause"] == "invoice factored"


def test_a_post_judgment_claim_escalates_to_an_ordinary_procedure_not_a_declaration(data, ctx):
    # F-2 delivered 14 April, after the judgment of 10 April, due 15 May; its formal notice's
    # deadline ends on 19 June: the case of 20 June counts 16 May to 20 June = 16 + 20 = 36
    # days, 1200 * 0.1215 * 36 / 365 = 14.380... -> 14.38, and the 40 € (L622-17)
    feed(data, ctx, NOW, delivered("F-2", "2026-05-15", "2026-04-14", "2026-04-03"))
    feed(data, ctx, APRIL_16, opened())
    deadline = datetime(2026, 6, 19, 22, 0, tzinfo=UTC)  # end of 19 June in Paris
    with MemoryUnitsOfWork(data)() as uow:
        uow.store.add_step(invoice(data, "F-2").id, "D-1", "escalation", "deadline.expired", deadline)
    expire_step_of(data, ctx, "F-2", "escalation", deadline)
    (case,) = data.cases.values()
    assert case.kind == "escalation"
    assert (case.late_interest, case.indemnities, case.amount_claimed) == (
        Decimal("14.38"),
        Decimal("40.00"),
        Decimal("1254.38"),
    )
    assert case.recommended_procedure != "declaration_de_creance"
    assert case.recommended_procedure == "procedure_simplifiee"  # 1 254,38 <= 5 000 €
