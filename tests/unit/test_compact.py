"""The compact tables of a catch-up give back the very facts they were given."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.compact import InvoiceTable, StepTable
from handlers.dunning import InvoiceFacts

BASE = InvoiceFacts(
    id=1,
    number="F-1",
    debtor_id="D-1",
    status="open",
    currency="EUR",
    amount_due=Decimal("100.00"),
    paid=Decimal("0.00"),
    credited=Decimal("0"),
    issue_date=date(2026, 2, 18),
    due_date=date(2026, 3, 20),
)

amounts = st.decimals(allow_nan=False, allow_infinity=False, places=None) | st.sampled_from(
    [Decimal("0.1"), Decimal("0.10"), Decimal("-0.00"), Decimal("0"), Decimal("1E+5"), Decimal(2**70)]
)


@given(amount=amounts, paid=amounts, number=st.text(min_size=1, max_size=12))
def test_an_invoice_comes_back_equal_and_printed_the_same(amount, paid, number):
    table = InvoiceTable()
    given_facts = replace(BASE, number=number, amount_due=amount, paid=paid, payment_url="https://pay/x")
    row = table.add(replace(BASE, id=0))
    row = table.add(given_facts)
    found = table[row]
    assert found == given_facts
    assert str(found.amount_due) == str(amount) and str(found.paid) == str(paid)
    assert table.by_id(1) == given_facts and table[0].payment_url is None


def test_amounts_equal_in_value_but_printed_apart_stay_apart():
    # Given two invoices whose paid amounts are 0.1 and 0.10 (equal, printed apart)
    table = InvoiceTable()
    table.add(replace(BASE, id=1, paid=Decimal("0.1")))
    table.add(replace(BASE, id=2, paid=Decimal("0.10")))
    # Then each is printed as it was given
    assert [str(i.paid) for i in table] == ["0.1", "0.10"]


def test_invoices_added_out_of_order_are_found_by_id():
    table = InvoiceTable()
    for invoice_id in (5, 9, 2, 7):
        table.add(replace(BASE, id=invoice_id, number=f"F-{invoice_id}"))
    held = table.held_ids()
    table.add(replace(BASE, id=1, number="F-1"))
    assert [table.by_id(i).number for i in (1, 2, 5, 7, 9)] == ["F-1", "F-2", "F-5", "F-7", "F-9"]
    assert 2 in held and 1 not in held and 1 in table and 3 not in table
    assert table.currencies() == {"EUR"}
    with pytest.raises(KeyError):
        table.by_id(3)


def test_steps_come_back_with_their_invoice_and_shared_parts():
    table: StepTable[tuple[int, InvoiceFacts, str]] = StepTable(
        InvoiceTable(), lambda s: (s[0], s[1], (s[2],)), lambda i, inv, shared: (i, inv, shared[0])
    )
    one, two = replace(BASE, id=1), replace(BASE, id=2, number="F-2")
    steps = [(10, one, "reminder_1"), (30, two, "reminder_2"), (20, one, "reminder_2")]
    table.extend(steps)
    assert list(table) == steps and len(table.invoices) == 2
    assert table.find(20) == (20, one, "reminder_2")
    with pytest.raises(KeyError):
        table.find(15)


def test_shared_facts_are_told_apart_as_shown_whatever_their_type():
    from datetime import UTC, date, datetime, timedelta, timezone

    from handlers.compact import _key

    instant = datetime(2026, 4, 1, tzinfo=UTC)
    other_zone = instant.astimezone(timezone(timedelta(hours=2)))
    pairs = [(True, 1), (False, 0), (Decimal("0.1"), Decimal("0.10")), (instant, other_zone),
             (date(2026, 4, 1), datetime(2026, 4, 1)), ("1", 1), (None, False)]  # fmt: skip
    for one, other in pairs:
        assert _key(one) != _key(other)
        assert _key(one) == _key(one)
