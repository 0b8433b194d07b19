"""Amounts written as Babel writes them, with Babel's per-call work done once.

``babel.numbers.format_currency`` parses its locale, looks up the currency's pattern,
symbol, digits and the locale's symbols on every call: about 45 µs, several times per
message. ``money_text`` takes all of that from Babel once per currency and language
(``_pattern``) and keeps of each call only the decimal operations Babel makes on the
amount, in the same order (so the same rounding, half-even under the current decimal
context) and the grouping of its digits. tests/unit/test_money_text.py checks, over
random amounts and currencies, that the text is Babel's, character for character.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal

from babel import Locale
from babel.numbers import (
    format_currency,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_quantum,
    get_decimal_symbol,
    get_group_symbol,
)

LOCALES = {"fr": "fr_FR", "en": "en_GB"}
DEFAULT_LOCALE = "fr_FR"
_SPACES = str.maketrans({"\u202f": " ", "\xa0": " "})  # narrow and no-break spaces, as typed


@dataclass(frozen=True, slots=True)
class _Pattern:
    """A locale's currency pattern for one currency, its symbols substituted, spaces plain."""

    prefixes: tuple[str, str]  # positive, negative
    suffixes: tuple[str, str]
    group: str
    decimal: str
    first_group: int
    next_group: int
    min_digits: int
    quantum: Decimal
    digits: int  # the currency's decimal digits
    scale: int

    def write(self, amount: Decimal) -> str:
        """``NumberPattern.apply(amount, locale, currency=...)``'s steps, for a finite amount."""
        value = amount.scaleb(self.scale)
        negative = int(value.is_signed())
        rounded = abs(value).normalize().quantize(self.quantum)
        whole, _, fraction = f"{rounded:f}".partition(".")
        number = self._grouped(whole)
        if self.digits:
            number += self.decimal + fraction.ljust(self.digits, "0")
        return self.prefixes[negative] + number + self.suffixes[negative]

    def _grouped(self, digits: str) -> str:
        digits = digits.rjust(self.min_digits, "0")
        size, groups = self.first_group, []
        while len(digits) > size:
            groups.append(digits[-size:])
            digits = digits[:-size]
            size = self.next_group
        groups.append(digits)
        return self.group.join(reversed(groups))


def money_text(amount: Decimal, currency: str, language: str) -> str:
    """``format_currency(amount, currency, locale=...)`` for ``language`` (French unless
    English), its narrow and no-break spaces written as plain spaces: ``1 234,56 €``,
    ``€1,234.56``."""
    if not isinstance(amount, Decimal):
        amount = Decimal(str(amount))  # as Babel takes any number
    pattern = _pattern(currency, language) if amount.is_finite() else None
    if pattern is None:
        return babel_money_text(amount, currency, language)
    return pattern.write(amount)


def babel_money_text(amount: Decimal, currency: str, language: str) -> str:
    """The same text from Babel itself: the reference, and the path for what ``_Pattern``
    does not write (infinities, NaN, patterns with exponents or quoted text)."""
    text = format_currency(amount, currency, locale=LOCALES.get(language, DEFAULT_LOCALE))
    return text.translate(_SPACES)


@functools.lru_cache(maxsize=256)
def _pattern(currency: str, language: str) -> _Pattern | None:
    """What ``format_currency`` looks up for this currency and language, once; None when
    its pattern is one ``_Pattern`` does not write as Babel does."""
    locale = Locale.parse(LOCALES.get(language, DEFAULT_LOCALE))
    pattern = locale.currency_formats["standard"]
    affixes = (*pattern.prefix, *pattern.suffix)
    if pattern.exp_prec or "@" in pattern.pattern or "'" in "".join(affixes) or "¤¤¤" in "".join(affixes):
        return None
    symbol = get_currency_symbol(currency, locale)

    def affix(text: str) -> str:  # the currency replaced as Babel replaces it
        if "¤" in text:
            text = text.replace("¤¤", currency.upper()).replace("¤", symbol)
        return text.translate(_SPACES)

    digits = get_currency_precision(currency)
    return _Pattern(
        prefixes=(affix(pattern.prefix[0]), affix(pattern.prefix[1])),
        suffixes=(affix(pattern.suffix[0]), affix(pattern.suffix[1])),
        group=get_group_symbol(locale).translate(_SPACES),
        decimal=get_decimal_symbol(locale).translate(_SPACES),
        first_group=pattern.grouping[0],
        next_group=pattern.grouping[1],
        min_digits=pattern.int_prec[0],
        quantum=get_decimal_quantum(digits),
        digits=digits,
        scale=pattern.scale,
    )
