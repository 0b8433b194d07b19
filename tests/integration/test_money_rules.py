"""Principal first, penalties as a separate claim, cases per currency, no case for a trifle.

Rate of 2026-H1 (config/rates.toml): ECB 2.15 % + 10 points = 12.15 %; simple interest,
principal x rate x days / 365, rounded half-up to the cent once.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.orm import CaseRow, EvidenceRecord, InvoiceRow, MessageItem, MessageRow
from adapters.store import transaction
from relance.reports import status
from tests.integration.test_flow import at
from tests.support import DEBTOR, ingest, invoice_issued, make_test_app, payment, run_until

POLICY = Path(__file__).resolve().parents[2] / "config" / "policy.toml"


def in_currency(event: dict, currency: str) -> dict:
    event["invoice"]["currency"] = currency
    return event


def policy_file(tmp_path: Path, **money: str) -> Path:
    """The default policy with some ``[money]`` values replaced."""
    lines = []
    for line in POLICY.read_text(encoding="utf-8").splitlines():
        key = line.split("=")[0].strip()
        lines.append(f'{key} = "{money.pop(key)}"' if key in money else line)
    assert not money, f"not in the policy: {money}"
    target = tmp_path / "policy.toml"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


@pytest.fixture
def app(database_url, tmp_path):
    application = make_test_app(database_url, tmp_path, at("2026-03-02 10:00"))
    yield application
    application.dispose()


def january_app(database_url, tmp_path, **settings):
    return make_test_app(database_url, tmp_path, at("2026-01-02 10:00"), **settings)


def thousand_due_5_january() -> dict:
    return invoice_issued("F-1", "2026-01-05", "1000.00", issued="2025-12-06", at="2026-01-02T10:00:00+01:00")


def pay_on_20_january(app, amount: str) -> None:
    run_until(app, at("2026-01-20 10:00"))
    app.clock.set(at("2026-01-20 10:00"))
    ingest(app, payment("F-1", amount, "2026-01-20"))


def steps_sent(app) -> set[str]:
    with transaction(app.sessions) as session:
        return set(session.execute(select(MessageItem.step)).scalars())


def records(app, kind: str) -> list[dict]:
    with transaction(app.sessions) as session:
        payloads = session.execute(
            select(EvidenceRecord.payload).where(EvidenceRecord.kind == kind).order_by(EvidenceRecord.seq)
        ).scalars()
        return [json.loads(p) for p in payloads]


def all_cases(app) -> list[CaseRow]:
    with transaction(app.sessions) as session:
        return list(session.execute(select(CaseRow).order_by(CaseRow.currency, CaseRow.id)).scalars())


def test_given_a_debtor_owing_eur_and_usd_when_escalated_then_two_cases_with_their_own_totals(app):
    # F-1 4800.00 EUR and F-2 1000.00 USD, both due 1 April; cases opened 22 May (formal
    # notice Mon 11 May, presented Wed 13 May, + 8 days = Thu 21 May, expiring at its end).
    # EUR: 2 April to 22 May = 51 days, 4800 * .1215 * 51 / 365 = 81.49 + 40 = 4921.49 <= 5000
    # -> small claims. USD: no penalty currency, 1000.00; the 5000 limit is in euros -> an
    # injonction de payer. Added together (5921.49) they would have gone to an injonction.
    ingest(
        app,
        invoice_issued("F-1", "2026-04-01", "4800.00"),
        in_currency(invoice_issued("F-2", "2026-04-01", "1000.00"), "USD"),
    )
    run_until(app, at("2026-12-31 00:00"))
    cases = all_cases(app)
    assert [
        (c.currency, c.principal, c.late_interest, c.indemnities, c.amount_claimed, c.recommended_procedure)
        for c in cases
    ] == [
        (
            "EUR",
            Decimal("4800.00"),
            Decimal("81.49"),
            Decimal("40.00"),
            Decimal("4921.49"),
            "procedure_simplifiee",
        ),
        (
            "USD",
            Decimal("1000.00"),
            Decimal("0.00"),
            Decimal("0.00"),
            Decimal("1000.00"),
            "injonction_de_payer",
        ),
    ]
    assert cases[1].reasons == [
        "uncontested claim of 1000.00 USD: the small-claims limit of 5000.00 EUR applies to claims in euros"
    ]
    escalated = records(app, "case.escalated")
    assert sorted((r["currency"], r["invoice_numbers"]) for r in escalated) == [
        ("EUR", ["F-1"]),
        ("USD", ["F-2"]),
    ]


def test_given_999_paid_of_1000_when_the_ladder_runs_then_no_formal_notice_and_no_case(
    database_url, tmp_path
):
    # principal left 1000 - 999 = 1.00 < the 5.00 minimum: nothing more is chased
    app = january_app(database_url, tmp_path)
    try:
        ingest(app, thousand_due_5_january())
        pay_on_20_january(app, "999.00")
        run_until(app, at("2026-12-31 00:00"))
        sent = steps_sent(app)
        assert "reminder_1" in sent  # 15 January, before the payment
        assert not sent & {"reminder_2", "reminder_3", "formal_notice"}
        assert all_cases(app) == []
        report = status(app)
        assert report["below_minimum_EUR_invoices"] == 1
        assert report["below_minimum_EUR_amount"] == "1.00"
    finally:
        app.dispose()


def test_given_no_minimum_when_999_of_1000_is_paid_then_the_notice_claims_1_euro_and_penalties_apart(
    database_url, tmp_path
):
    # formal notice D+40 = Sat 14 February -> sent Mon 16 February. Penalties:
    # 6-20 January 15 days on 1000.00: 1000 * .1215 * 15 / 365 = 4.993151
    # 21 January - 16 February 27 days on 1.00: 1 * .1215 * 27 / 365 = 0.008988
    # total 5.002139 -> 5.00, stated beside the principal of 1.00 with the 40.00 indemnity
    app = january_app(database_url, tmp_path, policy_file=policy_file(tmp_path, minimum_balance="0"))
    try:
        ingest(app, thousand_due_5_january())
        pay_on_20_january(app, "999.00")
        run_until(app, at("2026-02-28 00:00"))
        notices = [r for r in records(app, "reminder.sent") if r["step"] == "formal_notice"]
        assert {(r["amount_due"], r["late_interest"], r["recovery_indemnity"]) for r in notices} == {
            ("1.00", "5.00", "40.00")
        }
        with transaction(app.sessions) as session:
            bodies = session.execute(
                select(MessageRow.body_text)
                .join(MessageItem, MessageItem.message_pk == MessageRow.id)
                .where(MessageItem.step == "formal_notice")
            ).scalars()
            body = next(iter(bodies))
        assert "1,00 €" in body and "5,00 €" in body and "40,00 €" in body
    finally:
        app.dispose()


def test_given_the_whole_principal_paid_late_then_the_penalties_still_owed_are_reported(
    database_url, tmp_path
):
    # 1000.00 paid on 20 January, 15 days late: 1000 * .1215 * 15 / 365 = 4.993151 -> 4.99
    # penalties + 40.00 indemnity = 44.99 owed beside the paid principal; the ladder stops
    app = january_app(database_url, tmp_path)
    try:
        ingest(app, thousand_due_5_january())
        pay_on_20_january(app, "1000.00")
        run_until(app, at("2026-12-31 00:00"))
        (reported,) = records(app, "invoice.penalties_outstanding")
        assert (
            reported["late_interest"],
            reported["recovery_indemnity"],
            reported["amount_owed"],
            reported["principal_left"],
            reported["chased"],
        ) == ("4.99", "40.00", "44.99", "0.00", False)
        assert not steps_sent(app) & {"reminder_2", "reminder_3", "formal_notice"}
        with transaction(app.sessions) as session:
            assert session.execute(select(InvoiceRow.status)).scalar_one() == "settled"
        report = status(app)
        assert report["penalties_outstanding_EUR_invoices"] == 1
        assert report["penalties_outstanding_EUR_amount"] == "44.99"
    finally:
        app.dispose()


def test_given_money_beyond_the_principal_then_it_counts_against_the_reported_penalties(
    database_url, tmp_path
):
    # 1010.00 paid on 20 January: 10.00 beyond the principal; 44.99 - 10.00 = 34.99 owed
    app = january_app(database_url, tmp_path)
    try:
        ingest(app, thousand_due_5_january())
        pay_on_20_january(app, "1010.00")
        (reported,) = records(app, "invoice.penalties_outstanding")
        assert (reported["paid_beyond_principal"], reported["amount_owed"]) == ("10.00", "34.99")
    finally:
        app.dispose()


def test_given_an_open_case_when_its_invoice_principal_is_paid_then_the_case_notes_the_penalties(app):
    # F-1 900.00 due 1 April, case opened 20 May; paid 1 June, 61 days late:
    # 900 * .1215 * 61 / 365 = 18.27 penalties + 40.00 indemnity = 58.27 owed apart
    ingest(app, invoice_issued("F-1", "2026-04-01", "900.00"))
    run_until(app, at("2026-12-31 00:00"))
    app.clock.set(at("2026-06-01 10:00"))
    ingest(app, payment("F-1", "900.00", "2026-06-01"))
    (case,) = all_cases(app)
    assert case.status == "paid"
    assert case.notes[-1] == (
        "invoice F-1: principal paid; owed as a separate claim (reported, not chased): "
        "58.27 EUR = penalties 18.27 + indemnity 40.00"
    )
    with transaction(app.sessions) as session:
        linked = session.execute(
            select(EvidenceRecord.case_id).where(EvidenceRecord.kind == "invoice.penalties_outstanding")
        ).scalar_one()
    assert linked == case.id


def test_given_an_open_case_when_a_payment_leaves_a_trifle_then_the_case_stops_as_paid_with_a_note(app):
    ingest(app, invoice_issued("F-1", "2026-04-01", "900.00"))
    run_until(app, at("2026-12-31 00:00"))
    app.clock.set(at("2026-06-01 10:00"))
    ingest(app, payment("F-1", "897.00", "2026-06-01"))
    (case,) = all_cases(app)
    assert (case.status, case.principal) == ("paid", Decimal("3.00"))
    assert case.notes[-1] == "balance left below the minimum, not pursued: F-1 3.00 EUR"
    assert [r["status"] for r in records(app, "case.paid")] == ["paid"]


def test_given_balances_below_the_minimum_in_two_currencies_then_status_lists_them_per_currency(app):
    other = {**DEBTOR, "id": "D-2"}
    ingest(
        app,
        invoice_issued("F-1", "2026-04-01", "300.00"),
        in_currency(invoice_issued("F-2", "2026-04-01", "50.00", debtor=other), "USD"),
        invoice_issued("F-3", "2026-04-01", "80.00"),
        payment("F-1", "297.00", "2026-03-10"),
        payment("F-2", "48.00", "2026-03-10"),
    )
    report = status(app)
    assert report["open_invoices"] == 3
    assert (report["balance_EUR_not_due"], report["balance_USD_not_due"]) == ("83.00", "2.00")
    assert (report["below_minimum_EUR_invoices"], report["below_minimum_EUR_amount"]) == (1, "3.00")
    assert (report["below_minimum_USD_invoices"], report["below_minimum_USD_amount"]) == (1, "2.00")


def test_given_an_insolvent_debtor_owing_eur_and_usd_then_one_claim_declaration_per_currency(app):
    # F-1 1200.00 EUR and F-2 800.00 USD due 1 April, judgment 12 May; F-3 3.00 EUR is below
    # the minimum and is not declared. Interest stops the day before the judgment (L622-28):
    # 2 April to 11 May, 40 days. EUR: 1200 * .1215 * 40 / 365 = 15.98 + 40.00 = 1255.98;
    # USD: no penalty currency, 800.00
    from tests.integration.test_insolvency_prescription import insolvency

    ingest(
        app,
        invoice_issued("F-1", "2026-04-01", "1200.00"),
        in_currency(invoice_issued("F-2", "2026-04-01", "800.00"), "USD"),
        invoice_issued("F-3", "2026-04-01", "3.00"),
    )
    app.clock.set(at("2026-05-15 12:00"))
    ingest(app, insolvency("2026-05-12", bodacc="2026-05-31"))
    run_until(app, at("2026-05-15 12:00"))
    cases = all_cases(app)
    assert [(c.kind, c.currency, c.principal, c.amount_claimed) for c in cases] == [
        ("claim_declaration", "EUR", Decimal("1200.00"), Decimal("1255.98")),
        ("claim_declaration", "USD", Decimal("800.00"), Decimal("800.00")),
    ]
    opened = records(app, "case.opened")
    assert sorted(r["invoice_numbers"] for r in opened) == [["F-1"], ["F-2"]]
