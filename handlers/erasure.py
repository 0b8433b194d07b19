"""When a debtor's personal data may be erased, and when it must be (docs/configuration.md#personal-data).

Personal data is kept while the claim can be pursued: until every invoice of the debtor is
settled, cancelled, closed or time-barred, and no case of it is open or handed over. The
retention period then runs from the last change of its invoices.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from handlers.planning import prescription_dates
from handlers.records import InvoiceRecord

FINISHED_INVOICES = ("settled", "cancelled", "closed", "written_off", "never_issued", "refused")
LIVE_CASES = ("open", "handed_over")
ERASED = "erased"  # what stands for a personal value removed from a row


def refusal(
    debtor_id: str,
    kind: str,
    invoices: Iterable[InvoiceRecord],
    cases: Iterable[tuple[int, str]],
    today: date,
) -> str | None:
    """Why the debtor cannot be erased today; None when it can. ``cases``: (id, status)."""
    for invoice in invoices:
        if invoice.status not in FINISHED_INVOICES and prescription_dates(invoice, kind)[0] > today:
            return f"debtor {debtor_id} cannot be erased: invoice {invoice.number} is {invoice.status}"
    for case_id, status in cases:
        if status in LIVE_CASES:
            return f"debtor {debtor_id} cannot be erased: case {case_id} is {status}"
    return None


def retention_days(kind: str, business_days: int, consumer_days: int) -> int:
    """The retention period of a debtor of this kind, in days."""
    return consumer_days if kind == "consumer" else business_days


def past_retention(
    last_change: datetime, kind: str, now: datetime, business_days: int, consumer_days: int
) -> bool:
    """Whether the retention period, counted from the last change, has run out at ``now``."""
    return now - last_change > timedelta(days=retention_days(kind, business_days, consumer_days))
