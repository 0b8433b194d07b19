"""summary.md and injonction_de_payer.md, rendered from templates (docs/dossier.md).

The templates are ``handlers/templates/fr/dossier/summary.md.j2`` and
``injonction_de_payer.md.j2``; an operator's RELANCE_TEMPLATE_DIR with the same layout
overrides them. They receive the data of summary.json as ``d`` (strings for money and
dates, as in the JSON), the French labels below, and helpers that format those strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal

from handlers.calendar import zone
from handlers.dossier.data import MessageData
from handlers.dossier.proofs import status_view
from handlers.dossier.wording import note_fr, reason_fr
from handlers.money import format_money, format_rate
from handlers.policy import FORMAL_NOTICE
from handlers.procedure_table import TABLE
from handlers.render import Renderer, helpers

LANGUAGE = "fr"  # the dossier is for French courts and commissaires de justice
SUMMARY = "dossier/summary.md.j2"
INJONCTION = "dossier/injonction_de_payer.md.j2"

PROCEDURES = {row.code: f"{row.name_fr} ({row.basis})" for row in TABLE}  # handlers/procedure_table.py

LABELS: dict[str, dict[str, str]] = {
    "steps": {
        "pre_due": "Rappel avant échéance",
        "due": "Rappel d'échéance",
        "notice": "Avis d'impayé",
        "reminder_1": "1re relance",
        "reminder_2": "2e relance",
        "reminder_3": "3e relance",
        FORMAL_NOTICE: "Mise en demeure",
    },
    "channels": {
        "email": "e-mail",
        "letter": "lettre simple",
        "registered_letter": "lettre recommandée avec AR",
    },
    "case_statuses": {"open": "ouvert", "handed_over": "transmis", "paid": "payé", "closed": "clos"},
    "kinds": {
        "escalation": "escalade après mise en demeure",
        "claim_declaration": "déclaration de créance (procédure collective)",
    },
    "message_statuses": {
        "sent": "envoyé",
        "pending": "en attente d'envoi",
        "failed": "échec",
        "cancelled": "annulé",
    },
    "delivery_statuses": {
        "delivered": "distribué",
        "bounced": "rejeté (adresse invalide)",
        "acknowledged": "accusé de réception signé",
        "refused": "refusé",
        "unclaimed": "non réclamé",
    },
    "movements": {"payment": "paiement", "credit_note": "avoir", "plan_payment": "paiement (échéancier)"},
}

_DAY = helpers(LANGUAGE)["day"]


def summary_md(renderer: Renderer, data: dict[str, Any]) -> str:
    return renderer.render_document(SUMMARY, LANGUAGE, {"d": data, **template_values()})


def injonction_md(renderer: Renderer, data: dict[str, Any], messages: list[tuple[MessageData, str]]) -> str:
    values = {"d": data, "notices": notices(messages), "indemnified": indemnified(data), **template_values()}
    return renderer.render_document(INJONCTION, LANGUAGE, values)


def indemnified(data: dict[str, Any]) -> int:
    """How many invoices carry the 40 € indemnity."""
    return sum(1 for i in data["invoices"] if i["indemnity"] and Decimal(i["indemnity"]) > 0)


def notices(messages: list[tuple[MessageData, str]]) -> dict[str, Any]:
    """The pieces about the formal notice: the letters (registered ones if any, else plain
    ones) with their signed receipts, copies sent by other channels, and earlier messages."""
    sent = [(m, file) for m, file in messages if m.step == FORMAL_NOTICE]
    letters = [(m, f) for m, f in sent if m.channel == "registered_letter"] or [
        (m, f) for m, f in sent if m.channel == "letter"
    ]
    return {
        "sent": bool(sent),
        "letters": [
            {
                "file": file,
                "day": m.local_day.isoformat(),
                "channel": m.channel,
                "receipts": [
                    {"signed": view["status_at"] or view["at"], "seq": view["seq"]}
                    for view in (status_view(r) for r in m.statuses)
                    if view["status"] == "acknowledged"
                ],
            }
            for m, file in letters
        ],
        "copies": [
            {"file": file, "day": m.local_day.isoformat(), "channel": m.channel}
            for m, file in sent
            if (m, file) not in letters
        ],
        "earlier": [file for m, file in messages if m.step != FORMAL_NOTICE],
    }


def template_values() -> dict[str, Any]:
    """The labels and the helpers the dossier's templates use (names listed in docs/dossier.md)."""
    return {
        **LABELS,
        "on": on,
        "at": at,
        "eur": eur,
        "precise": precise,
        "rate_of": rate_of,
        "positive": positive,
        "line": line,
        "cell": cell,
        "procedure": procedure,
        "reason": reason_fr,
        "note": note_fr,
        "labels": labels,
    }


def on(text: str) -> str:
    """An ISO date in French (« 1er avril 2026 »)."""
    return _DAY(date.fromisoformat(text))


def at(text: str, tz: str) -> str:
    """An ISO instant as a French date and time in ``tz`` (the debtor's time zone)."""
    instant = datetime.fromisoformat(text).astimezone(zone(tz))
    return f"{_DAY(instant.date())} à {instant:%H:%M} ({tz})"


def eur(amount: str | Decimal, currency: str) -> str:
    return format_money(Decimal(amount), currency, LANGUAGE)


def precise(amount: str, currency: str) -> str:
    """An unrounded segment amount, to 5 decimals, in French."""
    value = Decimal(amount).quantize(Decimal("0.00001"))
    text = format_decimal(value, format="#,##0.00000", locale="fr_FR")
    return f"{text} {currency if currency != 'EUR' else '€'}".replace("\u202f", " ").replace("\xa0", " ")


def rate_of(text: str) -> str:
    return format_rate(Decimal(text), LANGUAGE)


def positive(text: str) -> bool:
    return Decimal(text) > 0


def line(value: object) -> str:
    """Stored text on one line (it comes from events: no line breaks into the layout)."""
    return " ".join(str(value).split())


def cell(value: object) -> str:
    return line(value).replace("|", "\\|")


def procedure(name: str) -> str:
    return PROCEDURES.get(name, line(name))


def labels(mapping: Mapping[str, str], values: list[str]) -> list[str]:
    return [mapping.get(v, v) for v in values]
