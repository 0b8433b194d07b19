"""The reasons a case stores, in French for the French dossier and ``relance case show``.

A case keeps its reasons as written when it was opened (English, in the evidence and the
hand-over document, where tools read them). The French summary shows each one in French:
the known forms (handlers/procedures.py, handlers/insolvency.py) are rewritten with their
figures, dates and names kept; a reason of another form is shown as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from babel.dates import format_date

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

_PROCEDURES = {
    "sauvegarde": "sauvegarde",
    "redressement": "redressement judiciaire",
    "liquidation": "liquidation judiciaire",
}
_ROLES = {"the liquidator": "au liquidateur", "the mandataire judiciaire": "au mandataire judiciaire"}
_STAGES = {"liquidation": "liquidation", "plan": "plan adopté", "closed": "clôturée", "opened": "ouverte"}


def _day(text: str) -> str:
    return format_date(date.fromisoformat(text), "d MMMM y", locale="fr_FR")


def _procedure(name: str) -> str:
    return _PROCEDURES.get(name, name)


def _receiver(text: str) -> str:
    for role, french in _ROLES.items():
        if text.startswith(role):
            rest = text[len(role) :]
            return french + rest.replace(
                " (name and address not recorded yet)", " (nom et adresse pas encore connus)"
            )
    return text


RULES: tuple[Rule, ...] = (
    (
        re.compile(r"^debtor in (\w+) proceedings$"),
        lambda m: f"débiteur en procédure de {_procedure(m[1])}",
    ),
    (
        re.compile(r"^invoice\(s\) disputed: (.+?)( \(public debtor: the administrative judge\))?$"),
        lambda m: (
            f"facture(s) contestée(s) : {m[1]}"
            + (" (personne publique : le juge administratif)" if m[2] else "")
        ),
    ),
    (
        re.compile(r"^uncontested claim of (\S+) (\w{3}) on a public person: no injonction de payer$"),
        lambda m: (
            f"créance non contestée de {m[1]} {m[2]} sur une personne publique : pas d'injonction de payer"
        ),
    ),
    (
        re.compile(
            r"^uncontested invoiced claim of (\S+) (\w{3}) between merchants"
            r" \(debtor and creditor\), any amount$"
        ),
        lambda m: (
            f"créance facturée non contestée de {m[1]} {m[2]} entre commerçants (débiteur et "
            "créancier), quel qu'en soit le montant"
        ),
    ),
    (
        re.compile(
            r"^uncontested claim of (\S+) (\w{3}): the small-claims limit of (\S+) (\w{3})"
            r" applies to claims in euros$"
        ),
        lambda m: (
            f"créance non contestée de {m[1]} {m[2]} : le plafond de {m[3]} {m[4]} de la procédure "
            "simplifiée ne vaut que pour les créances en euros"
        ),
    ),
    (
        re.compile(r"^uncontested claim of (\S+) (<=|>) (\S+)$"),
        lambda m: f"créance non contestée de {m[1]} {'≤' if m[2] == '<=' else '>'} {m[3]}",
    ),
    (
        re.compile(r"^(\w+) opened by judgment of (\d{4}-\d{2}-\d{2})$"),
        lambda m: f"{_procedure(m[1])} ouverte par jugement du {_day(m[2])}",
    ),
    (
        re.compile(r"^(\w+) \((\w+) stage\); proceedings opened by judgment of (\d{4}-\d{2}-\d{2})$"),
        lambda m: (
            f"{_procedure(m[1])} (stade : {_STAGES.get(m[2], m[2])}) ; procédure ouverte par jugement "
            f"du {_day(m[3])}"
        ),
    ),
    (
        re.compile(
            r"^individual collection stops \(L622-21\); the claim must be declared to (.+) \((L\d+-\d+)\)$"
        ),
        lambda m: (
            f"les poursuites individuelles sont arrêtées (L622-21) ; la créance doit être déclarée "
            f"{_receiver(m[1])} ({m[2]})"
        ),
    ),
)


def reason_fr(reason: str) -> str:
    """``reason`` in French when it has a known form, else as stored."""
    for pattern, french in RULES:
        found = pattern.match(reason)
        if found:
            return french(found)
    return reason
