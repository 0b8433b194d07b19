"""Bank entries matched to open invoices (handlers/matching.py): the order of the rules,
what is left unmatched or ambiguous, and invariants checked with hypothesis."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.matching import (
    MAX_SET_SIZE,
    OpenInvoice,
    StatementEntry,
    is_rf_reference,
    match_entries,
)

D = Decimal


def entry(amount: str, *, ref: str = "E1", remittance: tuple[str, ...] = (), payer: str | None = None, **kw):
    return StatementEntry(
        reference=ref,
        booking_date=date(2026, 10, 1),
        value_date=date(2026, 10, 1),
        amount=D(amount),
        currency=kw.pop("currency", "EUR"),
        credit=kw.pop("credit", True),
        remittance=remittance,
        counterparty=payer,
        **kw,
    )


def inv(
    number: str, balance: str, debtor: str = "D1", name: str = "Boulangerie Dupont", currency: str = "EUR"
):
    return OpenInvoice(number, debtor, name, D(balance), currency)


def test_an_invoice_number_in_the_remittance_comes_first():
    invoices = [inv("F-1", "100.00"), inv("F-2", "250.00")]
    (result,) = match_entries(
        [entry("250.00", remittance=("Facture F-1",), payer="Boulangerie Dupont")], invoices
    )
    # F-2 has exactly the amount, but the payer named F-1, which is owed less: a person decides
    assert (result.status, result.rule) == ("ambiguous", "reference")
    assert result.reason == "pays 150.00 more than the open balance of F-1"
    (partial,) = match_entries([entry("60.00", remittance=("fact. f-1 merci",))], invoices)
    assert (partial.status, partial.rule) == ("matched", "reference")
    assert [(a.invoice_number, a.amount) for a in partial.allocations] == [("F-1", D("60.00"))]


def test_a_number_inside_a_longer_code_is_no_reference():
    (result,) = match_entries([entry("100.00", remittance=("F-12",))], [inv("F-1", "100.00")])
    assert result.status == "unmatched"


def test_several_invoices_named_are_paid_oldest_first():
    invoices = [inv("F230866", "500.00"), inv("F230765", "421.00"), inv("F238765", "400.00")]
    (result,) = match_entries([entry("1321.00", remittance=("F230866 F230765 F238765",))], invoices)
    assert result.status == "matched"
    assert [(a.invoice_number, a.amount) for a in result.allocations] == [
        ("F230866", D("500.00")),
        ("F230765", D("421.00")),
        ("F238765", D("400.00")),
    ]


def test_an_rf_creditor_reference_names_the_invoice():
    assert is_rf_reference("RF18 5390 0754 7034") and not is_rf_reference("RF19539007547034")
    invoices = [inv("539007547034", "80.00")]
    (result,) = match_entries([entry("80.00", structured_references=("RF18539007547034",))], invoices)
    assert (result.status, result.rule) == ("matched", "reference")


def test_then_the_debtor_and_the_exact_amount():
    invoices = [
        inv("F-1", "100.00"),
        inv("F-2", "250.00"),
        inv("F-3", "250.00", debtor="D2", name="Autre SARL"),
    ]
    (result,) = match_entries([entry("250.00", payer="BOULANGERIE DUPONT")], invoices)
    assert (result.status, result.rule, result.debtor_ids) == ("matched", "amount", ("D1",))
    assert [(a.invoice_number, a.amount) for a in result.allocations] == [("F-2", D("250.00"))]


def test_two_invoices_of_the_amount_are_ambiguous():
    invoices = [inv("F-1", "250.00"), inv("F-2", "250.00")]
    (result,) = match_entries([entry("250.00", payer="Boulangerie Dupont")], invoices)
    assert (result.status, result.candidates) == ("ambiguous", (("F-1",), ("F-2",)))
    assert result.allocations == ()


def test_then_a_set_of_the_debtors_invoices_that_adds_up():
    invoices = [inv("F-1", "100.00"), inv("F-2", "250.00"), inv("F-3", "75.50")]
    (result,) = match_entries([entry("175.50", payer="Boulangerie Dupont SAS")], invoices)
    assert (result.status, result.rule) == ("matched", "sum")
    assert {a.invoice_number for a in result.allocations} == {"F-1", "F-3"}
    (two_ways,) = match_entries(
        [entry("350.00", payer="Boulangerie Dupont")], [*invoices, inv("F-4", "274.50")]
    )
    assert two_ways.status == "ambiguous" and set(two_ways.candidates) == {("F-1", "F-2"), ("F-3", "F-4")}


def test_what_is_not_a_payment_or_unknown_is_returned_unmatched():
    invoices = [inv("F-1", "100.00")]
    results = match_entries(
        [
            entry("100.00", ref="debit", credit=False, remittance=("F-1",)),
            entry("100.00", ref="return", remittance=("F-1",), is_return=True, return_reason="AC06"),
            entry("100.00", ref="stranger", payer="Inconnu"),
            entry("100.00", ref="dollars", remittance=("F-1",), currency="USD"),
        ],
        invoices,
    )
    assert [(r.entry.reference, r.status) for r in results] == [
        ("debit", "unmatched"),
        ("return", "unmatched"),
        ("stranger", "unmatched"),
        ("dollars", "unmatched"),
    ]
    assert results[1].reason == "a return or reversal (AC06): not a payment"


def test_a_second_entry_cannot_take_what_the_first_paid():
    invoices = [inv("F-1", "100.00")]
    first, second = match_entries(
        [entry("100.00", ref="a", remittance=("F-1",)), entry("100.00", ref="b", remittance=("F-1",))],
        invoices,
    )
    assert first.status == "matched" and second.status == "unmatched"


# --- invariants --------------------------------------------------------------------------

amounts = st.decimals(min_value=D("0.01"), max_value=D("500.00"), places=2)
names = st.sampled_from(["Boulangerie Dupont", "Atelier Martin", "Café du Port"])


@st.composite
def scenarios(draw):
    invoices = []
    for index in range(draw(st.integers(min_value=0, max_value=12))):
        name = draw(names)
        currency = draw(st.sampled_from(["EUR", "CHF"]))
        invoices.append(OpenInvoice(f"F-{index + 1}", f"D-{name[:3]}", name, draw(amounts), currency))
    numbers = [i.number for i in invoices] or ["F-99"]
    entries = []
    for index in range(draw(st.integers(min_value=0, max_value=8))):
        mentioned = draw(st.lists(st.sampled_from(numbers), max_size=3))
        like = draw(st.sampled_from(invoices)) if invoices and draw(st.booleans()) else None
        entries.append(
            StatementEntry(
                reference=f"E-{index}",
                booking_date=None,
                value_date=None,
                amount=like.balance if like is not None else draw(amounts),
                currency=draw(st.sampled_from(["EUR", "CHF"])),
                credit=draw(st.integers(0, 9)) > 0,
                remittance=(" ".join(mentioned),) if mentioned else (),
                counterparty=draw(st.one_of(st.none(), names)),
                is_return=draw(st.integers(0, 9)) == 0,
            )
        )
    return entries, invoices


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_invariants(scenario):
    entries, invoices = scenario
    results = match_entries(entries, invoices)
    # never dropped: one result per entry, in order (each entry matched at most once)
    assert [r.entry for r in results] == entries
    by_number = {i.number: i for i in invoices}
    taken: dict[str, Decimal] = defaultdict(Decimal)
    for result in results:
        if result.status == "matched":
            # the allocations add up to the entry's amount, each to an invoice of its currency
            assert sum((a.amount for a in result.allocations), D(0)) == result.entry.amount
            assert len({a.invoice_number for a in result.allocations}) == len(result.allocations)
            for allocation in result.allocations:
                assert allocation.amount > 0
                assert by_number[allocation.invoice_number].currency == result.entry.currency
                taken[allocation.invoice_number] += allocation.amount
            assert result.entry.credit and not result.entry.is_return
            if result.rule == "sum":
                assert len(result.allocations) <= MAX_SET_SIZE
        else:
            assert result.allocations == () and result.reason
    # never two entries claiming more than an invoice's balance
    for number, amount in taken.items():
        assert amount <= by_number[number].balance
