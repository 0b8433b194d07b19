"""The sending decision on snapshots: one rule per test, then invariants on random debtors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers import holds
from handlers.decide import ONE_A_DAY, OUTSIDE_WINDOW, Decision, decide
from handlers.snapshot import DebtorSnapshot, DueStep, InvoiceSnapshot, Snapshot

# the default ladder of config/policy.toml: name -> (event, channels)
LADDER = {
    "pre_due": ("invoice.due", ("email",)),
    "due": ("invoice.due", ("email",)),
    "notice": ("invoice.overdue", ("email",)),
    "reminder_1": ("invoice.overdue", ("email",)),
    "reminder_2": ("invoice.overdue", ("email", "letter")),
    "reminder_3": ("invoice.overdue", ("email", "letter")),
    "formal_notice": ("invoice.overdue", ("registered_letter", "email")),
}
NAMES = list(LADDER)
# Monday 16 February 2026, 10:00 in Paris (UTC+1): a business day, the window open
NOW = datetime(2026, 2, 16, 9, 0, tzinfo=UTC)
TODAY = date(2026, 2, 16)
MINIMUM = Decimal("5.00")


def invoice(
    id_: int, due: date, balance: str = "1000.00", currency: str = "EUR", **holds_
) -> InvoiceSnapshot:
    return InvoiceSnapshot(
        id=id_,
        number=f"F-{id_}",
        status="open",
        currency=currency,
        balance=Decimal(balance),
        issue_date=due - timedelta(days=30),
        due_date=due,
        **holds_,
    )


def step(step_id: int, invoice_id: int, name: str, minimum: Decimal = MINIMUM) -> DueStep:
    event, channels = LADDER[name]
    return DueStep(
        step_id=step_id,
        invoice_id=invoice_id,
        name=name,
        event=event,
        severity=NAMES.index(name),
        channels=channels,
        minimum_balance=minimum,
        formal_notice=name == "formal_notice",
    )


def snapshot(invoices, due, **kw) -> Snapshot:
    return Snapshot(
        debtor=kw.pop("debtor", DebtorSnapshot("D-1")), invoices=tuple(invoices), due=tuple(due), **kw
    )


def by_channel(decision: Decision) -> dict[str, list[str]]:
    return {m.channel: [f"F-{c.invoice_id}/{c.step}" for c in m.claims] for m in decision.messages}


def test_given_a_formal_notice_and_a_due_reminder_the_same_day_then_the_notice_claims_only_its_invoice():
    fa, fb = invoice(1, date(2026, 1, 5)), invoice(2, date(2026, 2, 16), "5000.00")
    decision = decide(snapshot([fa, fb], [step(10, 1, "formal_notice"), step(20, 2, "due")]), NOW)
    assert by_channel(decision) == {
        "registered_letter": ["F-1/formal_notice"],
        "email": ["F-1/formal_notice"],
    }
    assert all([x.invoice_id for x in m.mentions] == [2] for m in decision.messages)
    assert decision.mentioned_step_ids == {20} and decision.escalate == (1,)
    assert not decision.postponed and not decision.skipped


def test_given_an_overdue_step_on_an_invoice_due_today_then_it_is_skipped_as_not_overdue():
    decision = decide(snapshot([invoice(1, TODAY)], [step(10, 1, "notice")]), NOW)
    assert decision.messages == ()
    (skip,) = decision.skipped
    assert skip.reason == "invoice not overdue on 2026-02-16 (due 2026-02-16)"


def test_given_two_currencies_then_each_has_its_own_message_and_nothing_is_added_across():
    eur, usd = invoice(1, date(2026, 2, 1)), invoice(2, date(2026, 2, 1), "300.00", "USD")
    decision = decide(snapshot([eur, usd], [step(10, 1, "reminder_1"), step(20, 2, "reminder_1")]), NOW)
    assert sorted((m.currency, m.claimed_invoice_ids) for m in decision.messages) == [
        ("EUR", (1,)),
        ("USD", (2,)),
    ]


def test_given_a_balance_below_the_minimum_then_the_step_is_skipped_with_the_reason():
    decision = decide(snapshot([invoice(1, date(2026, 2, 1), "0.04")], [step(10, 1, "reminder_1")]), NOW)
    assert decision.messages == ()
    assert decision.skipped[0].reason == "balance 0.04 EUR below the minimum of 5.00"


def test_given_an_overdue_group_meeting_the_formal_notice_on_email_then_it_waits_whole_for_the_next_day():
    a, c = invoice(1, date(2026, 1, 5)), invoice(3, date(2026, 1, 27))
    decision = decide(snapshot([a, c], [step(10, 1, "formal_notice"), step(30, 3, "reminder_2")]), NOW)
    assert set(by_channel(decision)) == {"registered_letter", "email"}
    (wait,) = decision.postponed
    # next sending opening: Tuesday 17 February 09:00 in Paris = 08:00 UTC
    assert wait.step_ids == (30,) and wait.until == datetime(2026, 2, 17, 8, 0, tzinfo=UTC)
    assert wait.reason == ONE_A_DAY
    # the waiting invoice is still listed as a statement in the formal notice
    assert all(m.others == (3,) for m in decision.messages)


def test_given_several_overdue_steps_then_one_group_under_the_most_severe_on_all_its_channels():
    a, b = invoice(1, date(2026, 1, 20)), invoice(2, date(2026, 2, 6))
    decision = decide(snapshot([a, b], [step(10, 1, "reminder_3"), step(20, 2, "reminder_1")]), NOW)
    assert {m.lead_step for m in decision.messages} == {"reminder_3"}
    assert by_channel(decision) == {"email": ["F-1/reminder_3", "F-2/reminder_1"]} | {
        "letter": ["F-1/reminder_3", "F-2/reminder_1"]
    }


def test_given_a_channel_used_earlier_today_then_a_due_reminder_waits_for_the_next_opening():
    decision = decide(
        snapshot([invoice(1, TODAY)], [step(10, 1, "due")], used_today=frozenset({("email", "EUR")})), NOW
    )
    assert decision.messages == () and decision.postponed[0].step_ids == (10,)


def test_given_a_channel_used_today_in_another_currency_then_the_message_goes_out():
    decision = decide(
        snapshot([invoice(1, TODAY)], [step(10, 1, "due")], used_today=frozenset({("email", "USD")})), NOW
    )
    assert by_channel(decision) == {"email": ["F-1/due"]}


def test_given_a_step_recorded_on_every_channel_then_it_is_done_without_a_new_message():
    recorded = frozenset({(1, "reminder_1", "email")})
    decision = decide(
        snapshot([invoice(1, date(2026, 2, 1))], [step(10, 1, "reminder_1")], recorded=recorded), NOW
    )
    assert decision.messages == () and [d.step_id for d in decision.done] == [10]


def test_given_the_window_closed_then_every_step_waits_for_its_opening():
    saturday = datetime(2026, 2, 14, 9, 0, tzinfo=UTC)
    decision = decide(snapshot([invoice(1, date(2026, 2, 1))], [step(10, 1, "reminder_1")]), saturday)
    (wait,) = decision.postponed
    assert wait.reason == OUTSIDE_WINDOW and wait.until == datetime(2026, 2, 16, 8, 0, tzinfo=UTC)


def test_given_an_opted_out_debtor_then_the_formal_notice_is_skipped_but_escalation_planned():
    debtor = DebtorSnapshot("D-1", opt_out=True)
    decision = decide(
        snapshot([invoice(1, date(2026, 1, 5))], [step(10, 1, "formal_notice")], debtor=debtor), NOW
    )
    assert decision.messages == () and decision.escalate == (1,)
    assert decision.skipped[0].reason == "debtor opted out of automatic contact"


def test_given_no_email_and_no_address_then_the_step_is_skipped_for_contact_details():
    debtor = DebtorSnapshot("D-1", has_email=False, has_address=False)
    decision = decide(snapshot([invoice(1, date(2026, 2, 1))], [step(10, 1, "notice")], debtor=debtor), NOW)
    assert decision.skipped[0].reason == "no valid contact details"


def test_given_a_bounced_email_then_the_formal_notice_goes_by_registered_letter_only():
    debtor = DebtorSnapshot("D-1", has_email=False)
    decision = decide(
        snapshot([invoice(1, date(2026, 1, 5))], [step(10, 1, "formal_notice")], debtor=debtor), NOW
    )
    assert set(by_channel(decision)) == {"registered_letter"}


# --- invariants on random debtors -------------------------------------------------------

CURRENCIES = ("EUR", "USD", "GBP")


def rarely(draw) -> bool:
    """True about one time in eight: holds are the exception, so most debtors get messages."""
    return draw(st.integers(0, 7)) == 0


@st.composite
def debtors(draw) -> Snapshot:
    currencies = draw(st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=3, unique=True))
    count = draw(st.integers(1, 6))
    invoices: list[InvoiceSnapshot] = []
    due: list[DueStep] = []
    for i in range(1, count + 1):
        small = draw(st.sampled_from([Decimal("0.00"), Decimal("0.04"), Decimal("4.99")]))
        invoices.append(
            InvoiceSnapshot(
                id=i,
                number=f"F-{i}",
                status=draw(st.sampled_from(["paid", "cancelled"])) if rarely(draw) else "open",
                currency=draw(st.sampled_from(currencies)),
                balance=small if rarely(draw) else Decimal(draw(st.integers(500, 900_000))) / 100,
                issue_date=TODAY - timedelta(days=120),
                due_date=TODAY + timedelta(days=draw(st.integers(-60, 10))),
                disputed=rarely(draw),
                in_payment_plan=rarely(draw),
                paused_until=draw(
                    st.sampled_from([TODAY - timedelta(days=1), TODAY, TODAY + timedelta(days=3)])
                )
                if rarely(draw)
                else None,
            )
        )
        for name in draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True)):
            due.append(step(len(due) + 1, i, name))
    recorded = frozenset((s.invoice_id, s.name, c) for s in due if rarely(draw) for c in s.channels)
    channels = st.sampled_from(["email", "letter", "registered_letter"])
    used = frozenset(draw(st.sets(st.tuples(channels, st.sampled_from(currencies)), max_size=2)))
    debtor = DebtorSnapshot(
        "D-1",
        opt_out=rarely(draw),
        has_email=not rarely(draw),
        has_address=not rarely(draw),
    )
    return Snapshot(debtor, tuple(invoices), tuple(due), recorded=recorded, used_today=used)


def _step(snap: Snapshot, step_id: int) -> DueStep:
    return next(s for s in snap.due if s.step_id == step_id)


@settings(max_examples=400, deadline=None)
@given(debtors())
def test_invariants_of_every_decision(snap: Snapshot):
    decision = decide(snap, NOW)
    for message in decision.messages:
        invoices = [snap.invoice(c.invoice_id) for c in message.claims]
        # no message mixes currencies
        assert {i.currency for i in invoices} | {
            snap.invoice(x.invoice_id).currency for x in message.mentions
        } == {message.currency}
        for claim, inv in zip(message.claims, invoices, strict=True):
            # an overdue step never claims an invoice not overdue that day
            if _step(snap, claim.step_id).event == "invoice.overdue":
                assert inv.due_date < TODAY
            # no message claims an invoice a hold refuses (minimum balance included)
            assert holds.chase_hold(inv, snap.debtor, TODAY, MINIMUM) is None
        # a not-yet-due invoice is at most mentioned in an overdue message, never demanded
        if _step(snap, message.claims[0].step_id).event == "invoice.overdue":
            assert all(i.due_date < TODAY for i in invoices)
            assert all(snap.invoice(x.invoice_id).due_date >= TODAY for x in message.mentions)
        assert not set(message.claimed_invoice_ids) & set(message.others)
    # all channels of one group carry the same invoices and amounts
    groups: dict[str, set] = {}
    for message in decision.messages:
        carried = (
            frozenset((c.invoice_id, c.step) for c in message.claims),
            sum((snap.invoice(c.invoice_id).balance for c in message.claims), Decimal(0)),
            frozenset(x.invoice_id for x in message.mentions),
        )
        groups.setdefault(message.group, set()).add(carried)
    assert all(len(v) == 1 for k, v in groups.items() if _recorded_whole(snap, k, decision))
    # at most one message per (channel, currency) per day, counting those recorded earlier
    sent = [(m.channel, m.currency) for m in decision.messages]
    assert len(sent) == len(set(sent)) and not set(sent) & snap.used_today
    # every due step ends in exactly one outcome
    outcomes = [
        decision.claimed_step_ids,
        decision.mentioned_step_ids,
        frozenset(s.step_id for s in decision.skipped),
        decision.postponed_step_ids,
        frozenset(d.step_id for d in decision.done),
    ]
    every = [i for o in outcomes for i in o]
    assert sorted(every) == sorted(s.step_id for s in snap.due)
    assert all(s.reason for s in decision.skipped)


def _recorded_whole(snap: Snapshot, group: str, decision: Decision) -> bool:
    """Whether each step of the group was recorded on all of its channels or on none.

    A step recorded on only some channels (an earlier day's fallback from e-mail to letter)
    is claimed on the channels still missing it, so its group may differ there.
    """
    for message in decision.messages:
        if message.group != group:
            continue
        for claim in message.claims:
            channels = {m.channel for m in decision.messages if m.group == group}
            marks = {(claim.invoice_id, claim.step, c) in snap.recorded for c in channels}
            if len(marks) > 1:
                return False
    return True


def test_given_two_steps_of_one_invoice_due_together_then_only_the_more_severe_is_claimed():
    decision = decide(
        snapshot([invoice(1, date(2026, 1, 20))], [step(10, 1, "notice"), step(11, 1, "reminder_2")]), NOW
    )
    assert by_channel(decision) == {"email": ["F-1/reminder_2"], "letter": ["F-1/reminder_2"]}
    assert [(d.step_id, d.reason) for d in decision.done] == [
        (10, "passed over for reminder_2, due the same day")
    ]


def test_given_a_due_reminder_postponed_past_its_due_date_meeting_a_reminder_then_it_is_listed_as_other():
    late, other = invoice(1, date(2026, 2, 13)), invoice(2, date(2026, 2, 6))
    decision = decide(snapshot([late, other], [step(10, 1, "due"), step(20, 2, "reminder_1")]), NOW)
    assert by_channel(decision) == {"email": ["F-2/reminder_1"]}
    assert decision.messages[0].others == (1,) and decision.messages[0].mentions == ()
    assert [d.step_id for d in decision.done] == [10]


def test_given_an_installment_reminder_and_a_ladder_step_on_email_then_the_installment_goes_alone():
    planned = DueStep(
        step_id=30,
        invoice_id=3,
        name="installment_1_due",
        event="invoice.due",
        severity=-1,
        channels=("email",),
        minimum_balance=MINIMUM,
        installment=True,
    )
    in_plan = invoice(3, date(2026, 1, 10), in_payment_plan=True)
    decision = decide(
        snapshot([invoice(1, date(2026, 2, 6)), in_plan], [planned, step(10, 1, "reminder_1")]), NOW
    )
    assert [(m.lead_step, m.installment) for m in decision.messages] == [("installment_1_due", True)]
    assert decision.postponed[0].step_ids == (10,)


def test_given_a_blocked_installment_then_it_is_skipped_with_the_plan_reason():
    planned = DueStep(
        30,
        3,
        "installment_1_due",
        "invoice.due",
        -1,
        ("email",),
        MINIMUM,
        installment=True,
        installment_blocker="installment 1 paid",
    )
    decision = decide(snapshot([invoice(3, date(2026, 1, 10), in_payment_plan=True)], [planned]), NOW)
    assert decision.messages == () and decision.skipped[0].reason == "installment 1 paid"


def test_given_the_same_claims_then_the_decision_is_the_same_whatever_the_order_of_the_steps():
    a, b = invoice(1, date(2026, 1, 20)), invoice(2, date(2026, 2, 6))
    steps = [step(10, 1, "reminder_3"), step(20, 2, "reminder_1")]
    assert (
        decide(snapshot([a, b], steps), NOW).messages == decide(snapshot([b, a], steps[::-1]), NOW).messages
    )


def test_given_an_invoice_factored_since_its_step_was_planned_then_the_step_is_skipped_naming_the_factor():
    # F-1 is factored, F-2 is not: only F-2 is claimed, and F-1 is not listed among the others
    factored = invoice(1, date(2026, 1, 27), factored_by="Factofrance")
    other = invoice(2, date(2026, 1, 20))
    decision = decide(snapshot([factored, other], [step(10, 1, "reminder_2"), step(20, 2, "notice")]), NOW)
    (skip,) = decision.skipped
    assert (skip.step_id, skip.reason) == (10, "invoice factored: collected by Factofrance")
    assert {m.claimed_invoice_ids for m in decision.messages} == {(2,)}
    assert all(m.others == () for m in decision.messages)


def test_given_a_delivery_before_the_judgment_then_the_invoice_issued_after_it_is_not_chased():
    # judgment Friday 6 February 2026; F-1 delivered 4 February, issued 9 February: frozen;
    # F-2 issued 2 February but delivered 9 February: born after the judgment, chased
    debtor = DebtorSnapshot(
        "D-1", insolvency_judgment_date=date(2026, 2, 6), insolvency_procedure="redressement"
    )
    frozen = replace(
        invoice(1, date(2026, 2, 12), delivered_on=date(2026, 2, 4)), issue_date=date(2026, 2, 9)
    )
    later = replace(invoice(2, date(2026, 2, 12), delivered_on=date(2026, 2, 9)), issue_date=date(2026, 2, 2))
    decision = decide(
        snapshot([frozen, later], [step(10, 1, "notice"), step(20, 2, "notice")], debtor=debtor), NOW
    )
    assert [(s.step_id, s.reason) for s in decision.skipped] == [
        (10, "debtor in insolvency proceedings (redressement)")
    ]
    assert {m.claimed_invoice_ids for m in decision.messages} == {(2,)}
