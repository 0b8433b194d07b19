"""``invoice.written_off`` and an ``invoice.cancelled`` after the formal notice, on the memory
unit of work."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from adapters.memory_store import MemoryUnitsOfWork
from handlers.store import NewCase
from tests.support import invoice_issued
from tests.unit.test_events_on_memory import NOW, ctx, data, feed, invoice, steps

__all__ = ["ctx", "data"]  # the fixtures, shared with test_events_on_memory


def written_off(number: str = "F-1", event_id: str = "wo-1") -> dict:
    return {
        "event_id": event_id,
        "type": "invoice.written_off",
        "occurred_at": "2026-06-01T10:00:00+02:00",
        "invoice_number": number,
        "reason": "Client introuvable, créance irrécouvrable",
    }


def cancelled(number: str = "F-1") -> dict:
    return {
        "event_id": f"cancel-{number}",
        "type": "invoice.cancelled",
        "occurred_at": "2026-06-01T10:00:00+02:00",
        "invoice_number": number,
    }


def open_case(data, numbers: list[str]) -> int:
    with MemoryUnitsOfWork(data)() as uow:
        members = [invoice(data, n) for n in numbers]
        principal = sum((i.balance for i in members), Decimal("0.00"))
        case = uow.store.add_case(
            NewCase(
                debtor_id="D-1",
                kind="escalation",
                recommended_procedure="injonction_de_payer",
                reasons=["formal notice unanswered"],
                currency="EUR",
                principal=principal,
                late_interest=Decimal("0.00"),
                indemnities=Decimal("0.00"),
                deadline=None,
                notes=[],
            ),
            NOW,
        )
        uow.store.add_case_invoices(case.id, [i.id for i in members])
        return case.id


def test_a_written_off_invoice_stops_everything_even_its_prescription_warning(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    assert feed(data, ctx, NOW, written_off()) == ["accepted"]
    assert invoice(data, "F-1").status == "written_off"
    assert steps(data, "F-1", "planned") == set()
    assert {"formal_notice", "prescription_warning"} <= steps(data, "F-1", "cancelled")


def test_a_case_holding_only_the_written_off_invoice_is_closed_one_with_others_goes_on(data, ctx):
    feed(data, ctx, NOW, *(invoice_issued(n, "2026-04-01") for n in ("F-1", "F-2", "F-3")))
    alone, shared = open_case(data, ["F-1"]), open_case(data, ["F-2", "F-3"])
    feed(data, ctx, NOW, written_off("F-1"), written_off("F-2", "wo-2"))
    assert data.cases[alone].status == "closed"
    # 1 200,00 of F-3 left: F-2 stays in the case, out of its principal
    assert (data.cases[shared].status, data.cases[shared].principal) == ("open", Decimal("1200.00"))


def test_writing_off_an_invoice_that_is_not_open_is_rejected(data, ctx):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"), cancelled())
    assert feed(data, ctx, NOW, written_off()) == ["rejected"]
    assert [r.reason for r in data.rejected.values()] == [
        "invoice_number: invoice F-1 is cancelled, not open"
    ]


def _formal_notice_sent(data, number: str) -> None:
    """The formal notice marked sent, as the reminder path leaves it (tested there)."""
    found = invoice(data, number)
    (step,) = [s for s in data.steps.values() if s.invoice_id == found.id and s.step == "formal_notice"]
    step.status, step.done_at = "done", step.due_at


def test_an_invoice_cancelled_after_its_formal_notice_is_a_warning_and_evidence(data, ctx, json_logs):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    _formal_notice_sent(data, "F-1")
    feed(data, ctx, datetime(2026, 6, 1, 8, 0, tzinfo=UTC), cancelled())
    (warning,) = [e for e in json_logs() if e["event"] == "invoice.cancelled_after_formal_notice"]
    assert (warning["level"], warning["invoice_number"], warning["balance"]) == (
        "warning",
        "F-1",
        "1200.00",
    )
    (record,) = [r for r in data.evidence if r.kind == "invoice.cancelled_after_formal_notice"]
    assert record.invoice_numbers == ["F-1"]
    assert invoice(data, "F-1").status == "cancelled"


def test_an_invoice_cancelled_before_its_formal_notice_is_no_warning(data, ctx, json_logs):
    feed(data, ctx, NOW, invoice_issued("F-1", "2026-04-01"))
    feed(data, ctx, NOW, cancelled())
    assert not [e for e in json_logs() if e["event"] == "invoice.cancelled_after_formal_notice"]
    assert not [r for r in data.evidence if r.kind == "invoice.cancelled_after_formal_notice"]
