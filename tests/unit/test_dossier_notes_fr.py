"""The French summary (the dossier's summary.md, ``relance case show``) shows a case's notes
in French; they stay in English where tools read them (summary.json, evidence, hand-over).

Every note is built by the function the core writes it with, so a note whose English
changes without its French rendering fails here."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from config.policy import load_policy, load_rates
from handlers.amounts import OwedBeside
from handlers.cases import below_minimum_note, factored_note, penalties_outstanding_note
from handlers.context import Context
from handlers.dossier import dossier_files
from handlers.dossier.sample import sample_dossier
from handlers.dossier.summary import recorded_amounts_note
from handlers.dossier.wording import note_fr
from handlers.escalation import bodacc_unknown_note, prescription_note
from handlers.insolvency import (
    CLOSURE_NOTES,
    closure_note,
    conversion_note,
    plan_note,
    presumed_origin_note,
    receiver,
)
from handlers.policy import PolicySet
from handlers.render import Renderer


def _invoice(number: str, balance: str = "0.00", issue_date: date = date(2026, 3, 2)) -> SimpleNamespace:
    return SimpleNamespace(number=number, balance=Decimal(balance), currency="EUR", issue_date=issue_date)


def _debtor(procedure: str, administrator: dict | None) -> SimpleNamespace:
    return SimpleNamespace(insolvency_procedure=procedure, insolvency_administrator=administrator)


LIQUIDATOR = {"name": "Me Paul Marchand", "address": ["2 rue X", "69002 Lyon"]}
OWED = OwedBeside(Decimal("12.30"), Decimal("40.00"))
OWED_BOTH_WAYS = OwedBeside(Decimal("12.30"), Decimal("40.00"), Decimal("5.00"), Decimal("2.00"))

# every note the core writes, in English as stored, with its French rendering
NOTES = [
    (
        presumed_origin_note(_invoice("F-1")),
        "facture F-1 : origine présumée à sa date d'émission, le 2 mars 2026 (aucune date de livraison "
        "fournie) ; vérifier quand la livraison ou la prestation a été achevée",
    ),
    (
        bodacc_unknown_note(2),
        "date de publication au BODACC inconnue : le délai court 2 mois après elle (L622-24, R622-24) ; "
        "l'enregistrer dès sa publication",
    ),
    (
        prescription_note("F-7", date(2026, 12, 15)),
        "prescription : la facture F-7 est prescrite le 15 décembre 2026 sauf interruption "
        "(reconnaissance de dette, action en justice)",
    ),
    (
        penalties_outstanding_note("F-1", OWED, "EUR"),
        "facture F-1 : principal payé ; reste dû comme créance distincte (signalée, non relancée) : "
        "52.30 EUR = pénalités 12.30 + indemnité 40.00",
    ),
    (
        penalties_outstanding_note("F-2", OWED_BOTH_WAYS, "USD"),
        "facture F-2 : principal payé ; reste dû comme créance distincte (signalée, non relancée) : "
        "55.30 USD = pénalités 12.30 + indemnité 40.00 + principal restant après imputation sur les "
        "pénalités 5.00 - payé au-delà du principal 2.00",
    ),
    (
        factored_note("F-3", "Factofrance"),
        "facture F-3 cédée à un affactureur : recouvrée par Factofrance, hors des montants de ce dossier",
    ),
    (
        below_minimum_note([_invoice("F-4", "3.00"), _invoice("F-5", "1.50")]),
        "solde restant sous le minimum, non poursuivi : F-4 3.00 EUR, F-5 1.50 EUR",
    ),
    (
        conversion_note("liquidation", date(2026, 6, 15), receiver(_debtor("liquidation", LIQUIDATOR))),
        "procédure convertie en liquidation judiciaire par jugement du 15 juin 2026 : la créance est "
        "déclarée au liquidateur Me Paul Marchand, 2 rue X, 69002 Lyon",
    ),
    (
        conversion_note("redressement", date(2026, 6, 15), receiver(_debtor("redressement", None))),
        "procédure convertie en redressement judiciaire par jugement du 15 juin 2026 : la créance est "
        "déclarée au mandataire judiciaire (nom et adresse pas encore connus)",
    ),
    (
        plan_note(date(2026, 9, 1)),
        "plan arrêté par jugement du 1 septembre 2026 : les créances déclarées sont payées selon le plan "
        "(L626-10 et s.) ; elles restent gelées, aucune relance n'est envoyée",
    ),
    *[
        (closure_note(outcome, date(2026, 11, 3)), None)  # checked below: one per outcome
        for outcome in CLOSURE_NOTES
    ],
    (
        recorded_amounts_note(date(2026, 5, 20)),
        "les montants enregistrés du dossier diffèrent du calcul présenté au 20 mai 2026 (paiements ou "
        "avoirs enregistrés depuis, ou politique ou table des taux modifiée) : la créance est celle des "
        "montants enregistrés",
    ),
]
# what only the English notes say: none of it may be left in the French summary
ENGLISH = [
    "invoice",
    "origin presumed",
    "no delivery date",
    "publication date unknown",
    "months after it",
    "record it when published",
    "time-barred",
    "unless interrupted",
    "principal paid",
    "owed as a separate claim",
    "reported, not chased",
    "penalties",
    "indemnity",
    "factored",
    "collected by",
    "left out of",
    "balance left below",
    "not pursued",
    "converted to",
    "by judgment of",
    "declared to",
    "the liquidator",
    "plan adopted",
    "no reminder is sent",
    "proceedings",
    "closed",
    "insufficient assets",
    "the frozen claims",
    "a person",
    "recorded amounts",
    "credit notes",
    "rate table",
]
ENGLISH_WORDS = re.compile(r"\b(the|is|are|of|and|by|to|its|it|not|when|after|on|with)\b")


@pytest.mark.parametrize(("stored", "french"), [(s, f) for s, f in NOTES if f is not None])
def test_each_known_note_reads_in_french(stored, french):
    assert note_fr(stored) == french


@pytest.mark.parametrize("outcome", list(CLOSURE_NOTES))
def test_each_closure_of_the_proceedings_reads_in_french(outcome):
    french = note_fr(closure_note(outcome, date(2026, 11, 3)))
    assert french.startswith("procédure clôturée")
    assert french.endswith("(clôture du 3 novembre 2026)")
    assert not ENGLISH_WORDS.search(french), french


def test_a_note_of_another_form_is_shown_as_stored():
    assert note_fr("a note typed by hand") == "a note typed by hand"
    assert note_fr("proceedings ended somehow (closed on 2026-11-03)") == (
        "proceedings ended somehow (closed on 2026-11-03)"
    )


def _summary_files() -> dict[str, bytes]:
    """The sample dossier, its case holding every note the core writes and recorded amounts
    that differ from the computation (the summary's own note)."""
    data = sample_dossier()
    stored = tuple(n for n, _ in NOTES if not n.startswith("the case's recorded amounts"))
    case = dataclasses.replace(data.case, notes=stored, amount_claimed=Decimal("1.00"))
    ctx = Context(
        policies=PolicySet(load_policy()),
        rates=load_rates(),
        renderer=Renderer(),
        sender="Créancier <compta@example.fr>",
        message_domain="example.fr",
    )
    return dossier_files(dataclasses.replace(data, case=case), datetime(2026, 7, 1, 12, 0, tzinfo=UTC), ctx)


def _notes_section(summary: str) -> list[str]:
    """The lines listed under « Notes : » in summary.md."""
    lines = summary.splitlines()
    start = next(i for i, text in enumerate(lines) if text.startswith("- Notes :"))
    notes = []
    for text in lines[start + 1 :]:
        if not text.startswith("  - "):
            break
        notes.append(text[4:])
    return notes


def test_the_french_summary_shows_every_note_in_french_and_summary_json_keeps_the_english():
    files = _summary_files()
    notes = _notes_section(files["summary.md"].decode("utf-8"))
    assert len(notes) == len(NOTES)
    for french in (f for _, f in NOTES if f is not None):
        assert french in notes
    for text in notes:
        for phrase in ENGLISH:
            assert not re.search(rf"\b{re.escape(phrase)}\b", text, re.IGNORECASE), (phrase, text)
        assert not ENGLISH_WORDS.search(text), text
    stored = json.loads(files["summary.json"])["case"]["notes"]
    assert stored == [n for n, _ in NOTES if not n.startswith("the case's")] + [NOTES[-1][0]]
