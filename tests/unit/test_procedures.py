"""The recommended procedure as a selection over the procedures' table (handlers/procedures.py,
handlers/procedure_table.py, docs/policy.md "Recommended procedure").

Amounts are the case's total claimed (principal + penalties + indemnities), given here as
they are: the selection compares them with the small-claims limit of 5 000,00 € only.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.policy import load_policy
from handlers.partners import PROCEDURES
from handlers.procedure_table import TABLE, Procedure, check_table
from handlers.procedure_views import case_procedures, conditions_fr, legal_bases
from handlers.procedures import Claim, claim_of, recommend, select, table_for

POLICY = load_policy()
NOT_A_MERCHANT = POLICY.model_copy(
    update={"creditor": POLICY.creditor.model_copy(update={"merchant": False})}
)


def debtor(kind: str = "business", merchant: bool | None = None, insolvent: bool = False):
    return SimpleNamespace(
        kind=kind,
        merchant=merchant,
        insolvency_procedure="redressement" if insolvent else None,
        insolvency_judgment_date=JUDGMENT if insolvent else None,
    )


JUDGMENT = date(2026, 6, 1)


def invoice(number: str = "F-1", disputed: bool = False, issued: date = date(2026, 3, 2)):
    return SimpleNamespace(number=number, ever_disputed=disputed, issue_date=issued, delivered_on=None)


def everywhere(result: tuple[str, list[str], list[str]]) -> list[str]:
    procedure, _, alternatives = result
    return [procedure, *alternatives]


def test_merchants_on_both_sides_get_the_uncontested_claims_procedure_for_any_amount():
    # 12 000,00 € is far above the 5 000,00 € of the procédure simplifiée: no limit here
    procedure, reasons, alternatives = recommend(
        debtor(merchant=True), [invoice()], Decimal("12000.00"), POLICY
    )
    assert procedure == "recouvrement_creances_commerciales"
    assert alternatives == ["injonction_de_payer", "refere_provision"]
    assert reasons == [
        "uncontested invoiced claim of 12000.00 EUR between merchants (debtor and creditor), any amount"
    ]


def test_merchants_under_5000_still_get_it_first_with_the_small_claims_procedure_beside():
    # 3 000,00 <= 5 000,00: the procédure simplifiée applies too, as an alternative
    procedure, _, alternatives = recommend(debtor(merchant=True), [invoice()], Decimal("3000.00"), POLICY)
    assert procedure == "recouvrement_creances_commerciales"
    assert alternatives == ["procedure_simplifiee", "injonction_de_payer", "refere_provision"]


def test_a_merchant_debtor_of_a_creditor_who_is_not_one_does_not_get_it_at_all():
    result = recommend(debtor(merchant=True), [invoice()], Decimal("12000.00"), NOT_A_MERCHANT)
    assert result[0] == "injonction_de_payer"  # 12 000,00 > 5 000,00
    assert "recouvrement_creances_commerciales" not in everywhere(result)


def test_a_debtor_known_not_to_be_a_merchant_does_not_get_it_at_all():
    result = recommend(debtor(merchant=False), [invoice()], Decimal("12000.00"), POLICY)
    assert everywhere(result) == ["injonction_de_payer", "refere_provision"]


def test_a_debtor_whose_merchant_status_is_not_said_gets_it_only_as_an_alternative_to_check():
    procedure, _, alternatives = recommend(debtor(merchant=None), [invoice()], Decimal("12000.00"), POLICY)
    assert procedure == "injonction_de_payer"
    assert alternatives == ["recouvrement_creances_commerciales", "refere_provision"]
    claim = claim_of(debtor(merchant=None), [invoice()], Decimal("12000.00"), True, "EUR")
    views = case_procedures(procedure, alternatives, claim, table_for(POLICY))
    assert [(v["code"], v["to_check"]) for v in views] == [
        ("injonction_de_payer", []),
        ("recouvrement_creances_commerciales", ["le débiteur est-il commerçant ? (non renseigné)"]),
        ("refere_provision", []),
    ]


def test_a_public_debtor_is_asked_through_its_accountant_then_the_administrative_judge():
    procedure, reasons, alternatives = recommend(debtor("public"), [invoice()], Decimal("3000.00"), POLICY)
    assert (procedure, alternatives) == ("demande_au_comptable_public", ["refere_provision_administratif"])
    assert reasons == ["uncontested claim of 3000.00 EUR on a public person: no injonction de payer"]


@pytest.mark.parametrize("amount", ["3000.00", "12000.00"])
@pytest.mark.parametrize("merchant", [None, True])
def test_no_injonction_nor_judicial_route_is_ever_offered_against_a_public_person(amount, merchant):
    result = recommend(debtor("public", merchant), [invoice()], Decimal(amount), POLICY)
    assert not {"injonction_de_payer", "procedure_simplifiee", "refere_provision"} & set(everywhere(result))


def test_a_disputed_invoice_of_a_public_debtor_goes_to_the_administrative_judge_on_the_merits():
    procedure, reasons, alternatives = recommend(
        debtor("public"), [invoice("F-9", disputed=True)], Decimal("3000.00"), POLICY
    )
    assert (procedure, alternatives) == ("recours_au_fond_administratif", [])
    assert reasons == ["invoice(s) disputed: F-9 (public debtor: the administrative judge)"]


@pytest.mark.parametrize(
    ("amount", "expected", "alternatives"),
    [
        ("3000.00", "procedure_simplifiee", ["injonction_de_payer", "refere_provision"]),  # <= 5 000
        ("5000.00", "procedure_simplifiee", ["injonction_de_payer", "refere_provision"]),  # the limit itself
        ("5000.01", "injonction_de_payer", ["refere_provision"]),  # one cent over
    ],
)
def test_a_consumer_gets_the_small_claims_procedure_up_to_5000_euros(amount, expected, alternatives):
    # a consumer flagged merchant by mistake is still not offered the merchants' procedure
    result = recommend(debtor("consumer", merchant=True), [invoice()], Decimal(amount), POLICY)
    assert (result[0], result[2]) == (expected, alternatives)


def test_a_claim_in_another_currency_is_not_compared_with_the_euro_limit():
    # 1 040,00 USD would be under 5 000 if it were euros; it is not compared
    result = recommend(debtor(merchant=False), [invoice()], Decimal("1040.00"), POLICY, "USD")
    assert everywhere(result) == ["injonction_de_payer", "refere_provision"]
    assert result[1] == [
        "uncontested claim of 1040.00 USD: the small-claims limit of 5000.00 EUR applies to claims in euros"
    ]


def test_the_merchants_procedure_has_no_currency_condition():
    result = recommend(debtor(merchant=True), [invoice()], Decimal("20000.00"), POLICY, "USD")
    assert everywhere(result) == [
        "recouvrement_creances_commerciales",
        "injonction_de_payer",
        "refere_provision",
    ]


def test_any_invoice_ever_disputed_leads_to_an_assignation_without_alternatives():
    invoices = [invoice("F-1"), invoice("F-2", disputed=True)]
    assert recommend(debtor(merchant=True), invoices, Decimal("900.00"), POLICY) == (
        "assignation_en_paiement",
        ["invoice(s) disputed: F-2"],
        [],
    )


@pytest.mark.parametrize("kind", ["business", "consumer", "public"])
def test_a_debtor_in_insolvency_proceedings_gets_the_claim_declaration_only(kind):
    # F-1 issued 2 March, before the judgment of 1 June: a claim to declare, even disputed
    result = recommend(
        debtor(kind, True, insolvent=True), [invoice(disputed=True)], Decimal("900.00"), POLICY
    )
    assert result == ("declaration_de_creance", ["debtor in redressement proceedings"], [])


def test_the_policy_small_claims_limit_replaces_the_figure_of_the_table():
    raised = POLICY.model_copy(
        update={"escalation": POLICY.escalation.model_copy(update={"small_claims_limit": Decimal("7500.00")})}
    )
    # 6 000,00 <= 7 500,00 under that policy, > 5 000,00 under the default one
    assert recommend(debtor(merchant=False), [], Decimal("6000.00"), raised)[:2] == (
        "procedure_simplifiee",
        ["uncontested claim of 6000.00 <= 7500.00"],
    )
    assert recommend(debtor(merchant=False), [], Decimal("6000.00"), POLICY)[0] == "injonction_de_payer"


claims = st.builds(
    Claim,
    debtor_kind=st.sampled_from(["business", "consumer", "public"]),
    debtor_merchant=st.sampled_from([None, True, False]),
    creditor_merchant=st.booleans(),
    amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2),
    currency=st.sampled_from(["EUR", "USD"]),
    contested=st.booleans(),
    insolvent=st.booleans(),
)


@given(claims)
def test_property_every_case_gets_one_recommendation_never_repeated_among_its_alternatives(claim):
    chosen = select(claim, TABLE)
    codes = [chosen.recommended.code, *(a.code for a in chosen.alternatives)]
    assert len(codes) == len(set(codes))
    if claim.debtor_kind == "public":
        assert "injonction_de_payer" not in codes
    if claim.insolvent:
        assert codes == ["declaration_de_creance"]


def test_every_procedure_of_the_table_can_be_mapped_to_a_partner():
    assert set(PROCEDURES) == {row.code for row in TABLE}
    assert {"recouvrement_creances_commerciales", "demande_au_comptable_public"} <= set(PROCEDURES)


def test_the_conditions_and_bases_are_shown_from_the_table():
    small = next(r for r in table_for(POLICY) if r.code == "procedure_simplifiee")
    assert conditions_fr(small) == [
        "débiteur professionnel ou consommateur (pas une personne publique)",
        "débiteur hors procédure collective, ou créance née après le jugement d'ouverture",
        "créance non contestée",
        "total réclamé d'au plus 5 000,00 €, pour une créance en EUR",
    ]
    assert legal_bases(["recouvrement_creances_commerciales", "gone"], TABLE) == {
        "recouvrement_creances_commerciales": "CPCE art. L126-1 et s."
    }


ROW = TABLE[-1]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ((ROW, ROW), "row 2 ('refere_provision'): code: appears twice"),
        ((dataclasses.replace(ROW, code="Référé"),), "row 1 ('Référé'): code: lower-case letters"),
        ((dataclasses.replace(ROW, basis=" "),), "row 1 ('refere_provision'): basis: must not be empty"),
        ((dataclasses.replace(ROW, debtor_kinds=frozenset({"bank"})),), "debtor_kinds: one or more of"),
        (
            (dataclasses.replace(ROW, amount_limit=Decimal("10")),),
            "amount_limit and limit_currency go together",
        ),
        (
            (dataclasses.replace(ROW, amount_limit=Decimal("0"), limit_currency="EUR"),),
            "amount_limit: must be above zero",
        ),
        ((), "procedure table: no row"),
    ],
)
def test_a_table_that_does_not_hold_together_is_refused_naming_the_row_and_field(
    rows: tuple[Procedure, ...], message
):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_table(rows)
