"""Events and deadlines end to end on the memory unit of work: no database.

The use cases (``handlers.service``) apply accounting events and expired deadlines through
the store port alone; here that port is ``adapters.memory_store``. What they decide (steps
planned and cancelled, parking, promises, plans refused, insolvency, cases and their
amounts) is checked on the records the memory store keeps.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from adapters.memory_store import MemoryData, MemoryUnitsOfWork
from config.bootstrap import make_context
from config.settings import Settings
from handlers.context import Context
from handlers.service import ingest_one, run_step
from tests.support import DEBTOR, invoice_issued, payment


class Published:
    def __init__(self) -> None:
        self.tasks: list[object] = []

    def publish(self, tasks: Any) -> None:
        self.tasks.extend(tasks)


@pytest.fixture
def ctx(tmp_path) -> Context:
    return make_context(Settings(data_dir=tmp_path))


@pytest.fixture
def data() -> MemoryData:
    return MemoryData()


def feed(data: MemoryData, ctx: Context, now: datetime, *events: dict[str, Any]) -> list[str]:
    units = MemoryUnitsOfWork(data)
    statuses = []
    for event in events:
        with units() as uow:
            statuses.append(ingest_one(uow, json.dumps(event), now, ctx).status)
    return statuses


def expire(data: MemoryData, ctx: Context, step_name: str, now: datetime) -> list[object]:
    """Run the ``deadline.expired`` of the step of that name, as the worker would."""
    step = next(s for s in data.steps.values() if s.step == step_name)
    published = Published()
    run_step(MemoryUnitsOfWork(data), published, f"msg-{step.id}", "deadline.expired", step.id, now, ctx)
    return published.tasks


def invoice(data: MemoryData, number: str) -> Any:
    return next(i for i in data.invoices.values() if i.number == number)


def steps(data: MemoryData, number: str, status: str) -> set[str]:
    found = invoice(data, number)
    return {s.step for s in data.steps.values() if s.invoice_id == found.id and s.status == status}


NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_an_invoice_paid_in_full_is_settled_and_its_pending_steps_cancelled(data, ctx):
    assert feed(
        data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), payment("F-1", "1200.00", "2026-03-20")
    ) == [
        "accepted",
        "accepted",
    ]
    settled = invoice(data, "F-1")
    assert (settled.status, settled.paid, settled.balance) == ("settled", Decimal("1200.00"), Decimal("0.00"))
    assert "formal_notice" in steps(data, "F-1", "cancelled")
    assert steps(data, "F-1", "planned") == {"prescription_warning"}  # a paid claim still ages
    assert [r.kind for r in data.evidence] == ["event.accepted", "event.accepted"]


def test_a_payment_before_its_invoice_waits_parked_and_is_applied_when_the_invoice_arrives(data, ctx):
    assert feed(data, ctx, NOW, payment("F-9", "200.00", "2026-03-01")) == ["parked"]
    assert [(e.status, e.waiting_for) for e in data.inbox.values()] == [("parked", "invoice:F-9")]
    assert feed(data, ctx, NOW, invoice_issued("F-9", "2026-04-01")) == ["accepted"]
    assert invoice(data, "F-9").paid == Decimal("200.00")
    assert {e.status for e in data.inbox.values()} == {"applied"}
    assert [r.kind for r in data.evidence] == ["event.parked", "event.accepted", "event.accepted"]


def test_a_plan_that_does_not_add_up_is_rejected_and_changes_nothing(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    planned = steps(data, "F-1", "planned")
    plan = {
        "event_id": "plan-1",
        "type": "payment_plan.agreed",
        "occurred_at": "2026-03-10T10:00:00+01:00",
        "debtor_id": "D-1",
        "invoice_numbers": ["F-1"],
        "installments": [{"due_date": "2026-04-15", "amount": "600.00"}],  # 600 of 1200
    }
    assert feed(data, ctx, NOW, plan) == ["rejected"]
    assert [r.reason for r in data.rejected.values()] == [
        "installments: total 600.00 differs from the open balance 1200.00"
    ]
    assert invoice(data, "F-1").in_payment_plan is False
    assert steps(data, "F-1", "planned") == planned and not data.plans


def test_a_broken_promise_resumes_the_ladder_from_the_day_it_expired(data, ctx):
    promise = {
        "event_id": "promise-1",
        "type": "promise_to_pay.recorded",
        "occurred_at": "2026-04-10T10:00:00+02:00",
        "invoice_number": "F-1",
        "promised_date": "2026-04-20",
    }
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), promise)
    assert steps(data, "F-1", "planned") == {"promise_expired", "prescription_warning"}
    assert invoice(data, "F-1").paused_until.isoformat() == "2026-04-20"
    # the end of 20 April in Paris (UTC+2) is 22:00 UTC that day
    expired_at = datetime(2026, 4, 21, 7, 0, tzinfo=UTC)
    expire(data, ctx, "promise_expired", expired_at)
    assert invoice(data, "F-1").paused_until is None
    resumed = [s for s in data.steps.values() if s.status == "planned" and s.event != "deadline.expired"]
    assert resumed and all(s.due_at >= expired_at for s in resumed)
    assert [r.kind for r in data.evidence][-1] == "deadline.expired"


def test_a_second_promise_after_the_first_expired_expires_in_turn(data, ctx):
    first = {
        "event_id": "promise-1",
        "type": "promise_to_pay.recorded",
        "occurred_at": "2026-04-10T10:00:00+02:00",
        "invoice_number": "F-1",
        "promised_date": "2026-04-20",
    }
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), first)
    expire(data, ctx, "promise_expired", datetime(2026, 4, 21, 7, 0, tzinfo=UTC))
    second = first | {"event_id": "promise-2", "promised_date": "2026-05-15"}
    feed(data, ctx, datetime(2026, 4, 25, 9, 0, tzinfo=UTC), second)
    # its own end is planned: the end of 15 May in Paris (UTC+2), 22:00 UTC that day
    (step,) = [s for s in data.steps.values() if s.step == "promise_expired"]
    assert (step.status, step.due_at) == ("planned", datetime(2026, 5, 15, 22, 0, tzinfo=UTC))
    # a new emission of the same step: a broker message of its own
    run_step(MemoryUnitsOfWork(data), Published(), "msg-again", "deadline.expired", step.id, step.due_at, ctx)
    assert invoice(data, "F-1").paused_until is None  # not paused for good


def test_an_expired_formal_notice_deadline_opens_a_case_with_its_penalties(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01", "4800.00"))
    found = invoice(data, "F-1")
    # a formal notice's deadline ending on 19 May in Paris, planned here by hand
    deadline = datetime(2026, 5, 19, 22, 0, tzinfo=UTC)
    units = MemoryUnitsOfWork(data)
    with units() as uow:
        uow.store.add_step(found.id, "D-1", "escalation", "deadline.expired", deadline)
    expire(data, ctx, "escalation", deadline)
    (case,) = data.cases.values()
    # 2 April to 20 May: 49 days at 12.15 %: 4800 * 0.1215 * 49 / 365 = 78.29; + 40 indemnity
    assert (case.principal, case.late_interest, case.indemnities) == (
        Decimal("4800.00"),
        Decimal("78.29"),
        Decimal("40.00"),
    )
    assert case.amount_claimed == Decimal("4918.29")
    assert case.recommended_procedure == "procedure_simplifiee"  # 4 918,29 <= 5 000 €
    assert [link.invoice_id for link in data.case_invoices.values()] == [found.id]
    assert "case.escalated" in [r.kind for r in data.evidence]


def test_insolvency_freezes_the_invoices_issued_before_the_judgment_and_declares_them(data, ctx):
    later = {**DEBTOR}
    feed(
        data,
        ctx,
        NOW,
        invoice_issued("F-1", "2026-04-01"),
        invoice_issued("F-2", "2026-05-15", issued="2026-04-15", debtor=later),
    )
    opened = {
        "event_id": "insolvency-1",
        "type": "debtor.insolvency_opened",
        "occurred_at": "2026-04-16T10:00:00+02:00",
        "debtor_id": "D-1",
        "procedure": "redressement",
        "judgment_date": "2026-04-10",
    }
    when = datetime(2026, 4, 16, 8, 0, tzinfo=UTC)
    feed(data, ctx, when, opened)
    assert steps(data, "F-1", "planned") == {"prescription_warning", "claim_declaration"}
    assert "formal_notice" in steps(data, "F-2", "planned")  # a claim born after the judgment
    expire(data, ctx, "claim_declaration", when)
    (case,) = data.cases.values()
    assert (case.kind, case.recommended_procedure) == ("claim_declaration", "declaration_de_creance")
    # penalties stop the day before the judgment, which takes effect at 0 h on its day
    # (L622-28): 2 to 9 April, 8 days: 1200 * 0.1215 * 8 / 365 = 3.1956... -> 3.20 (the
    # judgment day itself was counted before, giving 9 days and 3.60)
    assert (case.principal, case.late_interest, case.indemnities) == (
        Decimal("1200.00"),
        Decimal("3.20"),
        Decimal("40.00"),
    )
    assert [link.invoice_id for link in data.case_invoices.values()] == [invoice(data, "F-1").id]


def test_a_unit_of_work_that_fails_leaves_the_memory_store_as_it_was(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    before = (invoice(data, "F-1").paid, len(data.payments), len(data.inbox), len(data.evidence))
    units = MemoryUnitsOfWork(data)
    with pytest.raises(RuntimeError), units() as uow:
        ingest_one(uow, json.dumps(payment("F-1", "100.00", "2026-03-05")), NOW, ctx)
        raise RuntimeError("the worker died before the commit")
    assert (invoice(data, "F-1").paid, len(data.payments), len(data.inbox), len(data.evidence)) == before


def test_a_debtor_named_again_with_the_same_details_is_left_as_it_was(data, ctx):
    later = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    data.debtors["D-1"].email_bounced = True
    assert feed(data, ctx, later, invoice_issued("F-2", "2026-04-05")) == ["accepted"]
    debtor = data.debtors["D-1"]
    # the second invoice carries the same details: neither the date nor the bounce moves
    assert (debtor.updated_at, debtor.email_bounced) == (NOW, True)
    moved = {**DEBTOR, "email": "factures@acme.example"}
    assert feed(data, ctx, later, invoice_issued("F-3", "2026-04-05", debtor=moved)) == ["accepted"]
    # another address: the details are written, the old address's bounce forgotten
    assert (debtor.email, debtor.updated_at, debtor.email_bounced) == ("factures@acme.example", later, False)
