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


# --- insolvency: interest stops the day before the judgment, for pre-judgment claims only ----

JUDGMENT = date(2026, 4, 10)
IN_PROCEEDINGS = DebtorFacts(
    id="D-1",
    name="ACME Industrie SAS",
    kind="business",
    insolvency_procedure="redressement",
    insolvency_judgment_date=JUDGMENT,
)


def claim(due: date, delivered: date, issued: date | None = None) -> InvoiceFacts:
    # no contractual rate: the 2026-H1 default, ECB 2.15 % + 10 points = 12.15 %
    return InvoiceFacts(
        id=2,
        number="F-2",
        debtor_id="D-1",
        status="open",
        currency="EUR",
        amount_due=Decimal("1200.00"),
        paid=Decimal("0.00"),
        credited=Decimal("0.00"),
        issue_date=issued or delivered,
        due_date=due,
        delivered_on=delivered,
    )


def test_a_pre_judgment_claim_earns_interest_up_to_the_day_before_the_judgment():
    # 1200.00 due 1 April 2026, delivered in March, judgment 10 April (effective at 0 h):
    # 2 to 9 April = 8 days x 1200 x 12.15 % / 365 = 3.1956... -> 3.20, and the 40 € it owed
    # by then; counted on the judgment day or two months later, the same (L622-28)
    before = claim(date(2026, 4, 1), date(2026, 3, 2))
    for day in (JUDGMENT, date(2026, 6, 10)):
        found = amounts_on(before, IN_PROCEEDINGS, day, POLICY, RATES, with_penalties=True, movements=[])
        assert (found.late_interest, found.indemnity) == (Decimal("3.20"), Decimal("40.00"))
        assert found.interest is not None and found.interest.segments[-1].last_day == date(2026, 4, 9)


def test_a_claim_delivered_before_the_judgment_but_invoiced_after_it_stops_there_too():
    # delivered 8 April, invoiced 15 April, due 30 April: never late before the judgment,
    # so no interest and no indemnity (it may only be declared)
    late = claim(date(2026, 4, 30), date(2026, 4, 8), issued=date(2026, 4, 15))
    found = amounts_on(
        late, IN_PROCEEDINGS, date(2026, 6, 10), POLICY, RATES, with_penalties=True, movements=[]
    )
    assert (found.late_interest, found.indemnity) == (Decimal("0.00"), Decimal("0.00"))


def test_a_claim_due_the_day_before_the_judgment_was_never_late_before_it():
    # due 9 April: late from 10 April, the judgment day, which accrues nothing: no interest,
    # no indemnity. Due 8 April: late on 9 April only: 1200 x 12.15 % / 365 = 0.399... -> 0.40
    eve = claim(date(2026, 4, 9), date(2026, 3, 2))
    found = amounts_on(eve, IN_PROCEEDINGS, JUDGMENT, POLICY, RATES, with_penalties=True, movements=[])
    assert (found.late_interest, found.indemnity) == (Decimal("0.00"), Decimal("0.00"))
    one_day = claim(date(2026, 4, 8), date(2026, 3, 2))
    found = amounts_on(one_day, IN_PROCEEDINGS, JUDGMENT, POLICY, RATES, with_penalties=True, movements=[])
    assert (found.late_interest, found.indemnity) == (Decimal("0.40"), Decimal("40.00"))


def test_a_claim_born_after_the_judgment_keeps_its_penalties_and_its_indemnity():
    # delivered 15 April (after the judgment, L622-17), due 15 May; at the formal notice of
    # 24 June (D+40): 16 May to 24 June = 16 + 24 = 40 days x 1200 x 12.15 % / 365
    # = 15.978... -> 15.98, and 40 €
    after = claim(date(2026, 5, 15), date(2026, 4, 15))
    found = amounts_on(
        after, IN_PROCEEDINGS, date(2026, 6, 24), POLICY, RATES, with_penalties=True, movements=[]
    )
    assert (found.late_interest, found.indemnity) == (Decimal("15.98"), Decimal("40.00"))
