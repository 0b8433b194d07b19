"""One contract for the store port (``handlers.store.Store``): which records each query
selects, in which order, and what a savepoint undoes.

Each test runs on the in-memory store (``adapters.memory_store``), on SQLite and on
PostgreSQL (``postgres`` marker), each time in a unit of work of its own kind (``uow.store``).
Records are changed through their attributes and read back with another query in the same
unit of work; where it matters, again in a new one. The clock is pinned: every instant is
an argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from adapters.memory_store import MemoryData, MemoryUnitsOfWork
from adapters.orm import EvidenceRecord, MessageItem, MessageRow, RejectedEvent
from adapters.store import SqlUnitsOfWork, make_engine, migrate, session_factory
from handlers.evidence import append
from handlers.money import Movement
from handlers.outbox import Item, Refusal
from handlers.ports import UnitOfWork
from handlers.records import DebtorRecord, InvoiceRecord
from handlers.store import NewCase, NewHandover, NewInvoice, NewSignal, SentMessage, StepFilter, Store

NOW = datetime(2026, 4, 14, 8, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


class MemoryHarness:
    def __init__(self) -> None:
        self.data = MemoryData()
        self.units = MemoryUnitsOfWork(self.data)

    def __call__(self) -> AbstractContextManager[UnitOfWork]:
        return self.units()

    def add_message(
        self,
        message_id: str,
        debtor_id: str,
        channel: str,
        claims: tuple[tuple[int, str], ...] = (),
        status: str = "pending",
    ) -> None:
        self.data.add_message(
            message_id=message_id,
            debtor_id=debtor_id,
            channel=channel,
            created_at=NOW,
            claims=claims,
            status=status,
        )

    def set_status(self, message_id: str, status: str) -> None:
        found = next(m for m in self.data.messages.values() if m.message_id == message_id)
        found.status = status

    def evidence_kinds(self) -> list[str]:
        return [record.kind for record in self.data.evidence]

    def rejected(self) -> list[tuple[str | None, str, str | None, int | None]]:
        return [(r.event_id, r.reason, r.source, r.line_no) for r in self.data.rejected.values()]


class SqlHarness:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        migrate(self.engine)
        self.sessions = session_factory(self.engine)
        self.units = SqlUnitsOfWork(self.sessions)

    def __call__(self) -> AbstractContextManager[UnitOfWork]:
        return self.units()

    def add_message(
        self,
        message_id: str,
        debtor_id: str,
        channel: str,
        claims: tuple[tuple[int, str], ...] = (),
        status: str = "pending",
    ) -> None:
        with self.units() as uow:
            row = MessageRow(
                status=status,
                message_id=message_id,
                debtor_id=debtor_id,
                channel=channel,
                step="reminder_1",
                local_day=NOW.date(),
                recipient="compta@acme.example",
                subject="Relance",
                body_text="…",
                content=b"bytes",
                content_sha256="0" * 64,
                amounts={},
                created_at=NOW,
            )
            uow.session.add(row)
            uow.session.flush()
            for invoice_id, step in claims:
                uow.session.add(
                    MessageItem(message_pk=row.id, invoice_id=invoice_id, step=step, channel=channel)
                )

    def set_status(self, message_id: str, status: str) -> None:
        with self.units() as uow:
            uow.session.execute(
                update(MessageRow).where(MessageRow.message_id == message_id).values(status=status)
            )

    def evidence_kinds(self) -> list[str]:
        with self.units() as uow:
            query = select(EvidenceRecord.kind).order_by(EvidenceRecord.seq)
            return list(uow.session.execute(query).scalars())

    def rejected(self) -> list[tuple[str | None, str, str | None, int | None]]:
        with self.units() as uow:
            rows = uow.session.execute(
                select(
                    RejectedEvent.event_id, RejectedEvent.reason, RejectedEvent.source, RejectedEvent.line_no
                ).order_by(RejectedEvent.id)
            ).all()
            return [(event_id, reason, source, line_no) for event_id, reason, source, line_no in rows]


Harness = MemoryHarness | SqlHarness


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def units(request) -> Iterator[Harness]:
    if request.param == "memory":
        yield MemoryHarness()
        return
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    harness = SqlHarness(url)
    yield harness
    harness.engine.dispose()


# -- making records ------------------------------------------------------------------------


def debtor(store: Store, debtor_id: str = "D-1") -> DebtorRecord:
    row = store.add_debtor(debtor_id)
    row.name, row.kind, row.updated_at = "ACME Industrie SAS", "business", NOW
    return row


def invoice(
    store: Store,
    number: str,
    due: date = date(2026, 3, 20),
    *,
    debtor_id: str = "D-1",
    amount: str = "1200.00",
) -> InvoiceRecord:
    new = NewInvoice(
        number=number,
        debtor_id=debtor_id,
        issue_date=date(2026, 2, 18),
        due_date=due,
        currency="EUR",
        amount_due=Decimal(amount),
        late_penalty_rate=None,
        payment_url=None,
        delivered_on=None,
    )
    return store.add_invoice(new, NOW)


def new_case(debtor_id: str = "D-1") -> NewCase:
    return NewCase(
        debtor_id=debtor_id,
        kind="escalation",
        recommended_procedure="injonction_de_payer",
        reasons=["formal notice unanswered"],
        currency="EUR",
        principal=Decimal("1200.00"),
        late_interest=Decimal("31.57"),
        indemnities=Decimal("40.00"),
        deadline=date(2026, 5, 1),
        notes=["called twice"],
    )


def new_handover(case_id: int, partner: str = "etude_martin", key: str = "key-1") -> NewHandover:
    return NewHandover(
        case_id=case_id,
        partner=partner,
        partner_kind="bailiff",
        channel="webhook",
        idempotency_key=key,
        lease_until=NOW + LEASE,
    )


def add_inbox(store: Store, event_id: str, occurred: datetime, *, type: str = "payment.received") -> Any:
    return store.add_inbox(
        event_id=event_id,
        type=type,
        occurred_at=occurred,
        raw=f'{{"event_id": "{event_id}"}}',
        digest=f"sha-{event_id}",
        received_at=NOW,
    )


def statuses(store: Store, invoice_id: int, names: list[str]) -> dict[str, tuple[str, str | None]]:
    found = {name: store.step_of(invoice_id, name) for name in names}
    return {name: (s.status, s.reason) for name, s in found.items() if s is not None}


# -- debtors and invoices ------------------------------------------------------------------


def test_a_new_debtor_has_the_column_defaults_and_keeps_what_its_caller_filled(units):
    with units() as uow:
        row = debtor(uow.store)
        row.email = "compta@acme.example"
        assert uow.store.debtor("D-1") is row
        assert uow.store.debtor("D-2") is None

    with units() as uow:
        found = uow.store.debtor("D-1", lock=True)
        assert found is not None
        assert (found.name, found.kind, found.email) == (
            "ACME Industrie SAS",
            "business",
            "compta@acme.example",
        )
        assert (found.language, found.timezone, found.country) == ("fr", "Europe/Paris", "FR")
        assert (found.address, found.opt_out, found.email_bounced) == ({}, False, False)
        assert (found.siren, found.segment, found.insolvency_procedure) == (None, None, None)


def test_a_new_invoice_is_open_with_nothing_paid_its_id_known_and_is_found_by_its_number(units):
    with units() as uow:
        debtor(uow.store)
        made = invoice(uow.store, "F-1")
        assert isinstance(made.id, int)
        found = uow.store.invoice("F-1")
        assert found is not None and found.id == made.id
        assert (found.status, found.paid, found.credited) == ("open", Decimal("0"), Decimal("0"))
        assert (found.disputed, found.ever_disputed, found.in_payment_plan) == (False, False, False)
        assert found.balance == Decimal("1200.00")
        assert uow.store.invoice("F-404") is None

    with units() as uow:
        again = uow.store.invoice("F-1", lock=False)
        assert again is not None and (again.id, again.status) == (made.id, "open")


def test_a_new_invoice_and_debtor_are_held_by_nothing_and_keep_a_hold_put_on_them(units):
    with units() as uow:
        held_debtor, held_invoice = debtor(uow.store), invoice(uow.store, "F-1")
        assert (held_debtor.hold_reason, held_debtor.held_until) == (None, None)
        assert (held_invoice.hold_reason, held_invoice.held_until) == (None, None)
        held_debtor.hold_reason, held_debtor.held_until = "client stratégique", None
        held_invoice.hold_reason, held_invoice.held_until = "x" * 300, date(2026, 4, 15)

    with units() as uow:
        found_debtor, found_invoice = uow.store.debtor("D-1"), uow.store.invoice("F-1")
        assert found_debtor is not None and found_invoice is not None
        assert (found_debtor.hold_reason, found_debtor.held_until) == ("client stratégique", None)
        assert (found_invoice.hold_reason, found_invoice.held_until) == ("x" * 300, date(2026, 4, 15))


def test_the_open_invoices_of_a_debtor_come_in_id_order_and_only_the_open_ones(units):
    with units() as uow:
        store = uow.store
        debtor(store), debtor(store, "D-2")
        first, second, third = invoice(store, "F-3"), invoice(store, "F-1"), invoice(store, "F-2")
        invoice(store, "G-1", debtor_id="D-2")
        second.status = "settled"

        assert [i.number for i in store.open_invoices("D-1")] == ["F-3", "F-2"]
        assert [i.id for i in store.open_invoices("D-1", lock=True)] == [first.id, third.id]


def test_the_movements_of_invoices_come_per_invoice_and_one_without_any_has_an_empty_list(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        paid, unpaid = invoice(store, "F-1"), invoice(store, "F-2")
        store.add_payment(
            event_id="pay-1",
            invoice_id=paid.id,
            kind="payment",
            reference="VIR-1",
            amount=Decimal("200.00"),
            on_day=date(2026, 4, 1),
        )
        store.add_payment(
            event_id="credit-1",
            invoice_id=paid.id,
            kind="credit_note",
            reference=None,
            amount=Decimal("50.00"),
            on_day=date(2026, 4, 2),
        )

        found = store.movements([paid.id, unpaid.id])

    assert sorted(found[paid.id], key=lambda m: m.day) == [
        Movement(date(2026, 4, 1), Decimal("200.00"), "payment"),
        Movement(date(2026, 4, 2), Decimal("50.00"), "credit_note"),
    ]
    assert found[unpaid.id] == []
    assert set(found) == {paid.id, unpaid.id}


def test_a_payment_is_found_by_its_payment_id_and_a_credit_note_by_its_number(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        first, other = invoice(store, "F-1"), invoice(store, "F-2")
        for event_id, kind, reference, payment_id in (
            ("pay-1", "payment", None, "SEPA-1"),
            ("credit-1", "credit_note", "AV-7", None),
            ("pay-2", "payment", None, None),
        ):
            store.add_payment(
                event_id=event_id,
                invoice_id=first.id,
                kind=kind,
                reference=reference,
                amount=Decimal("100.00"),
                on_day=date(2026, 4, 1),
                payment_id=payment_id,
            )
        sepa = store.payment(first.id, payment_id="SEPA-1")
        assert sepa is not None and (sepa.event_id, sepa.reversed_on) == ("pay-1", None)
        credit = store.payment(first.id, credit_note="AV-7")
        assert credit is not None and credit.event_id == "credit-1"
        assert store.payment(other.id, payment_id="SEPA-1") is None  # another invoice's
        assert store.payment(first.id, payment_id="SEPA-2") is None
        assert store.payment(first.id, credit_note="AV-8") is None


def test_a_reversed_payment_is_kept_and_left_out_of_the_movements(units):
    with units() as uow:
        debtor(uow.store)
        found = invoice(uow.store, "F-1")
        for event_id, payment_id in (("pay-1", "SEPA-1"), ("pay-2", "SEPA-2")):
            uow.store.add_payment(
                event_id=event_id,
                invoice_id=found.id,
                kind="payment",
                reference=None,
                amount=Decimal("100.00"),
                on_day=date(2026, 4, 1),
                payment_id=payment_id,
            )
        row = uow.store.payment(found.id, payment_id="SEPA-1")
        assert row is not None
        row.reversed_on = date(2026, 4, 10)

    with units() as uow:
        kept = uow.store.payment(found.id, payment_id="SEPA-1")
        assert kept is not None and kept.reversed_on == date(2026, 4, 10)
        assert uow.store.movements([found.id])[found.id] == [
            Movement(date(2026, 4, 1), Decimal("100.00"), "payment")
        ]


def test_a_sent_message_is_found_by_its_message_id_with_its_channel_and_debtor(units):
    units.add_message("<m-1@test>", "D-1", "letter")

    with units() as uow:
        assert uow.store.sent_message("<m-1@test>") == SentMessage("letter", "D-1")
        assert uow.store.sent_message("<m-2@test>") is None


def test_the_claims_of_a_message_are_its_invoice_numbers_and_steps_by_number(units):
    # Given a registered formal notice claiming two invoices, recorded F-2 first
    with units() as uow:
        debtor(uow.store)
        first, second = invoice(uow.store, "F-1"), invoice(uow.store, "F-2")
        ids = (first.id, second.id)
    units.add_message(
        "<m-1@test>", "D-1", "registered_letter", ((ids[1], "formal_notice"), (ids[0], "formal_notice"))
    )

    # Then its claims come by invoice number; a message never recorded claims nothing
    with units() as uow:
        assert uow.store.message_claims("<m-1@test>") == [("F-1", "formal_notice"), ("F-2", "formal_notice")]
        assert uow.store.message_claims("<m-2@test>") == []


# -- planned steps -------------------------------------------------------------------------


def test_a_new_step_is_planned_and_found_by_its_id_and_by_its_invoice_and_name(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        inv = invoice(store, "F-1")
        store.add_step(inv.id, "D-1", "reminder_1", "invoice.overdue", NOW)

        found = store.step_of(inv.id, "reminder_1")
        assert found is not None
        assert (found.invoice_id, found.debtor_id, found.event, found.due_at) == (
            inv.id,
            "D-1",
            "invoice.overdue",
            NOW,
        )
        assert (found.status, found.emit_count, found.lease_until, found.done_at) == (
            "planned",
            0,
            None,
            None,
        )
        assert store.step(found.id) is found
        assert store.step_of(inv.id, "reminder_2") is None
        assert store.step(found.id + 1000) is None


def test_the_steps_of_an_invoice_come_by_due_instant_then_id_and_only_of_the_events_asked(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        inv, other = invoice(store, "F-1"), invoice(store, "F-2")
        store.add_step(inv.id, "D-1", "reminder_2", "invoice.overdue", NOW + timedelta(days=7))
        store.add_step(inv.id, "D-1", "pre_due", "invoice.due", NOW - timedelta(days=1))
        store.add_step(inv.id, "D-1", "reminder_1", "invoice.overdue", NOW)
        store.add_step(inv.id, "D-1", "courtesy", "invoice.overdue", NOW)  # same instant, later id
        store.add_step(inv.id, "D-1", "escalation", "deadline.expired", NOW - timedelta(days=2))
        store.add_step(other.id, "D-1", "reminder_1", "invoice.overdue", NOW)

        found = store.steps_of(inv.id, ["invoice.due", "invoice.overdue"])
        assert [s.step for s in found] == ["pre_due", "reminder_1", "courtesy", "reminder_2"]
        assert [s.step for s in store.steps_of(inv.id, ["deadline.expired"])] == ["escalation"]
        assert store.steps_of(inv.id, []) == []


def test_the_finished_steps_are_the_names_of_those_done_skipped_or_failed(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        inv, other = invoice(store, "F-1"), invoice(store, "F-2")
        names = ["r_done", "r_skipped", "r_failed", "r_cancelled", "r_emitted", "r_planned"]
        for name in names:
            store.add_step(inv.id, "D-1", name, "invoice.overdue", NOW)
        store.add_step(other.id, "D-1", "o_done", "invoice.overdue", NOW)
        for name in names:
            step = store.step_of(inv.id, name)
            assert step is not None
            step.status = name.removeprefix("r_")
        other_step = store.step_of(other.id, "o_done")
        assert other_step is not None
        other_step.status = "done"

        assert store.finished_steps(inv.id) == {"r_done", "r_skipped", "r_failed"}

    with units() as uow:
        assert uow.store.finished_steps(inv.id) == {"r_done", "r_skipped", "r_failed"}


def test_steps_added_together_are_planned_as_each_added_alone(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        inv = invoice(store, "F-1")
        store.add_steps(
            inv.id,
            "D-1",
            [("reminder_2", "invoice.overdue", NOW + timedelta(days=7)), ("pre_due", "invoice.due", NOW)],
        )
        planned = [store.step_of(inv.id, name) for name in ("pre_due", "reminder_2")]
        assert [(s.step, s.event, s.due_at, s.status, s.emit_count) for s in planned if s is not None] == [
            ("pre_due", "invoice.due", NOW, "planned", 0),
            ("reminder_2", "invoice.overdue", NOW + timedelta(days=7), "planned", 0),
        ]
        store.add_steps(inv.id, "D-1", [])  # nothing to add
    with units() as uow:
        found = uow.store.steps_of(inv.id, ["invoice.due", "invoice.overdue"])
        assert [s.step for s in found] == ["pre_due", "reminder_2"]


def test_a_cancellation_that_need_not_count_leaves_the_steps_as_one_that_counts(units):
    """``cancel_pending_soon`` may wait for the store's next write (an ingest batch's); read
    in the same unit of work and after it, the steps are those ``cancel_pending`` leaves."""
    which = StepFilter(spare=("formal_notice",), spare_prefix="plan")
    _, counted, _ = _cancel(units, which)
    _, soon, _ = _cancel(units, which, soon=True, numbers=("G-1", "G-2"), debtor_id="D-2")
    assert soon == counted
    assert soon["reminder_1"] == ("cancelled", "invoice settled")


def _cancel(
    units: Harness,
    which: StepFilter,
    *,
    soon: bool = False,
    numbers: tuple[str, str] = ("F-1", "F-2"),
    debtor_id: str = "D-1",
) -> tuple[int | None, dict[str, tuple[str, str | None]], list[str]]:
    """Steps of every kind on F-1 (and one on F-2), cancelled with ``which`` (``soon``: by
    ``cancel_pending_soon``, which tells no count): how many, the steps of F-1 as they are
    then, and F-2's step."""
    names = ["reminder_1", "reminder_2", "formal_notice", "plan1_due", "reminder_3", "reminder_4"]
    with units() as uow:
        store = uow.store
        debtor(store, debtor_id)
        inv, other = (invoice(store, number, debtor_id=debtor_id) for number in numbers)
        for name in names:
            store.add_step(inv.id, debtor_id, name, "invoice.overdue", NOW)
        store.add_step(other.id, debtor_id, "reminder_1", "invoice.overdue", NOW)
        changed = {"reminder_2": "emitted", "reminder_3": "done", "reminder_4": "failed"}
        for name, status in changed.items():
            step = store.step_of(inv.id, name)
            assert step is not None
            step.status = status

        count: int | None = None
        if soon:
            store.cancel_pending_soon(inv.id, "invoice settled", which)
        else:
            count = store.cancel_pending(inv.id, "invoice settled", which)

        after = statuses(store, inv.id, names)
        assert statuses(store, other.id, ["reminder_1"]) == {"reminder_1": ("planned", None)}
    with units() as uow:
        assert statuses(uow.store, inv.id, names) == after  # as committed
    return count, after, names


