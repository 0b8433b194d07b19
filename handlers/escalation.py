"""Deadlines: a formal notice's deadline opens a case; a broken promise or payment plan
resumes dunning."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime

import structlog

from handlers import evidence, handover, holding, holds, insolvency, plans, signals
from handlers.amounts import amounts_on, penalties_run
from handlers.calendar import add_months, local_date
from handlers.context import Context
from handlers.money import ZERO, Movement
from handlers.planning import PENDING, PRESCRIPTION_WARNING, prescription_dates, resume_invoice
from handlers.policy import CLAIM_DECLARATION, ESCALATION, Policy
from handlers.procedure_table import TABLE
from handlers.procedure_views import legal_bases
from handlers.procedures import recommend
from handlers.records import CaseRecord, DebtorRecord, InvoiceRecord, StepRecord
from handlers.store import NewCase, Store

log = structlog.get_logger("relance.escalation")

PROMISE_EXPIRED = "promise_expired"


def handle_deadline(store: Store, step_id: int, now: datetime, ctx: Context) -> list[object]:
    """Act on every deadline of the step's debtor that has passed by ``now``."""
    first = store.step(step_id)
    if first is None or first.status not in PENDING:
        return []
    debtor = store.debtor(first.debtor_id, lock=True)
    if debtor is None:
        return []
    rows = store.due_deadlines(debtor.id, now)
    to_escalate: list[InvoiceRecord] = []
    for step_row, invoice in rows:
        step_row.status, step_row.done_at = "done", now
        if step_row.step == PROMISE_EXPIRED:
            _promise_expired(store, invoice, debtor, step_row, now, ctx.policy_for(debtor, invoice.number))
        elif step_row.step == CLAIM_DECLARATION:
            open_claim_declaration(store, debtor, now, ctx)
        elif step_row.step == PRESCRIPTION_WARNING:
            _prescription_warning(store, invoice, debtor, now)
        elif step_row.step in (holds.HOLD_EXPIRED, holds.DEBTOR_HOLD_EXPIRED):
            _hold_expired(store, invoice, debtor, step_row, now, ctx)
        elif plans.is_deadline(step_row.step):
            _installment_expired(store, debtor, step_row, now, ctx.policy_for(debtor, invoice.number))
        elif step_row.step == ESCALATION:
            money = ctx.policy_for(debtor, invoice.number).money
            reason = holds.escalation_hold(invoice, money.minimum_for(invoice.currency))
            if reason is None:
                to_escalate.append(invoice)
            else:
                step_row.reason = reason[:300]
    if to_escalate:
        _deadline_record(store, debtor, to_escalate, ESCALATION, now)
        for same_currency in by_currency(to_escalate).values():
            open_case(store, debtor, same_currency, now, ctx)
    return []  # hand-over tasks go through the unit of work (handover.request_handover)


def _movements(
    store: Store, invoices: Sequence[InvoiceRecord], debtor: DebtorRecord, day: date, ctx: Context
) -> dict[int, list[Movement]]:
    """The movements of the invoices on which penalties run on ``day``, in one query."""
    running = [i.id for i in invoices if penalties_run(i, debtor, day, ctx.policy_for(debtor, i.number))]
    return store.movements(running)


def by_currency(invoices: list[InvoiceRecord]) -> dict[str, list[InvoiceRecord]]:
    """The invoices grouped by currency, in their order: a case never adds two currencies."""
    groups: dict[str, list[InvoiceRecord]] = {}
    for invoice in invoices:
        groups.setdefault(invoice.currency, []).append(invoice)
    return groups


def _deadline_record(
    store: Store,
    debtor: DebtorRecord,
    invoices: list[InvoiceRecord],
    step: str,
    now: datetime,
    extra: dict | None = None,
) -> None:
    numbers = [i.number for i in invoices]
    evidence.append(
        store,
        "deadline.expired",
        now,
        {
            "action": "deadline.expired",
            "event": "deadline.expired",
            "step": step,
            "debtor_id": debtor.id,
            "invoice_numbers": numbers,
            **(extra or {}),
        },
        debtor_id=debtor.id,
        invoice_numbers=numbers,
    )
    log.info("deadline.expired", debtor_id=debtor.id, step=step, invoice_numbers=numbers)


