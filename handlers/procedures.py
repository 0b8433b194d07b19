"""Which procedure to recommend for a case once the formal notice's deadline has passed
(spec/ladder.md, docs/policy.md), and the alternatives offered beside it.

A pure selection over the table of ``handlers.procedure_table``: the facts of the case
(``Claim``) are checked against each row's conditions, in the table's order. The first row
whose conditions all hold is recommended; every other row whose conditions hold, or may
hold once a fact that was not given is known (the debtor being a merchant), is an
alternative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from handlers.holds import born_before
from handlers.policy import Policy
from handlers.procedure_table import (
    CREANCES_COMMERCIALES,
    DECLARATION,
    PROCEDURE_SIMPLIFIEE,
    PUBLIC,
    TABLE,
    Procedure,
    with_limit,
)

Check = bool | None  # True: the condition holds; False: it does not; None: not known


class DebtorFacts(Protocol):
    """What the selection reads of a debtor (a stored record or the dossier's snapshot)."""

    @property
    def kind(self) -> str: ...
    @property
    def merchant(self) -> bool | None: ...
    @property
    def insolvency_procedure(self) -> str | None: ...
    @property
    def insolvency_judgment_date(self) -> date | None: ...


class InvoiceFacts(Protocol):
    @property
    def number(self) -> str: ...
    @property
    def ever_disputed(self) -> bool: ...
    @property
    def issue_date(self) -> date: ...
    @property
    def delivered_on(self) -> date | None: ...


@dataclass(frozen=True)
class Claim:
    """The facts of one case that the procedures' conditions are about."""

    debtor_kind: str  # business | consumer | public
    debtor_merchant: bool | None  # None: the accounting system did not say
    creditor_merchant: bool
    amount: Decimal  # the total claimed: principal + penalties + indemnities
    currency: str
    contested: bool  # an invoice of the case is or was disputed
    insolvent: bool  # a claim of the case was born before the debtor's opening judgment


@dataclass(frozen=True)
class Selection:
    recommended: Procedure
    alternatives: tuple[Procedure, ...]


def claim_of(
    debtor: DebtorFacts,
    invoices: Sequence[InvoiceFacts],
    claimed: Decimal,
    creditor_merchant: bool,
    currency: str,
) -> Claim:
    return Claim(
        debtor_kind=debtor.kind,
        debtor_merchant=debtor.merchant,
        creditor_merchant=creditor_merchant,
        amount=claimed,
        currency=currency,
        contested=any(i.ever_disputed for i in invoices),
        # only claims born before the judgment are declared (L622-24); later ones are not (L622-17)
        insolvent=any(born_before(i, debtor.insolvency_judgment_date) for i in invoices),
    )


def table_for(policy: Policy) -> tuple[Procedure, ...]:
    """The table with the policy's small-claims limit (``escalation.small_claims_limit``)."""
    return with_limit(TABLE, PROCEDURE_SIMPLIFIEE, policy.escalation.small_claims_limit)


def checks(row: Procedure, claim: Claim) -> dict[str, Check]:
    """Each condition of ``row`` checked against ``claim``, by the name of the condition."""
    return {
        "insolvent": claim.insolvent == row.insolvent,
        "contested": row.contested is None or claim.contested == row.contested,
        "debtor_kind": claim.debtor_kind in row.debtor_kinds,
        "debtor_merchant": _merchant(row.debtor_merchant, claim.debtor_merchant),
        "creditor_merchant": _merchant(row.creditor_merchant, claim.creditor_merchant),
        "amount": _within(row, claim),
    }


def applies(row: Procedure, claim: Claim) -> Check:
    """True when every condition holds, False when one fails, None when one is not known."""
    results = list(checks(row, claim).values())
    if any(r is False for r in results):
        return False
    return None if any(r is None for r in results) else True


def unknown(row: Procedure, claim: Claim) -> list[str]:
    """The conditions of ``row`` that the claim's facts leave open (a fact not given)."""
    return [name for name, result in checks(row, claim).items() if result is None]


def select(claim: Claim, table: Sequence[Procedure] = TABLE) -> Selection:
    """The first row that applies, and every other row that applies or may apply."""
    status = [(row, applies(row, claim)) for row in table]
    recommended = next((row for row, result in status if result is True), None)
    if recommended is None:
        raise ValueError(f"no procedure of the table applies to {claim}")
    others = tuple(row for row, result in status if result is not False and row is not recommended)
    return Selection(recommended, others)


def recommend(
    debtor: DebtorFacts,
    invoices: Sequence[InvoiceFacts],
    claimed: Decimal,
    policy: Policy,
    currency: str = "EUR",
) -> tuple[str, list[str], list[str]]:
    """The recommended procedure of spec/ladder.md, its reasons and the alternatives.

    ``claimed`` is the total of one currency. The small-claims limit is an amount in euros:
    a claim in another currency is not compared with it (its value in euros moves with the
    exchange rate).
    """
    table = table_for(policy)
    claim = claim_of(debtor, invoices, claimed, policy.creditor.merchant, currency)
    chosen = select(claim, table)
    small = next(r for r in table if r.code == PROCEDURE_SIMPLIFIEE)
    why = _reason(chosen.recommended, claim, debtor, invoices, small)
    return chosen.recommended.code, [why], [a.code for a in chosen.alternatives]


def _merchant(required: bool | None, actual: bool | None) -> Check:
    if required is None:
        return True
    return None if actual is None else actual == required


def _within(row: Procedure, claim: Claim) -> bool:
    """A claim in another currency than the limit's is not compared with it: it fails."""
    if row.amount_limit is None:
        return True
    return claim.currency == row.limit_currency and claim.amount <= row.amount_limit


def _reason(
    chosen: Procedure,
    claim: Claim,
    debtor: DebtorFacts,
    invoices: Sequence[InvoiceFacts],
    small: Procedure,
) -> str:
    """Why ``chosen`` came first, in the words the case stores (docs/policy.md)."""
    amount = f"{claim.amount} {claim.currency}"
    if chosen.code == DECLARATION:
        return f"debtor in {debtor.insolvency_procedure} proceedings"
    if claim.contested:
        disputed = ", ".join(i.number for i in invoices if i.ever_disputed)
        public = " (public debtor: the administrative judge)" if claim.debtor_kind == PUBLIC else ""
        return f"invoice(s) disputed: {disputed}{public}"
    if claim.debtor_kind == PUBLIC:
        return f"uncontested claim of {amount} on a public person: no injonction de payer"
    if chosen.code == CREANCES_COMMERCIALES:
        return f"uncontested invoiced claim of {amount} between merchants (debtor and creditor), any amount"
    if claim.currency != small.limit_currency:
        return (
            f"uncontested claim of {amount}: the small-claims limit of {small.amount_limit} "
            f"{small.limit_currency} applies to claims in euros"
        )
    sign = "<=" if small.amount_limit is not None and claim.amount <= small.amount_limit else ">"
    return f"uncontested claim of {claim.amount} {sign} {small.amount_limit}"