def test_a_cancellation_by_names_takes_only_the_pending_steps_named(units):
    which = StepFilter(names=("reminder_1", "reminder_2", "reminder_3", "plan1_due"), spare=("plan1_due",))

    count, after, _ = _cancel(units, which)

    assert count == 2
    assert after == {
        "reminder_1": ("cancelled", "invoice settled"),
        "reminder_2": ("cancelled", "invoice settled"),  # emitted is pending too
        "formal_notice": ("planned", None),
        "plan1_due": ("planned", None),
        "reminder_3": ("done", None),  # finished: left alone
        "reminder_4": ("failed", None),
    }


def test_a_cancellation_that_spares_some_names_takes_every_other_pending_step(units):
    count, after, _ = _cancel(units, StepFilter(spare=("formal_notice",)))

    assert count == 3
    assert {name for name, (status, _) in after.items() if status == "cancelled"} == {
        "reminder_1",
        "reminder_2",
        "plan1_due",
    }
    assert after["formal_notice"] == ("planned", None)
    assert (after["reminder_3"], after["reminder_4"]) == (("done", None), ("failed", None))


def test_a_cancellation_that_spares_a_prefix_takes_every_pending_step_not_starting_with_it(units):
    count, after, _ = _cancel(units, StepFilter(spare=("reminder_1",), spare_prefix="plan1_"))

    assert count == 2
    assert {name for name, (status, _) in after.items() if status == "cancelled"} == {
        "reminder_2",
        "formal_notice",
    }
    assert (after["reminder_1"], after["plan1_due"]) == (("planned", None), ("planned", None))


