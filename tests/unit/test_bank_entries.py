"""What an imported bank entry becomes (handlers/bank_entries.py), without a database: the
split of an entry over invoices a person names, the events and their stable ids, and the
stable keys of CFONB 120 entries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.importers.bank import read_statement
from handlers.bank_entries import AllocationRefused, Outcome, Payment, allocate, outcome, payment_events
from handlers.events import validate_event
from handlers.matching import Allocation, EntryMatch, StatementEntry

D = Decimal


def test_each_invoice_takes_its_balance_and_the_last_one_the_rest():
    # 1400.00 over F-2 (300.00 open) then F-1 (1200.00 open): 300.00, then 1400 - 300 = 1100.00
    assert allocate("K", D("1400.00"), [("F-2", D("300.00")), ("F-1", D("1200.00"))]) == (
        Payment("F-2", D("300.00"), "K"),
        Payment("F-1", D("1100.00"), "K"),
    )


@pytest.mark.parametrize(
    ("amount", "balances", "why"),
    [
        ("300.00", [("F-2", "300.00"), ("F-1", "50.00")], "300.00 is taken by the invoices before F-1"),
        ("1600.00", [("F-2", "300.00"), ("F-1", "1200.00")], "1600.00 is more than the 1500.00 open"),
        ("10.00", [("F-1", "50.00"), ("F-1", "50.00")], "an invoice is named twice"),
        ("10.00", [], "no invoice named"),
    ],
)
def test_an_allocation_that_does_not_fit_is_refused_with_why(amount, balances, why):
    with pytest.raises(AllocationRefused, match=why):
        allocate("K", D(amount), [(n, D(b)) for n, b in balances])


cents = st.integers(min_value=1, max_value=10_000_000).map(lambda c: D(c).scaleb(-2))


@given(st.lists(cents, min_size=1, max_size=6), st.data())
def test_an_accepted_allocation_pays_the_whole_entry_and_no_invoice_more_than_it_owes(balances, data):
    owed = sum(balances, D(0))
    before = owed - balances[-1]
    amount = D(data.draw(st.integers(min_value=1, max_value=int(owed * 100)))).scaleb(-2)
    named = [(f"F-{i}", b) for i, b in enumerate(balances)]
    if amount <= before:
        with pytest.raises(AllocationRefused):
            allocate("K", amount, named)
        return
    payments = allocate("K", amount, named)
    assert sum((p.amount for p in payments), D(0)) == amount
    assert all(D(0) < p.amount <= b for p, (_, b) in zip(payments, named, strict=True))


def entry(**fields) -> StatementEntry:
    base = {
        "reference": "S-1/1",
        "booking_date": date(2026, 10, 2),
        "value_date": date(2026, 10, 1),
        "amount": D("1200.00"),
        "currency": "EUR",
        "credit": True,
    }
    return StatementEntry(**(base | fields))


def test_a_matched_entry_gives_payments_dated_on_its_value_date_whatever_the_day_of_import():
    found = outcome(EntryMatch(entry(), "matched", "reference", (Allocation("F-1", D("1200.00")),)))
    assert found == Outcome("matched", "by reference", payments=(Payment("F-1", D("1200.00"), "S-1/1"),))
    (event,) = payment_events("S-1/1", found, date(2026, 10, 1), "atelier")
    assert event == {
        "event_id": "bank-S-1/1-F-1",
        "occurred_at": "2026-10-01T12:00:00+02:00",
        "creditor_id": "atelier",
        "type": "payment.received",
        "invoice_number": "F-1",
        "amount": "1200.00",
        "paid_on": "2026-10-01",
        "payment_id": "S-1/1",
    }
    validate_event(event)


def test_a_return_without_its_payment_waits_and_a_plain_debit_is_ignored():
    returned = entry(credit=False, is_return=True, return_reason="AM04", end_to_end_id="E2E-1")
    waits = outcome(EntryMatch(returned, "unmatched", reason="a return"))
    assert (waits.status, waits.reason) == (
        "unmatched",
        "returned debit (AM04): the payment it takes back was not found (end-to-end id E2E-1)",
    )
    paid = (Payment("F-1", D("1200.00"), "S-1/1"),)
    reversal = outcome(EntryMatch(returned, "unmatched", reason="a return"), paid)
    (event,) = payment_events("S-9/1", reversal, date(2026, 10, 9), "default")
    assert (event["type"], event["payment_id"], event["reversed_on"], event["reason"]) == (
        "payment.reversed",
        "S-1/1",
        "2026-10-09",
        "returned debit (AM04)",
    )
    assert "creditor_id" not in event
    validate_event(event)
    fee = outcome(EntryMatch(entry(credit=False), "unmatched", reason="a debit: not a payment from a debtor"))
    assert fee.status == "ignored"


MOVEMENT = "0430003000501234EUR2 0123456789018130124  130124{label:<31}  0000000  0000000000199I"


def test_identical_cfonb_movements_get_distinct_keys_that_do_not_change_on_reading_again(tmp_path):
    path = tmp_path / "s.cfo"
    lines = [MOVEMENT.format(label="PRLV ABONNEMENT"), MOVEMENT.format(label="PRLV ABONNEMENT")]
    path.write_text("\n".join([*lines, MOVEMENT.format(label="AUTRE")]) + "\n", encoding="latin-1")
    keys = [e.reference for e in read_statement(path)]
    assert len(set(keys)) == 3 and all(k.startswith("cfonb-") and len(k) == 30 for k in keys)
    assert [e.reference for e in read_statement(path)] == keys
    # the same movements sent again in another file, after a new one, keep their keys
    other = tmp_path / "t.cfo"
    other.write_text("\n".join([MOVEMENT.format(label="NEUVE"), *lines]) + "\n", encoding="latin-1")
    assert [e.reference for e in read_statement(other)][1:] == keys[:2]