def _promise_expired(
    store: Store,
    invoice: InvoiceRecord,
    debtor: DebtorRecord,
    step_row: StepRecord,
    now: datetime,
    policy: Policy,
) -> None:
    invoice.paused_until = None
    if invoice.status != "open" or invoice.balance <= 0:
        step_row.reason = "promise kept"
        return
    _deadline_record(store, debtor, [invoice], PROMISE_EXPIRED, now)
    minimum = policy.money.minimum_for(invoice.currency)
    if holds.chase_hold(invoice, debtor, local_date(now, debtor.timezone), minimum) is None:
        resume_invoice(store, invoice, debtor, policy, now)


def _hold_expired(
    store: Store,
    invoice: InvoiceRecord,
    debtor: DebtorRecord,
    step_row: StepRecord,
    now: datetime,
    ctx: Context,
) -> None:
    """The end of a hold's last day: released, dunning resumes as after a rejected dispute."""
    today = local_date(now, debtor.timezone)
    if step_row.step == holds.HOLD_EXPIRED:
        policy = ctx.policy_for(debtor, invoice.number)
        reason = holding.expire_invoice_hold(store, invoice, debtor, policy, now, today)
        released = [invoice]
    else:
        reason = holding.expire_debtor_hold(store, debtor, ctx.policy_for, now, today)
        released = store.open_invoices(debtor.id)
    if reason is not None:
        step_row.reason = reason
        return
    _deadline_record(store, debtor, released, step_row.step, now)


def _installment_expired(
    store: Store, debtor: DebtorRecord, step_row: StepRecord, now: datetime, policy: Policy
) -> None:
    """End of an installment's last day: unpaid, the plan is broken and dunning resumes."""
    found = plans.installment_of(store, step_row, lock=True)
    if found is None:
        step_row.reason = "payment plan unknown"
        return
    plan, installment = found
    reason = plans.blocker(store, plan, installment, debtor)
    if reason == plans.NOTHING_LEFT:
        plans.complete(store, plan, plans.invoices_of(store, plan), now, policy, "invoices settled")
    if reason is not None:
        step_row.reason = reason[:300]
        return
    unpaid = installment.amount - installment.paid
    owed = plans.break_plan(store, plan, installment, debtor, now, policy)
    step_row.reason = "payment plan broken"
    _deadline_record(
        store,
        debtor,
        owed,
        step_row.step,
        now,
        {
            "plan_id": plan.id,
            "installment": installment.seq,
            "amount_due": str(unpaid),
            "currency": plan.currency,
            "reason": f"installment {installment.seq} of {plan.currency} {installment.amount} "
            f"unpaid ({unpaid} missing): payment plan broken, dunning resumes",
        },
    )


def open_case(
    store: Store, debtor: DebtorRecord, invoices: list[InvoiceRecord], now: datetime, ctx: Context
) -> CaseRecord:
    """One open case per debtor and currency; new unpaid invoices join the open case of
    their currency. ``invoices`` share one currency (see ``by_currency``)."""
    currencies = {i.currency for i in invoices}
    if len(currencies) != 1:
        raise ValueError(f"a case holds invoices of one currency, not {sorted(currencies)}")
    today = local_date(now, debtor.timezone)
    currency = invoices[0].currency
    case = next(
        (c for c in store.open_cases(debtor.id) if c.kind == "escalation" and c.currency == currency), None
    )
    opened = case is None
    if case is None:
        case = store.add_case(_new_escalation(debtor, currency), now)
    store.add_case_invoices(case.id, [i.id for i in invoices])
    members = [i for i in store.case_invoices(case.id) if not holds.factored(i)]  # the factor collects those
    moved = _movements(store, members, debtor, today, ctx)
    amounts = [
        amounts_on(
            i,
            debtor,
            today,
            ctx.policy_for(debtor, i.number),
            ctx.rates,
            with_penalties=True,
            movements=moved.get(i.id, ()),
        )
        for i in members
    ]
    case.principal = sum((a.balance for a in amounts), ZERO)
    case.late_interest = sum((a.late_interest for a in amounts), ZERO)
    case.indemnities = sum((a.indemnity for a in amounts), ZERO)
    case.amount_claimed = case.principal + case.late_interest + case.indemnities
    procedure, reasons, alternatives = recommend(
        debtor, members, case.amount_claimed, ctx.policy_for(debtor), case.currency
    )
    case.recommended_procedure, case.reasons, case.alternatives = procedure, reasons, alternatives
    case.updated_at = now
    numbers = [i.number for i in members]
    evidence.append(
        store,
        "case.escalated",
        now,
        {
            "action": "case.escalated",
            "event": "deadline.expired",
            "case_id": case.id,
            "debtor_id": debtor.id,
            "invoice_numbers": numbers,
            "recommended_procedure": procedure,
            "reasons": reasons,
            "alternatives": alternatives,
            "legal_bases": legal_bases([procedure, *alternatives], TABLE),
            **_case_amounts(case),
        },
        debtor_id=debtor.id,
        invoice_numbers=numbers,
        case_id=case.id,
    )
    log.info(
        "case.escalated",
        case_id=case.id,
        debtor_id=debtor.id,
        recommended_procedure=procedure,
        alternatives=alternatives,
        amount_claimed=str(case.amount_claimed),
    )
    if opened:
        signals.case_fact(store, "case.opened", case, now)
    handover.request_handover(store, case, now, ctx)
    return case


