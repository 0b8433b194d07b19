"""One contract for the dunning store, the reminder path's port (``handlers.dunning``).

Each test runs on the in-memory store, on SQLite and on PostgreSQL (``postgres`` marker).
The clock is pinned: every instant is an argument.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast

import pytest
from sqlalchemy import select, update

from adapters.dunning_store import CHUNK, SqlDunningStore
from adapters.memory_dunning import MemoryDunning
from adapters.orm import (
    DebtorRow,
    EvidenceRecord,
    InvoiceRow,
    MessageItem,
    MessageRow,
    PaymentRow,
    PlannedStep,
    TaskRow,
)
from adapters.store import make_engine, migrate, session_factory, transaction
from config.bootstrap import make_context
from config.settings import Settings
from handlers import approval, reminders
from handlers.dunning import DebtorFacts, DunningStore, InvoiceFacts, NewMessage, NewTask, StepFacts
from handlers.messages import DeliverMessage
from handlers.money import Movement
from handlers.policy import PolicySet
from handlers.reminders import send_due

T = TypeVar("T")

# Tuesday 14 April 2026, 10:00 in Paris: a business day, inside the sending window
NOW = datetime(2026, 4, 14, 8, 0, tzinfo=UTC)
DEBTOR = DebtorFacts(
    id="D-1",
    name="ACME Industrie SAS",
    kind="business",
    email="compta@acme.example",
    phone="+33 4 72 00 00 00",
    address={"line1": "12 rue des Forges", "postal_code": "69007", "city": "Lyon", "country": "FR"},
)


def invoice(
    invoice_id: int, number: str, due: date, *, status: str = "open", paid: str = "0.00"
) -> InvoiceFacts:
    return InvoiceFacts(
        id=invoice_id,
        number=number,
        debtor_id=DEBTOR.id,
        status=status,
        currency="EUR",
        amount_due=Decimal("1200.00"),
        paid=Decimal(paid),
        credited=Decimal("0.00"),
        issue_date=date(2026, 2, 18),
        due_date=due,
    )


def step(
    step_id: int, invoice_id: int, name: str, due_at: datetime, event: str = "invoice.overdue"
) -> StepFacts:
    return StepFacts(step_id, invoice_id, DEBTOR.id, name, event, "planned", due_at)


class MemoryHarness:
    def __init__(self) -> None:
        self.data = MemoryDunning()

    def seed(
        self, invoices: list[InvoiceFacts], steps: list[StepFacts], payments: list[tuple[int, Movement]]
    ) -> None:
        self.data.add_debtor(DEBTOR)
        for each in invoices:
            self.data.add_invoice(each)
        for each_step in steps:
            self.data.add_step(each_step)
        for invoice_id, movement in payments:
            self.data.add_movement(invoice_id, movement)

    def run(self, work: Callable[[DunningStore], T]) -> T:
        return work(self.data.store())

    def recorded_amounts(self) -> list[dict[str, str]]:
        return [m.amounts for m in self.data.messages.values()]

    def evidence_kinds(self) -> list[str]:
        return [r.kind for r in self.data.evidence]

    def planned(self, invoice_id: int) -> list[tuple[str, str, datetime]]:
        found = [s.facts for s in self.data.steps.values() if s.facts.invoice_id == invoice_id]
        return sorted((f.step, f.event, f.due_at) for f in found)

    def step_states(self) -> dict[int, tuple[str, str | None, datetime | None]]:
        return {i: (s.facts.status, s.reason, s.done_at) for i, s in self.data.steps.items()}

    def claim_rows(self) -> list[tuple[int, str, str]]:
        return sorted((i, step, m.channel) for m in self.data.messages.values() for i, step in m.claims)

    def message_states(self) -> list[tuple[str, datetime | None]]:
        return [(self.data.statuses[k], self.data.leases[k]) for k in sorted(self.data.messages)]

    def mark_paid(self, invoice_id: int) -> None:
        found = self.data.invoices[invoice_id]
        self.data.invoices[invoice_id] = dataclasses.replace(found, status="paid", paid=found.amount_due)

    def tasks(self) -> list[tuple[str, str, str | None, list[str], dict[str, str], date]]:
        found = self.data.tasks.values()
        return [(t.kind, t.step, t.phone, list(t.invoice_numbers), t.amounts, t.due_on) for t in found]


class SqlHarness:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        migrate(self.engine)
        self.sessions = session_factory(self.engine)

    def seed(
        self, invoices: list[InvoiceFacts], steps: list[StepFacts], payments: list[tuple[int, Movement]]
    ) -> None:
        with transaction(self.sessions) as session:
            session.add(
                DebtorRow(
                    id=DEBTOR.id,
                    name=DEBTOR.name,
                    kind=DEBTOR.kind,
                    email=DEBTOR.email,
                    phone=DEBTOR.phone,
                    address=DEBTOR.address,
                    updated_at=NOW,
                )
            )
            session.flush()
            for each in invoices:
                session.add(
                    InvoiceRow(
                        id=each.id,
                        number=each.number,
                        debtor_id=each.debtor_id,
                        issue_date=each.issue_date,
                        due_date=each.due_date,
                        currency=each.currency,
                        amount_due=each.amount_due,
                        paid=each.paid,
                        credited=each.credited,
                        status=each.status,
                        delivered_on=each.delivered_on,
                        factored_by=each.factored_by,
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
            session.flush()
            for s in steps:
                session.add(
                    PlannedStep(
                        id=s.id,
                        invoice_id=s.invoice_id,
                        debtor_id=s.debtor_id,
                        step=s.step,
                        event=s.event,
                        due_at=s.due_at,
                        status=s.status,
                    )
                )
            for n, (invoice_id, movement) in enumerate(payments):
                session.add(
                    PaymentRow(
                        event_id=f"pay-{n}",
                        invoice_id=invoice_id,
                        kind=movement.kind,
                        amount=movement.amount,
                        on_day=movement.day,
                    )
                )

    def run(self, work: Callable[[DunningStore], T]) -> T:
        with transaction(self.sessions) as session:
            return work(SqlDunningStore(session))

    def recorded_amounts(self) -> list[dict[str, str]]:
        with transaction(self.sessions) as session:
            return list(session.execute(select(MessageRow.amounts).order_by(MessageRow.id)).scalars())

    def evidence_kinds(self) -> list[str]:
        with transaction(self.sessions) as session:
            return list(session.execute(select(EvidenceRecord.kind).order_by(EvidenceRecord.seq)).scalars())

    def planned(self, invoice_id: int) -> list[tuple[str, str, datetime]]:
        with transaction(self.sessions) as session:
            rows = session.execute(
                select(PlannedStep.step, PlannedStep.event, PlannedStep.due_at).where(
                    PlannedStep.invoice_id == invoice_id
                )
            ).all()
            return sorted((step, event, due_at) for step, event, due_at in rows)

    def step_states(self) -> dict[int, tuple[str, str | None, datetime | None]]:
        with transaction(self.sessions) as session:
            rows = session.execute(
                select(PlannedStep.id, PlannedStep.status, PlannedStep.reason, PlannedStep.done_at)
            ).all()
            return {i: (status, reason, done_at) for i, status, reason, done_at in rows}

    def claim_rows(self) -> list[tuple[int, str, str]]:
        with transaction(self.sessions) as session:
            rows = session.execute(
                select(MessageItem.invoice_id, MessageItem.step, MessageItem.channel)
            ).all()
            return sorted((i, step, channel) for i, step, channel in rows)

    def message_states(self) -> list[tuple[str, datetime | None]]:
        with transaction(self.sessions) as session:
            rows = session.execute(select(MessageRow.status, MessageRow.lease_until).order_by(MessageRow.id))
            return [(status, lease) for status, lease in rows.all()]

    def mark_paid(self, invoice_id: int) -> None:
        with transaction(self.sessions) as session:
            session.execute(
                update(InvoiceRow)
                .where(InvoiceRow.id == invoice_id)
                .values(status="paid", paid=InvoiceRow.amount_due)
            )

    def tasks(self) -> list[tuple[str, str, str | None, list[str], dict[str, str], date]]:
        with transaction(self.sessions) as session:
            rows = session.execute(select(TaskRow).order_by(TaskRow.id)).scalars().all()
            return [(t.kind, t.step, t.phone, list(t.invoice_numbers), t.amounts, t.due_on) for t in rows]


Harness = MemoryHarness | SqlHarness


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request) -> Iterator[Harness]:
    if request.param == "memory":
        yield MemoryHarness()
        return
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    harness = SqlHarness(url)
    yield harness
    harness.engine.dispose()


@pytest.fixture
def ctx(tmp_path) -> Any:
    return make_context(Settings(data_dir=tmp_path, database_url="sqlite://"))


def message(key: str, claims: tuple[tuple[int, str], ...], day: date, currency: str | None) -> NewMessage:
    return NewMessage(
        message_id=f"<{key}@test>",
        debtor_id=DEBTOR.id,
        channel="email",
        step="reminder_1",
        local_day=day,
        recipient=DEBTOR.email or "",
        subject="Relance",
        body_text="…",
        content=b"bytes",
        content_sha256="0" * 64,
        amounts={"balance": "1200.00"} | ({"currency": currency} if currency else {}),
        lease_until=NOW + timedelta(minutes=5),
        created_at=NOW,
        claims=claims,
    )


def test_the_due_steps_are_the_pending_reminders_due_by_now_by_due_date_then_number(store):
    # Given two invoices of the debtor, their steps due, one not due yet and one deadline
    store.seed(
        [
            invoice(1, "F-2", date(2026, 3, 20)),
            invoice(2, "F-1", date(2026, 3, 20)),
            invoice(3, "F-0", date(2026, 3, 1)),
        ],
        [
            step(10, 1, "reminder_1", NOW - timedelta(days=1)),
            step(11, 2, "reminder_1", NOW),
            step(12, 3, "reminder_1", NOW + timedelta(seconds=1)),
            step(13, 3, "escalation", NOW - timedelta(days=2), event="deadline.expired"),
        ],
        [],
    )
    # When the store lists the due steps
    due = store.run(lambda s: [(st.id, inv.number) for st, inv in s.due_steps(DEBTOR.id, NOW)])
    # Then only the two reminders due by now come, F-1 before F-2 (same due date, by number)
    assert due == [(11, "F-1"), (10, "F-2")]


def test_a_skipped_step_is_no_longer_due_and_a_postponed_one_is_due_again_at_its_new_instant(store):
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 20)), invoice(2, "F-2", date(2026, 3, 21))],
        [step(10, 1, "reminder_1", NOW), step(11, 2, "reminder_1", NOW)],
        [],
    )
    later = NOW + timedelta(hours=3)

    def work(s: DunningStore) -> None:
        s.due_steps(DEBTOR.id, NOW)
        s.skip_step(10, "invoice disputed", NOW)
        s.postpone_step(11, later)

    store.run(work)
    assert store.run(lambda s: [getattr(s.step(i), "status", None) for i in (10, 11)]) == [
        "skipped",
        "planned",
    ]
    assert store.run(lambda s: [st.id for st, _ in s.due_steps(DEBTOR.id, NOW)]) == []
    assert store.run(lambda s: [st.id for st, _ in s.due_steps(DEBTOR.id, later)]) == [11]


def test_a_recorded_message_holds_its_claims_and_its_channel_and_currency_for_the_day(store):
    store.seed([invoice(1, "F-1", date(2026, 3, 20))], [step(10, 1, "reminder_1", NOW)], [])
    day = date(2026, 4, 14)

    def work(s: DunningStore) -> tuple[set[tuple[int, str, str]], list[tuple[str, str | None]]]:
        s.due_steps(DEBTOR.id, NOW)
        s.record_message(message("m-1", ((1, "reminder_1"),), day, "EUR"))
        return s.recorded_claims([1]), s.messages_on(DEBTOR.id, day)

    claims, used = store.run(work)
    assert claims == {(1, "reminder_1", "email")}
    assert used == [("email", "EUR")]
    assert store.run(lambda s: s.messages_on(DEBTOR.id, day + timedelta(days=1))) == []


def test_the_movements_of_several_invoices_come_per_invoice_and_none_is_an_empty_list(store):
    paid = Movement(date(2026, 4, 1), Decimal("200.00"), "payment")
    credit = Movement(date(2026, 4, 2), Decimal("50.00"), "credit_note")
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 20)), invoice(2, "F-2", date(2026, 3, 20))],
        [],
        [(1, paid), (1, credit)],
    )
    found = store.run(lambda s: s.movements([1, 2]))
    assert sorted(found[1], key=lambda m: m.day) == [paid, credit]
    assert found[2] == []


def test_a_deadline_is_planned_once_for_an_invoice(store):
    # Given a formal notice due now
    store.seed([invoice(1, "F-1", date(2026, 3, 20))], [step(10, 1, "formal_notice", NOW)], [])
    first, second = NOW + timedelta(days=8), NOW + timedelta(days=30)

    # When its deadline is planned, then planned again (a notice re-sent by post)
    def work(s: DunningStore) -> None:
        s.due_steps(DEBTOR.id, NOW)
        s.plan_deadline(1, "escalation", "deadline.expired", first)
        s.plan_deadline(1, "escalation", "deadline.expired", second)

    store.run(work)
    # Then the first deadline stands, and it is not a reminder: it never comes as a due step
    assert store.planned(1) == [
        ("escalation", "deadline.expired", first),
        ("formal_notice", "invoice.overdue", NOW),
    ]
    assert store.run(lambda s: [st.step for st, _ in s.due_steps(DEBTOR.id, second)]) == ["formal_notice"]


def test_a_due_reminder_sent_through_the_store_records_one_message_per_channel_and_its_evidence(store, ctx):
    # Given F-1 of 1200.00 due on 20 March, 200.00 paid on 1 April, its reminder_2 due now
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 20), paid="200.00")],
        [step(10, 1, "reminder_2", NOW - timedelta(hours=1))],
        [(1, Movement(date(2026, 4, 1), Decimal("200.00"), "payment"))],
    )
    # When the step is handled
    tasks = store.run(lambda s: send_due(s, 10, NOW, ctx))
    # Then reminder_2 goes by e-mail and by letter, each claiming the principal left:
    # 1200.00 - 200.00 = 1000.00, with the recovery indemnity of a business invoice paid late
    assert [t.recorded.channel for t in tasks if isinstance(t, DeliverMessage) and t.recorded] == [
        "email",
        "letter",
    ]
    amounts = store.recorded_amounts()
    assert [a["balance"] for a in amounts] == ["1000.00", "1000.00"]
    assert {a["indemnity"] for a in amounts} == {str(ctx.policy.money.recovery_indemnity)}
    assert all(Decimal(a["late_interest"]) > 0 for a in amounts)
    assert store.evidence_kinds() == ["reminder.sent", "reminder.sent"]
    done = store.run(lambda s: s.step(10))
    assert done is not None and done.status == "done"


def test_the_facts_of_an_invoice_carry_its_delivery_date_and_its_factor(store):
    # the send-time holds sort a claim by its delivery (insolvency) and skip a factored one
    from dataclasses import replace

    delivered = replace(invoice(1, "F-1", date(2026, 3, 20)), delivered_on=date(2026, 2, 16))
    factored = replace(invoice(2, "F-2", date(2026, 3, 20)), factored_by="Factofrance")
    store.seed([delivered, factored], [step(10, 1, "reminder_1", NOW), step(11, 2, "reminder_1", NOW)], [])
    found = store.run(lambda s: {i.number: (i.delivered_on, i.factored_by) for i in s.open_invoices("D-1")})
    assert found == {"F-1": (date(2026, 2, 16), None), "F-2": (None, "Factofrance")}
    due = store.run(lambda s: {i.number: (i.delivered_on, i.factored_by) for _, i in s.due_steps("D-1", NOW)})
    assert due == found


def test_steps_finished_together_are_each_done_once_with_their_reason_across_chunks(store):
    # Given more due steps than one statement takes (two chunks and a bit), and one more step
    count = 2 * CHUNK + 3
    invoices = [invoice(i, f"F-{i:05d}", date(2026, 3, 20)) for i in range(1, count + 2)]
    store.seed(invoices, [step(10_000 + i, i, "reminder_1", NOW) for i in range(1, count + 2)], [])
    finished = [10_000 + i for i in range(1, count + 1)]
    reason = "covered by message <m-1@test>, sent for reminder_2"

    # When they are finished together, the first one also on its own (no reason: it keeps its own)
    def work(s: DunningStore) -> None:
        s.due_steps(DEBTOR.id, NOW)
        s.finish_steps(finished, NOW, reason)
        s.finish_step(finished[0], NOW)

    store.run(work)
    # Then each of them is done, at that instant, with that reason; the last step is still due
    states = store.step_states()
    assert {states[i] for i in finished} == {("done", reason, NOW)}
    assert states[10_000 + count + 1] == ("planned", None, None)
    assert store.run(lambda s: [st.id for st, _ in s.due_steps(DEBTOR.id, NOW)]) == [10_000 + count + 1]


def test_a_message_recorded_finishes_the_steps_it_finishes_and_keeps_their_reasons(store):
    # Given three due steps, the second finished already for a reason of its own
    store.seed(
        [invoice(i, f"F-{i}", date(2026, 3, 20)) for i in (1, 2, 3)],
        [step(10 + i, i, "reminder_1", NOW) for i in (1, 2, 3)],
        [],
    )
    store.run(lambda s: s.finish_steps([12], NOW - timedelta(hours=1), "given to a person"))
    claims = ((1, "reminder_1"), (2, "reminder_1"))

    # When a message claiming the first two is recorded, finishing them
    finishing = dataclasses.replace(message("m-1", claims, date(2026, 4, 14), "EUR"), finishes=(11, 12))
    store.run(lambda s: s.record_message(finishing))

    # Then both are done at the message's instant, the second with its reason; the third is due
    states = store.step_states()
    assert states[11] == ("done", None, NOW)
    assert states[12] == ("done", "given to a person", NOW)
    assert states[13] == ("planned", None, None)
    assert store.claim_rows() == [(1, "reminder_1", "email"), (2, "reminder_1", "email")]


def test_a_message_finishing_more_steps_than_one_statement_takes_finishes_each(store):
    count = 2 * CHUNK + 3
    store.seed(
        [invoice(i, f"F-{i:05d}", date(2026, 3, 20)) for i in range(1, count + 2)],
        [step(10_000 + i, i, "reminder_1", NOW) for i in range(1, count + 2)],
        [],
    )
    claims = tuple((i, "reminder_1") for i in range(1, count + 1))
    finishes = tuple(10_000 + i for i in range(1, count + 1))
    finishing = dataclasses.replace(message("m-1", claims, date(2026, 4, 14), "EUR"), finishes=finishes)
    store.run(lambda s: s.record_message(finishing))
    states = store.step_states()
    assert {states[i] for i in finishes} == {("done", None, NOW)}
    assert states[10_000 + count + 1] == ("planned", None, None)


def test_a_message_claiming_more_invoices_than_one_statement_takes_records_each_claim_once(store):
    count = 2 * CHUNK + 3
    store.seed([invoice(i, f"F-{i:05d}", date(2026, 3, 20)) for i in range(1, count + 1)], [], [])
    claims = tuple((i, "reminder_2") for i in range(1, count + 1))
    store.run(lambda s: s.record_message(message("m-1", claims, date(2026, 4, 14), "EUR")))
    assert store.claim_rows() == [(i, "reminder_2", "email") for i in range(1, count + 1)]
    recorded = store.run(lambda s: s.recorded_claims(range(1, count + 1)))
    assert recorded == {(i, "reminder_2", "email") for i in range(1, count + 1)}


def test_the_last_message_day_of_a_debtor_is_the_latest_recorded_whatever_its_channel_or_currency(store):
    # Given no message yet, then messages of 14 April (EUR) and 17 April (USD), recorded
    # in the reverse order
    store.seed([invoice(1, "F-1", date(2026, 3, 20))], [step(10, 1, "reminder_1", NOW)], [])
    assert store.run(lambda s: s.last_message_day(DEBTOR.id)) is None

    def work(s: DunningStore) -> None:
        s.due_steps(DEBTOR.id, NOW)
        s.record_message(message("m-2", ((1, "reminder_1"),), date(2026, 4, 17), "USD"))
        s.record_message(message("m-1", ((1, "notice"),), date(2026, 4, 14), "EUR"))

    store.run(work)
    # Then the last contact is 17 April, and another debtor has none
    assert store.run(lambda s: s.last_message_day(DEBTOR.id)) == date(2026, 4, 17)
    assert store.run(lambda s: s.last_message_day("D-other")) is None


def test_the_days_messages_and_claims_read_in_one_transaction_follow_what_it_records(store):
    # Given a message sent on 14 April (EUR) and one recorded on 17 April (USD)
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 20)), invoice(2, "F-2", date(2026, 3, 21))],
        [step(10, 1, "reminder_1", NOW)],
        [],
    )

    def record(s: DunningStore) -> None:
        s.due_steps(DEBTOR.id, NOW)
        s.record_message(message("m-1", ((1, "notice"),), date(2026, 4, 14), "EUR"))
        s.record_message(message("m-2", ((1, "reminder_1"),), date(2026, 4, 17), "USD"))

    store.run(record)
    days = [date(2026, 4, d) for d in (13, 14, 17, 18)]

    def read_then_record(s: DunningStore) -> list[Any]:
        # the last day, the drafts and the claims first, as a reminder reads them; then each
        # day's messages and the claims, before and after a message is recorded
        seen: list[Any] = [s.last_message_day(DEBTOR.id), s.awaiting_drafts([1, 2])]
        seen += [s.recorded_claims([1, 2]), [s.messages_on(DEBTOR.id, day) for day in days]]
        s.record_message(message("m-3", ((2, "reminder_1"),), date(2026, 4, 18), "EUR"))
        seen += [s.recorded_claims([1, 2]), [s.messages_on(DEBTOR.id, day) for day in days]]
        return seen

    last, drafts, claims, on_days, claims_after, on_days_after = store.run(read_then_record)
    assert (last, drafts) == (date(2026, 4, 17), {})
    assert claims == {(1, "notice", "email"), (1, "reminder_1", "email")}
    assert on_days == [[], [("email", "EUR")], [("email", "USD")], []]
    assert claims_after == claims | {(2, "reminder_1", "email")}
    assert on_days_after == [[], [("email", "EUR")], [("email", "USD")], [("email", "EUR")]]


# --- drafts awaiting approval (handlers.approval) -------------------------------------------


def _approving(ctx: Any, *names: str) -> Any:
    """``ctx`` whose policy holds the messages of the steps ``names`` for approval."""
    policy = ctx.policy
    steps = tuple(s.model_copy(update={"requires_approval": s.name in names}) for s in policy.steps)
    policies = PolicySet(policy.model_copy(update={"steps": steps}))
    policies.rates = ctx.rates
    return dataclasses.replace(ctx, policies=policies)


def test_a_step_requiring_approval_is_recorded_as_drafts_that_no_delivery_takes(store, ctx):
    # Given F-1 of 1200.00 due on 20 March, its reminder_2 (e-mail and letter) held for approval
    ctx = _approving(ctx, "reminder_2")
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 20))], [step(10, 1, "reminder_2", NOW - timedelta(hours=1))], []
    )
    # When the step is handled
    tasks = store.run(lambda s: send_due(s, 10, NOW, ctx))
    # Then nothing is to transmit: two drafts, without lease, claim F-1's step; the step is done
    assert tasks == []
    assert store.message_states() == [("draft", None), ("draft", None)]
    assert store.evidence_kinds() == ["message.drafted", "message.drafted"]
    assert store.claim_rows() == [(1, "reminder_2", "email"), (1, "reminder_2", "letter")]
    drafts = store.run(lambda s: s.drafts())  # type: ignore[attr-defined]
    assert [(d.channel, d.step, d.invoice_numbers, d.amounts["balance"]) for d in drafts] == [
        ("email", "reminder_2", ["F-1"], "1200.00"),
        ("letter", "reminder_2", ["F-1"], "1200.00"),
    ]
    assert store.run(lambda s: s.awaiting_drafts([1, 2])) == {1: drafts[0].message_id}
    assert store.run(lambda s: s.step(10)).status == "done"  # type: ignore[union-attr]


def test_an_approved_draft_is_pending_with_its_first_attempt_leased_and_the_approval_in_the_evidence(
    store, ctx
):
    # Given the two drafts of F-1's reminder_2
    ctx = _approving(ctx, "reminder_2")
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 20))], [step(10, 1, "reminder_2", NOW - timedelta(hours=1))], []
    )
    store.run(lambda s: send_due(s, 10, NOW, ctx))
    first = store.run(lambda s: s.drafts())[0]  # type: ignore[attr-defined]
    later = NOW + timedelta(hours=2)
    # When a person approves the e-mail two hours later
    outcome = store.run(lambda s: approval.approve(s, first.id, "marie", later, ctx))
    # Then it is pending, leased for its first attempt, which the task takes; the letter waits
    assert (outcome.status, outcome.task) == ("approved", DeliverMessage(first.id, 0))
    assert store.message_states() == [("pending", later + ctx.lease), ("draft", None)]
    assert store.evidence_kinds()[-1] == "message.approved"
    assert [d.channel for d in store.run(lambda s: s.drafts())] == ["letter"]  # type: ignore[attr-defined]
    # And approving it again is refused: it no longer awaits approval
    with pytest.raises(approval.NotAwaiting, match="no longer awaiting approval"):
        store.run(lambda s: approval.approve(s, first.id, "marie", later, ctx))


def test_a_draft_approved_after_its_invoice_was_paid_is_withdrawn_and_nothing_leaves(store, ctx):
    # Given the drafts of F-1's reminder_2, then F-1 paid in full
    ctx = _approving(ctx, "reminder_2")
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 20))], [step(10, 1, "reminder_2", NOW - timedelta(hours=1))], []
    )
    store.run(lambda s: send_due(s, 10, NOW, ctx))
    store.mark_paid(1)
    first = store.run(lambda s: s.drafts())[0]  # type: ignore[attr-defined]
    # When a person approves the e-mail
    outcome = store.run(lambda s: approval.approve(s, first.id, "marie", NOW, ctx))
    # Then it is closed as withdrawn with the reason, and no task delivers it
    assert (outcome.status, outcome.reason, outcome.task) == ("withdrawn", "F-1: invoice paid", None)
    assert store.message_states()[0] == ("withdrawn", None)
    assert store.evidence_kinds()[-1] == "message.withdrawn"


def test_a_rejected_draft_is_closed_and_a_later_step_of_its_invoice_waits_only_while_a_draft_awaits(
    store, ctx
):
    # Given F-1's reminder_2 drafted (e-mail and letter), its reminder_3 due a week later (Tuesday 21 April)
    ctx = _approving(ctx, "reminder_2")
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 20))],
        [
            step(10, 1, "reminder_2", NOW - timedelta(hours=1)),
            step(11, 1, "reminder_3", NOW + timedelta(days=7)),
        ],
        [],
    )
    store.run(lambda s: send_due(s, 10, NOW, ctx))
    email, letter = store.run(lambda s: s.drafts())  # type: ignore[attr-defined]
    later = NOW + timedelta(days=7)
    # When reminder_3 comes due while both drafts await
    assert store.run(lambda s: send_due(s, 11, later, ctx)) == []
    # Then it waits one day, unsent
    assert store.step_states()[11][0] == "planned"
    assert store.planned(1)[-1] == ("reminder_3", "invoice.overdue", later + timedelta(days=1))
    # When both drafts are rejected, and reminder_3 comes due again
    for draft in (email, letter):
        store.run(lambda s, d=draft: approval.reject(s, d.id, "marie", "the customer called", later))
    tasks = store.run(lambda s: send_due(s, 11, later + timedelta(days=1), ctx))
    # Then the drafts stay closed, and reminder_3 goes out on both channels
    assert store.message_states()[:2] == [("rejected", None), ("rejected", None)]
    assert store.evidence_kinds()[2:4] == ["message.rejected", "message.rejected"]
    assert len(tasks) == 2 and store.step_states()[11][0] == "done"


def test_an_approved_formal_notice_plans_its_escalation_and_a_drafted_one_does_not(store, ctx):
    # Given F-1's formal notice due now, held for approval
    ctx = _approving(ctx, "formal_notice")
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 2))], [step(10, 1, "formal_notice", NOW - timedelta(hours=1))], []
    )
    store.run(lambda s: send_due(s, 10, NOW, ctx))
    # Then drafted, it plans no escalation
    assert [p[0] for p in store.planned(1)] == ["formal_notice"]
    # When the registered letter is approved the next day
    drafts = store.run(lambda s: s.drafts())  # type: ignore[attr-defined]
    registered = next(d for d in drafts if d.channel == "registered_letter")
    store.run(lambda s: approval.approve(s, registered.id, "marie", NOW + timedelta(days=1), ctx))
    # Then the escalation is planned, once
    assert [p[0] for p in store.planned(1)] == ["escalation", "formal_notice"]


def new_task(key: str) -> NewTask:
    return NewTask(
        key=key,
        debtor_id=DEBTOR.id,
        kind="call",
        step="call",
        phone=DEBTOR.phone,
        invoice_numbers=("F-1", "F-2"),
        amounts={"EUR": "2400.00"},
        due_on=date(2026, 4, 14),
        created_at=NOW,
        claims=((1, "call"), (2, "call")),
    )


def test_a_task_is_recorded_once_per_key_and_keeps_what_the_person_needs(store):
    """Given two invoices, when a task is recorded twice with one key and once with another,
    then the same key gives back the first task (not new) and the store holds two tasks
    with the phone, the invoices, the amounts per currency and the due day."""
    store.seed([invoice(1, "F-1", date(2026, 3, 20)), invoice(2, "F-2", date(2026, 3, 20))], [], [])

    def work(s: DunningStore) -> list[tuple[int, bool]]:
        return [
            s.record_task(new_task("k-1")),
            s.record_task(new_task("k-1")),
            s.record_task(new_task("k-2")),
        ]

    (first, new), (again, new_again), (other, _) = store.run(work)
    assert new and not new_again and again == first and other != first
    assert store.tasks()[0] == (
        "call",
        "call",
        "+33 4 72 00 00 00",
        ["F-1", "F-2"],
        {"EUR": "2400.00"},
        date(2026, 4, 14),
    )
    assert len(store.tasks()) == 2


def test_a_due_call_step_sent_through_the_store_records_a_task_and_its_evidence_and_no_message(store, ctx):
    """Given F-1 (1200.00, 200.00 paid) and F-2 (1200.00) whose call steps are due now, when
    the steps are handled, then no message is recorded, one call task covers both invoices
    with 1000.00 + 1200.00 = 2200.00 EUR, its evidence is written and both steps are done;
    handling a step again adds nothing."""
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 2), paid="200.00"), invoice(2, "F-2", date(2026, 3, 5))],
        [step(10, 1, "call", NOW - timedelta(hours=1)), step(20, 2, "call", NOW - timedelta(hours=1))],
        [(1, Movement(date(2026, 4, 1), Decimal("200.00"), "payment"))],
    )
    assert store.run(lambda s: send_due(s, 10, NOW, ctx)) == []
    assert store.recorded_amounts() == []
    assert store.tasks() == [
        ("call", "call", "+33 4 72 00 00 00", ["F-1", "F-2"], {"EUR": "2200.00"}, date(2026, 4, 14))
    ]
    assert store.evidence_kinds() == ["task.created"]
    states = store.step_states()
    assert states[10][0] == states[20][0] == "done"
    assert states[10][1] is not None and states[10][1].startswith("task ")
    assert store.run(lambda s: send_due(s, 20, NOW, ctx)) == []
    assert len(store.tasks()) == 1 and store.evidence_kinds() == ["task.created"]


def test_a_draft_is_no_contact_until_it_is_approved(store, ctx):
    # Given F-1's reminder_2 held for approval and drafted now (e-mail and letter)
    ctx = _approving(ctx, "reminder_2")
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 20))], [step(10, 1, "reminder_2", NOW - timedelta(hours=1))], []
    )
    store.run(lambda s: send_due(s, 10, NOW, ctx))
    # Then nothing reached the debtor: no last contact
    assert store.run(lambda s: s.last_message_day(DEBTOR.id)) is None
    # When the e-mail is approved the next day and the letter rejected
    email, letter = store.run(lambda s: s.drafts())  # type: ignore[attr-defined]
    store.run(lambda s: approval.approve(s, email.id, "marie", NOW + timedelta(days=1), ctx))
    store.run(lambda s: approval.reject(s, letter.id, "marie", "e-mail enough", NOW + timedelta(days=1)))
    # Then the approved e-mail is the last contact, from the day it was drafted
    assert store.run(lambda s: s.last_message_day(DEBTOR.id)) == NOW.date()


def test_the_due_steps_come_in_batches_of_whole_invoices_each_step_once(store):
    # Given seven invoices with one to three reminders due each (ids 1..7, 14 steps in all),
    # one step not due yet and one deadline, which never come
    invoices = [invoice(i, f"F-{8 - i}", date(2026, 3, 20)) for i in range(1, 8)]
    steps = [
        step(100 + 10 * i + k, i, f"reminder_{k}", NOW - timedelta(hours=k))
        for i in range(1, 8)
        for k in range(1 + i % 3)
    ]
    steps += [
        step(500, 1, "reminder_9", NOW + timedelta(seconds=1)),
        step(501, 2, "escalation", NOW, event="deadline.expired"),
    ]
    store.seed(invoices, steps, [])

    # When the store reads them three invoices at a time
    def read(s: DunningStore) -> list[list[tuple[int, int]]]:
        return [[(inv.id, st.id) for st, inv in batch] for batch in s.due_step_batches(DEBTOR.id, NOW, 3)]

    batches = store.run(read)
    # Then 3 + 3 + 1 invoices, in invoice id order, each whole, its steps in id order
    assert [sorted({i for i, _ in batch}) for batch in batches] == [[1, 2, 3], [4, 5, 6], [7]]
    flat = [pair for batch in batches for pair in batch]
    assert flat == sorted(flat)
    # and every due step exactly once: 14 = 2 + 3 + 1 + 2 + 3 + 1 + 2
    assert sorted(st for _, st in flat) == sorted(s.id for s in steps if s.id < 500)
    assert len(flat) == 14


def test_a_batch_never_splits_an_invoice_and_carries_each_invoice_as_stored(store):
    # Given F-1 with five reminders due (a catch-up) and F-2, paid meanwhile, with one
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 20)), invoice(2, "F-2", date(2026, 3, 20), status="paid")],
        [step(10 + k, 1, f"reminder_{k}", NOW - timedelta(days=k)) for k in range(5)]
        + [step(20, 2, "reminder_1", NOW)],
        [],
    )

    # When the store reads them one invoice at a time
    def read(s: DunningStore) -> list[list[tuple[int, str, int]]]:
        return [[(inv.id, inv.status, st.id) for st, inv in b] for b in s.due_step_batches(DEBTOR.id, NOW, 1)]

    # Then F-1 comes whole in the first batch, and F-2 with its status read under the lock
    assert store.run(read) == [
        [(1, "open", 10), (1, "open", 11), (1, "open", 12), (1, "open", 13), (1, "open", 14)],
        [(2, "paid", 20)],
    ]


def test_the_batches_read_the_steps_as_they_are_when_each_batch_is_read(store):
    # Given two invoices with a reminder due each
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 20)), invoice(2, "F-2", date(2026, 3, 20))],
        [step(10, 1, "reminder_1", NOW), step(20, 2, "reminder_1", NOW)],
        [],
    )

    # When the first batch's step is skipped before the second batch is read, and the
    # second's step is finished before it
    def work(s: DunningStore) -> list[list[int]]:
        seen = []
        for batch in s.due_step_batches(DEBTOR.id, NOW, 1):
            seen.append([st.id for st, _ in batch])
            s.skip_step(10, "invoice disputed", NOW)
            s.finish_step(20, NOW)
        return seen

    # Then only the first batch comes: the step of the second is no longer due
    assert store.run(work) == [[10]]


def test_the_open_invoices_the_caller_knows_come_back_as_given_the_others_as_stored(store):
    # Given two open invoices and a paid one of the debtor
    store.seed(
        [
            invoice(1, "F-1", date(2026, 3, 20)),
            invoice(2, "F-2", date(2026, 3, 20)),
            invoice(3, "F-3", date(2026, 3, 20), status="paid"),
        ],
        [step(10, 1, "reminder_1", NOW)],
        [],
    )

    # When the open invoices are read by a caller that read F-1 with its due step
    def read(s: DunningStore) -> list[tuple[str, bool]]:
        [[(_, known)]] = list(s.due_step_batches(DEBTOR.id, NOW))
        return sorted((i.number, i is known) for i in s.open_invoices(DEBTOR.id, {known.id: known}))

    # Then F-1 is the very facts it gave, F-2 is read, and the paid F-3 is not open
    assert store.run(read) == [("F-1", True), ("F-2", False)]


class _OneInvoiceABatch:
    """A dunning store whose due steps come one invoice at a time."""

    def __init__(self, store: DunningStore) -> None:
        self._store = store

    def due_step_batches(self, debtor_id: str, now: datetime, invoices: int = 1) -> Any:
        return self._store.due_step_batches(debtor_id, now, 1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_a_catch_up_read_one_invoice_at_a_time_sends_one_message_and_finishes_every_step(store, ctx):
    # Given three invoices due on 20 March, each with reminder_1 and reminder_2 due (a catch-up)
    store.seed(
        [invoice(i, f"F-{i}", date(2026, 3, 20)) for i in (1, 2, 3)],
        [
            step(10 * i + k, i, name, NOW - timedelta(hours=k))
            for i in (1, 2, 3)
            for k, name in ((1, "reminder_1"), (2, "reminder_2"))
        ],
        [],
    )
    # When the first step is handled with the due steps read in three batches
    tasks = store.run(lambda s: send_due(cast(DunningStore, _OneInvoiceABatch(s)), 11, NOW, ctx))
    # Then one e-mail and one letter claim the three invoices under reminder_2, as when read at once
    assert [t.recorded.channel for t in tasks if isinstance(t, DeliverMessage) and t.recorded] == [
        "email",
        "letter",
    ]
    assert sorted(store.claim_rows()) == sorted(
        (i, "reminder_2", channel) for i in (1, 2, 3) for channel in ("email", "letter")
    )
    # and the six steps are done: reminder_1 of each covered by the message sent for reminder_2
    states = store.step_states()
    assert {states[10 * i + k][0] for i in (1, 2, 3) for k in (1, 2)} == {"done"}
    [reason] = {states[10 * i + 1][1] or "" for i in (1, 2, 3)}
    assert reason.startswith("covered by message <") and reason.endswith(">, sent for reminder_2")


def test_a_deadline_is_planned_for_an_invoice_read_in_a_batch_of_due_steps(store):
    # Given a formal notice due now, read with the batches of due steps
    store.seed([invoice(1, "F-1", date(2026, 3, 20))], [step(10, 1, "formal_notice", NOW)], [])
    deadline = NOW + timedelta(days=8)

    def work(s: DunningStore) -> None:
        for _ in s.due_step_batches(DEBTOR.id, NOW):
            pass
        s.plan_deadline(1, "escalation", "deadline.expired", deadline)

    store.run(work)
    # Then its deadline is planned, for the invoice's debtor
    assert store.planned(1) == [
        ("escalation", "deadline.expired", deadline),
        ("formal_notice", "invoice.overdue", NOW),
    ]


def test_invoices_are_read_again_by_id_in_the_order_asked_and_the_other_open_ones_apart(store):
    # Given three open invoices and a paid one of the debtor, F-1 with a due step
    store.seed(
        [
            invoice(1, "F-1", date(2026, 3, 20)),
            invoice(2, "F-2", date(2026, 3, 21)),
            invoice(3, "F-3", date(2026, 3, 22)),
            invoice(4, "F-4", date(2026, 3, 20), status="paid"),
        ],
        [step(10, 1, "reminder_1", NOW)],
        [],
    )

    # When F-1 is read with its due step, then invoices are asked again by id (an unknown
    # id among them) and the open invoices other than F-1 one at a time
    def read(s: DunningStore) -> tuple[list[str], bool, list[str]]:
        [[(_, known)]] = list(s.due_step_batches(DEBTOR.id, NOW))
        again = s.invoices([3, 99, 1, 4])
        same = again[1] == known
        others = sorted(i.number for i in s.other_open_invoices(DEBTOR.id, {known.id}))
        return [i.number for i in again], same, others

    # Then they come in the order asked, equal to what was read, the unknown left out; and
    # the other open invoices are F-2 and F-3 (F-1 is held, F-4 is paid)
    assert store.run(read) == (["F-3", "F-1", "F-4"], True, ["F-2", "F-3"])


class _CountingReads:
    """A dunning store that counts the invoices read again by id (``invoices``)."""

    def __init__(self, inner: DunningStore) -> None:
        self._inner = inner
        self.read_again: list[list[int]] = []

    def invoices(self, invoice_ids: Sequence[int]) -> list[InvoiceFacts]:
        self.read_again.append(list(invoice_ids))
        return self._inner.invoices(invoice_ids)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


@pytest.mark.parametrize("claims_at_once", [500, 1])
def test_a_message_is_made_from_the_invoices_read_unless_its_claims_exceed_a_batch(
    store, ctx, monkeypatch, claims_at_once
):
    # Given F-1 and F-2 due on 20 March, each with its reminder_1 due now
    store.seed(
        [invoice(1, "F-1", date(2026, 3, 20)), invoice(2, "F-2", date(2026, 3, 20))],
        [step(10, 1, "reminder_1", NOW - timedelta(hours=1)), step(11, 2, "reminder_1", NOW)],
        [],
    )
    monkeypatch.setattr(reminders, "CLAIMS_AT_ONCE", claims_at_once)
    counted: list[_CountingReads] = []

    def send(s: DunningStore) -> list[object]:
        counted.append(_CountingReads(s))
        return send_due(cast(DunningStore, counted[0]), 10, NOW, ctx)

    # When the first step is handled: one message per channel claims both invoices
    tasks = store.run(send)
    # Then two claims fitting in a batch are made from the reading, with no invoice read
    # again; one claim a batch, the invoices of each message are read again one by one
    messages = len([t for t in tasks if isinstance(t, DeliverMessage)])
    assert messages >= 1
    expected = [] if claims_at_once == 500 else [[1], [2]] * messages
    assert counted[0].read_again == expected


def test_a_batch_read_ahead_gives_what_each_read_gives_and_a_second_step_of_its_debtor_reads_live(store):
    # Given a debtor with two invoices due, one coming, and a message recorded on 10 April
    store.seed(
        [
            invoice(1, "F-1", date(2026, 3, 20)),
            invoice(2, "F-2", date(2026, 3, 21)),
            invoice(3, "F-3", date(2026, 5, 1)),
        ],
        [
            step(10, 1, "reminder_1", NOW - timedelta(days=1)),
            step(11, 2, "reminder_1", NOW - timedelta(days=1)),
            step(12, 3, "reminder_1", NOW + timedelta(days=1)),
        ],
        [],
    )
    store.run(lambda s: s.record_message(message("earlier", ((1, "pre_due"),), date(2026, 4, 10), "EUR")))

    def reads(s: DunningStore) -> tuple[Any, ...]:
        s.read_ahead([10, 11], NOW)  # When a batch of its two due steps is read ahead
        first = s.step(10)
        debtor = s.lock_debtor(DEBTOR.id)
        found = (
            (first.id, first.status) if first else None,
            debtor.id if debtor else None,
            s.last_message_day(DEBTOR.id),
            [[(st.id, inv.number) for st, inv in part] for part in s.due_step_batches(DEBTOR.id, NOW)],
            s.awaiting_drafts([1, 2]),
            sorted(i.number for i in s.other_open_invoices(DEBTOR.id, {1, 2})),
            s.recorded_claims([1, 2]),
            s.messages_on(DEBTOR.id, date(2026, 4, 10)),
        )
        s.finish_steps([10, 11], NOW)
        second = s.step(11)
        return (*found, second.status if second else None)

    # Then the reads give what the store holds, and the debtor's second step is read as it is now
    assert store.run(reads) == (
        (10, "planned"),
        DEBTOR.id,
        date(2026, 4, 10),
        [[(10, "F-1"), (11, "F-2")]],
        {},
        ["F-3"],
        {(1, "pre_due", "email")},
        [("email", "EUR")],
        "done",
    )
