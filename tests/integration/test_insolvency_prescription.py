"""Insolvency opens a claim-declaration case; old claims are warned before prescription."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from adapters.orm import CaseRow, EvidenceRecord, MessageRow, PlannedStep
from adapters.store import transaction
from tests.integration.test_flow import at
from tests.support import DEBTOR, advance, ingest, invoice_issued, make_test_app, run_until


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    yield application
    application.dispose()


def insolvency(judgment: str, bodacc: str | None = None) -> dict:
    event = {
        "event_id": f"ins-{judgment}",
        "type": "debtor.insolvency_opened",
        "occurred_at": f"{judgment}T12:00:00+02:00",
        "debtor_id": "D-1",
        "procedure": "redressement",
        "judgment_date": judgment,
    }
    if bodacc:
        event["bodacc_published_on"] = bodacc
    return event


def test_insolvency_freezes_dunning_and_opens_a_claim_case_due_two_months_after_bodacc(app):
    ingest(
        app,
        invoice_issued("F-1", "2026-04-01", "1200.00"),
        invoice_issued("F-2", "2026-05-29", "300.00", issued="2026-04-29"),
    )
    advance(app, at("2026-04-07 09:00"))  # notice of F-1 sent
    app.clock.set(at("2026-05-15 12:00"))
    assert ingest(app, insolvency("2026-05-12", bodacc="2026-05-31")) == ["accepted"]
    advance(app, at("2026-05-15 12:00"))
    with transaction(app.sessions) as session:
        case = session.execute(select(CaseRow)).scalar_one()
        pending = (
            session.execute(select(PlannedStep.step).where(PlannedStep.status.in_(("planned", "emitted"))))
            .scalars()
            .all()
        )
        sent_after = (
            session.execute(select(MessageRow).where(MessageRow.created_at > at("2026-05-12 00:00")))
            .scalars()
            .all()
        )
    assert case.kind == "claim_declaration"
    assert case.recommended_procedure == "declaration_de_creance"
    assert case.deadline == date(2026, 7, 31)  # BODACC 31 May + 2 months
    assert case.principal == Decimal("1500.00")
    # F-1: 1200.00 late from 2 April to 11 May, the day before the judgment of 12 May, which
    #      takes effect at 0 h and stops interest (L622-28): 29 + 11 = 40 days at 12.15 %:
    #      1200 * .1215 * 40 / 365 = 15.978... -> 15.98 (the judgment day was counted before,
    #      41 days, 16.38). F-2 (issued 29 April, no delivery date: presumed born before the
    #      judgment) falls due after it: no penalty, no indemnity (D441-5); F-1 keeps its 40 €.
    assert case.late_interest == Decimal("15.98")
    assert case.indemnities == Decimal("40.00")
    assert set(pending) == {"prescription_warning"}
    assert sent_after == []


def test_without_a_bodacc_date_the_case_says_the_deadline_is_unknown(app):
    ingest(app, invoice_issued("F-1", "2026-04-01"))
    app.clock.set(at("2026-04-20 12:00"))
    ingest(app, insolvency("2026-04-20"))
    advance(app, at("2026-04-20 12:00"))
    with transaction(app.sessions) as session:
        case = session.execute(select(CaseRow)).scalar_one()
    assert case.deadline is None
    assert case.notes[0].startswith("BODACC publication date unknown")


def test_a_claim_close_to_prescription_is_warned_and_noted_on_the_open_case(app):
    old = invoice_issued("F-OLD", "2022-01-31", "500.00", issued="2021-12-31")
    old["invoice"]["delivered_on"] = "2021-12-15"
    consumer = {**DEBTOR, "id": "C-1", "kind": "consumer"}
    recent = invoice_issued("F-C", "2025-06-30", "80.00", issued="2025-05-30", debtor=consumer)
    ingest(app, old, recent)
    with transaction(app.sessions) as session:
        warn = dict(
            session.execute(
                select(PlannedStep.invoice_id, PlannedStep.due_at).where(
                    PlannedStep.step == "prescription_warning"
                )
            ).all()
        )
    # business: delivered 15 Dec 2021 + 5 years - 6 months = 15 June 2026 (a Monday)
    # consumer: issued 30 May 2025 + 2 years - 6 months = 30 Nov 2026 (a Monday), at 10:00,
    # when the window of the consumer policy (config/consumer.toml) opens
    assert sorted(warn.values()) == [at("2026-06-15 09:00"), at("2026-11-30 10:00")]
    advance(app, at("2026-06-15 09:00"))
    with transaction(app.sessions) as session:
        record = session.execute(
            select(EvidenceRecord).where(EvidenceRecord.kind == "prescription.warning")
        ).scalar_one()
    assert record.invoice_numbers == ["F-OLD"]
    assert "time-barred on 2026-12-15" in record.payload


def test_a_claim_delivered_after_the_judgment_is_chased_with_penalties_up_to_the_formal_notice(app):
    # invoiced Friday 3 April, before the judgment of Friday 10 April, but delivered 14 April:
    # born after it (L622-17), so chased as any claim. Due Friday 15 May: notice Mon 18 May,
    # reminder_1 D+10 = Whit Monday 25 May -> Tue 26 May, reminder_2 Thu 4 June, reminder_3
    # D+30 = Sun 14 June -> Mon 15 June, formal notice Wed 24 June.
    issued = invoice_issued("F-9", "2026-05-15", issued="2026-04-03")
    issued["invoice"]["delivered_on"] = "2026-04-14"
    ingest(app, issued)
    app.clock.set(at("2026-04-16 12:00"))
    assert ingest(app, insolvency("2026-04-10")) == ["accepted"]
    run_until(app, at("2026-06-24 09:00"))
    with transaction(app.sessions) as session:
        sent = [
            json.loads(r.payload)
            for r in session.execute(
                select(EvidenceRecord)
                .where(EvidenceRecord.kind == "reminder.sent")
                .order_by(EvidenceRecord.seq)
            ).scalars()
        ]
        cases = session.execute(select(CaseRow)).scalars().all()
    steps = [(s["step"], s["channel"]) for s in sent]
    assert ("formal_notice", "registered_letter") in steps and ("reminder_2", "letter") in steps
    by_step = {s["step"]: s for s in sent if s["channel"] == "email"}
    # reminder_2 on 4 June: 16 May to 4 June = 20 days, 1200 * .1215 * 20 / 365 = 7.989... -> 7.99
    assert (by_step["reminder_2"]["late_interest"], by_step["reminder_2"]["recovery_indemnity"]) == (
        "7.99",
        "40.00",
    )
    # formal notice on 24 June: 16 May to 24 June = 16 + 24 = 40 days,
    # 1200 * .1215 * 40 / 365 = 15.978... -> 15.98, and the 40 € indemnity
    notice = by_step["formal_notice"]
    assert (notice["late_interest"], notice["recovery_indemnity"]) == ("15.98", "40.00")
    assert cases == []  # never put in a claim declaration