def _new_escalation(debtor: DebtorRecord, currency: str) -> NewCase:
    """An escalation case before its invoices join it: its amounts are computed then."""
    return NewCase(
        debtor_id=debtor.id,
        kind="escalation",
        recommended_procedure="",
        reasons=[],
        currency=currency,
        principal=ZERO,
        late_interest=ZERO,
        indemnities=ZERO,
        deadline=None,
        notes=[],
    )


def _bodacc_date(store: Store, debtor_id: str) -> date | None:
    """The BODACC publication date of the debtor's latest insolvency event, if it gave one."""
    for raw in store.applied_raws("debtor.insolvency_opened"):
        data = json.loads(raw)
        if data.get("debtor_id") == debtor_id:
            published = data.get("bodacc_published_on")
            return date.fromisoformat(published) if published else None
    return None


def open_claim_declaration(
    store: Store, debtor: DebtorRecord, now: datetime, ctx: Context
) -> list[CaseRecord]:
    """Declare the claims born before the judgment and not declared yet: each joins the
    debtor's open claim-declaration case of its currency, opened when there is none, with
    its deadline when the BODACC publication is known (2 months, 4 for a creditor outside
    metropolitan France: L622-24, R622-24). A balance below the policy's minimum, a factored
    invoice (the factor declares it) and a claim born after the judgment are not declared."""
    if debtor.insolvency_judgment_date is None:
        return []
    candidates = sorted(store.open_invoices(debtor.id), key=lambda i: (i.due_date, i.number))
    invoices = [i for i in candidates if _to_declare(store, i, debtor, ctx)]
    if not invoices:
        return []
    months = ctx.policy_for(debtor).escalation.claim_declaration_months
    published = _bodacc_date(store, debtor.id)
    deadline = add_months(published, months) if published else None
    return [
        _declare(store, debtor, same_currency, (deadline, months), now, ctx)
        for same_currency in by_currency(invoices).values()
    ]


def _to_declare(store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, ctx: Context) -> bool:
    """Whether this open invoice is a pre-judgment claim still to declare."""
    minimum = ctx.policy_for(debtor, invoice.number).money.minimum_for(invoice.currency)
    return (
        holds.frozen_by_insolvency(invoice, debtor)
        and invoice.balance > 0
        and not holds.factored(invoice)
        and not holds.below_minimum(invoice, minimum)
        and not any(
            c.kind == insolvency.DECLARATION for c in store.cases_holding(invoice.id, insolvency.LIVE)
        )
    )


def _declare(
    store: Store,
    debtor: DebtorRecord,
    invoices: list[InvoiceRecord],
    deadline: tuple[date | None, int],
    now: datetime,
    ctx: Context,
) -> CaseRecord:
    """Put pre-judgment claims of one currency in the debtor's open claim-declaration case
    (a new one when there is none) and compute its amounts: interest up to the day before
    the judgment (L622-28), the indemnity of the claims already late by then."""
    currency = invoices[0].currency
    case = next(
        (
            c
            for c in store.open_cases(debtor.id)
            if c.kind == insolvency.DECLARATION and c.currency == currency
        ),
        None,
    )
    opened = case is None
    if case is None:
        case = store.add_case(_new_declaration(debtor, currency, *deadline), now)
    store.add_case_invoices(case.id, [i.id for i in invoices])
    _declaration_amounts(store, case, debtor, ctx)
    presumed = [insolvency.presumed_origin_note(i) for i in invoices if holds.origin_presumed(i)]
    case.notes, case.updated_at = [*case.notes, *presumed], now
    _record_declaration(store, case, debtor, [i.number for i in invoices], opened, now)
    if opened:
        signals.case_fact(store, "case.opened", case, now)
    handover.request_handover(store, case, now, ctx)
    return case


