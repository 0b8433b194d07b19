"""Insolvency proceedings: which claims a judgment freezes, who receives their declaration,
and what each later stage of the procedure tells a person (docs/policy.md).

A claim is sorted by its origin, the completion of the delivery or service
(``handlers.holds.born_before``): born before the opening judgment it is frozen and
declared (C. com. L622-21, L622-24); born after it, it is chased as any other (L622-17).
Without a delivery date the issue date stands in, and that presumption is reported once
per invoice (``insolvency.origin_presumed``). The events are applied in
``handlers.debtors``; the claim-declaration case is opened by ``handlers.escalation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import structlog

from handlers import evidence, holds
from handlers.planning import cancel_pending, schedule
from handlers.policy import CLAIM_DECLARATION
from handlers.records import CaseRecord, DebtorRecord, InvoiceRecord
from handlers.store import Store

log = structlog.get_logger("relance.insolvency")

OPENED, LIQUIDATION, PLAN, CLOSED = "opened", "liquidation", "plan", "closed"
ORIGIN_PRESUMED = "insolvency.origin_presumed"
DECLARATION = "claim_declaration"  # the kind of a claim-declaration case
LIVE = ("open", "handed_over")

CLOSURE_NOTES = {
    "insufficient_assets": (
        "closed for insufficient assets: creditors do not recover their individual action "
        "against the debtor (L643-11), save its exceptions (among them fraud, a claim on the "
        "debtor's person, a guarantor or co-debtor who paid); the frozen claims are not chased "
        "again: a person decides whether an exception applies"
    ),
    "plan_completed": (
        "closed, the plan carried out: the declared claims were paid as the plan provided "
        "(L626-10 ff.); the frozen claims are not chased again: a person checks what the plan "
        "paid and records it"
    ),
    "debts_paid": (
        "closed, the debts paid: the frozen claims should have been paid within the "
        "procedure; they are not chased again: a person checks and records the payments"
    ),
}


def stage_of(procedure: str) -> str:
    """The stage an opening judgment puts the debtor in."""
    return LIQUIDATION if procedure == "liquidation" else OPENED


def receiver(debtor: DebtorRecord) -> str:
    """Who receives the claim declaration: the liquidator in a liquidation (L641-3), the
    mandataire judiciaire otherwise (L622-24), with the name and address when known."""
    role = "the liquidator" if debtor.insolvency_procedure == "liquidation" else "the mandataire judiciaire"
    who = debtor.insolvency_administrator
    if not who:
        return f"{role} (name and address not recorded yet)"
    return f"{role} {who['name']}, {', '.join(who['address'])}"


def declaration_reasons(debtor: DebtorRecord) -> list[str]:
    """Why a claim-declaration case, and to whom the declaration goes."""
    judgment = debtor.insolvency_judgment_date
    assert judgment is not None  # only for a debtor under an opening judgment
    procedure, stage = debtor.insolvency_procedure, debtor.insolvency_stage
    when = f"by judgment of {judgment.isoformat()}"
    opened = (
        f"{procedure} opened {when}"
        if stage in (None, OPENED)
        else f"{procedure} ({stage} stage); proceedings opened {when}"
    )
    article = "L641-3" if debtor.insolvency_procedure == "liquidation" else "L622-24"
    declare = f"the claim must be declared to {receiver(debtor)} ({article})"
    return [opened, f"individual collection stops (L622-21); {declare}"]


def presumed_origin_note(invoice: InvoiceRecord) -> str:
    """What a case says of a claim whose origin is only presumed from its issue date."""
    return (
        f"invoice {invoice.number}: origin presumed from its issue date "
        f"{invoice.issue_date.isoformat()} (no delivery date given); check when the delivery "
        "or service was completed"
    )


def conversion_note(procedure: str, judgment: date, receiver: str) -> str:
    """What a claim-declaration case says of a conversion (to liquidation)."""
    return (
        f"converted to {procedure} by judgment of {judgment.isoformat()}: the claim is declared to {receiver}"
    )


def plan_note(judgment: date) -> str:
    """What a claim-declaration case says of a plan adopted."""
    return (
        f"plan adopted by judgment of {judgment.isoformat()}: the declared claims are "
        "paid as the plan provides (L626-10 ff.); they stay frozen, no reminder is sent"
    )


def closure_note(outcome: str, closed_on: date) -> str:
    """What a claim-declaration case says of the closure of the proceedings."""
    return f"proceedings {CLOSURE_NOTES[outcome]} (closed on {closed_on.isoformat()})"


def report_presumed_origin(store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, now: datetime) -> None:
    """Warn, once per invoice and judgment, that the claim's origin is presumed from its
    issue date: a log line and an evidence record for a person to check."""
    judgment = debtor.insolvency_judgment_date
    assert judgment is not None
    frozen = holds.frozen_by_insolvency(invoice, debtor)
    side = "before" if frozen else "on or after"
    reason = (
        f"{presumed_origin_note(invoice)}; counted as born {side} the judgment of "
        f"{judgment.isoformat()}: {'frozen and declared' if frozen else 'chased as a post-judgment claim'}"
    )
    payload = {
        "action": ORIGIN_PRESUMED,
        "debtor_id": debtor.id,
        "invoice_numbers": [invoice.number],
        "issue_date": invoice.issue_date.isoformat(),
        "judgment_date": judgment.isoformat(),
        "frozen": frozen,
        "reason": reason,
    }
    evidence.append(
        store, ORIGIN_PRESUMED, now, payload, debtor_id=debtor.id, invoice_numbers=[invoice.number]
    )
    log.warning(
        ORIGIN_PRESUMED,
        debtor_id=debtor.id,
        invoice_number=invoice.number,
        issue_date=invoice.issue_date.isoformat(),
        judgment_date=judgment.isoformat(),
        frozen=frozen,
    )


def freeze(store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, now: datetime) -> bool:
    """Take a claim born before the judgment out of the ladder and have it declared at the
    next tick; whether it was frozen. A factored claim is the factor's to declare."""
    if holds.factored(invoice) or not holds.frozen_by_insolvency(invoice, debtor):
        return False
    cancel_pending(store, invoice.id, f"insolvency ({debtor.insolvency_procedure})")
    schedule(store, invoice, CLAIM_DECLARATION, "deadline.expired", now)
    return True


