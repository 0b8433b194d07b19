"""What relance reads in the free text of an invoice's payment terms (BT-20) and notes (BT-22).

EN 16931 has no structured payment term, only a due date (BT-9) and text. When the due date
is missing, a term written in one of a few common forms gives it; anything else, or two
different terms, gives nothing (the invoice is then refused, naming BT-9).
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal


def _plain(text: str) -> str:
    """Lower case without accents: « à réception » and "A RECEPTION" read the same."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


_IMMEDIATE = re.compile(
    r"\b(?:comptant|paiement immediat|payable immediatement|a reception|des reception|"
    r"upon receipt|on receipt|due on receipt|immediate payment)\b"
)
# "30 jours", "30 j", "45 jours fin de mois", "net 30", "30 days", "14 dagen", "30 Tage"
_DAYS = re.compile(
    r"\b(?:net\s+(?P<net>[0-9]{1,3})|(?P<days>[0-9]{1,3})\s*(?:jours?|j|days?|dagen|tage)\b"
    r"(?P<eom>\s*(?:fin de mois|end of month))?)"
)


def due_date_from_terms(issue_date: date, terms: Iterable[str]) -> date | None:
    """The due date that payment terms written as text give, or None.

    "N jours" / "N days" / "net N" count N days from the issue date; "N jours fin de mois"
    counts N days and then goes to the end of that month (the reading of C. com. L441-10 I
    most used in France); "comptant", « à réception », "upon receipt" mean the issue date.
    Two different terms (or none) give None: relance does not guess.
    """
    found: set[tuple[int, bool]] = set()
    for text in terms:
        plain = _plain(text)
        if _IMMEDIATE.search(plain):
            found.add((0, False))
        for match in _DAYS.finditer(plain):
            days = int(match.group("net") or match.group("days"))
            found.add((days, bool(match.group("eom"))))
    if len(found) != 1:
        return None
    days, end_of_month = found.pop()
    due = issue_date + timedelta(days=days)
    if end_of_month:
        due = due.replace(day=calendar.monthrange(due.year, due.month)[1])
    return due


# "pénalités de retard : 12 %", "taux des pénalités de retard 10,5 % l'an", "late payment
# interest 8%": a percentage after a word of penalties, in the same sentence
_PENALTY_RATE = re.compile(
    r"(?:penalites?|penalty|penalties|interets? de retard|late payment interest)"
    r"[^.%;]{0,80}?(?<![0-9])([0-9]{1,2}(?:[.,][0-9]{1,4})?)\s*%"
)


def penalty_rate(texts: Iterable[str]) -> Decimal | None:
    """The annual late-payment penalty rate stated as a percentage, e.g. 0.12, or None
    when the texts state none or several different ones. A rate stated as a multiple of the
    legal rate ("3 fois le taux d'intérêt légal") is not a number relance can store: the
    policy's rate then applies."""
    rates = set()
    for text in texts:
        for match in _PENALTY_RATE.finditer(_plain(text)):
            if re.search(r"fois|times", match.group(0)):
                continue
            rates.add(Decimal(match.group(1).replace(",", ".")) / 100)
    if len(rates) != 1:
        return None
    rate = rates.pop()
    return rate.normalize() if 0 < rate <= 1 else None


_PENALTIES = re.compile(r"penalite|penalty|penalties|interets? de retard|late payment interest")
_INDEMNITY = re.compile(
    r"indemnite forfaitaire|frais de recouvrement|40\s*(?:€|eur|euros?)\b|recovery (?:cost|fee|compensation)"
)


def l441_missing(texts: Iterable[str]) -> list[str]:
    """The mentions C. com. L441-9 I requires on an invoice between professionals that the
    texts lack: « le taux des pénalités exigibles » and « le montant de l'indemnité
    forfaitaire pour frais de recouvrement » (40 €, D441-5)."""
    plain = " ".join(_plain(text) for text in texts)
    missing = []
    if not _PENALTIES.search(plain):
        missing.append("the late-payment penalty rate")
    if not _INDEMNITY.search(plain):
        missing.append("the 40 € recovery indemnity")
    return missing
