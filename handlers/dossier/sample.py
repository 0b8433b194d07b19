"""A made-up case that goes through every part of the dossier's templates, so a broken
template (an operator's override included) stops the service at start-up rather than an
export or a hand-over."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

from handlers.context import Context
from handlers.dossier.assemble import dossier_files
from handlers.dossier.data import (
    CaseData,
    DebtorData,
    DossierData,
    InvoiceData,
    MessageData,
    PaymentData,
    RecordData,
)
from handlers.evidence import ChainCheck
from handlers.policy import FORMAL_NOTICE, PolicySet, RateTable
from handlers.render import Renderer

_AT = datetime(2026, 5, 20, 8, 0, tzinfo=UTC)


def _record(seq: int, kind: str, payload: dict[str, str], case_id: int | None = None) -> RecordData:
    return RecordData(seq, _AT, kind, json.dumps(payload), "0" * 64, f"{seq:064x}", case_id=case_id)


def sample_dossier() -> DossierData:
    receipt = _record(3, "delivery.status", {"status": "acknowledged", "at": "2026-05-13T09:00:00+00:00"})
    notice = MessageData(
        "<notice@example>",
        "registered_letter",
        FORMAL_NOTICE,
        date(2026, 5, 11),
        "Exemple SA",
        "Mise en demeure",
        "sent",
        b"%PDF-",
        _AT,
        invoice_numbers=("F-1",),
        statuses=(receipt,),
    )
    reminder = MessageData(
        "<reminder@example>",
        "email",
        "reminder_1",
        date(2026, 2, 1),
        "a@example",
        "Relance",
        "sent",
        b"",
        _AT,
    )
    invoice = InvoiceData(
        1,
        "F-1",
        date(2025, 12, 5),
        date(2026, 1, 5),
        "EUR",
        Decimal("1000.00"),
        paid=Decimal("100.00"),
        late_penalty_rate=Decimal("0.12"),
        delivered_on=date(2025, 12, 6),
        ever_disputed=True,
        payments=(PaymentData("payment", date(2026, 3, 2), Decimal("100.00"), "VIR-1"),),
    )
    case = CaseData(
        1,
        "D-1",
        "escalation",
        "open",
        "injonction_de_payer",
        "EUR",
        Decimal("900.00"),
        Decimal("0.00"),
        Decimal("40.00"),
        Decimal("940.00"),
        _AT,
        _AT,
        deadline=date(2026, 6, 20),
        reasons=("montant déterminé",),
        # one alternative with a fact to check (merchant not said), one with a note, and a
        # code the table does not know: every branch of the procedures' section
        alternatives=("recouvrement_creances_commerciales", "refere_provision", "procedure_retiree"),
        notes=("note",),
    )
    debtor = DebtorData(
        "D-1",
        "Exemple SA",
        "business",
        {"line1": "1 rue de l'Exemple", "postal_code": "75001", "city": "Paris"},
        email="a@example",
        siren="123456789",
        insolvency_procedure="sauvegarde",
        insolvency_judgment_date=date(2026, 6, 1),
        insolvency_stage="opened",
        insolvency_administrator={"name": "Me Exemple", "address": ["1 quai de l'Exemple", "75001 Paris"]},
    )
    records = (_record(1, "case.escalated", {}, case_id=1), receipt)
    return DossierData(
        case, debtor, (invoice,), (reminder, notice), records, ChainCheck(True, 3), (3, "0" * 64)
    )


def check_templates(renderer: Renderer, policies: PolicySet, rates: RateTable) -> None:
    """Render the dossier's markdown once with the sample; raises TemplateProblem."""
    ctx = Context(policies=policies, rates=rates, renderer=renderer, sender="", message_domain="")
    dossier_files(sample_dossier(), datetime(2026, 7, 1, 12, 0, tzinfo=UTC), ctx)