def judge_new_claim(store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, now: datetime) -> None:
    """An invoice arriving for a debtor under an opening judgment: frozen and declared when
    born before it, chased otherwise; a presumed origin is reported."""
    if debtor.insolvency_judgment_date is None or holds.factored(invoice):
        return
    if holds.origin_presumed(invoice):
        report_presumed_origin(store, invoice, debtor, now)
    freeze(store, invoice, debtor, now)


def declaration_cases(store: Store, debtor: DebtorRecord) -> list[CaseRecord]:
    """The debtor's live claim-declaration cases (open or handed over), by id."""
    found = {c.id: c for c in store.open_cases(debtor.id) if c.kind == DECLARATION}
    for invoice in store.open_invoices(debtor.id):
        if holds.frozen_by_insolvency(invoice, debtor):
            found |= {c.id: c for c in store.cases_holding(invoice.id, LIVE) if c.kind == DECLARATION}
    return [found[key] for key in sorted(found)]


def note_on_declarations(
    store: Store, debtor: DebtorRecord, note: str, now: datetime, *, reasons: bool = False
) -> list[CaseRecord]:
    """Add ``note`` to the debtor's live claim-declaration cases (and, with ``reasons``, say
    again to whom the declaration goes); the cases changed."""
    cases = declaration_cases(store, debtor)
    for case in cases:
        case.notes = [*case.notes, note]
        if reasons:
            case.reasons = declaration_reasons(debtor)
        case.updated_at = now
    return cases


def record_stage(
    store: Store,
    debtor: DebtorRecord,
    kind: str,
    now: datetime,
    note: str,
    cases: Sequence[CaseRecord],
    facts: dict[str, Any],
) -> None:
    """The evidence record and log line of a later stage of the procedure."""
    case_ids = [c.id for c in cases]
    payload = {
        "action": kind,
        "debtor_id": debtor.id,
        "stage": debtor.insolvency_stage,
        "procedure": debtor.insolvency_procedure,
        **facts,
        "reason": note,
        "case_ids": case_ids,
    }
    evidence.append(store, kind, now, payload, debtor_id=debtor.id, case_id=case_ids[0] if case_ids else None)
    log.info(kind, debtor_id=debtor.id, stage=debtor.insolvency_stage, case_ids=case_ids, **facts)


def check_after_opening(debtor: DebtorRecord, on_day: date, what: str) -> str | None:
    """Why a later stage cannot apply to this debtor now (None: it can)."""
    opened = debtor.insolvency_judgment_date
    assert opened is not None
    if debtor.insolvency_stage == CLOSED:
        closed = debtor.insolvency_closed_on
        return f"debtor {debtor.id}: insolvency proceedings closed on {closed.isoformat() if closed else '?'}"
    if on_day < opened:
        return f"{what}: before the opening judgment of {opened.isoformat()}"
    return None
