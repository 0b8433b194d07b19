"""The competent court named in a case, from the debtor (docs/policy.md, "The competent court").

The kind of court follows from the debtor: the commercial court for a merchant or an
artisan (C. com. L721-3), the tribunal judiciaire otherwise, the tribunal administratif for
a public person. The place is the debtor's (CPC 42; CPC 1406 for the injonction de payer).
relance does not know every court's territorial reach (ressort): it names the kind of court
and the place it must be sought for, and names the court itself only where the debtor's
city is the seat of one of the twelve tribunaux des activités économiques.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from handlers.procedure_table import BUSINESS, PUBLIC

# The twelve commercial courts that sit as tribunaux des activités économiques for the
# experiment of loi n° 2023-1059 du 20 novembre 2023, art. 26 (décret n° 2024-674 du
# 3 juillet 2024), designated by the arrêté du 5 juillet 2024, art. 2: seat -> department
# of its postal codes. Four years from 1 January 2025.
TAE_SEATS: Mapping[str, str] = {
    "Auxerre": "89",
    "Avignon": "84",
    "Le Havre": "76",
    "Le Mans": "72",
    "Limoges": "87",
    "Lyon": "69",
    "Marseille": "13",
    "Nancy": "54",
    "Nanterre": "92",
    "Paris": "75",
    "Saint-Brieuc": "22",
    "Versailles": "78",
}
TAE_FROM, TAE_UNTIL = date(2025, 1, 1), date(2028, 12, 31)
_JUDICIAL_BASIS = "CPC art. 42 (lieu où demeure le défendeur), art. 1406 (injonction de payer)"
_COMMERCIAL_BASIS = f"C. com. art. L721-3 ; {_JUDICIAL_BASIS}"
_TAE_BASIS = f"{_COMMERCIAL_BASIS} ; loi n° 2023-1059 du 20 novembre 2023, art. 26 ; arrêté du 5 juillet 2024"


class DebtorPlace(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def merchant(self) -> bool | None: ...
    @property
    def address(self) -> Mapping[str, Any]: ...
    @property
    def country(self) -> str: ...


@dataclass(frozen=True)
class Court:
    """The court a procedure before a judge goes to, as far as relance can name it."""

    kind: str  # tribunal_des_activites_economiques | tribunal_de_commerce | tribunal_judiciaire
    # | commerce_ou_judiciaire (merchant not said) | tribunal_administratif | etranger
    name: str  # in French
    place: str  # what its territorial reach must cover: "69007 Lyon"
    basis: str
    named: bool  # True: one court named by its seat; False: a kind of court to look up
    note: str  # in French: what to look up, and why


def competent_court(debtor: DebtorPlace, on: date) -> Court:
    """The court for the debtor on the day ``on`` (the TAE exist from 2025 to 2028)."""
    address = debtor.address or {}
    place = " ".join(str(address.get(k) or "").strip() for k in ("postal_code", "city")).strip()
    place = place or "adresse du débiteur non renseignée"
    if debtor.country != "FR":
        return _abroad(debtor.country, place)
    if debtor.kind == PUBLIC:
        return _administrative(place)
    seat = tae_seat(str(address.get("city") or ""), str(address.get("postal_code") or ""), on)
    if debtor.kind == BUSINESS and debtor.merchant is not False:
        return _commercial(place, seat, on, said=debtor.merchant is True)
    artisan = " ; un débiteur artisan relève du tribunal de commerce (C. com. L721-3)"
    return Court(
        "tribunal_judiciaire",
        "tribunal judiciaire",
        place,
        f"COJ art. L211-3 ; {_JUDICIAL_BASIS}",
        False,
        f"chercher le tribunal judiciaire dont le ressort couvre {place}"
        + (artisan if debtor.kind == BUSINESS else ""),
    )


def tae_seat(city: str, postal_code: str, on: date) -> str | None:
    """The seat of the TAE in the debtor's own city on ``on``, if there is one."""
    if not TAE_FROM <= on <= TAE_UNTIL:
        return None
    wanted = _normal(city)
    for seat, department in TAE_SEATS.items():
        if _normal(seat) == wanted and (not postal_code or postal_code.startswith(department)):
            return seat
    return None


def _commercial(place: str, seat: str | None, on: date, said: bool) -> Court:
    if seat is not None:
        name, kind = f"tribunal des activités économiques {_of(seat)}", "tribunal_des_activites_economiques"
        note = f"le débiteur a son siège {_at(seat)}, siège de ce tribunal"
    else:
        name, kind = "tribunal de commerce", "tribunal_de_commerce"
        note = f"chercher le tribunal de commerce dont le ressort couvre {place}"
        if TAE_FROM <= on <= TAE_UNTIL:
            note += " (un tribunal des activités économiques s'il est dans le ressort de l'un des douze)"
        elif on > TAE_UNTIL:
            note += f" ; l'expérimentation des TAE finissait le {TAE_UNTIL:%d/%m/%Y} : vérifier"
    if said:
        return Court(kind, name, place, _TAE_BASIS if seat else _COMMERCIAL_BASIS, seat is not None, note)
    return Court(
        "commerce_ou_judiciaire",
        f"{name} si le débiteur est commerçant ou artisan, tribunal judiciaire sinon",
        place,
        _TAE_BASIS if seat else _COMMERCIAL_BASIS,
        False,
        f"{note} ; le débiteur n'a pas dit s'il est commerçant",
    )


def _administrative(place: str) -> Court:
    return Court(
        "tribunal_administratif",
        "tribunal administratif",
        place,
        "CJA art. R312-1, R312-11",
        False,
        "pour un contrat, le tribunal administratif du lieu de son exécution (R312-11), sinon "
        f"celui du siège de l'autorité (R312-1) ; relance ne connaît que l'adresse de l'acheteur : {place}",
    )


def _abroad(country: str, place: str) -> Court:
    return Court(
        "etranger",
        "juridiction à déterminer",
        f"{place} ({country})",
        "règlement (UE) n° 1215/2012 dans l'Union européenne",
        False,
        f"débiteur établi hors de France ({country}) : relance ne nomme pas de tribunal",
    )


def _at(seat: str) -> str:
    """« à Lyon », « au Havre », « au Mans »."""
    return "au " + seat[3:] if seat.startswith("Le ") else "à " + seat


def _of(seat: str) -> str:
    """« de Lyon », « du Havre », « du Mans »."""
    if seat.startswith("Le "):
        return "du " + seat[3:]
    return ("d'" if seat[0] in "AEIOUY" else "de ") + seat


def _normal(city: str) -> str:
    """A city's name without accents, case, hyphens, arrondissement or CEDEX."""
    text = unicodedata.normalize("NFKD", city).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[-'’.]", " ", text)
    text = re.sub(r"\bcedex\b.*$", "", text)
    text = re.sub(r"\b\d+\s*(e|er|eme)?\s*(arrondissement|arrt?)?\s*$", "", text.strip())
    return " ".join(re.sub(r"\bst\b", "saint", text).split())
