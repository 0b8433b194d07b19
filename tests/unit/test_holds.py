"""The hold rules, one module for reminders, escalation, plans and events (handlers/holds.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from handlers import holds

MINIMUM = Decimal("5.00")
TODAY = date(2026, 3, 16)


@dataclass(frozen=True)
class Invoice:
    number: str = "F-1"
    status: str = "open"
    currency: str = "EUR"
    balance: Decimal = Decimal("1000.00")
    issue_date: date = date(2026, 1, 5)
    disputed: bool = False
    in_payment_plan: bool = False
    paused_until: date | None = None
    delivered_on: date | None = None
    factored_by: str | None = None
    hold_reason: str | None = None
    held_until: date | None = None


@dataclass(frozen=True)
class Debtor:
    opt_out: bool = False
    insolvency_judgment_date: date | None = None
    insolvency_procedure: str | None = None
    hold_reason: str | None = None
    held_until: date | None = None


def test_an_open_unpaid_invoice_of_an_ordinary_debtor_may_be_chased_and_escalated():
    assert holds.chase_hold(Invoice(), Debtor(), TODAY, MINIMUM) is None
    assert holds.escalation_hold(Invoice(), MINIMUM) is None


def test_four_cents_left_after_a_payment_are_neither_chased_nor_escalated():
    trifle = Invoice(balance=Decimal("0.04"))
    assert holds.chase_hold(trifle, Debtor(), TODAY, MINIMUM) == "balance 0.04 EUR below the minimum of 5.00"
    assert holds.escalation_hold(trifle, MINIMUM) == "balance 0.04 EUR below the minimum of 5.00"


def test_a_minimum_of_zero_chases_every_cent():
    assert holds.chase_hold(Invoice(balance=Decimal("0.04")), Debtor(), TODAY, Decimal("0")) is None


def test_exactly_the_minimum_is_still_chased():
    assert holds.chase_hold(Invoice(balance=Decimal("5.00")), Debtor(), TODAY, MINIMUM) is None


def test_a_promise_holds_through_its_promised_day_and_not_after():
    promised = Invoice(paused_until=TODAY)
    assert holds.chase_hold(promised, Debtor(), TODAY, MINIMUM) == "promise to pay until 2026-03-16"
    assert holds.chase_hold(promised, Debtor(), date(2026, 3, 17), MINIMUM) is None


def test_insolvency_freezes_claims_born_before_the_judgment_only():
    debtor = Debtor(insolvency_judgment_date=date(2026, 2, 1), insolvency_procedure="redressement")
    before, after = Invoice(issue_date=date(2026, 1, 31)), Invoice(issue_date=date(2026, 2, 1))
    assert (
        holds.chase_hold(before, debtor, TODAY, MINIMUM) == "debtor in insolvency proceedings (redressement)"
    )
    assert holds.chase_hold(after, debtor, TODAY, MINIMUM) is None
    assert not holds.listed_as_other(before, debtor)
    assert holds.listed_as_other(after, debtor)


def test_an_opted_out_debtor_gets_no_message_but_is_still_escalated():
    assert holds.chase_hold(Invoice(), Debtor(opt_out=True), TODAY, MINIMUM) == (
        "debtor opted out of automatic contact"
    )
    assert holds.escalation_hold(Invoice(), MINIMUM) is None


def test_disputes_and_plans_hold_both_chasing_and_escalation():
    for held, reason in (
        (Invoice(disputed=True), "invoice disputed"),
        (Invoice(in_payment_plan=True), "invoice in a payment plan"),
    ):
        assert holds.chase_hold(held, Debtor(), TODAY, MINIMUM) == reason
        assert holds.escalation_hold(held, MINIMUM) == reason
        assert holds.paused(held)
        assert not holds.listed_as_other(held, Debtor())


def test_a_settled_invoice_is_never_chased_escalated_or_resumed():
    for done in (
        Invoice(status="paid", balance=Decimal("0.00")),
        Invoice(status="cancelled"),
        Invoice(balance=Decimal("0.00")),
    ):
        assert holds.settled(done)
        assert holds.chase_hold(done, Debtor(), TODAY, MINIMUM) is not None
        assert holds.escalation_hold(done, MINIMUM) is not None
        assert not holds.may_resume(done, Debtor())


def test_an_invoice_resumes_only_once_no_pause_and_no_freeze_holds_it():
    assert holds.may_resume(Invoice(), Debtor())
    assert not holds.may_resume(replace(Invoice(), paused_until=TODAY), Debtor())
    assert not holds.may_resume(Invoice(), Debtor(insolvency_judgment_date=date(2026, 2, 1)))


# --- insolvency: the claim's origin decides -------------------------------------------------

JUDGMENT = date(2026, 4, 10)
IN_PROCEEDINGS = Debtor(insolvency_judgment_date=JUDGMENT, insolvency_procedure="redressement")


def test_goods_delivered_before_the_judgment_but_invoiced_after_it_are_a_pre_judgment_claim():
    # delivered 8 April < judgment 10 April: born before it (L622-24), whatever the invoice
    # date (15 April); frozen, never chased nor listed
    invoice = Invoice(issue_date=date(2026, 4, 15), delivered_on=date(2026, 4, 8))
    assert holds.claim_origin(invoice) == date(2026, 4, 8)
    assert holds.frozen_by_insolvency(invoice, IN_PROCEEDINGS)
    assert holds.chase_hold(invoice, IN_PROCEEDINGS, TODAY, MINIMUM) == (
        "debtor in insolvency proceedings (redressement)"
    )
    assert not holds.may_resume(invoice, IN_PROCEEDINGS)


def test_a_service_completed_on_or_after_the_judgment_is_chased_though_invoiced_before():
    # invoiced 5 April, service completed 10 April (the judgment day): born after it (L622-17)
    for delivered in (date(2026, 4, 10), date(2026, 4, 20)):
        invoice = Invoice(issue_date=date(2026, 4, 5), delivered_on=delivered)
        assert not holds.frozen_by_insolvency(invoice, IN_PROCEEDINGS)
        assert holds.chase_hold(invoice, IN_PROCEEDINGS, TODAY, MINIMUM) is None


def test_without_a_delivery_date_the_issue_date_is_the_presumed_origin():
    before, on_the_day = Invoice(issue_date=date(2026, 4, 9)), Invoice(issue_date=JUDGMENT)
    assert holds.origin_presumed(before) and holds.claim_origin(before) == date(2026, 4, 9)
    assert holds.frozen_by_insolvency(before, IN_PROCEEDINGS)
    assert not holds.frozen_by_insolvency(on_the_day, IN_PROCEEDINGS)
    assert not holds.origin_presumed(Invoice(delivered_on=date(2026, 1, 2)))


# --- factored invoices -----------------------------------------------------------------------


def test_a_factored_invoice_is_neither_chased_escalated_listed_nor_resumed_and_says_who_collects():
    factored = Invoice(factored_by="Factofrance")
    reason = "invoice factored: collected by Factofrance"
    assert holds.chase_hold(factored, Debtor(), TODAY, MINIMUM) == reason
    assert holds.escalation_hold(factored, MINIMUM) == reason
    assert holds.paused(factored)
    assert not holds.listed_as_other(factored, Debtor())
    assert not holds.may_resume(factored, Debtor())


def test_a_held_invoice_is_not_chased_through_its_last_day_then_is_again():
    held = Invoice(hold_reason="en négociation", held_until=TODAY)
    assert holds.chase_hold(held, Debtor(), TODAY, MINIMUM) == "invoice held: en négociation"
    assert holds.chase_hold(held, Debtor(), date(2026, 3, 17), MINIMUM) is None
    assert holds.paused(held) and not holds.may_resume(held, Debtor())  # until its end releases it


def test_a_held_debtor_holds_each_of_its_invoices_until_released():
    debtor = Debtor(hold_reason="client stratégique")
    assert holds.chase_hold(Invoice(), debtor, date(2099, 1, 1), MINIMUM) == "debtor held: client stratégique"
    assert not holds.may_resume(Invoice(), debtor)


def test_a_hold_has_no_legal_effect_the_invoice_still_escalates_and_is_listed():
    held = Invoice(hold_reason="en négociation")
    assert holds.escalation_hold(held, MINIMUM) is None
    assert holds.listed_as_other(held, Debtor(hold_reason="client stratégique"))


def test_a_dispute_is_named_before_a_hold():
    both = Invoice(disputed=True, hold_reason="en négociation")
    assert holds.chase_hold(both, Debtor(), TODAY, MINIMUM) == "invoice disputed"
