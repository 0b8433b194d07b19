"""The invoices and due steps of a big catch-up, kept compactly until the decision is taken.

A debtor with 20 000 invoices due keeps, between the reading of its due steps and the end
of the decision, one invoice and one step per invoice. As frozen values, an invoice's facts
(``InvoiceFacts``, its number, amount and id) and its step (``Due``) cost about 500 bytes.
Here they are columns: the id, the number (UTF-8 in one buffer), the amount (coefficient and
exponent) and the index of the invoice's other facts, which repeat from one invoice to the
next (status, currency, dates, holds: one tuple each, shared), about 40 bytes an invoice;
a step is its id, the row of its invoice and the index of what it shares with the other
steps (stored name, event, step and policy). The values are made again, equal to those
added, when read: each read makes a new value, dropped once used (the last one made is
kept: the steps of an invoice, read in turn, make it once).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Container, Hashable, Iterable, Iterator, Sequence
from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, Generic, TypeVar, overload

from handlers.dunning import InvoiceFacts

_IN_COLUMNS = ("id", "number", "amount_due", "payment_url")
_SHARED = tuple(f.name for f in fields(InvoiceFacts) if f.name not in _IN_COLUMNS)
_Q_MAX = 2**63 - 1
_PLAIN_KINDS = frozenset({type(None), str, int, bool, date})  # neither a Decimal nor a datetime
_shared_facts = attrgetter(*_SHARED)  # an invoice's facts kept in common with others, in order


def _key(value: object) -> Hashable:
    """Told apart as shown: 0.1 and 0.10 are two amounts, True is not 1."""
    kind = type(value)
    if kind in _PLAIN_KINDS:  # the common exact types first: what the last line gives them
        return (kind, value)
    if isinstance(value, Decimal):
        return (Decimal, str(value))
    if isinstance(value, datetime):
        return (datetime, value, value.tzinfo)
    return (type(value), value)


class InvoiceTable(Sequence[InvoiceFacts]):
    """Invoice facts as columns; ``by_id`` finds one by id, ``in`` tells an id is held."""

    def __init__(self) -> None:
        self._ids = array("q")
        self._numbers = bytearray()
        self._ends = array("q")  # where each number ends in ``_numbers``
        self._coefficients = array("q")
        self._exponents = array("b")
        self._amounts: dict[int, Decimal] = {}  # by row: the amounts the two columns cannot hold
        self._urls: dict[int, str] = {}  # by row: the payment pages given
        self._shared_of = array("I")
        self._shared: list[dict[str, Any]] = []  # the other facts, as keyword arguments
        self._index: dict[Hashable, int] = {}
        self._by_identity: dict[tuple[int, ...], int] = {}  # the ids of a part's objects kept
        self._last: tuple[int, InvoiceFacts] | None = None  # the row made last, and its value
        self._sorted = True  # ids added in increasing order: ``_ids`` is its own index
        self._order: array[int] | None = None  # rows by id, when they were not added in order
        self._sorted_ids: array[int] | None = None

    def add(self, invoice: InvoiceFacts) -> int:
        """Keep ``invoice``; its row."""
        row = len(self._ids)
        if row and invoice.id <= self._ids[-1]:
            self._sorted = False
        self._order = self._sorted_ids = None
        self._ids.append(invoice.id)
        self._numbers += invoice.number.encode("utf-8")
        self._ends.append(len(self._numbers))
        self._add_amount(row, invoice.amount_due)
        if invoice.payment_url is not None:
            self._urls[row] = invoice.payment_url
        shared: tuple[Any, ...] = _shared_facts(invoice)
        # the store shares equal values (one object each): the same objects as a part kept
        # are that part, found by identity; those objects stay alive in the part kept, so
        # their ids cannot be those of other objects. Else found by value, shown as given.
        same = tuple(map(id, shared))
        found = self._by_identity.get(same)
        if found is None:
            key = tuple(map(_key, shared))
            found = self._index.get(key)
            if found is None:
                found = self._index[key] = len(self._shared)
                self._shared.append(dict(zip(_SHARED, shared, strict=True)))
                self._by_identity[same] = found  # these objects are the ones kept
        self._shared_of.append(found)
        return row

    def _add_amount(self, row: int, amount: Decimal) -> None:
        sign, digits, exponent = amount.as_tuple()
        coefficient = int("".join(map(str, digits))) if isinstance(exponent, int) else -1
        if isinstance(exponent, int) and -128 <= exponent <= 127 and 0 < coefficient <= _Q_MAX:
            self._coefficients.append(-coefficient if sign else coefficient)
            self._exponents.append(exponent)
        else:  # zero (and its sign), special or huge: kept as it is
            self._coefficients.append(0)
            self._exponents.append(0)
            self._amounts[row] = amount

    def _amount(self, row: int) -> Decimal:
        found = self._amounts.get(row)
        if found is not None:
            return found
        return Decimal(self._coefficients[row]).scaleb(self._exponents[row])

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, row: int) -> InvoiceFacts: ...

    @overload
    def __getitem__(self, row: slice) -> Sequence[InvoiceFacts]: ...

    def __getitem__(self, row: int | slice) -> InvoiceFacts | Sequence[InvoiceFacts]:
        if isinstance(row, slice):
            return tuple(self[i] for i in range(*row.indices(len(self))))
        if row < 0:
            row += len(self)
        last = self._last
        if last is not None and last[0] == row:  # the steps of an invoice read in turn
            return last[1]
        start = self._ends[row - 1] if row else 0
        made = InvoiceFacts(
            id=self._ids[row],
            number=self._numbers[start : self._ends[row]].decode("utf-8"),
            amount_due=self._amount(row),
            payment_url=self._urls.get(row),
            **self._shared[self._shared_of[row]],
        )
        self._last = (row, made)
        return made

    def __iter__(self) -> Iterator[InvoiceFacts]:
        return (self[row] for row in range(len(self)))

    def row_of(self, invoice_id: int) -> int | None:
        """The row of the invoice of that id (None: not held)."""
        if self._sorted:
            ids = self._ids
            at = bisect_left(ids, invoice_id)
            return at if at < len(ids) and ids[at] == invoice_id else None
        if self._order is None or self._sorted_ids is None:
            self._order = array("q", sorted(range(len(self._ids)), key=self._ids.__getitem__))
            self._sorted_ids = array("q", (self._ids[row] for row in self._order))
        at = bisect_left(self._sorted_ids, invoice_id)
        if at < len(self._sorted_ids) and self._sorted_ids[at] == invoice_id:
            return self._order[at]
        return None

    def id_at(self, row: int) -> int:
        return self._ids[row]

    def currency_at(self, row: int) -> str:
        """The currency of the invoice of that row, without making the invoice."""
        currency: str = self._shared[self._shared_of[row]]["currency"]
        return currency

    def by_id(self, invoice_id: int) -> InvoiceFacts:
        row = self.row_of(invoice_id)
        if row is None:
            raise KeyError(invoice_id)
        return self[row]

    def held_ids(self) -> Container[int]:
        """The ids held now, apart from the table: what is added after is not in it."""
        if self._sorted:
            return _SortedIds(array("q", self._ids))
        return set(self._ids)

    def __contains__(self, invoice_id: object) -> bool:
        return isinstance(invoice_id, int) and self.row_of(invoice_id) is not None

    def currencies(self) -> set[str]:
        """The currencies of the invoices held."""
        used = set(self._shared_of)
        return {shared["currency"] for index, shared in enumerate(self._shared) if index in used}


class _SortedIds(Container[int]):
    __slots__ = ("_ids",)

    def __init__(self, ids: array[int]) -> None:
        self._ids = ids

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        at = bisect_left(self._ids, value)
        return at < len(self._ids) and self._ids[at] == value


T = TypeVar("T")


class StepTable(Generic[T]):
    """Due steps as columns: a step's id, the row of its invoice in an ``InvoiceTable`` and
    the index of what it shares with other steps; ``make`` makes the value again from the
    step id, the invoice and the shared part, ``split`` gives the three of a value."""

    def __init__(
        self,
        invoices: InvoiceTable,
        split: Callable[[T], tuple[int, InvoiceFacts, tuple[Any, ...]]],
        make: Callable[[int, InvoiceFacts, tuple[Any, ...]], T],
    ) -> None:
        self.invoices = invoices
        self._split, self._make = split, make
        self._steps = array("q")
        self._rows = array("q")
        self._shared_of = array("I")
        self._shared: list[tuple[Any, ...]] = []
        self._index: dict[tuple[int, ...], int] = {}
        self._order: array[int] | None = None  # positions by step id, made when first asked
        self._sorted_steps: array[int] | None = None

    def extend(self, items: Iterable[T]) -> None:
        rows: dict[int, int] = {}  # the invoices of these steps, each kept once
        for item in items:
            step_id, invoice, shared = self._split(item)
            row = rows.get(invoice.id)
            if row is None:
                row = self.invoices.row_of(invoice.id)
                if row is None:
                    row = self.invoices.add(invoice)
                rows[invoice.id] = row
            key = tuple(id(value) for value in shared)  # shared objects: one tuple each
            found = self._index.get(key)
            if found is None:
                found = self._index[key] = len(self._shared)
                self._shared.append(shared)
            self._steps.append(step_id)
            self._rows.append(row)
            self._shared_of.append(found)
            self._order = self._sorted_steps = None

    def __len__(self) -> int:
        return len(self._steps)

    def __bool__(self) -> bool:
        return len(self._steps) > 0

    def at(self, position: int) -> T:
        invoice = self.invoices[self._rows[position]]
        return self._make(self._steps[position], invoice, self._shared[self._shared_of[position]])

    def __iter__(self) -> Iterator[T]:
        return (self.at(position) for position in range(len(self._steps)))

    def find(self, step_id: int) -> T:
        """The step of that id (KeyError: not held)."""
        return self.at(self._position(step_id))

    def _position(self, step_id: int) -> int:
        if self._order is None or self._sorted_steps is None:
            self._order = array("q", sorted(range(len(self._steps)), key=self._steps.__getitem__))
            self._sorted_steps = array("q", (self._steps[p] for p in self._order))
        at = bisect_left(self._sorted_steps, step_id)
        if at == len(self._sorted_steps) or self._sorted_steps[at] != step_id:
            raise KeyError(step_id)
        return self._order[at]

    def shared_of(self, step_id: int) -> tuple[Any, ...]:
        """What the step of that id shares with others (KeyError: not held), without
        making its invoice."""
        return self._shared[self._shared_of[self._position(step_id)]]

    def parts(self) -> Iterator[tuple[int, int, tuple[Any, ...]]]:
        """Each step's id, the row of its invoice and its shared part, in order: what a
        caller needs of a step without its invoice made."""
        shared, shared_of = self._shared, self._shared_of
        return ((self._steps[p], self._rows[p], shared[shared_of[p]]) for p in range(len(self._steps)))

    def invoice_rows(self) -> Iterator[int]:
        """The row of each step's invoice, in order."""
        return iter(self._rows)
