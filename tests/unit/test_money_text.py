"""Amounts as written in messages (handlers.money_text): Babel's text, without Babel per call.

The reference is ``babel.numbers.format_currency`` itself (``babel_money_text``): over random
amounts (negative, zero, large, many decimals), currencies and languages, the two texts are
the same character for character, or both calls raise the same error.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from handlers.money import format_money
from handlers.money_text import babel_money_text, money_text

CURRENCIES = st.sampled_from(["EUR", "USD", "GBP", "CHF", "JPY", "KWD", "XXX", "ABC", "eur"])
LANGUAGES = st.sampled_from(["fr", "en", "de", ""])
AMOUNTS = st.one_of(
    st.decimals(min_value=-(10**15), max_value=10**15, places=2),
    st.integers(0, 12).flatmap(lambda places: st.decimals(-(10**15), 10**15, places=places)),
    st.decimals(allow_nan=False, allow_infinity=False),  # any exponent, any number of digits
    st.integers(-(10**18), 10**18).map(Decimal),
    st.sampled_from([Decimal("0"), Decimal("-0"), Decimal("-0.00"), Decimal("-0.004"), Decimal("0.005")]),
)


def outcome(write, amount, currency, language):
    try:
        return write(amount, currency, language)
    except (InvalidOperation, ValueError) as exc:  # e.g. more digits than the context holds
        return type(exc)


@settings(max_examples=2000, deadline=None)
@given(amount=AMOUNTS, currency=CURRENCIES, language=LANGUAGES)
@example(amount=Decimal("1234567.125"), currency="EUR", language="fr")  # half-even: ,12
@example(amount=Decimal("2.675"), currency="EUR", language="en")
@example(amount=Decimal("1.00500000000000000000000000001"), currency="EUR", language="fr")  # 30 digits
@example(amount=Decimal("1E+30"), currency="EUR", language="fr")
@example(amount=Decimal("-999.995"), currency="JPY", language="en")
def test_an_amount_is_written_as_babel_writes_it(amount, currency, language):
    assert outcome(money_text, amount, currency, language) == outcome(
        babel_money_text, amount, currency, language
    )


@settings(max_examples=300, deadline=None)
@given(amount=st.decimals(min_value=-(10**6), max_value=10**6, places=4), language=LANGUAGES)
def test_the_rounding_is_the_decimal_contexts_as_in_babel(amount, language):
    with localcontext() as context:
        context.rounding = ROUND_HALF_UP
        assert money_text(amount, "EUR", language) == babel_money_text(amount, "EUR", language)


@pytest.mark.parametrize(
    ("amount", "currency", "language", "text"),
    [
        (Decimal("1234.56"), "EUR", "fr", "1 234,56 €"),
        (Decimal("1234.56"), "EUR", "en", "€1,234.56"),
        (Decimal("-1234567.5"), "EUR", "fr", "-1 234 567,50 €"),
        (Decimal("-0.001"), "EUR", "fr", "-0,00 €"),  # Babel keeps the sign of what rounds to zero
        (Decimal("0.005"), "EUR", "fr", "0,00 €"),  # half-even, as Babel under the default context
        (Decimal("40"), "EUR", "de", "40,00 €"),  # any other language is written in French
        (Decimal("1099.98"), "JPY", "en", "JP¥1,100"),
        (Decimal("12"), "USD", "fr", "12,00 $US"),
        (7, "EUR", "fr", "7,00 €"),  # a plain number, as Babel takes it
    ],
)
def test_amounts_read_as_a_debtor_reads_them(amount, currency, language, text):
    assert format_money(amount, currency, language) == text


@pytest.mark.parametrize("amount", [Decimal("Infinity"), Decimal("-Infinity"), Decimal("NaN")])
def test_what_is_not_a_finite_amount_is_left_to_babel(amount):
    assert money_text(amount, "EUR", "fr") == babel_money_text(amount, "EUR", "fr")
