"""The French dossier shows the reasons a case stores in French, figures and names kept."""

from __future__ import annotations

from datetime import date

import pytest

from handlers.dossier.wording import reason_fr
from handlers.insolvency import declaration_reasons
from tests.unit.test_consumers_and_public_debtors import Debtor


@pytest.mark.parametrize(
    ("stored", "french"),
    [
        ("uncontested claim of 6589.91 > 5000.00", "créance non contestée de 6589.91 > 5000.00"),
        ("uncontested claim of 4918.29 <= 5000.00", "créance non contestée de 4918.29 ≤ 5000.00"),
        ("invoice(s) disputed: F-1, F-2", "facture(s) contestée(s) : F-1, F-2"),
        ("debtor in redressement proceedings", "débiteur en procédure de redressement judiciaire"),
        (
            "uncontested claim of 1040.00 USD: the small-claims limit of 5000.00 EUR applies"
            " to claims in euros",
            "créance non contestée de 1040.00 USD : le plafond de 5000.00 EUR de la procédure simplifiée "
            "ne vaut que pour les créances en euros",
        ),
        (
            "uncontested claim of 3000.00 EUR on a public person: no injonction de payer",
            "créance non contestée de 3000.00 EUR sur une personne publique : pas d'injonction de payer",
        ),
        ("a reason of another form", "a reason of another form"),
    ],
)
def test_a_stored_reason_reads_in_french(stored, french):
    assert reason_fr(stored) == french


def test_the_claim_declaration_reasons_read_in_french():
    debtor = Debtor("D-1", "business", insolvency_judgment_date=date(2026, 4, 10))
    debtor.insolvency_procedure, debtor.insolvency_stage = "liquidation", "liquidation"  # type: ignore[attr-defined]
    debtor.insolvency_administrator = {"name": "Me Paul Marchand", "address": ["2 rue X", "69002 Lyon"]}  # type: ignore[attr-defined]
    assert [reason_fr(r) for r in declaration_reasons(debtor)] == [
        "liquidation judiciaire (stade : liquidation) ; procédure ouverte par jugement du 10 avril 2026",
        "les poursuites individuelles sont arrêtées (L622-21) ; la créance doit être déclarée "
        "au liquidateur Me Paul Marchand, 2 rue X, 69002 Lyon (L641-3)",
    ]
