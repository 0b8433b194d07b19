"""The memory store against SQLite on random histories of accounting events and deadlines.

Hypothesis draws a debtor's history (invoices issued and re-issued, payments, credit
notes, disputes and their outcome, promises, cancellations, payment plans that add up or
not, an insolvency), plays it through the use cases (``handlers.service.ingest_one``, then
every deadline due by a later day through ``run_step``) once on the memory unit of work and
once on SQLite, and compares everything the store then holds: invoices, planned steps,
inbox entries, rejected events, payment plans, cases and the evidence records, in order.
One contract, two stores: the core cannot tell them apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from adapters.memory_store import MemoryData, MemoryUnitsOfWork
from adapters.orm import (
    Base,
    CaseInvoice,
    CaseRow,
    EvidenceRecord,
    InboxEvent,
    InvoiceRow,
    PaymentPlanRow,
    PlannedStep,
    RejectedEvent,
)
from adapters.store import SqlUnitsOfWork, make_engine, migrate, session_factory
from config.bootstrap import make_context
from config.settings import Settings
from handlers.context import Context
from handlers.ports import UnitsOfWork
from handlers.service import ingest_one, run_step

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 9, 30, 9, 0, tzinfo=UTC)  # every deadline of a history is due by then
NUMBERS = ("F-1", "F-2", "F-3")
DEBTOR = {
    "id": "D-1",
    "name": "ACME Industrie SAS",
    "kind": "business",
    "email": "compta@acme.example",
    "address": {"line1": "12 rue des Forges", "postal_code": "69007", "city": "Lyon", "country": "FR"},
}

event_kinds = st.sampled_from(
    [
        "issued",
        "issued",
        "payment",
        "credit_note",
        "disputed",
        "dispute_upheld",
        "dispute_rejected",
        "promise",
        "cancelled",
        "plan",
        "insolvency",
        "factored",
        "stage",
    ]
)
histories = st.lists(
    st.tuples(event_kinds, st.integers(0, len(NUMBERS) - 1), st.integers(0, 3)), min_size=1, max_size=10
)
AMOUNTS = (Decimal("100.00"), Decimal("1200.00"), Decimal("4800.00"), Decimal("0.04"))


def _event(i: int, kind: str, number: str, variant: int) -> dict[str, Any]:
    day = (START + timedelta(days=3 * i)).date()
    base = {"event_id": f"e-{i}", "occurred_at": f"{day.isoformat()}T10:00:00+02:00"}
    amount = str(AMOUNTS[variant])
    if kind == "issued":
        return base | {"type": "invoice.issued", "invoice": _invoice(day, number, variant), "debtor": DEBTOR}
    if kind == "factored":  # assigned to a factor (even variants), or given back (odd ones)
        invoice = _invoice(day, number, variant) | (
            {"factored_by": "Factofrance"} if variant % 2 == 0 else {}
        )
        return base | {"type": "invoice.updated", "invoice": invoice}
    if kind == "stage":
        return base | _stage(day, variant)
    if kind in ("payment", "credit_note"):
        extra = (
            {"type": "payment.received", "paid_on": day.isoformat()}
            if kind == "payment"
            else {"type": "credit_note.issued", "credit_note_number": f"AV-{i}"}
        )
        return base | {"invoice_number": number, "amount": amount} | extra
    if kind == "disputed":
        return base | {"type": "invoice.disputed", "invoice_number": number, "reason": "quantité"}
    if kind.startswith("dispute_"):
        outcome = "upheld" if kind == "dispute_upheld" else "rejected"
        return base | {"type": "dispute.resolved", "invoice_number": number, "outcome": outcome}
    if kind == "promise":
        promised = day + timedelta(days=5 + variant)
        return base | {
            "type": "promise_to_pay.recorded",
            "invoice_number": number,
            "promised_date": str(promised),
        }
    if kind == "cancelled":
        return base | {"type": "invoice.cancelled", "invoice_number": number}
    if kind == "plan":
        installments = [
            {"due_date": str(day + timedelta(days=20 * (k + 1))), "amount": "600.00"} for k in range(2)
        ]
        return base | {
            "type": "payment_plan.agreed",
            "debtor_id": "D-1",
            "invoice_numbers": [number],
            "installments": installments,  # adds up when the open balance is 1 200,00
        }
    return base | {
        "type": "debtor.insolvency_opened",
        "debtor_id": "D-1",
        "procedure": "redressement",
        "judgment_date": str(day - timedelta(days=variant)),
    }


def _invoice(day: Any, number: str, variant: int) -> dict[str, Any]:
    due = day + timedelta(days=10 * variant)
    invoice = {"number": number, "debtor_id": "D-1", "issue_date": day.isoformat()}
    invoice |= {"due_date": due.isoformat(), "currency": "EUR", "amount_due": str(AMOUNTS[variant % 3])}
    if variant % 2:  # delivered some days before it was invoiced: the origin of the claim
        invoice["delivered_on"] = (day - timedelta(days=4 * variant)).isoformat()
    return invoice


def _stage(day: Any, variant: int) -> dict[str, Any]:
    """A later stage of the insolvency: converted, a plan, or closed (parked before an opening)."""
    body: dict[str, Any] = {"debtor_id": "D-1"}
    if variant == 0:
        who = {"name": "Me Paul Marchand", "address": ["8 rue Grenette", "69002 Lyon"]}
        return body | {"type": "debtor.insolvency_converted", "procedure": "liquidation",
                       "judgment_date": day.isoformat(), "liquidator": who}  # fmt: skip
    if variant == 1:
        return body | {"type": "debtor.insolvency_plan_adopted", "judgment_date": day.isoformat()}
    outcome = "insufficient_assets" if variant == 2 else "plan_completed"
    return body | {"type": "debtor.insolvency_closed", "closed_on": day.isoformat(), "outcome": outcome}


class Published:
    def publish(self, tasks: Any) -> None:
        pass


def _play(units: UnitsOfWork, pending_deadlines: Any, ctx: Context, history: list) -> None:
    for i, (kind, which, variant) in enumerate(history):
        now = START + timedelta(days=3 * i)
        with units() as uow:
            ingest_one(uow, json.dumps(_event(i, kind, NUMBERS[which], variant)), now, ctx)
    for _ in range(10):  # one run handles every deadline of the debtor due by then
        due = pending_deadlines()
        if not due:
            return
        run_step(units, Published(), f"deadline-{due[0]}", "deadline.expired", due[0], LATER, ctx)


def _instant(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _invoice_state(i: Any) -> tuple:
    return (i.number, i.status, i.amount_due, i.paid, i.credited, i.disputed, i.ever_disputed,
            i.paused_until, i.in_payment_plan, i.policy_key, i.due_date, i.delivered_on,
            i.factored_by)  # fmt: skip


def _case_state(c: Any, numbers: list[str]) -> tuple:
    return (c.kind, c.status, c.currency, c.principal, c.late_interest, c.indemnities, c.amount_claimed,
            c.recommended_procedure, list(c.reasons), list(c.notes), c.deadline, sorted(numbers))  # fmt: skip


def memory_state(data: MemoryData) -> dict[str, Any]:
    number = {i.id: i.number for i in data.invoices.values()}
    case_numbers: dict[int, list[str]] = {}
    for link in data.case_invoices.values():
        case_numbers.setdefault(link.case_id, []).append(number[link.invoice_id])
    return {
        "invoices": sorted(_invoice_state(i) for i in data.invoices.values()),
        "steps": sorted(
            (number[s.invoice_id], s.step, s.event, s.status, _instant(s.due_at), s.reason or "")
            for s in data.steps.values()
        ),
        "inbox": sorted((e.event_id, e.status, e.waiting_for or "") for e in data.inbox.values()),
        "rejected": sorted((r.event_id or "", r.reason) for r in data.rejected.values()),
        "plans": sorted((p.status, p.currency, p.reason or "") for p in data.plans.values()),
        "cases": sorted(_case_state(c, case_numbers.get(c.id, [])) for c in data.cases.values()),
        "evidence": [
            (r.kind, _instant(r.at), r.payload, r.debtor_id, list(r.invoice_numbers)) for r in data.evidence
        ],
    }


def sql_state(units: SqlUnitsOfWork) -> dict[str, Any]:
    with units() as uow:
        s = uow.session
        invoices = list(s.execute(select(InvoiceRow)).scalars())
        number = {i.id: i.number for i in invoices}
        case_numbers: dict[int, list[str]] = {}
        for link in s.execute(select(CaseInvoice)).scalars():
            case_numbers.setdefault(link.case_id, []).append(number[link.invoice_id])
        return {
            "invoices": sorted(_invoice_state(i) for i in invoices),
            "steps": sorted(
                (number[p.invoice_id], p.step, p.event, p.status, _instant(p.due_at), p.reason or "")
                for p in s.execute(select(PlannedStep)).scalars()
            ),
            "inbox": sorted(
                (e.event_id, e.status, e.waiting_for or "") for e in s.execute(select(InboxEvent)).scalars()
            ),
            "rejected": sorted(
                (r.event_id or "", r.reason) for r in s.execute(select(RejectedEvent)).scalars()
            ),
            "plans": sorted(
                (p.status, p.currency, p.reason or "") for p in s.execute(select(PaymentPlanRow)).scalars()
            ),
            "cases": sorted(
                _case_state(c, case_numbers.get(c.id, [])) for c in s.execute(select(CaseRow)).scalars()
            ),
            "evidence": [
                (r.kind, _instant(r.at), r.payload, r.debtor_id, list(r.invoice_numbers))
                for r in s.execute(select(EvidenceRecord).order_by(EvidenceRecord.seq)).scalars()
            ],
        }


def _due_in_memory(data: MemoryData) -> list[int]:
    return [
        s.id
        for s in sorted(data.steps.values(), key=lambda s: (s.due_at, s.id))
        if s.event == "deadline.expired" and s.status in ("planned", "emitted") and s.due_at <= LATER
    ]


def _due_in_sql(units: SqlUnitsOfWork) -> list[int]:
    with units() as uow:
        return list(
            uow.session.execute(
                select(PlannedStep.id)
                .where(
                    PlannedStep.event == "deadline.expired",
                    PlannedStep.status.in_(("planned", "emitted")),
                    PlannedStep.due_at <= LATER,
                )
                .order_by(PlannedStep.due_at, PlannedStep.id)
            ).scalars()
        )


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> Context:
    return make_context(Settings(data_dir=tmp_path_factory.mktemp("ctx")))


@pytest.fixture(scope="module")
def sqlite(tmp_path_factory) -> Iterator[SqlUnitsOfWork]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('histories') / 'relance.db'}")
    migrate(engine)
    yield SqlUnitsOfWork(session_factory(engine))
    engine.dispose()


def _clear(units: SqlUnitsOfWork) -> None:
    with units() as uow:
        for table in reversed(Base.metadata.sorted_tables):
            uow.session.execute(delete(table))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories)
def test_the_memory_store_ends_every_history_as_sqlite_does(ctx, sqlite, history):
    data = MemoryData()
    _play(MemoryUnitsOfWork(data), lambda: _due_in_memory(data), ctx, history)
    _clear(sqlite)  # one database for every example: each starts with no rows
    _play(sqlite, lambda: _due_in_sql(sqlite), ctx, history)
    assert memory_state(data) == sql_state(sqlite)


def _both(ctx: Context, sqlite: SqlUnitsOfWork, history: list) -> dict[str, Any]:
    data = MemoryData()
    _play(MemoryUnitsOfWork(data), lambda: _due_in_memory(data), ctx, history)
    _clear(sqlite)
    _play(sqlite, lambda: _due_in_sql(sqlite), ctx, history)
    state = memory_state(data)
    assert state == sql_state(sqlite)
    return state


def test_a_missed_installment_breaks_the_plan_alike(ctx, sqlite):
    # F-1 of 1 200,00, then a plan of 2 x 600,00 that adds up; nothing is paid
    state = _both(ctx, sqlite, [("issued", 0, 1), ("plan", 0, 0)])
    assert [status for status, _, _ in state["plans"]] == ["broken"]
    assert ("e-1", "applied", "") in state["inbox"]


def test_an_insolvency_freezes_a_plan_and_declares_the_claim_alike(ctx, sqlite):
    # the same plan, then an insolvency judgment: the stay forbids enforcing the plan
    state = _both(ctx, sqlite, [("issued", 0, 1), ("plan", 0, 0), ("issued", 1, 1), ("insolvency", 0, 0)])
    assert [status for status, _, _ in state["plans"]] == ["active"]
    assert [(case[0], case[-1]) for case in state["cases"]] == [("claim_declaration", ["F-1", "F-2"])]


def test_a_factored_invoice_and_the_later_stages_of_an_insolvency_alike(ctx, sqlite):
    # F-1 and F-2 issued, F-2 factored, an insolvency, a conversion, then the closure
    history = [("issued", 0, 1), ("issued", 1, 0), ("factored", 1, 0), ("insolvency", 0, 0), ("stage", 0, 0),
               ("stage", 0, 2)]  # fmt: skip
    state = _both(ctx, sqlite, history)
    assert [(case[0], case[-1]) for case in state["cases"]] == [("claim_declaration", ["F-1"])]
    kinds = [kind for kind, *_ in state["evidence"]]
    assert {"invoice.factored", "insolvency.converted", "insolvency.closed"} <= set(kinds)
