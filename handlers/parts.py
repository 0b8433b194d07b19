"""The due steps of one debtor decided part by part: a catch-up of tens of thousands of
invoices is read in batches of whole invoices (``DunningStore.due_step_batches``), and
each part is reduced before the next is read.

Within a part, what ``handlers.decide`` would say of an invoice's milder steps is already
known: a step that passes every hold, due with a more severe step of its invoice that does
too, is passed over for it (``_most_severe_per_invoice``), whatever the other invoices.
``pass_over`` settles that per part, so that only one step per invoice (plus the steps held
back or done by a person) is kept to the end; ``decide(snapshot, now, passed_over)`` then
takes the same decision as on every due step at once (``Decision.flattened``). The reminder
path keeps the steps passed over as arrays of ids (``handlers.decide.PassedOver``): the
decision gives them back as given, ahead of its own ``done``, without a value per step.

Passing over early is only done when nothing can hold the passed-over steps back with their
lead (``passes_over``): outside the sending window every due step waits, and under contact
pressure the milder steps of a held lead wait with it; then every step is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from handlers import pressure
from handlers.calendar import local_date, next_sending_time
from handlers.decide import Done, _most_severe_per_invoice, send_hold
from handlers.snapshot import DebtorSnapshot, DueStep, InvoiceView, Snapshot


def passes_over(head: Snapshot, now: datetime) -> bool:
    """Whether the milder steps may be passed over part by part for this debtor at ``now``:
    its sending window is open and no contact pressure holds steps back (``head`` is the
    snapshot's debtor, window, last contact and gap; its invoices and steps are not read)."""
    debtor = head.debtor
    opening = next_sending_time(now, debtor.timezone, debtor.country, head.window)
    return opening <= now and not pressure.too_soon(head, local_date(now, debtor.timezone))


def pass_over(
    part: Sequence[DueStep],
    invoice: Callable[[int], InvoiceView],
    debtor: DebtorSnapshot,
    now: datetime,
) -> tuple[list[DueStep], list[Done]]:
    """Of one part (every due step of its invoices, in the order of the decision), the steps
    kept for the decision, and the milder steps passed over, as ``decide`` passes them."""
    today = local_date(now, debtor.timezone)
    sendable = [
        step
        for step in part
        if not (step.manual or step.installment)
        and send_hold(step, invoice(step.invoice_id), debtor, today) is None
    ]
    _, passed = _most_severe_per_invoice(sendable)
    if not passed:
        return list(part), []
    gone = {done.step_id for done in passed}
    return [step for step in part if step.step_id not in gone], passed
