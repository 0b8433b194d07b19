"""Penalties at the rate of each half-year of the built-in table, and the 3 x legal floor."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from config.policy import load_policy, load_rates
from handlers.amounts import amounts_on, legal_floor
from handlers.dunning import DebtorFacts, InvoiceFacts

POLICY = load_policy()
RATES = load_rates()
BUSINESS = DebtorFacts(id="D-1", name="ACME Industrie SAS", kind="business")


def invoice(amount: str, due: date, rate: str | None = None) -> InvoiceFacts:
    return InvoiceFacts(
        id=1,
        number="F-1",
        debtor_id="D-1",
        status="open",
        currency="EUR",
        amount_due=Decimal(amount),
        paid=Decimal("0.00"),
        credited=Decimal("0.00"),
        issue_date=due.replace(day=1),
        due_date=due,
        late_penalty_rate=None if rate is None else Decimal(rate),
    )


def on(inv: InvoiceFacts, day: date):
    return amounts_on(inv, BUSINESS, day, POLICY, RATES, with_penalties=True, movements=[])


@pytest.fixture
def log_lines(json_logs):
    """The JSON log lines written while the test runs (``json_logs`` of tests/conftest.py)."""
    return json_logs


def test_an_invoice_due_30_june_2026_owes_12_40_percent_from_1_july(log_lines):
    # ECB 2.40 % in force on 1 July 2026 (decision of 11 June) + 10 points = 12.40 %;
    # 1 to 31 July = 31 days: 10 000 x 0.124 x 31 / 365 = 105.3150... -> 105.32
    found = on(invoice("10000.00", date(2026, 6, 30)), date(2026, 7, 31))
    assert found.late_interest == Decimal("105.32")
    assert found.rate == Decimal("0.1240")
    assert [(s.half_year, s.days) for s in found.interest.segments] == [("2026-H2", 31)]
    # the ECB rate of 2026-H2 is confirmed: no rate.unconfirmed any more
    assert not [line for line in log_lines() if line["event"] == "rate.unconfirmed"]


def test_a_delay_across_1_july_2026_is_split_at_12_15_then_12_40_percent():
    # due 20 June 2026: 21 to 30 June = 10 days at 2.15 + 10 = 12.15 %:
    #   10 000 x 0.1215 x 10 / 365 = 33.2876...
    # 1 to 31 July = 31 days at 12.40 %: 105.3150...; together 138.6027... -> 138.60
    found = on(invoice("10000.00", date(2026, 6, 20)), date(2026, 7, 31))
    assert [(s.half_year, s.days, s.rate) for s in found.interest.segments] == [
        ("2026-H1", 10, Decimal("0.1215")),
        ("2026-H2", 31, Decimal("0.1240")),
    ]
    assert found.late_interest == Decimal("138.60")
    assert found.rate is None  # two rates: none shown alone


def test_a_claim_of_2010_computes_at_ecb_1_percent_plus_10_points():
    # ECB 1.00 % in force on 1 January 2010 + 10 = 11 %; 1 to 30 April 2010 = 30 days:
    # 1 000 x 0.11 x 30 / 365 = 9.0410... -> 9.04
    found = on(invoice("1000.00", date(2010, 3, 31)), date(2010, 4, 30))
    assert found.rate == Decimal("0.1100")
    assert found.late_interest == Decimal("9.04")


def test_a_claim_of_2009_h1_uses_the_rate_of_1_january_not_the_later_cuts():
    # ECB 2.50 % on 1 January 2009 (the cut to 2.00 % took effect on 21 January) + 10 =
    # 12.50 %; 1 to 28 February 2009 = 28 days: 1 000 x 0.125 x 28 / 365 = 9.5890... -> 9.59
    found = on(invoice("1000.00", date(2009, 1, 31)), date(2009, 2, 28))
    assert (found.rate, found.late_interest) == (Decimal("0.1250"), Decimal("9.59"))


def test_the_2022_floor_is_3_times_the_legal_rate_of_other_cases():
    # 2022-H1 and 2022-H2: legal rate of other cases 0.76 % and 0.77 %
    assert legal_floor(RATES.rates["2022-H1"]) == Decimal("0.0228")  # 3 x 0.76 %
    assert legal_floor(RATES.rates["2022-H2"]) == Decimal("0.0231")  # 3 x 0.77 %


def test_a_contractual_rate_below_3_x_0_76_percent_in_2022_is_logged_and_still_used(log_lines):
    # 2.27 % < 3 x 0.76 % = 2.28 %: warned; 1 to 31 March 2022 = 31 days:
    # 1 000 x 0.0227 x 31 / 365 = 1.9279... -> 1.93 (the contractual rate is not rewritten)
    found = on(invoice("1000.00", date(2022, 2, 28), rate="0.0227"), date(2022, 3, 31))
    assert found.late_interest == Decimal("1.93")
    floors = [line for line in log_lines() if line["event"] == "rate.below_legal_floor"]
    assert [(w["half_year"], w["rate"], w["floor"], w["unconfirmed"]) for w in floors] == [
        ("2022-H1", "0.0227", "0.0228", False)
    ]


def test_a_contractual_rate_at_the_2022_floor_is_not_logged(log_lines):
    on(invoice("1000.00", date(2022, 2, 28), rate="0.0228"), date(2022, 3, 31))
    assert not [line for line in log_lines() if line["event"] == "rate.below_legal_floor"]


def test_the_floor_of_2026_h2_says_its_legal_rate_is_unconfirmed(log_lines):
    # 8 % < 3 x 2.75 % = 8.25 % (2.75 %: the 2026-H2 legal rate, not yet checked in the JO)
    on(invoice("1000.00", date(2026, 6, 30), rate="0.08"), date(2026, 7, 31))
    floors = [line for line in log_lines() if line["event"] == "rate.below_legal_floor"]
    assert [(w["floor"], w["unconfirmed"]) for w in floors] == [("0.0825", True)]
