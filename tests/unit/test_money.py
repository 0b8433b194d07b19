"""Late-payment penalties, amounts and formatting (handlers.money).

Every expected figure is worked out by hand from the rule in spec/ladder.md: simple interest,
balance x annual rate x days / 365, one rate per calendar half-year, days counted from the
day after the due date through the computation day inclusive, rounded half-up once.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from adapters.orm import InvoiceRow
from config.policy import load_policy, load_rates
from handlers.amounts import rate_function
from handlers.money import MissingRate, format_money, format_rate, late_interest, parse_amount


def flat(amount: str):
    """A balance that never changes."""
    value = Decimal(amount)
    return lambda _day: value


def rates(table: dict[str, str]):
    def rate_for(half_year: str) -> Decimal:
        if half_year not in table:
            raise MissingRate(half_year)
        return Decimal(table[half_year])

    return rate_for


DEFAULT_2026 = rates({"2026-H1": "0.1215", "2026-H2": "0.1215"})


def test_a_delay_within_one_half_year_is_balance_times_rate_times_days_over_365():
    # due 1 March, computed on 31 March: days 2..31 March = 30 days.
    # 1200.00 x 0.1215 x 30 / 365 = 4374 / 365 = 11.98356... -> 11.98
    result = late_interest(date(2026, 3, 1), date(2026, 3, 31), flat("1200.00"), DEFAULT_2026)
    assert result.total == Decimal("11.98")
    (segment,) = result.segments
    assert (segment.half_year, segment.first_day, segment.last_day, segment.days) == (
        "2026-H1",
        date(2026, 3, 2),
        date(2026, 3, 31),
        30,
    )
    assert segment.balance == Decimal("1200.00")
    assert segment.rate == Decimal("0.1215")


def test_a_delay_spanning_two_half_years_uses_each_half_years_rate_and_rounds_once():
    # due 20 June, computed on 10 July:
    #   21..30 June = 10 days at the H1 rate 0.1215: 365 x 0.1215 x 10 / 365 = 1.215
    #   1..10 July  = 10 days at the H2 rate 0.1315: 365 x 0.1315 x 10 / 365 = 1.315
    #   sum 2.530 -> 2.53   (rounding each segment first would give 1.22 + 1.32 = 2.54;
    #   using the H1 rate for all 20 days would give 2.43, the H2 rate 2.63)
    result = late_interest(
        date(2026, 6, 20),
        date(2026, 7, 10),
        flat("365.00"),
        rates({"2026-H1": "0.1215", "2026-H2": "0.1315"}),
    )
    assert result.total == Decimal("2.53")
    assert [(s.half_year, s.first_day, s.last_day, s.days, s.rate) for s in result.segments] == [
        ("2026-H1", date(2026, 6, 21), date(2026, 6, 30), 10, Decimal("0.1215")),
        ("2026-H2", date(2026, 7, 1), date(2026, 7, 10), 10, Decimal("0.1315")),
    ]
    # the segments keep their unrounded amounts
    assert [s.amount for s in result.segments] == [Decimal("1.215"), Decimal("1.315")]


@pytest.mark.parametrize(
    ("rate", "expected_once", "per_segment_would_give"),
    [
        # 2 segments of 10 days, balance 365.00, so each segment = rate x 10 exactly.
        ("0.1215", "2.43", "2.44"),  # 1.215 + 1.215 = 2.430; per segment 1.22 + 1.22
        ("0.12145", "2.43", "2.42"),  # 1.2145 + 1.2145 = 2.429 -> 2.43; per segment 1.21 + 1.21
    ],
)
def test_rounding_happens_once_on_the_sum_not_per_segment(rate, expected_once, per_segment_would_give):
    result = late_interest(
        date(2026, 6, 20), date(2026, 7, 10), flat("365.00"), rates({"2026-H1": rate, "2026-H2": rate})
    )
    assert result.total == Decimal(expected_once)
    assert sum(s.amount_rounded for s in result.segments) == Decimal(per_segment_would_give)


def test_rounding_is_half_up_not_half_even():
    # due 1 March, until 11 March: 10 days; 365.00 x 0.1225 x 10 / 365 = 1.225 -> 1.23
    # (banker's rounding would give 1.22)
    result = late_interest(date(2026, 3, 1), date(2026, 3, 11), flat("365.00"), rates({"2026-H1": "0.1225"}))
    assert result.total == Decimal("1.23")


def test_a_partial_payment_lowers_the_balance_from_the_day_it_takes_effect():
    # 1200.00 due 28 Feb; 500.00 paid on 10 March, so 700.00 unpaid from 11 March.
    #   1..10 March  = 10 days x 1200.00
    #   11..20 March = 10 days x  700.00
    # (1200 x 10 + 700 x 10) x 0.1215 / 365 = 19000 x 0.1215 / 365 = 2308.5 / 365 = 6.3246... -> 6.32
    # (without the split: 1200 x 0.1215 x 20 / 365 = 7.99)
    def balance_on(day: date) -> Decimal:
        return Decimal("1200.00") if day <= date(2026, 3, 10) else Decimal("700.00")

    result = late_interest(
        date(2026, 2, 28), date(2026, 3, 20), balance_on, DEFAULT_2026, change_days=[date(2026, 3, 11)]
    )
    assert result.total == Decimal("6.32")
    assert [(s.first_day, s.last_day, s.days, s.balance) for s in result.segments] == [
        (date(2026, 3, 1), date(2026, 3, 10), 10, Decimal("1200.00")),
        (date(2026, 3, 11), date(2026, 3, 20), 10, Decimal("700.00")),
    ]


def test_no_interest_runs_once_the_balance_is_settled():
    # paid in full on 10 March: only 1..10 March count.
    # 1200 x 0.1215 x 10 / 365 = 1458 / 365 = 3.9945... -> 3.99
    def balance_on(day: date) -> Decimal:
        return Decimal("1200.00") if day <= date(2026, 3, 10) else Decimal("0.00")

    result = late_interest(
        date(2026, 2, 28), date(2026, 3, 31), balance_on, DEFAULT_2026, change_days=[date(2026, 3, 11)]
    )
    assert result.total == Decimal("3.99")
    assert [s.days for s in result.segments] == [10]


def test_a_contractual_rate_replaces_the_legal_one():
    # 1000.00 at a contractual 15 %, due 31 Jan, until 14 April:
    # 1..28 Feb (28) + 1..31 Mar (31) + 1..14 Apr (14) = 73 days
    # 1000 x 0.15 x 73 / 365 = 10950 / 365 = 30.00 exactly
    result = late_interest(date(2026, 1, 31), date(2026, 4, 14), flat("1000.00"), lambda _hy: Decimal("0.15"))
    assert result.total == Decimal("30.00")
    assert sum(s.days for s in result.segments) == 73


def test_a_whole_year_of_delay_counts_365_days_split_181_and_184():
    # due 31 Dec 2025, until 31 Dec 2026: H1 = 31+28+31+30+31+30 = 181 days, H2 = 31+31+30+31+30+31 = 184.
    # 1000 x 0.10 x 365 / 365 = 100.00
    result = late_interest(
        date(2025, 12, 31), date(2026, 12, 31), flat("1000.00"), rates({"2026-H1": "0.10", "2026-H2": "0.10"})
    )
    assert [(s.half_year, s.days) for s in result.segments] == [("2026-H1", 181), ("2026-H2", 184)]
    assert result.total == Decimal("100.00")


def test_a_missing_half_year_is_an_error_naming_it():
    # due 20 Dec 2026, until 10 Jan 2027: January 2027 needs the 2027-H1 rate, absent here.
    with pytest.raises(MissingRate, match="2027-H1") as caught:
        late_interest(date(2026, 12, 20), date(2027, 1, 10), flat("1000.00"), rates({"2026-H2": "0.1215"}))
    assert caught.value.half_year == "2027-H1"


@pytest.mark.parametrize(
    ("due", "until", "expected_days", "expected_total"),
    [
        # until == due date: no day has run yet
        (date(2026, 3, 1), date(2026, 3, 1), 0, "0.00"),
        # before the due date
        (date(2026, 3, 1), date(2026, 2, 20), 0, "0.00"),
        # the day after: 1 day; 1200 x 0.1215 x 1 / 365 = 145.8 / 365 = 0.39945... -> 0.40
        (date(2026, 3, 1), date(2026, 3, 2), 1, "0.40"),
        # two days: 291.6 / 365 = 0.79890... -> 0.80
        (date(2026, 3, 1), date(2026, 3, 3), 2, "0.80"),
    ],
)
def test_days_count_from_the_day_after_the_due_date_through_the_until_day(
    due, until, expected_days, expected_total
):
    result = late_interest(due, until, flat("1200.00"), DEFAULT_2026)
    assert sum(s.days for s in result.segments) == expected_days
    assert result.total == Decimal(expected_total)
    assert str(result.total) == expected_total  # always two decimals


def _invoice(rate: str | None) -> InvoiceRow:
    return InvoiceRow(number="F-1", late_penalty_rate=None if rate is None else Decimal(rate))


def test_the_default_penalty_rate_is_the_ecb_rate_plus_ten_points():
    rate_for = rate_function(_invoice(None), load_policy(), load_rates())
    # 2026-H1: ECB 2.15 % + 10 points = 12.15 %; 2024-H1: 4.50 % + 10 = 14.50 %
    assert rate_for("2026-H1") == Decimal("0.1215")
    assert rate_for("2024-H1") == Decimal("0.1450")


def test_the_default_rate_function_refuses_a_half_year_missing_from_the_table():
    rate_for = rate_function(_invoice(None), load_policy(), load_rates())
    with pytest.raises(MissingRate, match="2027-H1"):
        rate_for("2027-H1")


def test_an_invoices_contractual_rate_wins_over_the_table():
    rate_for = rate_function(_invoice("0.15"), load_policy(), load_rates())
    assert rate_for("2026-H1") == Decimal("0.15")
    assert rate_for("2027-H1") == Decimal("0.15")  # needs no table entry


@pytest.mark.parametrize(
    ("amount", "currency", "language", "expected"),
    [
        ("1234.56", "EUR", "fr", "1 234,56 €"),
        ("1000.00", "EUR", "fr", "1 000,00 €"),
        ("0.50", "EUR", "fr", "0,50 €"),
        ("1234567.80", "EUR", "fr", "1 234 567,80 €"),
        ("1234.56", "EUR", "en", "€1,234.56"),
        ("1000000.00", "EUR", "en", "€1,000,000.00"),
        ("40", "EUR", "en", "€40.00"),
    ],
)
def test_amounts_are_formatted_for_the_debtors_language(amount, currency, language, expected):
    text = format_money(Decimal(amount), currency, language)
    assert text == expected
    assert "\u202f" not in text and "\xa0" not in text  # plain spaces, safe in every mail client


@pytest.mark.parametrize(
    ("rate", "language", "expected"),
    [("0.1215", "fr", "12,15 %"), ("0.1215", "en", "12.15%"), ("0.15", "fr", "15,00 %")],
)
def test_rates_are_formatted_as_percentages(rate, language, expected):
    assert format_rate(Decimal(rate), language) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12.3", "12.30"), ("12", "12.00"), ("1200.00", "1200.00"), ("0.05", "0.05")],
)
def test_an_amount_with_at_most_two_decimals_parses_to_cents(text, expected):
    value = parse_amount(text)
    assert value == Decimal(expected)
    assert str(value) == expected  # exponent -2, not just numerically equal


@pytest.mark.parametrize("text", ["12.345", "0.001", "abc", "", "NaN", "Infinity", "1e400"])
def test_an_amount_with_more_than_two_decimals_or_not_a_number_is_rejected(text):
    with pytest.raises(ValueError):
        parse_amount(text)


class TestImputationInterestFirst:
    """Code civil 1343-1: a partial payment pays accrued penalties before principal."""

    RATE = staticmethod(lambda half_year: Decimal("0.1215"))

    def test_a_late_partial_payment_pays_the_accrued_penalties_first(self):
        from handlers.money import Movement, impute_interest_first

        # 19 days late on 1200.00: 1200 * .1215 * 19 / 365 = 7.58959 -> 7.59 to penalties,
        # 192.41 to principal -> 1007.59; one more day: 1007.59 * .1215 / 365 = 0.33540;
        # still due: 7.58959 + 0.33540 - 7.59 = 0.33499 -> 0.33
        result = impute_interest_first(
            Decimal("1200.00"),
            date(2026, 4, 1),
            date(2026, 4, 21),
            [Movement(date(2026, 4, 20), Decimal("200.00"), "payment")],
            self.RATE,
        )
        assert result.interest_paid == Decimal("7.59")
        assert result.principal == Decimal("1007.59")
        assert result.interest_due == Decimal("0.33")

    def test_a_payment_before_the_due_date_and_a_credit_note_reduce_principal_only(self):
        from handlers.money import Movement, impute_interest_first

        # 1200 - 200 (paid before due) - 100 (credit note 5 April, principal from 6 April):
        # 1000 for 4 days (2-5 April) + 900 for 16 days (6-21 April):
        # (1000*4 + 900*16) * .1215 / 365 = 18400 * .1215 / 365 = 6.12493 -> 6.12
        result = impute_interest_first(
            Decimal("1200.00"),
            date(2026, 4, 1),
            date(2026, 4, 21),
            [
                Movement(date(2026, 3, 20), Decimal("200.00"), "payment"),
                Movement(date(2026, 4, 5), Decimal("100.00"), "credit_note"),
            ],
            self.RATE,
        )
        assert result.interest_paid == Decimal("0.00")
        assert result.principal == Decimal("900.00")
        assert result.interest_due == Decimal("6.12")

    def test_a_payment_smaller_than_the_penalties_leaves_the_principal_untouched(self):
        from handlers.money import Movement, impute_interest_first

        # 100 days late on 10000.00: 10000 * .1215 * 100 / 365 = 332.88 accrued; 50.00 paid
        # all goes to penalties; principal stays 10000.00
        result = impute_interest_first(
            Decimal("10000.00"),
            date(2026, 1, 1),
            date(2026, 4, 11),
            [Movement(date(2026, 4, 11), Decimal("50.00"), "payment")],
            self.RATE,
        )
        assert result.principal == Decimal("10000.00")
        assert result.interest_paid == Decimal("50.00")
        assert result.interest_due == Decimal("282.88")

    def test_a_payment_under_a_plan_reduces_the_principal_only(self):
        from handlers.money import Movement, impute_interest_first

        # 1500 due 31 March, 500 paid under the plan on 15 April: principal 1000 from 16 April;
        # penalties 1500*.1215*15/365 (1-15 April) + 1000*.1215*5/365 (16-20 April)
        #         = 7.48973 + 1.66438 = 9.15411 -> 9.15, none of it paid
        result = impute_interest_first(
            Decimal("1500.00"),
            date(2026, 3, 31),
            date(2026, 4, 20),
            [Movement(date(2026, 4, 15), Decimal("500.00"), "plan_payment")],
            self.RATE,
        )
        assert result.principal == Decimal("1000.00")
        assert result.interest_paid == Decimal("0.00")
        assert result.interest_due == Decimal("9.15")
