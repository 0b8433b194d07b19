"""Contact pressure: courtesy messages to one debtor keep ``min_days_between_messages`` apart;
a formal notice is never held back. Unit tests on snapshots, then a property on random
debtors followed day by day."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.calendar import local_date
from handlers.decide import FORMAL, INSTALLMENTS, ONE_A_DAY, Decision, decide
from handlers.snapshot import DebtorSnapshot, DueStep, InvoiceSnapshot, Snapshot

# the default ladder of config/policy.toml: name -> (event, channels, offset from the due date)
LADDER = {
    "pre_due": ("invoice.due", ("email",), -5),
    "due": ("invoice.due", ("email",), 0),
    "notice": ("invoice.overdue", ("email",), 3),
    "reminder_1": ("invoice.overdue", ("email",), 10),
    "reminder_2": ("invoice.overdue", ("email", "letter"), 20),
    "reminder_3": ("invoice.overdue", ("email", "letter"), 30),
    "formal_notice": ("invoice.overdue", ("registered_letter", "email"), 40),
}
NAMES = list(LADDER)
# Monday 16 February 2026, 10:00 in Paris (UTC+1): a business day, the window open
NOW = datetime(2026, 2, 16, 9, 0, tzinfo=UTC)
TODAY = date(2026, 2, 16)
FRIDAY = date(2026, 2, 13)


def invoice(id_: int, due: date, currency: str = "EUR") -> InvoiceSnapshot:
    return InvoiceSnapshot(
        id=id_,
        number=f"F-{id_}",
        status="open",
        currency=currency,
        balance=Decimal("1000.00"),
        issue_date=due - timedelta(days=30),
        due_date=due,
    )


def step(step_id: int, invoice_id: int, name: str) -> DueStep:
    event, channels, _ = LADDER[name]
    return DueStep(
        step_id=step_id,
        invoice_id=invoice_id,
        name=name,
        event=event,
        severity=NAMES.index(name),
        channels=channels,
        minimum_balance=Decimal("5.00"),
        formal_notice=name == "formal_notice",
    )


def snapshot(invoices, due, last: date | None, gap: int = 3, **kw) -> Snapshot:
    return Snapshot(
        DebtorSnapshot("D-1"),
        tuple(invoices),
        tuple(due),
        last_contact=last,
        min_days_between_messages=gap,
        **kw,
    )


def paris_opening(day: date) -> datetime:
    """09:00 in Paris, winter time: 08:00 UTC."""
    return datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC)


def test_given_a_reminder_the_day_after_a_message_then_it_waits_for_the_third_day_after_it():
    # the last message on Saturday 14 February (a letter posted that day): 14 + 3 = Tuesday
    # 17 February, a business day: the reminder due today waits until 09:00 in Paris that day
    decision = decide(
        snapshot([invoice(1, date(2026, 2, 6))], [step(10, 1, "reminder_1")], date(2026, 2, 14)), NOW
    )
    assert decision.messages == ()
    (wait,) = decision.postponed
    assert wait.step_ids == (10,) and wait.until == paris_opening(date(2026, 2, 17))
    assert wait.reason == "3 days between messages to the debtor, the last on 2026-02-14"


def test_given_the_last_message_exactly_the_gap_before_then_the_reminder_goes_today():
    # Friday 13 February + 3 days = Monday 16 February: today, allowed
    decision = decide(
        snapshot([invoice(1, date(2026, 2, 6))], [step(10, 1, "reminder_1")], date(2026, 2, 13)), NOW
    )
    assert [m.claimed_invoice_ids for m in decision.messages] == [(1,)]
    assert decision.postponed == ()


def test_given_a_gap_ending_on_a_weekend_then_the_step_waits_for_the_monday():
    # last message Thursday 19 February; Thursday 19 + 3 = Sunday 22: the first business day
    # allowed is Monday 23 February, 09:00 in Paris
    friday = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
    decision = decide(
        snapshot([invoice(1, date(2026, 2, 6))], [step(10, 1, "reminder_1")], date(2026, 2, 19)), friday
    )
    assert decision.postponed[0].until == paris_opening(date(2026, 2, 23))


def test_given_a_formal_notice_soon_after_a_reminder_then_it_goes_and_another_invoice_waits():
    # a reminder on Friday 13 February, a gap of 5 days: today, Monday 16, F-1's formal notice
    # goes anyway; F-2's notice waits for Wednesday 18 February (13 + 5)
    a, b = invoice(1, date(2026, 1, 5)), invoice(2, date(2026, 2, 12))
    decision = decide(
        snapshot([a, b], [step(10, 1, "formal_notice"), step(20, 2, "notice")], FRIDAY, gap=5), NOW
    )
    assert {(m.channel, m.claimed_invoice_ids) for m in decision.messages} == {
        ("registered_letter", (1,)),
        ("email", (1,)),
    }
    assert decision.escalate == (1,)
    (wait,) = decision.postponed
    assert wait.step_ids == (20,) and wait.until == paris_opening(date(2026, 2, 18))


def test_given_a_held_reminder_with_a_milder_step_of_its_invoice_then_both_wait_together():
    # F-1 caught up: notice and reminder_1 due together; the notice, passed over for
    # reminder_1, waits with it rather than being marked done without a message
    due = [step(10, 1, "notice"), step(11, 1, "reminder_1")]
    decision = decide(snapshot([invoice(1, date(2026, 2, 1))], due, FRIDAY, gap=5), NOW)
    assert decision.done == () and decision.messages == ()
    assert decision.postponed_step_ids == {10, 11}


def test_given_a_milder_step_passed_over_for_a_formal_notice_then_it_is_done_by_the_notice():
    due = [step(10, 1, "reminder_3"), step(11, 1, "formal_notice")]
    decision = decide(snapshot([invoice(1, date(2026, 1, 5))], due, FRIDAY, gap=5), NOW)
    assert decision.claimed_step_ids == {11} and [d.step_id for d in decision.done] == [10]
    assert decision.postponed == ()


def test_given_another_currency_the_same_person_counts_and_its_reminder_waits_too():
    # the last message (in EUR) went on Friday 13, a gap of 5 days: a USD reminder waits for
    # Wednesday 18 (13 + 5)
    decision = decide(
        snapshot([invoice(2, date(2026, 2, 6), "USD")], [step(20, 2, "reminder_1")], FRIDAY, gap=5), NOW
    )
    assert decision.messages == () and decision.postponed[0].until == paris_opening(date(2026, 2, 18))


def test_given_a_step_recorded_on_one_channel_then_its_letter_is_not_held_back():
    # an e-mail refused and re-sent by post: the letter is the same message, not a new contact
    debtor = DebtorSnapshot("D-1", has_email=False)
    snap = replace(
        snapshot([invoice(1, date(2026, 2, 6))], [step(10, 1, "reminder_1")], TODAY),
        debtor=debtor,
        recorded=frozenset({(1, "reminder_1", "email")}),
    )
    assert [m.channel for m in decide(snap, NOW).messages] == ["letter"]


def test_given_no_gap_in_the_policy_then_the_reminder_goes_the_next_business_day_after_a_message():
    decision = decide(
        snapshot([invoice(1, date(2026, 2, 6))], [step(10, 1, "reminder_1")], FRIDAY, gap=0), NOW
    )
    assert [m.claimed_invoice_ids for m in decision.messages] == [(1,)]


def test_given_a_formal_notice_today_then_a_reminder_meeting_it_on_email_waits_three_days_not_one():
    # no earlier message; the formal notice of F-1 takes the e-mail today, Monday 16: F-3's
    # reminder_2 waits for Thursday 19 February (16 + 3) instead of Tuesday 17
    a, c = invoice(1, date(2026, 1, 5)), invoice(3, date(2026, 1, 27))
    decision = decide(snapshot([a, c], [step(10, 1, "formal_notice"), step(30, 3, "reminder_2")], None), NOW)
    assert {m.group for m in decision.messages} == {"formal_notice/EUR"}
    (wait,) = decision.postponed
    assert wait.step_ids == (30,) and wait.until == paris_opening(date(2026, 2, 19))
    assert wait.reason != ONE_A_DAY


# --- the invariant, on random debtors followed day by day --------------------------------


@dataclass
class Run:
    """A debtor followed from one day to the next: steps planned, messages recorded."""

    invoices: tuple[InvoiceSnapshot, ...]
    planned: dict[int, tuple[DueStep, date]]  # step id -> (step, day it is due)
    gap: int
    sent: list[tuple[date, str, tuple[tuple[int, str], ...]]] = field(default_factory=list)
    recorded: set[tuple[int, str, str]] = field(default_factory=set)

    def day(self, today: date) -> None:
        due = [s for s, day in self.planned.values() if day <= today]
        last = max((day for day, _, _ in self.sent), default=None)
        snap = Snapshot(
            DebtorSnapshot("D-1"),
            self.invoices,
            tuple(sorted(due, key=lambda s: s.step_id)),
            recorded=frozenset(self.recorded),
            last_contact=last,
            min_days_between_messages=self.gap,
        )
        self.apply(decide(snap, datetime(today.year, today.month, today.day, 9, 0, tzinfo=UTC)), today)

    def apply(self, decision: Decision, today: date) -> None:
        for message in decision.messages:
            claims = tuple((c.invoice_id, c.step) for c in message.claims)
            self.sent.append((today, message.group, claims))
            self.recorded |= {(i, s, message.channel) for i, s in claims}
        for wait in decision.postponed:
            for step_id in wait.step_ids:
                self.planned[step_id] = (self.planned[step_id][0], local_date(wait.until, "Europe/Paris"))
        finished = decision.claimed_step_ids | decision.mentioned_step_ids
        finished |= {d.step_id for d in decision.done} | {s.step_id for s in decision.skipped}
        for step_id in finished:
            self.planned.pop(step_id, None)

    def formal_notice_days(self) -> dict[int, date]:
        found: dict[int, date] = {}
        for day, _, claims in self.sent:
            for invoice_id, name in claims:
                if name == "formal_notice":
                    found.setdefault(invoice_id, day)
        return found


@st.composite
def ladders(draw) -> tuple[tuple[InvoiceSnapshot, ...], dict[int, tuple[DueStep, date]]]:
    invoices, planned = [], {}
    for i in range(1, draw(st.integers(1, 5)) + 1):
        due = TODAY + timedelta(days=draw(st.integers(0, 30)))
        invoices.append(invoice(i, due, draw(st.sampled_from(["EUR", "EUR", "USD"]))))
        for name in NAMES:
            planned[len(planned) + 1] = (
                step(len(planned) + 1, i, name),
                due + timedelta(days=LADDER[name][2]),
            )
    return tuple(invoices), planned


@settings(max_examples=60, deadline=None)
@given(ladders(), st.integers(1, 5))
def test_courtesy_messages_keep_the_gap_and_a_formal_notice_is_never_later_than_without_it(ladder, gap):
    invoices, planned = ladder
    runs = {n: Run(invoices, dict(planned), n) for n in (0, gap)}
    for offset in range(-6, 100):
        for run in runs.values():
            run.day(TODAY + timedelta(days=offset))
    held = runs[gap]
    contacts = sorted({day for day, _, _ in held.sent})
    for day, group, _ in held.sent:
        if group.split("/")[0] in (FORMAL, INSTALLMENTS):
            continue
        # a courtesy message: every earlier contact is at least ``gap`` days before it
        assert all((day - c).days >= gap for c in contacts if c < day)
    # a formal notice is never later than without the rule (and every one is sent)
    free, kept = runs[0].formal_notice_days(), held.formal_notice_days()
    assert set(kept) == set(free) == {i.id for i in invoices}
    assert all(kept[i] <= free[i] for i in free)
