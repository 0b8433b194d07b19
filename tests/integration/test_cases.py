"""Escalation: the recommended procedure per situation, and cases after escalation."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from adapters.orm import CaseRow, EvidenceRecord
from adapters.store import transaction
from tests.integration.test_flow import at
from tests.support import DEBTOR, ingest, invoice_issued, make_test_app, payment, run_until


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    yield application
    application.dispose()


def escalate(app) -> CaseRow:
    """Run every planned step up to the end of 2026 and return the debtor's case."""
    run_until(app, at("2026-12-31 00:00"))
    with transaction(app.sessions) as session:
        return session.execute(select(CaseRow)).scalar_one()


@pytest.mark.parametrize(
    ("amount", "claimed", "expected"),
    [
        # due 1 April, formal notice Mon 11 May, presented Wed 13 May (2 business days), + 8
        # days = Thu 21 May (a business day): case opened 22 May 00:00. Penalties for 2 April
        # to 22 May inclusive = 29 + 22 = 51 days at 12.15 % + 40 € indemnity
        ("4800.00", "4921.49", "procedure_simplifiee"),  # 4800*.1215*51/365 = 81.488 -> 81.49
        ("5200.00", "5328.28", "injonction_de_payer"),  # 5200*.1215*51/365 = 88.279 -> 88.28
    ],
)
def test_an_uncontested_claim_goes_to_small_claims_up_to_5000_euros_in_total(app, amount, claimed, expected):
    ingest(app, invoice_issued("F-1", "2026-04-01", amount))
    case = escalate(app)
    assert case.amount_claimed == Decimal(claimed)
    assert case.recommended_procedure == expected


def test_a_claim_just_under_5000_with_penalties_over_it_goes_to_injonction(app):
    # 4900.00 principal, case opened 22 May (above): 4900 * .1215 * 51 / 365 = 83.186 -> 83.19
    # penalties, + 40 indemnity = 5023.19
    ingest(app, invoice_issued("F-1", "2026-04-01", "4900.00"))
    case = escalate(app)
    assert case.late_interest == Decimal("83.19")
    assert case.amount_claimed == Decimal("5023.19")
    assert case.recommended_procedure == "injonction_de_payer"
    assert "refere_provision" in case.alternatives


def test_a_disputed_then_rejected_invoice_goes_to_assignation(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "900.00"))
    ingest(
        app,
        {
            "event_id": "d",
            "type": "invoice.disputed",
            "occurred_at": "2026-03-03T10:00:00+01:00",
            "invoice_number": "F-1",
            "reason": "prix contesté",
        },
        {
            "event_id": "r",
            "type": "dispute.resolved",
            "occurred_at": "2026-03-05T10:00:00+01:00",
            "invoice_number": "F-1",
            "outcome": "rejected",
        },
    )
    case = escalate(app)
    assert case.recommended_procedure == "assignation_en_paiement"
    assert case.reasons == ["invoice(s) disputed: F-1"]


def test_payments_after_escalation_lower_the_case_then_stop_it_when_settled(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "900.00"), invoice_issued("F-2", "2026-04-01", "600.00"))
    case = escalate(app)
    assert case.principal == Decimal("1500.00") and case.status == "open"
    app.clock.set(at("2026-06-01 10:00"))
    ingest(app, payment("F-1", "900.00", "2026-06-01"))
    with transaction(app.sessions) as session:
        case = session.get(CaseRow, case.id)
        assert (case.status, case.principal) == ("open", Decimal("600.00"))
    ingest(app, payment("F-2", "600.00", "2026-06-02"))
    with transaction(app.sessions) as session:
        case = session.get(CaseRow, case.id)
        kinds = (
            session.execute(
                select(EvidenceRecord.kind)
                .where(EvidenceRecord.case_id == case.id)
                .order_by(EvidenceRecord.seq)
            )
            .scalars()
            .all()
        )
    assert (case.status, case.principal) == ("paid", Decimal("0.00"))
    # each invoice paid late leaves its penalties and indemnity owed apart: reported on the case
    assert kinds == [
        "case.escalated",
        "invoice.penalties_outstanding",
        "case.updated",
        "invoice.penalties_outstanding",
        "case.paid",
    ]


def test_a_case_whose_invoices_are_cancelled_is_closed(app):
    other = {**DEBTOR, "id": "D-2"}
    ingest(app, invoice_issued("F-1", "2026-04-01", "900.00", debtor=other))
    case = escalate(app)
    ingest(
        app,
        {
            "event_id": "c",
            "type": "invoice.cancelled",
            "occurred_at": "2026-06-01T10:00:00+02:00",
            "invoice_number": "F-1",
        },
    )
    with transaction(app.sessions) as session:
        assert session.get(CaseRow, case.id).status == "closed"


def test_merchants_on_both_sides_get_the_uncontested_claims_procedure_above_5000(app):
    # the default creditor is a merchant (policy creditor.merchant = true); 12 000,00 due 1 April,
    # case opened 22 May (above), 51 days: 12000 * .1215 * 51 / 365 = 203.7205 -> 203.72,
    # + 40 = 12 243,72 €, far above 5 000: the merchants' procedure has no amount limit
    merchant = {**DEBTOR, "merchant": True}
    ingest(app, invoice_issued("F-1", "2026-04-01", "12000.00", debtor=merchant))
    case = escalate(app)
    assert case.amount_claimed == Decimal("12243.72")
    assert case.recommended_procedure == "recouvrement_creances_commerciales"
    assert case.alternatives == ["injonction_de_payer", "refere_provision"]
    with transaction(app.sessions) as session:
        record = session.execute(
            select(EvidenceRecord).where(EvidenceRecord.kind == "case.escalated")
        ).scalar_one()
    bases = json.loads(record.payload)["legal_bases"]
    assert bases == {
        "recouvrement_creances_commerciales": "CPCE art. L126-1 et s.",
        "injonction_de_payer": "CPC art. 1405 et s.",
        "refere_provision": "CPC art. 835 al. 2, 873 al. 2",
    }


def test_a_public_debtor_is_never_recommended_an_injonction_de_payer(app):
    # any amount: 3 000,00 € of principal, whatever its penalties
    public = {**DEBTOR, "id": "D-PUB", "name": "Commune de Lille", "kind": "public"}
    ingest(app, invoice_issued("F-1", "2026-04-01", "3000.00", debtor=public))
    case = escalate(app)
    assert case.recommended_procedure == "demande_au_comptable_public"
    assert case.alternatives == ["refere_provision_administratif"]


def test_a_payment_that_settles_a_cased_invoice_reads_its_cases_once(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "900.00"), invoice_issued("F-2", "2026-04-01", "600.00"))
    case = escalate(app)
    app.clock.set(at("2026-06-01 10:00"))
    reads: list[str] = []

    def keep(_conn, _cursor, statement, *_args):
        if "WHERE case_invoices.invoice_id" in statement:  # the cases holding an invoice
            reads.append(statement)

    event.listen(app.engine, "before_cursor_execute", keep)
    try:
        ingest(app, payment("F-1", "900.00", "2026-06-01"))
    finally:
        event.remove(app.engine, "before_cursor_execute", keep)
    with transaction(app.sessions) as session:
        notes = session.get(CaseRow, case.id).notes
    # F-1 settled late: its penalties are noted on the case and the case follows the payment,
    # both from one (locking) read of the cases that hold F-1
    assert any("F-1" in note for note in notes)
    assert len(reads) == 1