def _new_declaration(debtor: DebtorRecord, currency: str, deadline: date | None, months: int) -> NewCase:
    """A claim-declaration case before its invoices join it: its amounts are computed then."""
    return NewCase(
        debtor_id=debtor.id,
        kind=insolvency.DECLARATION,
        recommended_procedure="declaration_de_creance",
        reasons=insolvency.declaration_reasons(debtor),
        currency=currency,
        principal=ZERO,
        late_interest=ZERO,
        indemnities=ZERO,
        deadline=deadline,
        notes=[] if deadline else [bodacc_unknown_note(months)],
    )


def bodacc_unknown_note(months: int) -> str:
    """What a claim-declaration case says while its deadline cannot be known."""
    return (
        f"BODACC publication date unknown: the deadline is {months} months after it "
        "(L622-24, R622-24); record it when published"
    )


def prescription_note(number: str, barred: date) -> str:
    """What the open case says six months before an invoice is time-barred."""
    return (
        f"prescription: invoice {number} is time-barred on {barred.isoformat()} "
        "unless interrupted (acknowledgment, court action)"
    )


def _declaration_amounts(store: Store, case: CaseRecord, debtor: DebtorRecord, ctx: Context) -> None:
    """The amounts of a claim-declaration case, counted on the judgment day: its claims
    still owing and not factored."""
    judgment = debtor.insolvency_judgment_date
    assert judgment is not None  # only for a debtor under an opening judgment
    members = [
        i
        for i in store.case_invoices(case.id)
        if i.status == "open" and i.balance > 0 and not holds.factored(i)
    ]
    moved = _movements(store, members, debtor, judgment, ctx)
    amounts = [
        amounts_on(
            i,
            debtor,
            judgment,
            ctx.policy_for(debtor, i.number),
            ctx.rates,
            with_penalties=True,
            movements=moved.get(i.id, ()),
        )
        for i in members
    ]
    case.principal = sum((a.balance for a in amounts), ZERO)
    case.late_interest = sum((a.late_interest for a in amounts), ZERO)
    case.indemnities = sum((a.indemnity for a in amounts), ZERO)
    case.amount_claimed = case.principal + case.late_interest + case.indemnities


def _record_declaration(
    store: Store, case: CaseRecord, debtor: DebtorRecord, numbers: list[str], opened: bool, now: datetime
) -> None:
    """``case.opened`` for a new claim-declaration case, ``case.updated`` when claims join one."""
    kind = "case.opened" if opened else "case.updated"
    deadline = case.deadline.isoformat() if case.deadline else None
    evidence.append(
        store,
        kind,
        now,
        {
            "action": kind,
            "event": "deadline.expired",
            "case_id": case.id,
            "kind": insolvency.DECLARATION,
            "debtor_id": debtor.id,
            "invoice_numbers": numbers,
            "recommended_procedure": "declaration_de_creance",
            "deadline": deadline,
            "declared_to": insolvency.receiver(debtor),
            **_case_amounts(case),
        },
        debtor_id=debtor.id,
        invoice_numbers=numbers,
        case_id=case.id,
    )
    log.info(kind, case_id=case.id, debtor_id=debtor.id, kind=insolvency.DECLARATION, deadline=deadline)


def _prescription_warning(store: Store, invoice: InvoiceRecord, debtor: DebtorRecord, now: datetime) -> None:
    """Six months before the claim is time-barred: a warning, and a note on the open case."""
    if invoice.status != "open" or invoice.balance <= 0:
        return
    barred, _ = prescription_dates(invoice, debtor.kind)
    note = prescription_note(invoice.number, barred)
    opened = store.open_cases(debtor.id)  # by id; the invoice's currency first
    case = min(opened, key=lambda c: (c.currency != invoice.currency, c.id), default=None)
    if case is not None:
        case.notes = [*case.notes, note]
        case.updated_at = now
    evidence.append(
        store,
        "prescription.warning",
        now,
        {
            "action": "prescription.warning",
            "event": "deadline.expired",
            "step": PRESCRIPTION_WARNING,
            "debtor_id": debtor.id,
            "invoice_numbers": [invoice.number],
            "reason": note,
        },
        debtor_id=debtor.id,
        invoice_numbers=[invoice.number],
        case_id=case.id if case else None,
    )
    log.warning(
        "prescription.warning",
        debtor_id=debtor.id,
        invoice_number=invoice.number,
        time_barred_on=barred.isoformat(),
        case_id=case.id if case else None,
    )


def _case_amounts(case: CaseRecord) -> dict[str, str]:
    """A case's amounts as its evidence records state them (decimal strings)."""
    return {
        "amount_due": str(case.principal),
        "late_interest": str(case.late_interest),
        "recovery_indemnity": str(case.indemnities),
        "amount_claimed": str(case.amount_claimed),
        "currency": case.currency,
    }