def test_a_cancellation_spares_its_prefix_literally_and_each_one_takes_its_own_names(units):
    """A spared prefix's ``_`` and ``%`` are no wildcards; cancellations of the same shape one
    after the other (on PostgreSQL one statement built once, its values bound) each take
    what they name."""
    steps = {"F-1": ["plan1_due", "plan1xdue", "reminder_1"], "F-2": ["p%_a", "pXYa", "reminder_1"]}
    steps["F-3"] = ["reminder_1", "reminder_2", "reminder_3"]
    with units() as uow:
        store = uow.store
        debtor(store)
        made = {number: invoice(store, number) for number in steps}
        for number, names in steps.items():
            for name in names:
                store.add_step(made[number].id, "D-1", name, "invoice.overdue", NOW)

        assert store.cancel_pending(made["F-1"].id, "settled", StepFilter(spare_prefix="plan1_")) == 2
        assert (
            store.cancel_pending(
                made["F-2"].id, "paid", StepFilter(spare=("reminder_1",), spare_prefix="p%_")
            )
            == 1
        )
        assert store.cancel_pending(made["F-3"].id, "held", StepFilter(names=("reminder_1",))) == 1
        assert store.cancel_pending(made["F-3"].id, "hold released", StepFilter(names=("reminder_3",))) == 1
    with units() as uow:
        found = {number: statuses(uow.store, made[number].id, names) for number, names in steps.items()}
    assert found == {
        "F-1": {
            "plan1_due": ("planned", None),
            "plan1xdue": ("cancelled", "settled"),
            "reminder_1": ("cancelled", "settled"),
        },
        "F-2": {"p%_a": ("planned", None), "pXYa": ("cancelled", "paid"), "reminder_1": ("planned", None)},
        "F-3": {
            "reminder_1": ("cancelled", "held"),
            "reminder_2": ("planned", None),
            "reminder_3": ("cancelled", "hold released"),
        },
    }


