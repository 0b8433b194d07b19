"""The amounts of an invoice from its movements alone: no store is read."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from config.policy import load_policy, load_rates
from handlers.amounts import amounts_on, owed_beside_principal, penalties_run
from handlers.dunning import DebtorFacts, InvoiceFacts
from handlers.money import Movement

POLICY = load_policy()
RATES = load_rates()
BUSINESS = DebtorFacts(id="D-1", name="ACME Industrie SAS", kind="business")
CONSUMER = DebtorFacts(id="D-2", name="Jeanne Martin", kind="consumer")


def invoice(paid: str = "0.00") -> InvoiceFacts:
    # a contractual rate of 10 % a year, so no rate table entry is needed
    return InvoiceFacts(
        id=1,
        number="F-1",
        debtor_id="D-1",
        status="open",
        currency="EUR",
        amount_due=Decimal("1000.00"),
        paid=Decimal(paid),
        credited=Decimal("0.00"),
        issue_date=date(2026, 1, 2),
        due_date=date(2026, 1, 31),
        late_penalty_rate=Decimal("0.10"),
    )


def test_penalties_on_an_unpaid_business_invoice_run_on_the_whole_principal():
    # 1 February to 2 March: 28 + 2 = 30 days; 1000.00 x 10 % x 30 / 365 = 8.219... -> 8.22
    found = amounts_on(
        invoice(), BUSINESS, date(2026, 3, 2), POLICY, RATES, with_penalties=True, movements=[]
    )
    assert (found.balance, found.late_interest, found.indemnity) == (
        Decimal("1000.00"),
        Decimal("8.22"),
        Decimal("40.00"),
    )


def test_a_payment_given_as_a_movement_lowers_the_principal_the_penalties_run_on():
    # 1000.00 late from 1 February to the day of the payment, 16 February, included:
    # 1000.00 x 10 % x 16 / 365 = 4.383... -> 4.38, and nothing after it
    paid = [Movement(date(2026, 2, 16), Decimal("1000.00"), "payment")]
    with_payment = amounts_on(
        invoice("1000.00"), BUSINESS, date(2026, 3, 2), POLICY, RATES, with_penalties=True, movements=paid
    )
    assert with_payment.balance == Decimal("0.00")
    assert with_payment.late_interest == Decimal("4.38")


def test_no_penalty_runs_for_a_consumer_so_its_movements_are_not_needed():
    assert not penalties_run(invoice(), CONSUMER, date(2026, 3, 2), POLICY)
    found = amounts_on(
        invoice(), CONSUMER, date(2026, 3, 2), POLICY, RATES, with_penalties=True, movements=[]
    )
    assert (found.late_interest, found.indemnity) == (Decimal("0.00"), Decimal("0.00"))


def test_what_is_owed_beside_a_paid_principal_runs_until_the_last_movement():
    # paid in two halves, the last on 2 March: the penalties run until that day
    moves = [
        Movement(date(2026, 2, 15), Decimal("500.00"), "payment"),
        Movement(date(2026, 3, 2), Decimal("500.00"), "payment"),
    ]
    owed = owed_beside_principal(invoice("1000.00"), BUSINESS, POLICY, RATES, moves)
    full = amounts_on(invoice(), BUSINESS, date(2026, 3, 2), POLICY, RATES, with_penalties=True, movements=[])
    assert owed is not None
    assert owed.indemnity == Decimal("40.00")
    # 1000.00 from 1 to 15 February (15 days): 4.1095...; 500.00 from 16 February to
    # 2 March (13 + 2 = 15 days): 2.0547...; 6.1643... -> 6.16, below the 8.22 of no payment
    assert owed.late_interest == Decimal("6.16") < full.late_interest
    assert owed_beside_principal(invoice("1000.00"), BUSINESS, POLICY, RATES, []) is None
