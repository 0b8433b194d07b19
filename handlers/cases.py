"""Keep escalated cases in step with what happens to their invoices after escalation, and
report the penalties still owed when an invoice's principal is paid.

A payment or credit note lowers the principal of every live case holding the invoice;
when none of the case's invoices is left to pay the case is stopped: ``paid`` when they
were paid, ``closed`` when some were cancelled or their dispute upheld. A case whose
invoices still owing all owe less than the policy's ``minimum_balance`` is stopped as
``paid`` too, with a note naming what is left (a trifle is not taken to court). Penalties
and indemnities stay as computed when the case was opened; the dossier recomputes them live.

Under ``principal_first`` payments and credit notes pay the principal; the penalties
(L441-10) and the recovery indemnity (D441-5) are a claim of their own. When the principal
reaches zero the ladder stops (the invoice is settled) and that claim is *reported*, not
chased: a log line and an evidence record ``invoice.penalties_outstanding``, a note on the
live cases holding the invoice, and a line of ``relance status``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import structlog

from handlers import evidence, holds, signals
from handlers.amounts import OwedBeside, amounts_on, owed_beside_principal
from handlers.calendar import local_date
from handlers.money import ZERO, MissingRate
from handlers.policy import Policy, PolicySet, RateTable
from handlers.records import CaseRecord, DebtorRecord, InvoiceRecord
from handlers.store import Store

log = structlog.get_logger("relance.cases")

LIVE = ("open", "handed_over")
PENALTIES_OUTSTANDING = "invoice.penalties_outstanding"


MinimumFor = Callable[[InvoiceRecord], Decimal]
"""The smallest balance of an invoice that is still chased (its policy, its currency)."""


def follow_invoice(
    store: Store,
    invoice: InvoiceRecord,
    now: datetime,
    cause: str,
    minimum_for: MinimumFor | None = None,
    *,
    live: list[CaseRecord] | None = None,
) -> None:
    """Update (and stop when nothing is left) every live case that holds ``invoice``.

    With ``minimum_for``, a case left with balances all below their minimum is stopped.
    ``live``: those cases, when the caller has just read them (``live_cases_of``).
    """
    for case in live_cases_of(store, invoice) if live is None else live:
        _refresh(store, case, now, cause, invoice.number, minimum_for)


def money_recorded(
    store: Store, invoice: InvoiceRecord, now: datetime, cause: str, policies: PolicySet
) -> None:
    """After a payment or credit note: report what is owed beside a paid principal, then
    keep the invoice's cases in step (stopping those left with balances below the minimum).
    The cases are read (and locked) once for both."""
    debtor = store.debtor(invoice.debtor_id)
    live = live_cases_of(store, invoice)

    def minimum_for(member: InvoiceRecord) -> Decimal:
        return policies.for_debtor(debtor, member.number).money.minimum_for(member.currency)

    if invoice.status == "settled" and debtor is not None and policies.rates is not None:
        policy = policies.for_debtor(debtor, invoice.number)
        report_penalties_outstanding(store, invoice, debtor, now, policy, policies.rates, live=live)
    follow_invoice(store, invoice, now, cause, minimum_for, live=live)


def report_penalties_outstanding(
    store: Store,
    invoice: InvoiceRecord,
    debtor: DebtorRecord,
    now: datetime,
    policy: Policy,
    rates: RateTable,
    *,
    live: list[CaseRecord] | None = None,
) -> OwedBeside | None:
    """Log, record and note on its live cases what is owed once the invoice's principal is
    paid (``live``: those cases, when the caller has just read them)."""
    owed = owed_beside_principal(invoice, debtor, policy, rates, store.movements([invoice.id])[invoice.id])
    if owed is None:
        return None
    if live is None:
        live = live_cases_of(store, invoice)
    currency = invoice.currency
    note = penalties_outstanding_note(invoice.number, owed, currency)
    for case in live:
        case.notes = [*case.notes, note]
        case.updated_at = now
    figures = {
        "late_interest": str(owed.late_interest),
        "recovery_indemnity": str(owed.indemnity),
        "principal_left": str(owed.principal_left),  # non-zero only under interest_first
        "paid_beyond_principal": str(owed.paid_beyond),
        "amount_owed": str(owed.amount_owed),
        "currency": currency,
    }
    payload = {
        "action": PENALTIES_OUTSTANDING,
        "debtor_id": debtor.id,
        "invoice_numbers": [invoice.number],
        "payment_imputation": policy.money.payment_imputation,
        **figures,
        "chased": False,
    }
    evidence.append(
        store,
        PENALTIES_OUTSTANDING,
        now,
        payload,
        debtor_id=debtor.id,
        invoice_numbers=[invoice.number],
        case_id=live[0].id if live else None,
    )
    log.info(
        PENALTIES_OUTSTANDING,
        invoice_number=invoice.number,
        debtor_id=debtor.id,
        case_ids=[c.id for c in live],
        **figures,
    )
    return owed


def penalties_outstanding_note(number: str, owed: OwedBeside, currency: str) -> str:
    """What a case says of an invoice whose principal is paid and its penalties not."""
    note = (
        f"invoice {number}: principal paid; owed as a separate claim (reported, not "
        f"chased): {owed.amount_owed} {currency} = penalties {owed.late_interest} + indemnity "
        f"{owed.indemnity}"
    )
    if owed.principal_left > 0:
        note += f" + principal left by imputation on penalties {owed.principal_left}"
    if owed.paid_beyond > 0:
        note += f" - paid beyond the principal {owed.paid_beyond}"
    return note


def factored_note(number: str, factor: str | None) -> str:
    """What a case says of an invoice that left it for a factor."""
    return f"invoice {number} factored: collected by {factor}, left out of this case's amounts"


def below_minimum_note(trifles: list[InvoiceRecord]) -> str:
    """What a case stopped as paid says of the balances too small to pursue."""
    left = ", ".join(f"{i.number} {i.balance} {i.currency}" for i in trifles)
    return f"balance left below the minimum, not pursued: {left}"


def live_cases_of(store: Store, invoice: InvoiceRecord) -> list[CaseRecord]:
    """The open or handed-over cases holding ``invoice``, locked for update."""
    return store.cases_holding(invoice.id, LIVE)


def _owing(invoice: InvoiceRecord) -> bool:
    """Whether a case's invoice is still claimed by the case (a factor collects its own)."""
    return invoice.status == "open" and invoice.balance > 0 and not holds.factored(invoice)


