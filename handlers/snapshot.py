"""What the sending decision knows of one debtor at one instant: plain frozen values.

The store builds a snapshot under the debtor's lock from the rows it loads; the decision
(``handlers.decide``) reads nothing else. Invoices and debtors here have the attributes the
hold rules read (``handlers.holds.InvoiceState`` / ``DebtorState``), so every hold is judged
by the same functions whether on rows or on snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Protocol

from handlers.holds import InvoiceState
from handlers.policy import Window  # the sending hours, a frozen value

DEFAULT_WINDOW = Window()


@dataclass(frozen=True, slots=True)
class InvoiceSnapshot:
    """An invoice of the debtor, as the hold rules and the messages see it."""

    id: int
    number: str
    status: str
    currency: str
    balance: Decimal
    issue_date: date
    due_date: date
    disputed: bool = False
    in_payment_plan: bool = False
    paused_until: date | None = None
    delivered_on: date | None = None  # the claim's origin (insolvency), else its issue date
    factored_by: str | None = None  # the factor who collects it: never chased in our name
    hold_reason: str | None = None  # held by a person: no message while held
    held_until: date | None = None


class InvoiceView(InvoiceState, Protocol):
    """What the decision reads of an invoice (read-only): an ``InvoiceSnapshot``, or the
    facts of it the store read under the debtor's lock (``handlers.dunning.InvoiceFacts``),
    given as they are rather than copied: a debtor may have tens of thousands. What the
    hold rules read (``handlers.holds.InvoiceState``), and its id and due date."""

    @property
    def id(self) -> int: ...
    @property
    def due_date(self) -> date: ...


@dataclass(frozen=True)
class DebtorSnapshot:
    """The debtor's hold fields, contact details and calendar."""

    id: str
    timezone: str = "Europe/Paris"
    country: str = "FR"
    opt_out: bool = False
    insolvency_judgment_date: date | None = None
    insolvency_procedure: str | None = None
    hold_reason: str | None = None  # held by a person: no message while held
    held_until: date | None = None
    has_email: bool = True  # an address is known and has not bounced
    has_address: bool = True  # a postal address is known
    has_phone: bool = False  # a phone number is known (a call step needs one)
    kind: str = "business"  # business | consumer | public


@dataclass(frozen=True, slots=True)
class DueStep:
    """A planned step of one invoice that is due by now, with what its policy says of it."""

    step_id: int
    invoice_id: int
    name: str
    event: str  # "invoice.due" or "invoice.overdue"
    severity: int  # rank in the invoice's ladder: higher is more severe
    channels: tuple[str, ...]
    minimum_balance: Decimal  # the invoice's policy's minimum for its currency
    formal_notice: bool = False
    # an installment reminder of a payment plan: judged on its plan, never merged with steps
    installment: bool = False
    installment_blocker: str | None = None  # why the plan forbids it, judged by the store
    # done by a person (channels call or task): a task is created, never a message
    manual: bool = False
    debtor_kinds: tuple[str, ...] = ()  # the kinds of debtor the step is for (empty: all)
    currency: str | None = None  # its invoice's, when the reading knows it (None: ask the invoice)


@dataclass(frozen=True)
class Snapshot:
    """One debtor: its open invoices, its due steps, and what went out already.

    ``invoices`` holds every open invoice of the debtor (for the statement of others) and
    every invoice a due step belongs to. ``recorded`` holds the (invoice id, step, channel)
    already in a recorded message; ``used_today`` the (channel, currency) of the messages
    recorded for this debtor on its local day; ``last_contact`` the local day of the last
    message recorded for the debtor (None: never one), which courtesy steps keep
    ``min_days_between_messages`` away from (0: no gap; ``handlers.pressure``).
    """

    debtor: DebtorSnapshot
    invoices: Sequence[InvoiceView]  # a tuple, or a table with ``by_id`` (``handlers.compact``)
    due: tuple[DueStep, ...]
    window: Window = DEFAULT_WINDOW
    recorded: frozenset[tuple[int, str, str]] = frozenset()
    used_today: frozenset[tuple[str, str]] = frozenset()
    last_contact: date | None = None
    min_days_between_messages: int = 0

    def invoice(self, invoice_id: int) -> InvoiceView:
        by_id = getattr(self.invoices, "by_id", None)  # a table finds its own, without an index
        if by_id is not None:
            found: InvoiceView = by_id(invoice_id)
            return found
        return self._by_id[invoice_id]  # KeyError for an invoice the snapshot does not hold

    @cached_property
    def _by_id(self) -> dict[int, InvoiceView]:
        """The invoices by id, built once: a debtor may have tens of thousands."""
        return {each.id: each for each in self.invoices}