def test_the_due_deadlines_are_the_pending_deadline_steps_due_by_now_by_invoice_due_date_then_number(units):
    deadline = "deadline.expired"
    with units() as uow:
        store = uow.store
        debtor(store), debtor(store, "D-2")
        f2, f1 = invoice(store, "F-2", date(2026, 3, 20)), invoice(store, "F-1", date(2026, 3, 20))
        f0, later = invoice(store, "F-0", date(2026, 3, 1)), invoice(store, "F-8", date(2026, 2, 1))
        done, reminder = invoice(store, "F-7", date(2026, 1, 1)), invoice(store, "F-6", date(2026, 1, 1))
        theirs = invoice(store, "G-1", date(2026, 1, 1), debtor_id="D-2")
        store.add_step(f2.id, "D-1", "escalation", deadline, NOW - timedelta(days=1))
        store.add_step(f1.id, "D-1", "escalation", deadline, NOW)  # due by now: at now
        store.add_step(f0.id, "D-1", "escalation", deadline, NOW - timedelta(days=2))
        store.add_step(later.id, "D-1", "escalation", deadline, NOW + timedelta(seconds=1))
        store.add_step(done.id, "D-1", "escalation", deadline, NOW - timedelta(days=3))
        store.add_step(reminder.id, "D-1", "reminder_1", "invoice.overdue", NOW - timedelta(days=3))
        store.add_step(theirs.id, "D-2", "escalation", deadline, NOW - timedelta(days=3))
        emitted, finished = store.step_of(f0.id, "escalation"), store.step_of(done.id, "escalation")
        assert emitted is not None and finished is not None
        emitted.status, finished.status = "emitted", "done"

        due = store.due_deadlines("D-1", NOW)

        assert [(i.number, s.step) for s, i in due] == [
            ("F-0", "escalation"),
            ("F-1", "escalation"),
            ("F-2", "escalation"),
        ]
        assert all(s.invoice_id == i.id for s, i in due)


# -- payment plans -------------------------------------------------------------------------


