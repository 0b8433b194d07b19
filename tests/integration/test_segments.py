"""Segment policies drive the ladder of each debtor, with per-debtor and per-invoice overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.orm import InvoiceRow, PlannedStep
from adapters.store import transaction
from tests.integration.test_flow import at
from tests.support import DEBTOR, ingest, invoice_issued, make_test_app

SEGMENTED = Path(__file__).resolve().parents[2] / "examples" / "policies" / "segmented.toml"


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"), policy_file=SEGMENTED)
    yield application
    application.dispose()


def planned(app, number: str) -> dict[str, str]:
    with transaction(app.sessions) as session:
        rows = session.execute(
            select(PlannedStep.step, PlannedStep.due_at)
            .join(InvoiceRow, InvoiceRow.id == PlannedStep.invoice_id)
            .where(InvoiceRow.number == number, PlannedStep.step != "prescription_warning")
        ).all()
    return {
        step: due.astimezone(at("2026-01-01 00:00").tzinfo).strftime("%Y-%m-%d %H:%M") for step, due in rows
    }


def test_each_debtor_gets_the_ladder_of_its_segment(app):
    consumer = {**DEBTOR, "id": "C-1", "kind": "consumer"}
    key = {**DEBTOR, "id": "K-1", "segment": "key_account"}
    ingest(
        app,
        invoice_issued("F-B", "2026-04-01", debtor=DEBTOR),
        invoice_issued("F-C", "2026-04-01", debtor=consumer),
        invoice_issued("F-K", "2026-04-01", debtor=key),
    )
    assert len(planned(app, "F-B")) == 7  # the default ladder
    # consumers: D, D+7 (Wed 8 April), D+21 (Wed 22 April), D+35 (Wed 6 May); window 10:00
    assert planned(app, "F-C") == {
        "due": "2026-04-01 10:00",
        "notice": "2026-04-08 10:00",
        "reminder_1": "2026-04-22 10:00",
        "formal_notice": "2026-05-06 10:00",
    }
    # key accounts: no pre_due; D+7 Wed 8 April, D+15 Thu 16 April, D+30 Fri 1 May is a
    # holiday -> Mon 4 May, D+45 Sat 16 May -> Mon 18 May, D+60 Sun 31 May -> Mon 1 June
    assert planned(app, "F-K") == {
        "due": "2026-04-01 09:00",
        "notice": "2026-04-08 09:00",
        "reminder_1": "2026-04-16 09:00",
        "reminder_2": "2026-05-04 09:00",
        "reminder_3": "2026-05-18 09:00",
        "formal_notice": "2026-06-01 09:00",
    }


def test_a_debtor_override_and_an_invoice_override_win_over_the_segment(app):
    durand = {**DEBTOR, "id": "CLI-GROUPE-DURAND"}
    ingest(
        app,
        invoice_issued("F-2026-0500", "2026-04-01", debtor=durand),
        invoice_issued("F-2026-0999", "2026-04-01", debtor=durand),
    )
    assert "pre_due" not in planned(app, "F-2026-0500")  # key-accounts ladder
    assert planned(app, "F-2026-0999")["pre_due"] == "2026-03-27 09:00"  # default ladder
