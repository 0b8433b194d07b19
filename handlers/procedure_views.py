"""A case's procedures as they are shown: the recommended one and the alternatives, each with
its legal basis and conditions, worded as options (summary.json and summary.md of the
dossier, ``relance case show``, the hand-over's JSON document).

The case stores the procedures' codes only; their details come from the table
(``handlers.procedure_table``) when they are shown, and what is still to check from the
case's facts of that moment (a debtor whose being a merchant was not said).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from handlers.courts import DebtorPlace, competent_court
from handlers.money import format_money
from handlers.policy import Policy
from handlers.procedure_table import BUSINESS, KINDS, PRIVATE, PUBLIC, Procedure
from handlers.procedures import Claim, DebtorFacts, InvoiceFacts, claim_of, table_for, unknown

ROLES = ("recommended", "alternative")


class CaseFacts(Protocol):
    @property
    def recommended_procedure(self) -> str: ...
    @property
    def alternatives(self) -> Sequence[str]: ...
    @property
    def amount_claimed(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...


class CaseDebtor(DebtorFacts, DebtorPlace, Protocol):
    """A debtor as the procedures and the competent court read it."""


_KINDS_FR = {
    KINDS: "tout débiteur",
    PRIVATE: "débiteur professionnel ou consommateur (pas une personne publique)",
    frozenset({BUSINESS}): "débiteur professionnel",
    frozenset({PUBLIC}): "débiteur personne publique",
}
_TO_CHECK_FR = {
    "debtor_merchant": "le débiteur est-il commerçant ? (non renseigné)",
}


def conditions_fr(row: Procedure) -> list[str]:
    """The row's conditions in French, one short phrase each."""
    phrases = [_KINDS_FR.get(row.debtor_kinds, "débiteur : " + ", ".join(sorted(row.debtor_kinds)))]
    phrases.append(
        "créance née avant le jugement d'ouverture d'une procédure collective du débiteur"
        if row.insolvent
        else "débiteur hors procédure collective, ou créance née après le jugement d'ouverture"
    )
    if row.contested is not None:
        phrases.append(
            "créance contestée (une facture contestée, même si la contestation a été rejetée)"
            if row.contested
            else "créance non contestée"
        )
    if row.debtor_merchant:
        phrases.append("débiteur commerçant")
    if row.creditor_merchant:
        phrases.append("créancier commerçant")
    if row.amount_limit is not None and row.limit_currency is not None:
        limit = format_money(row.amount_limit, row.limit_currency, "fr")
        phrases.append(f"total réclamé d'au plus {limit}, pour une créance en {row.limit_currency}")
    return phrases


def applies_when(row: Procedure) -> dict[str, Any]:
    """The row's conditions for software: None means any."""
    return {
        "debtor_kinds": sorted(row.debtor_kinds),
        "insolvent": row.insolvent,
        "contested": row.contested,
        "debtor_merchant": row.debtor_merchant,
        "creditor_merchant": row.creditor_merchant,
        "amount_limit": str(row.amount_limit) if row.amount_limit is not None else None,
        "limit_currency": row.limit_currency,
    }


def procedure_view(code: str, role: str, claim: Claim, table: Sequence[Procedure]) -> dict[str, Any]:
    """One procedure of a case, as summary.json and the hand-over document state it."""
    row = next((r for r in table if r.code == code), None)
    if row is None:  # a code the table does not have: shown as stored, without details
        lists: dict[str, list[str]] = {key: [] for key in ("conditions", "to_check", "supply")}
        blanks = dict.fromkeys(("basis", "applies_when", "acts", "court", "note"))
        return {"code": code, "role": role, "name_fr": code, "name_en": code, **blanks, **lists}
    return {
        "code": row.code,
        "role": role,
        "name_fr": row.name_fr,
        "name_en": row.name_en,
        "basis": row.basis,
        "conditions": conditions_fr(row),
        "applies_when": applies_when(row),
        "to_check": [_TO_CHECK_FR.get(name, name) for name in unknown(row, claim)],
        "acts": row.acts,
        "court": row.court,
        "supply": list(row.supply),
        "note": row.note or None,
    }


def case_procedures(
    recommended: str, alternatives: Sequence[str], claim: Claim, table: Sequence[Procedure]
) -> list[dict[str, Any]]:
    """The recommended procedure first, then the alternatives in the table's order."""
    views = [procedure_view(recommended, "recommended", claim, table)] if recommended else []
    return views + [procedure_view(code, "alternative", claim, table) for code in alternatives]


def legal_bases(codes: Sequence[str], table: Sequence[Procedure]) -> dict[str, str]:
    """The legal basis of each code, for the evidence record of an escalation."""
    known = {r.code: r.basis for r in table}
    return {code: known[code] for code in codes if code in known}


def case_options(
    case: CaseFacts, debtor: CaseDebtor, invoices: Sequence[InvoiceFacts], policy: Policy, on: date
) -> dict[str, Any]:
    """The case's ``procedures`` (recommended, then alternatives) and its ``competent_court``
    on the day ``on``, as summary.json and the hand-over document state them."""
    claim = claim_of(debtor, invoices, case.amount_claimed, policy.creditor.merchant, case.currency)
    procedures = case_procedures(case.recommended_procedure, case.alternatives, claim, table_for(policy))
    return {"procedures": procedures, "competent_court": asdict(competent_court(debtor, on))}
