"""The re-check of a draft when it is approved (handlers/approval.py): the decision's own
hold rule (``holds.chase_hold``) on every invoice the draft claims, on the day of approval."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers import holds
from handlers.approval import approval_hold

TODAY = date(2026, 4, 14)
MINIMUM = Decimal("5.00")


@dataclass(frozen=True)
class Invoice:
    number: str = "F-1"
    status: str = "open"
    currency: str = "EUR"
    balance: Decimal = Decimal("1200.00")
    issue_date: date = date(2026, 2, 18)
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


def _minimum(invoice: holds.InvoiceState) -> Decimal:
    return MINIMUM


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "paid", "balance": Decimal("0.00")}, "F-1: invoice paid"),
        ({"balance": Decimal("0.00")}, "F-1: nothing left to pay"),
        ({"status": "written_off"}, "F-1: invoice written_off"),
        ({"status": "cancelled"}, "F-1: invoice cancelled"),
        ({"disputed": True}, "F-1: invoice disputed"),
        ({"hold_reason": "litige commercial"}, "F-1: invoice held: litige commercial"),
        ({"in_payment_plan": True}, "F-1: invoice in a payment plan"),
    ],
)
def test_a_draft_whose_invoice_changed_meanwhile_is_not_sent_and_says_why(change, reason):
    # Given a draft claiming F-1, which was then paid, written off, disputed, held ...
    invoice = replace(Invoice(), **change)
    # When it is approved, Then the re-check names the invoice and the reason
    assert approval_hold([invoice], Debtor(), TODAY, _minimum) == reason


def test_a_draft_whose_debtor_a_person_held_meanwhile_is_not_sent():
    # Given the debtor held until 30 April
    debtor = Debtor(hold_reason="négociation en cours", held_until=date(2026, 4, 30))
    # When its draft is approved on 14 April, Then it is not sent
    assert approval_hold([Invoice()], debtor, TODAY, _minimum) == "F-1: debtor held: négociation en cours"


def test_a_draft_whose_invoices_are_all_still_owed_may_leave():
    # Given F-1 and F-2, open and unpaid; When approved, Then nothing holds the draft back
    assert approval_hold([Invoice(), Invoice(number="F-2")], Debtor(), TODAY, _minimum) is None


invoices = st.builds(
    Invoice,
    number=st.sampled_from(["F-1", "F-2", "F-3", "F-4"]),
    status=st.sampled_from(["open", "open", "open", "paid", "written_off", "cancelled"]),
    balance=st.decimals(min_value=Decimal("-10"), max_value=Decimal("5000"), places=2),
    disputed=st.booleans(),
    in_payment_plan=st.booleans(),
    hold_reason=st.sampled_from([None, None, "litige"]),
)


@given(st.lists(invoices, min_size=1, max_size=4, unique_by=lambda i: i.number))
def test_a_draft_leaves_exactly_when_the_decision_would_chase_every_invoice_it_claims(claimed):
    # Given any invoices claimed by one draft (one number each)
    expected = all(holds.chase_hold(i, Debtor(), TODAY, MINIMUM) is None for i in claimed)
    # When it is approved, Then it leaves only if the send path's own rule chases each one
    reason = approval_hold(claimed, Debtor(), TODAY, _minimum)
    assert (reason is None) == expected
    # And a reason names an invoice the rule holds back, whatever their order
    if reason is not None:
        number, why = reason.split(": ", 1)
        assert any(
            i.number == number and holds.chase_hold(i, Debtor(), TODAY, MINIMUM) == why for i in claimed
        )
        assert approval_hold(list(reversed(claimed)), Debtor(), TODAY, _minimum) == reason