FACTORED_OUT = "case.factored_out"


def leave_for_factor(
    store: Store, invoice: InvoiceRecord, now: datetime, policies: PolicySet
) -> list[CaseRecord]:
    """A factored invoice leaves the live cases holding it: the factor collects it in its own
    name. Each case says so in a note, its amounts are recomputed without it, and a case
    left with nothing to claim is stopped; the cases changed."""
    live = live_cases_of(store, invoice)
    note = factored_note(invoice.number, invoice.factored_by)
    for case in live:
        case.notes = [*case.notes, note]
        _penalties_without_factored(store, case, invoice, now, policies)
        _refresh(store, case, now, "invoice factored", invoice.number, None)
    return live


def _penalties_without_factored(
    store: Store, case: CaseRecord, factored: InvoiceRecord, now: datetime, policies: PolicySet
) -> None:
    """Penalties and indemnities of the invoices the case still claims, counted as when an
    invoice joins it: every other invoice of an escalation on that day (handlers.escalation
    ``open_case``); the claims still owed of a claim declaration, on the judgment day."""
    debtor = store.debtor(case.debtor_id)
    if debtor is None or policies.rates is None:
        return
    judgment = debtor.insolvency_judgment_date
    members = [i for i in store.case_invoices(case.id) if not holds.factored(i)]
    if case.kind == "claim_declaration" and judgment is not None:
        day, owing = judgment, [i for i in members if _owing(i)]
    else:
        day, owing = local_date(now, debtor.timezone), members
    moved = store.movements([i.id for i in owing])
    try:
        amounts = [
            amounts_on(
                i,
                debtor,
                day,
                policies.for_debtor(debtor, i.number),
                policies.rates,
                with_penalties=True,
                movements=moved.get(i.id, []),
            )
            for i in owing
        ]
    except MissingRate:  # the figures stay as recorded; the dossier shows the gap
        return
    case.late_interest = sum((a.late_interest for a in amounts), ZERO)
    case.indemnities = sum((a.indemnity for a in amounts), ZERO)
    payload = {
        "action": FACTORED_OUT,
        "case_id": case.id,
        "debtor_id": case.debtor_id,
        "invoice_numbers": [factored.number],
        "factored_by": factored.factored_by,
        "computed_on": day.isoformat(),
        "late_interest": str(case.late_interest),
        "recovery_indemnity": str(case.indemnities),
        "currency": case.currency,
    }
    evidence.append(
        store,
        FACTORED_OUT,
        now,
        payload,
        debtor_id=case.debtor_id,
        invoice_numbers=[factored.number],
        case_id=case.id,
    )


def _refresh(
    store: Store, case: CaseRecord, now: datetime, cause: str, number: str, minimum_for: MinimumFor | None
) -> None:
    members = store.case_invoices(case.id)
    owing = [i for i in members if _owing(i)]
    case.principal = sum((i.balance for i in owing), ZERO)
    case.amount_claimed = case.principal + case.late_interest + case.indemnities
    case.updated_at = now
    trifles = [i for i in owing if minimum_for is not None and i.balance < minimum_for(i)]
    if not owing:
        case.status = "paid" if all(i.status == "settled" for i in members) else "closed"
    elif len(trifles) == len(owing):
        case.status = "paid"
        case.notes = [*case.notes, below_minimum_note(trifles)]
    stopped = not owing or len(trifles) == len(owing)
    kind = f"case.{case.status}" if stopped else "case.updated"
    payload = {
        "action": kind,
        "case_id": case.id,
        "debtor_id": case.debtor_id,
        "invoice_numbers": [number],
        "cause": cause,
        "status": case.status,
        "amount_due": str(case.principal),
        "currency": case.currency,
    }
    evidence.append(
        store, kind, now, payload, debtor_id=case.debtor_id, invoice_numbers=[number], case_id=case.id
    )
    if stopped:
        signals.case_fact(store, "case.closed", case, now, cause)
    log.info(
        kind,
        case_id=case.id,
        debtor_id=case.debtor_id,
        invoice_number=number,
        cause=cause,
        status=case.status,
        principal=str(case.principal),
    )
