"""The creditor's identity on its letters: checks of the SIREN and the VAT number, and the
legal mentions line (C. com. R123-237, L123-1 and R123-238).

Pure functions of strings and of the policy's ``Creditor``; the policy validates with them
at start-up, the templates and the PDF letters print ``legal_mention``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from handlers.money import format_money

if TYPE_CHECKING:
    from handlers.policy import Creditor

# legal forms without a share capital to state: an individual entrepreneur
WITHOUT_CAPITAL = ("EI", "EIRL", "ENTREPRENEUR INDIVIDUEL")


def compact(value: str) -> str:
    """``value`` without spaces, dots or dashes, in capitals: ``"fr 11 123.456.782"`` →
    ``"FR11123456782"``."""
    return "".join(ch for ch in value if ch not in " .-\u00a0\u202f").upper()


def siren_problem(siren: str) -> str | None:
    """Why ``siren`` is not a SIREN (9 digits whose Luhn check holds), or None."""
    if len(siren) != 9 or not siren.isdigit():
        return f"a SIREN is 9 digits (got {siren!r})"
    if not _luhn_holds(siren):
        return f"{siren!r} is not a valid SIREN: its check digit (Luhn) is wrong"
    return None


def _luhn_holds(digits: str) -> bool:
    """The Luhn check: from the right, every second digit doubled (less 9 above 9); the sum
    is a multiple of 10."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def iban_problem(iban: str) -> str | None:
    """Why ``iban`` (compacted) is not an IBAN: its country's length and format and its
    check digits (ISO 13616), as the schwifty library knows them; None when it is one."""
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    try:
        IBAN(iban)
    except SchwiftyException as exc:
        return f"{iban!r} is not a valid IBAN: {exc}"
    return None


def is_seller(creditor: Creditor, siren: str | None, vat: str | None) -> bool | None:
    """Whether an invoice's seller (its SIREN, its VAT number) is ``creditor``: True when a
    SIREN or VAT number both state agrees (a French VAT number holds the SIREN), False when
    the creditor states one and the seller's differ or are missing, None when the creditor
    states neither (there is nothing to compare)."""
    ours = {creditor.siren, creditor.vat_number, _siren_in(creditor.vat_number)} - {None}
    if not ours:
        return None
    theirs = ({compact(v) for v in (siren, vat) if v} | {_siren_in(compact(vat) if vat else None)}) - {None}
    return bool(ours & theirs)


def _siren_in(vat: str | None) -> str | None:
    return vat[4:] if vat and vat.startswith("FR") and len(vat) == 13 else None


def french_vat_key(siren: str) -> str:
    """The two-digit key of the French VAT number of ``siren``: (12 + 3 × (SIREN mod 97)) mod 97."""
    return f"{(12 + 3 * (int(siren) % 97)) % 97:02d}"


def vat_problem(vat: str, siren: str | None) -> str | None:
    """Why ``vat`` (compacted) is not a VAT number, or None.

    A French number is ``FR``, the key and the SIREN: the SIREN must pass its own check, the
    key must be the one computed from it, and it must be the creditor's ``siren`` when that
    is given. Another country's number is only checked for its shape (2 letters, 2 to 13
    letters or digits).
    """
    if not (4 <= len(vat) <= 15 and vat[:2].isalpha() and vat[2:].isalnum()):
        return f"a VAT number is a country code and 2 to 13 letters or digits (got {vat!r})"
    if not vat.startswith("FR"):
        return None
    key, number = vat[2:4], vat[4:]
    if len(vat) != 13 or not key.isdigit():
        return f"a French VAT number is FR, a 2-digit key and the 9-digit SIREN (got {vat!r})"
    problem = siren_problem(number)
    if problem is not None:
        return problem
    if key != french_vat_key(number):
        return f"{vat!r}: the key should be {french_vat_key(number)} for SIREN {number}"
    if siren is not None and number != siren:
        return f"{vat!r} is not the VAT number of SIREN {siren} (it holds {number})"
    return None


def missing_mentions(creditor: Creditor) -> list[str]:
    """The keys of ``[creditor]`` a company's letters need and the policy leaves out."""
    missing = [key for key in ("legal_form", "siren", "rcs_city") if getattr(creditor, key) is None]
    without_capital = (creditor.legal_form or "").upper() in WITHOUT_CAPITAL
    if creditor.share_capital is None and not without_capital:
        missing.insert(1, "share_capital")
    return missing


def legal_mention(creditor: Creditor, language: str = "fr") -> str:
    """One line: ``<name>, <legal_form> au capital de <capital> €, RCS <city> <SIREN>, TVA <vat>``.

    Parts the policy leaves out are left out; with none of them, the line is the name alone.
    """
    english = language == "en"
    parts = [creditor.name]
    company = _form_and_capital(creditor, english)
    if company:
        parts.append(company)
    registry = _registry(creditor)
    if registry:
        parts.append(registry)
    if creditor.vat_number:
        parts.append(f"{'VAT' if english else 'TVA'} {creditor.vat_number}")
    return ", ".join(parts)


def _form_and_capital(creditor: Creditor, english: bool) -> str:
    if creditor.share_capital is None:
        return creditor.legal_form or ""
    capital = _capital(creditor.share_capital, "en" if english else "fr")
    words = f"with a share capital of {capital}" if english else f"au capital de {capital}"
    return f"{creditor.legal_form} {words}" if creditor.legal_form else words


def _capital(amount: Decimal, language: str) -> str:
    """``10 000 €`` (no cents when there are none), ``€10,000`` in English."""
    text = format_money(amount, "EUR", language)
    if amount == amount.to_integral_value():
        text = text.replace(",00", "") if language == "fr" else text.replace(".00", "")
    return text


def _registry(creditor: Creditor) -> str:
    """``RCS Paris 123 456 782``; ``SIREN 123 456 782`` without the registry's city."""
    siren = " ".join((creditor.siren[:3], creditor.siren[3:6], creditor.siren[6:])) if creditor.siren else ""
    if creditor.rcs_city:
        return f"RCS {creditor.rcs_city} {siren}".rstrip()
    return f"SIREN {siren}" if siren else ""
