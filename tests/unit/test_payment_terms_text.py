"""Due dates, penalty rates and the L441-9 mentions read from payment terms written as text."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from adapters.importers.payment_terms import due_date_from_terms, l441_missing, penalty_rate

ISSUED = date(2026, 9, 15)


@pytest.mark.parametrize(
    ("terms", "due"),
    [
        (["30 jours"], date(2026, 10, 15)),
        (["Paiement à 30 j date de facture"], date(2026, 10, 15)),
        (["Net 60"], date(2026, 11, 14)),
        (["14 dagen netto"], date(2026, 9, 29)),
        (["45 jours fin de mois"], date(2026, 10, 31)),
        (["45 days end of month"], date(2026, 10, 31)),
        (["Paiement à réception"], ISSUED),
        (["COMPTANT"], ISSUED),
        (["30% d'acompte, solde à 30 j"], date(2026, 10, 15)),  # "30%" is no term
        (["30 jours", "30 jours"], date(2026, 10, 15)),  # said twice is said once
    ],
)
def test_terms_relance_can_compute(terms, due):
    assert due_date_from_terms(ISSUED, terms) == due


@pytest.mark.parametrize(
    "terms",
    [[], ["Selon nos conditions"], ["30 jours ou 60 jours"], ["comptant", "30 jours"], ["Virement"]],
)
def test_terms_relance_does_not_guess(terms):
    assert due_date_from_terms(ISSUED, terms) is None


@pytest.mark.parametrize(
    ("texts", "rate"),
    [
        (["Pénalités de retard : 12 % l'an"], Decimal("0.12")),
        (["taux des pénalités de retard 10,5 %"], Decimal("0.105")),
        (["Late payment interest: 8%"], Decimal("0.08")),
        (["Pénalités de retard : 3 fois le taux d'intérêt légal"], None),  # no number to store
        (["Pénalités de retard 10 %", "pénalités de retard 12 %"], None),  # two rates: none
        (["Remise de 2 % pour paiement anticipé"], None),  # not a penalty
    ],
)
def test_penalty_rates(texts, rate):
    assert penalty_rate(texts) == rate


def test_the_l441_9_mentions():
    both = [
        "Pénalités de retard : 3 fois le taux légal.",
        "Indemnité forfaitaire de 40 € pour frais de recouvrement.",
    ]
    assert l441_missing(both) == []
    assert l441_missing(["Late payment interest 10%", "Recovery costs: EUR 40"]) == []
    assert l441_missing(["Pénalités de retard : 10 %"]) == ["the 40 € recovery indemnity"]
    assert l441_missing([]) == ["the late-payment penalty rate", "the 40 € recovery indemnity"]
