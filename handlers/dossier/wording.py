"""The reasons and notes a case stores, in French for the French dossier and ``relance case show``.

A case keeps its reasons and notes as written (English, in the evidence, ``summary.json``
and the hand-over document, where tools read them). The French summary shows each one in
French: the known forms are rewritten with their figures, names and references kept and
their dates written in French; a reason or note of another form is shown as stored.
Reasons come from handlers/procedures.py and handlers/insolvency.py; notes from the
``*_note`` functions of handlers/cases.py, handlers/escalation.py, handlers/insolvency.py
and handlers/dossier/summary.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from babel.dates import format_date

from handlers.insolvency import CLOSURE_NOTES

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


_CLOSURES = {
    CLOSURE_NOTES["insufficient_assets"]: (
        "clôturée pour insuffisance d'actif : les créanciers ne recouvrent pas leur droit de "
        "poursuite individuelle contre le débiteur (L643-11), sauf exceptions (entre autres la "
        "fraude, une créance attachée à la personne du débiteur, la caution ou le coobligé qui a "
        "payé) ; les créances gelées ne sont plus relancées : une personne décide si une "
        "exception s'applique"
    ),
    CLOSURE_NOTES["plan_completed"]: (
        "clôturée, le plan exécuté : les créances déclarées ont été payées selon le plan "
        "(L626-10 et s.) ; les créances gelées ne sont plus relancées : une personne vérifie "
        "ce que le plan a payé et l'enregistre"
    ),
    CLOSURE_NOTES["debts_paid"]: (
        "clôturée, les dettes payées : les créances gelées auraient dû être payées dans la "
        "procédure ; elles ne sont plus relancées : une personne vérifie et enregistre les paiements"
    ),
}
_DATE = r"(\d{4}-\d{2}-\d{2})"


def _owed(m: re.Match[str]) -> str:
    """A paid principal's penalties owed, with the optional terms of its sum."""
    text = (
        f"facture {m[1]} : principal payé ; reste dû comme créance distincte (signalée, non "
        f"relancée) : {m[2]} {m[3]} = pénalités {m[4]} + indemnité {m[5]}"
    )
    if m[6]:
        text += f" + principal restant après imputation sur les pénalités {m[6]}"
    if m[7]:
        text += f" - payé au-delà du principal {m[7]}"
    return text


NOTE_RULES: tuple[Rule, ...] = (
    (
        re.compile(
            rf"^the case's recorded amounts differ from the computation shown on {_DATE} \(payments "
            r"or credit notes recorded after it, or a changed policy or rate table\): the recorded "
            r"amounts are the claim$"
        ),
        lambda m: (
            f"les montants enregistrés du dossier diffèrent du calcul présenté au {_day(m[1])} "
            "(paiements ou avoirs enregistrés depuis, ou politique ou table des taux modifiée) : "
            "la créance est celle des montants enregistrés"
        ),
    ),
    (
        re.compile(
            rf"^invoice (.+?): origin presumed from its issue date {_DATE} \(no delivery date given\); "
            r"check when the delivery or service was completed$"
        ),
        lambda m: (
            f"facture {m[1]} : origine présumée à sa date d'émission, le {_day(m[2])} (aucune date "
            "de livraison fournie) ; vérifier quand la livraison ou la prestation a été achevée"
        ),
    ),
    (
        re.compile(
            r"^BODACC publication date unknown: the deadline is (\d+) months after it "
            r"\(L622-24, R622-24\); record it when published$"
        ),
        lambda m: (
            f"date de publication au BODACC inconnue : le délai court {m[1]} mois après elle "
            "(L622-24, R622-24) ; l'enregistrer dès sa publication"
        ),
    ),
    (
        re.compile(
            rf"^prescription: invoice (.+?) is time-barred on {_DATE} unless interrupted "
            r"\(acknowledgment, court action\)$"
        ),
        lambda m: (
            f"prescription : la facture {m[1]} est prescrite le {_day(m[2])} sauf interruption "
            "(reconnaissance de dette, action en justice)"
        ),
    ),
    (
        re.compile(
            r"^invoice (.+?): principal paid; owed as a separate claim \(reported, not chased\): "
            r"(\S+) (\w{3}) = penalties (\S+) \+ indemnity (\S+)"
            r"(?: \+ principal left by imputation on penalties (\S+))?"
            r"(?: - paid beyond the principal (\S+))?$"
        ),
        _owed,
    ),
    (
        re.compile(r"^invoice (.+?) factored: collected by (.+), left out of this case's amounts$"),
        lambda m: (
            f"facture {m[1]} cédée à un affactureur : recouvrée par {m[2]}, hors des montants de ce dossier"
        ),
    ),
    (
        re.compile(r"^balance left below the minimum, not pursued: (.+)$"),
        lambda m: f"solde restant sous le minimum, non poursuivi : {m[1]}",
    ),
    (
        re.compile(rf"^converted to (\w+) by judgment of {_DATE}: the claim is declared to (.+)$"),
        lambda m: (
            f"procédure convertie en {_procedure(m[1])} par jugement du {_day(m[2])} : la "
            f"créance est déclarée {_receiver(m[3])}"
        ),
    ),
    (
        re.compile(
            rf"^plan adopted by judgment of {_DATE}: the declared claims are paid as the plan "
            r"provides \(L626-10 ff\.\); they stay frozen, no reminder is sent$"
        ),
        lambda m: (
            f"plan arrêté par jugement du {_day(m[1])} : les créances déclarées sont payées "
            "selon le plan (L626-10 et s.) ; elles restent gelées, aucune relance n'est envoyée"
        ),
    ),
    (
        re.compile(rf"^proceedings (.+) \(closed on {_DATE}\)$", re.DOTALL),
        lambda m: f"procédure {_CLOSURES[m[1]]} (clôture du {_day(m[2])})" if m[1] in _CLOSURES else m[0],
    ),
)


def note_fr(note: str) -> str:
    """``note`` in French when it has a known form, else as stored."""
    for pattern, french in NOTE_RULES:
        found = pattern.match(note)
        if found:
            return french(found)
    return note
