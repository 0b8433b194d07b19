"""Which procedure to recommend for a case once the formal notice's deadline has passed
(spec/ladder.md, docs/policy.md), and the alternatives offered beside it."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from handlers.policy import Policy
from handlers.records import DebtorRecord, InvoiceRecord

SMALL_CLAIMS_CURRENCY = "EUR"  # CPCE L125-1 states its limit in euros


def recommend(
    debtor: DebtorRecord,
    invoices: Sequence[InvoiceRecord],
    claimed: Decimal,
    policy: Policy,
    currency: str = "EUR",
) -> tuple[str, list[str], list[str]]:
    """The recommended procedure of spec/ladder.md, its reasons and the alternatives.

    ``claimed`` is the total of one currency. The small-claims limit is an amount in euros:
    a claim in another currency is not compared with it (its value in euros moves with the
    exchange rate), and an injonction de payer, which has no limit, is recommended.
    """
    limit = policy.escalation.small_claims_limit
    if debtor.insolvency_judgment_date is not None:
        return ("declaration_de_creance", [f"debtor in {debtor.insolvency_procedure} proceedings"], [])
    disputed = [i.number for i in invoices if i.ever_disputed]
    if disputed:
        return ("assignation_en_paiement", [f"invoice(s) disputed: {', '.join(disputed)}"], [])
    if currency != SMALL_CLAIMS_CURRENCY:
        return (
            "injonction_de_payer",
            [
                f"uncontested claim of {claimed} {currency}: the small-claims limit of {limit} "
                f"{SMALL_CLAIMS_CURRENCY} applies to claims in euros"
            ],
            ["refere_provision"],
        )
    if claimed <= limit:
        return (
            "procedure_simplifiee",
            [f"uncontested claim of {claimed} <= {limit}"],
            ["injonction_de_payer", "refere_provision"],
        )
    return ("injonction_de_payer", [f"uncontested claim of {claimed} > {limit}"], ["refere_provision"])