def test_a_new_plan_is_active_in_its_anchors_currency_and_is_the_active_plan_of_each_invoice_it_covers(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        anchor, covered, apart = invoice(store, "F-1"), invoice(store, "F-2"), invoice(store, "F-3")

        plan = store.add_plan(
            debtor_id="D-1", event_id="plan-1", anchor=anchor, invoice_ids=[anchor.id, covered.id], now=NOW
        )

        assert (plan.status, plan.currency, plan.anchor_invoice_id, plan.agreed_at) == (
            "active",
            "EUR",
            anchor.id,
            NOW,
        )
        assert (plan.ended_at, plan.reason) == (None, None)
        for each in (anchor, covered):
            found = store.active_plan(each.id)
            assert found is not None and found.id == plan.id
        assert store.active_plan(apart.id) is None

        plan.status, plan.reason = "broken", "installment missed"
        assert store.active_plan(anchor.id, lock=True) is None
        assert store.active_plan(covered.id) is None


def test_the_plans_anchored_on_an_invoice_are_counted_whatever_their_status(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        first, second, third = invoice(store, "F-1"), invoice(store, "F-2"), invoice(store, "F-3")
        broken = store.add_plan(
            debtor_id="D-1", event_id="p-1", anchor=first, invoice_ids=[first.id], now=NOW
        )
        broken.status = "broken"
        store.add_plan(debtor_id="D-1", event_id="p-2", anchor=first, invoice_ids=[first.id], now=NOW)
        store.add_plan(
            debtor_id="D-1", event_id="p-3", anchor=second, invoice_ids=[first.id, second.id], now=NOW
        )

        assert [store.plans_anchored_on(i.id) for i in (first, second, third)] == [2, 1, 0]


def test_the_installments_of_a_plan_come_by_number_and_its_plan_is_found_by_an_installment_stem(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        anchor, other = invoice(store, "F-1"), invoice(store, "F-2")
        plan = store.add_plan(
            debtor_id="D-1", event_id="p-1", anchor=anchor, invoice_ids=[anchor.id], now=NOW
        )
        elsewhere = store.add_plan(
            debtor_id="D-1", event_id="p-2", anchor=other, invoice_ids=[other.id], now=NOW
        )
        for seq in (2, 3, 1):
            store.add_installment(plan.id, seq, f"plan1_{seq}", date(2026, 4 + seq, 1), Decimal("400.00"))
        store.add_installment(elsewhere.id, 1, "plan2_1", date(2026, 5, 1), Decimal("100.00"))

        found = store.installments(plan.id)
        assert [(i.seq, i.step_stem) for i in found] == [(1, "plan1_1"), (2, "plan1_2"), (3, "plan1_3")]
        assert {(i.plan_id, i.paid, i.status) for i in found} == {(plan.id, Decimal("0"), "open")}
        found[0].paid, found[0].status = Decimal("400.00"), "paid"
        assert [(i.seq, i.status) for i in store.installments(plan.id)] == [
            (1, "paid"),
            (2, "open"),
            (3, "open"),
        ]

        with_stem = store.plan_with_stem(anchor.id, "plan1_2")
        assert with_stem is not None and with_stem.id == plan.id
        assert store.plan_with_stem(anchor.id, "plan2_1", lock=True) is None  # another anchor's
        assert store.plan_with_stem(other.id, "plan1_2") is None
        assert store.plan_with_stem(anchor.id, "plan9_1") is None


def test_the_invoices_of_a_plan_come_by_due_date_then_number(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        late = invoice(store, "F-1", date(2026, 4, 1))
        b, a = invoice(store, "F-3", date(2026, 3, 1)), invoice(store, "F-2", date(2026, 3, 1))
        apart = invoice(store, "F-0", date(2026, 1, 1))
        plan = store.add_plan(
            debtor_id="D-1", event_id="p-1", anchor=late, invoice_ids=[late.id, b.id, a.id], now=NOW
        )
        store.add_plan(debtor_id="D-1", event_id="p-2", anchor=apart, invoice_ids=[apart.id], now=NOW)

        assert [i.number for i in store.plan_invoices(plan.id)] == ["F-2", "F-3", "F-1"]


# -- cases ---------------------------------------------------------------------------------


def test_a_new_case_is_open_and_claims_the_sum_of_its_principal_interest_and_indemnities(units):
    with units() as uow:
        case = uow.store.add_case(new_case(), NOW)
        assert isinstance(case.id, int)
        assert (case.status, case.amount_claimed, case.alternatives) == ("open", Decimal("1271.57"), [])
        assert (case.reasons, case.notes, case.deadline) == (
            ["formal notice unanswered"],
            ["called twice"],
            date(2026, 5, 1),
        )
        assert uow.store.case(case.id) is case
        assert uow.store.case(case.id + 1000) is None

    with units() as uow:
        found = uow.store.case(case.id, lock=True)
        assert found is not None
        assert (found.status, found.amount_claimed, found.opened_at) == ("open", Decimal("1271.57"), NOW)


def test_the_cases_holding_an_invoice_are_those_of_the_statuses_asked_by_id(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        held, other = invoice(store, "F-1"), invoice(store, "F-2")
        cases = [store.add_case(new_case(), NOW) for _ in range(4)]
        cases[1].status, cases[3].status = "handed_over", "closed"
        for case in (cases[3], cases[1], cases[0]):
            store.add_case_invoices(case.id, [held.id])
        store.add_case_invoices(cases[2].id, [other.id])

        holding = store.cases_holding(held.id, ["open", "handed_over"])
        assert [c.id for c in holding] == [cases[0].id, cases[1].id]
        assert [c.id for c in store.cases_holding(held.id, ["open"])] == [cases[0].id]
        assert [c.id for c in store.cases_holding(other.id, ["handed_over"])] == []


def test_the_open_cases_of_a_debtor_come_by_id(units):
    with units() as uow:
        store = uow.store
        first, paid, third = (store.add_case(new_case(), NOW) for _ in range(3))
        store.add_case(new_case("D-2"), NOW)
        paid.status = "paid"

        assert [c.id for c in store.open_cases("D-1")] == [first.id, third.id]

    with units() as uow:
        assert [c.id for c in uow.store.open_cases("D-1")] == [first.id, third.id]


def test_the_invoices_of_a_case_come_by_due_date_then_number_and_one_put_in_twice_is_in_it_once(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        late = invoice(store, "F-1", date(2026, 4, 1))
        b, a = invoice(store, "F-3", date(2026, 3, 1)), invoice(store, "F-2", date(2026, 3, 1))
        case, other = store.add_case(new_case(), NOW), store.add_case(new_case(), NOW)
        store.add_case_invoices(case.id, [late.id, b.id])
        store.add_case_invoices(case.id, [b.id, a.id, a.id])
        store.add_case_invoices(other.id, [late.id])

        assert [i.number for i in store.case_invoices(case.id)] == ["F-2", "F-3", "F-1"]
        assert [i.number for i in store.case_invoices(other.id)] == ["F-1"]

    with units() as uow:
        assert [i.number for i in uow.store.case_invoices(case.id)] == ["F-2", "F-3", "F-1"]


# -- the inbox -----------------------------------------------------------------------------


def test_an_event_received_is_applied_and_its_digest_is_found_by_its_event_id(units):
    with units() as uow:
        entry = add_inbox(uow.store, "ev-1", NOW)
        assert (entry.status, entry.waiting_for, entry.content_sha256) == ("applied", None, "sha-ev-1")
        assert uow.store.inbox_digest("ev-1") == "sha-ev-1"
        assert uow.store.inbox_digest("ev-2") is None

    with units() as uow:
        assert uow.store.inbox_digest("ev-1") == "sha-ev-1"


def test_the_events_parked_for_a_key_come_by_occurrence_then_arrival(units):
    with units() as uow:
        store = uow.store
        entries = {
            "late": add_inbox(store, "late", NOW + timedelta(hours=2)),
            "early": add_inbox(store, "early", NOW + timedelta(hours=1)),
            "late_again": add_inbox(store, "late_again", NOW + timedelta(hours=2)),
            "other_key": add_inbox(store, "other_key", NOW),
            "applied": add_inbox(store, "applied", NOW),
        }
        for entry in entries.values():
            entry.status, entry.waiting_for = "parked", "invoice:F-1"
        entries["other_key"].waiting_for = "debtor:D-1"
        entries["applied"].status = "applied"

        assert [e.event_id for e in store.parked("invoice:F-1")] == ["early", "late", "late_again"]
        assert [e.event_id for e in store.parked("debtor:D-1")] == ["other_key"]
        assert store.parked("invoice:F-2") == []


def test_the_raw_texts_of_the_applied_events_of_a_type_come_latest_occurred_first(units):
    with units() as uow:
        store = uow.store
        add_inbox(store, "first", NOW)
        add_inbox(store, "third", NOW + timedelta(days=2))
        add_inbox(store, "second", NOW + timedelta(days=1))
        add_inbox(store, "second_later", NOW + timedelta(days=1))  # same instant, arrived later
        add_inbox(store, "parked", NOW + timedelta(days=3)).status = "parked"
        add_inbox(store, "other_type", NOW + timedelta(days=3), type="invoice.issued")

        raws = store.applied_raws("payment.received")

        assert raws == [f'{{"event_id": "{e}"}}' for e in ("third", "second_later", "second", "first")]
        assert store.applied_raws("credit_note.issued") == []


def test_a_refused_event_is_kept_with_why_it_was_refused(units):
    with units() as uow:
        uow.store.store_rejected(
            event_id="ev-9", raw="{", reason="not JSON", source="feed.jsonl", line_no=3, received_at=NOW
        )
        uow.store.store_rejected(
            event_id=None, raw="", reason="empty", source=None, line_no=None, received_at=NOW
        )

    assert units.rejected() == [("ev-9", "not JSON", "feed.jsonl", 3), (None, "empty", None, None)]


# -- hand-overs ----------------------------------------------------------------------------


def test_a_new_handover_is_pending_with_no_attempt_and_is_found_by_its_id_and_its_case(units):
    with units() as uow:
        store = uow.store
        case, other = store.add_case(new_case(), NOW), store.add_case(new_case(), NOW)
        second = store.add_handover(new_handover(case.id, "etude_durand", "key-2"), NOW)
        first = store.add_handover(new_handover(case.id, "etude_martin", "key-1"), NOW)
        store.add_handover(new_handover(other.id, "etude_martin", "key-3"), NOW)

        assert (first.status, first.attempts, first.lease_until, first.last_error) == (
            "pending",
            0,
            NOW + LEASE,
            None,
        )
        assert store.handover(first.id) is first
        assert store.handover(first.id + 1000) is None
        assert [h.partner for h in store.handovers_of(case.id)] == ["etude_durand", "etude_martin"]
        assert [h.id for h in store.handovers_of(case.id)] == [second.id, first.id]


def test_the_outbox_of_handovers_sees_a_new_handover_with_its_details(units):
    with units() as uow:
        store = uow.store
        case = store.add_case(new_case(), NOW)
        made = store.add_handover(new_handover(case.id), NOW)

        item = store.handovers().get(made.id)

        assert item == Item(
            id=made.id,
            status="pending",
            attempts=0,
            lease_until=NOW + LEASE,
            last_error=None,
            details={
                "case_id": case.id,
                "partner": "etude_martin",
                "partner_kind": "bailiff",
                "channel": "webhook",
                "idempotency_key": "key-1",
                "response_code": None,
            },
        )
        assert store.handovers().kind == "handovers"


def test_a_handover_claimed_and_delivered_through_the_outbox_is_delivered_on_its_record(units):
    with units() as uow:
        case = uow.store.add_case(new_case(), NOW)
        made = uow.store.add_handover(new_handover(case.id), NOW)
        outbox = uow.store.handovers()

        taken = outbox.claim(made.id, 0, NOW, LEASE, channel="email")
        done = outbox.mark_done(made.id, NOW + timedelta(seconds=1), response_code=202)

        assert isinstance(taken, Item) and taken.attempts == 1
        assert done is not None and (done.status, done.details["response_code"]) == ("delivered", 202)
        # the record read again in the same unit of work is the outbox's row as it is now
        seen = uow.store.handover(made.id)
        assert seen is not None and (seen.status, seen.attempts) == ("delivered", 1)
        assert [(h.status, h.attempts) for h in uow.store.handovers_of(case.id)] == [("delivered", 1)]

    with units() as uow:
        found = uow.store.handover(made.id)
        assert found is not None
        assert (found.status, found.attempts, found.lease_until, found.channel) == (
            "delivered",
            1,
            None,
            "email",
        )
        assert uow.store.handovers().claim(made.id, 1, NOW, LEASE) is Refusal.SETTLED


def test_a_failure_recorded_through_the_outbox_fails_the_handover_record(units):
    with units() as uow:
        case = uow.store.add_case(new_case(), NOW)
        made = uow.store.add_handover(new_handover(case.id), NOW)
        uow.store.handovers().record_failure(made.id, NOW, "410 Gone", count_attempt=True)
        seen = uow.store.handover(made.id)
        assert seen is not None and (seen.status, seen.last_error) == ("failed", "410 Gone")

    with units() as uow:
        found = uow.store.handover(made.id)
        assert found is not None
        assert (found.status, found.attempts, found.last_error, found.lease_until) == (
            "failed",
            1,
            "410 Gone",
            None,
        )


def test_a_handover_cancelled_on_its_record_is_refused_by_the_outbox(units):
    with units() as uow:
        case = uow.store.add_case(new_case(), NOW)
        made = uow.store.add_handover(new_handover(case.id), NOW)
        made.status = "cancelled"

        assert uow.store.handovers().claim(made.id, 0, NOW, LEASE) is Refusal.SETTLED
        item = uow.store.handovers().get(made.id)
        assert item is not None and item.status == "cancelled"


# -- savepoints and the unit of work --------------------------------------------------------


def _before_a_savepoint(store: Store) -> InvoiceRecord:
    debtor(store)
    kept = invoice(store, "F-1")
    append(store, "test.before", NOW, {})
    return kept


def test_a_savepoint_whose_block_raises_undoes_what_it_added_and_changed_and_its_evidence(units):
    with units() as uow:
        store = uow.store
        kept = _before_a_savepoint(store)
        assert not store.in_savepoint()

        with pytest.raises(RuntimeError), store.savepoint():
            assert store.in_savepoint()
            invoice(store, "F-2")
            kept.disputed, kept.status = True, "settled"
            store.add_step(kept.id, "D-1", "reminder_1", "invoice.overdue", NOW)
            append(store, "test.inside", NOW, {})
            store.after_commit("task inside")
            raise RuntimeError("the event cannot be applied")

        assert not store.in_savepoint()
        assert store.invoice("F-2") is None
        assert (kept.disputed, kept.status) == (False, "open")
        assert [i.number for i in store.open_invoices("D-1")] == ["F-1"]
        assert store.step_of(kept.id, "reminder_1") is None
        assert uow.take_tasks() == []

    assert units.evidence_kinds() == ["test.before"]


def test_a_savepoint_that_ends_normally_keeps_what_it_added_and_changed_and_its_evidence(units):
    with units() as uow:
        store = uow.store
        kept = _before_a_savepoint(store)

        with store.savepoint():
            invoice(store, "F-2")
            kept.disputed = True
            append(store, "test.inside", NOW, {})
            store.after_commit("task inside")

        assert store.invoice("F-2") is not None
        assert kept.disputed is True
        assert uow.take_tasks() == ["task inside"]

    with units() as uow:
        found = uow.store.invoice("F-1")
        assert found is not None and found.disputed is True
        assert [i.number for i in uow.store.open_invoices("D-1")] == ["F-1", "F-2"]
    assert units.evidence_kinds() == ["test.before", "test.inside"]


def test_an_inner_savepoint_undone_leaves_what_its_outer_savepoint_did(units):
    with units() as uow:
        store = uow.store
        kept = _before_a_savepoint(store)

        with store.savepoint():
            kept.disputed = True
            with pytest.raises(RuntimeError), store.savepoint():
                kept.paused_until = date(2026, 5, 1)
                invoice(store, "F-3")
                append(store, "test.inner", NOW, {})
                raise RuntimeError("inner")
            assert store.in_savepoint()
            invoice(store, "F-2")

        assert (kept.disputed, kept.paused_until) == (True, None)
        assert [i.number for i in store.open_invoices("D-1")] == ["F-1", "F-2"]

    assert units.evidence_kinds() == ["test.before"]


def test_changes_made_to_records_persist_in_the_unit_of_work_and_after_it_commits(units):
    with units() as uow:
        store = uow.store
        row = debtor(store)
        first, second = invoice(store, "F-1"), invoice(store, "F-2")
        second.paid, second.status = Decimal("1200.00"), "settled"
        row.email_bounced, row.segment = True, "key_accounts"

        assert [i.number for i in store.open_invoices("D-1")] == ["F-1"]
        found = store.debtor("D-1")
        assert found is not None and (found.email_bounced, found.segment) == (True, "key_accounts")

    with units() as uow:
        settled = uow.store.invoice("F-2")
        assert settled is not None and (settled.status, settled.balance) == ("settled", Decimal("0"))
        assert [i.id for i in uow.store.open_invoices("D-1")] == [first.id]


def test_a_unit_of_work_that_raises_leaves_nothing_behind(units):
    with units() as uow:
        debtor(uow.store)
        invoice(uow.store, "F-1")

    with pytest.raises(RuntimeError), units() as uow:
        found = uow.store.invoice("F-1")
        assert found is not None
        found.status = "cancelled"
        invoice(uow.store, "F-2")
        append(uow.store, "test.lost", NOW, {})
        raise RuntimeError("the worker died")

    with units() as uow:
        assert [i.number for i in uow.store.open_invoices("D-1")] == ["F-1"]
    assert units.evidence_kinds() == []


# -- the memory unit of work ---------------------------------------------------------------


def _committed(data: MemoryData) -> MemoryUnitsOfWork:
    units = MemoryUnitsOfWork(data)
    with units() as uow:
        debtor(uow.store)
        invoice(uow.store, "F-1")
        append(uow.store, "test.first", NOW, {})
        assert uow.remember_message("msg-1", "invoice.due", NOW)
    return units


def test_a_memory_unit_of_work_that_raises_leaves_the_data_as_it_was():
    data = MemoryData()
    units = _committed(data)
    kept = data.invoices[1]
    before = (
        dict(data.invoices),
        dict(vars(kept)),
        list(data.evidence),
        dict(data.processed),
        dict(data.ids),
    )

    with pytest.raises(RuntimeError), units() as uow:
        kept.status, kept.paid = "settled", Decimal("1200.00")
        invoice(uow.store, "F-2")
        append(uow.store, "test.lost", NOW, {})
        uow.remember_message("msg-2", "invoice.due", NOW)
        uow.store_rejected(
            event_id="ev-1", raw="{", reason="not JSON", source=None, line_no=1, received_at=NOW
        )
        uow.after_commit("task lost")
        raise RuntimeError("the worker died")

    assert (
        dict(data.invoices),
        dict(vars(kept)),
        list(data.evidence),
        dict(data.processed),
        dict(data.ids),
    ) == (before)
    assert data.invoices[1] is kept and data.rejected == {} and data.tasks == []


def test_a_committed_memory_unit_of_work_keeps_its_records_evidence_and_processed_message_ids():
    data = MemoryData()
    units = _committed(data)

    with units() as uow:
        found = uow.store.invoice("F-1")
        assert found is not None and found.id == 1
        uow.after_commit("task")
        assert uow.take_tasks() == ["task"]

    assert [r.kind for r in data.evidence] == ["test.first"]
    assert set(data.processed) == {"msg-1"} and data.processed["msg-1"].actor == "invoice.due"
    assert [d.id for d in data.debtors.values()] == ["D-1"]


def test_a_broker_message_is_remembered_once():
    data = MemoryData()
    units = _committed(data)

    with units() as uow:
        assert uow.remember_message("msg-1", "invoice.due", NOW) is False
        assert uow.remember_message("msg-2", "invoice.due", NOW) is True
        assert uow.remember_message("msg-2", "invoice.due", NOW) is False


def test_the_memory_unit_of_work_has_no_sql_session():
    with MemoryUnitsOfWork(MemoryData())() as uow, pytest.raises(AssertionError, match="no SQL session"):
        uow.session  # noqa: B018


def test_a_message_refused_for_good_in_memory_bounces_the_e_mail_and_plans_its_steps_again():
    data = MemoryData()
    units = MemoryUnitsOfWork(data)
    with units() as uow:
        debtor(uow.store)
        inv = invoice(uow.store, "F-1")
        uow.store.add_step(inv.id, "D-1", "reminder_1", "invoice.overdue", NOW)
        step = uow.store.step_of(inv.id, "reminder_1")
        assert step is not None
        step.status = "done"
    message = data.add_message(
        message_id="<m-1@test>", debtor_id="D-1", channel="email", claims=[(inv.id, "reminder_1")]
    )
    later = NOW + timedelta(hours=1)

    with units() as uow:
        assert uow.messages().fall_back_to_post(message.id, later) == 1
        found = uow.store.step_of(inv.id, "reminder_1")
        assert found is not None and (found.status, found.due_at) == ("planned", later)
        bounced = uow.store.debtor("D-1")
        assert bounced is not None and bounced.email_bounced is True


# -- signals -----------------------------------------------------------------------------------


def test_the_steps_reached_are_the_done_steps_of_the_debtors_open_invoices(units):
    with units() as uow:
        store = uow.store
        debtor(store)
        debtor(store, "D-2")
        first, paid, theirs = (
            invoice(store, "F-1"),
            invoice(store, "F-2"),
            invoice(store, "F-3", debtor_id="D-2"),
        )
        for inv, debtor_id in ((first, "D-1"), (paid, "D-1"), (theirs, "D-2")):
            store.add_step(inv.id, debtor_id, "pre_due", "invoice.due", NOW - timedelta(days=1))
            store.add_step(inv.id, debtor_id, "reminder_1", "invoice.overdue", NOW)
        for inv in (first, paid, theirs):
            pre_due = store.step_of(inv.id, "pre_due")
            assert pre_due is not None
            pre_due.status = "done"
        paid.status = "settled"

        assert store.steps_reached("D-1") == [("F-1", "pre_due")]
        assert store.steps_reached("D-3") == []


def test_a_step_whose_messages_are_only_drafts_or_rejected_is_not_reached_until_one_is_approved(units):
    # Given F-1's reminder_1 and reminder_2 done, reminder_1 sent, reminder_2 only drafted
    # on the e-mail and rejected on the letter
    with units() as uow:
        store = uow.store
        debtor(store)
        first = invoice(store, "F-1")
        for name in ("reminder_1", "reminder_2"):
            store.add_step(first.id, "D-1", name, "invoice.overdue", NOW - timedelta(days=1))
            done = store.step_of(first.id, name)
            assert done is not None
            done.status = "done"
        invoice_id = first.id
    units.add_message("<m-1@test>", "D-1", "email", ((invoice_id, "reminder_1"),), status="sent")
    units.add_message("<m-2@test>", "D-1", "email", ((invoice_id, "reminder_2"),), status="draft")
    units.add_message("<m-3@test>", "D-1", "letter", ((invoice_id, "reminder_2"),), status="rejected")
    # Then the debtor reached reminder_1 only
    with units() as uow:
        assert uow.store.steps_reached("D-1") == [("F-1", "reminder_1")]
    # When the e-mail is approved (pending, to be sent), Then reminder_2 is reached too
    units.set_status("<m-2@test>", "pending")
    with units() as uow:
        assert uow.store.steps_reached("D-1") == [("F-1", "reminder_1"), ("F-1", "reminder_2")]


def test_a_signal_added_is_pending_in_the_outbox_of_signals_with_its_body_on_a_claim(units):
    with units() as uow:
        store = uow.store
        assert store.signal_creditor() == "default"
        assert store.subscribers("invoice.settled") == []  # no webhooks file
        new = NewSignal("erp", "invoice.settled", "key-1", '{"id": "key-1"}', lease_until=NOW + LEASE)
        made = store.add_signal(new, NOW)
        outbox = store.signals()

        assert outbox.kind == "signals"
        assert outbox.get(made) == Item(
            id=made,
            status="pending",
            attempts=0,
            lease_until=NOW + LEASE,
            last_error=None,
            details={
                "subscriber": "erp",
                "signal_type": "invoice.settled",
                "idempotency_key": "key-1",
                "response_code": None,
            },
        )
        taken = outbox.claim(made, 0, NOW, LEASE)
        assert isinstance(taken, Item) and taken.details["payload"] == '{"id": "key-1"}'
        done = outbox.mark_done(made, NOW, response_code=204)
        assert done is not None and (done.status, done.attempts, done.details["response_code"]) == (
            "delivered",
            1,
            204,
        )
        assert uow.creditor_of("signals", made) == "default"
