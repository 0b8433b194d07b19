"""Apply the accounting events about debtors: their details and segment, insolvency, and
the delivery status of messages sent to them (see handlers/accounting.py).

A debtor whose details now choose another policy (moved to another segment) has its open
invoices re-planned on that policy in the same transaction (docs/policy.md).
"""

from __future__ import annotations

from datetime import date, datetime

import structlog

from handlers import events as ev
from handlers import evidence, holds, insolvency
from handlers.deadlines import follow_presentation
from handlers.events import Parked
from handlers.planning import cancel_pending, replan_invoice, schedule
from handlers.policy import CLAIM_DECLARATION, MATCH_KEYS, PolicySet
from handlers.records import DebtorRecord
from handlers.store import Store

log = structlog.get_logger("relance.accounting")


def debtor_by_id(store: Store, debtor_id: str, *, lock: bool = False) -> DebtorRecord:
    """The debtor (locked for the transaction with ``lock``); parks the event when unknown."""
    found = store.debtor(debtor_id, lock=lock)
    if found is None:
        raise Parked(f"debtor:{debtor_id}")
    return found


def upsert_debtor(store: Store, data: ev.Debtor, now: datetime, policies: PolicySet) -> DebtorRecord:
    """The debtor with the details ``data`` gives, added or updated. A debtor named again
    with the details it has (an invoice's event carries its debtor each time) is left as it
    is, its ``updated_at`` included: nothing is written for it."""
    details = _details(data)
    row = store.debtor(data.id, lock=True)
    before = None
    if row is None:
        row = store.add_debtor(data.id)
    elif all(getattr(row, key) == value for key, value in details.items()):
        return row
    else:
        before = _policy_inputs(row)
        if row.email != data.email:
            row.email_bounced = False
    for key, value in details.items():
        setattr(row, key, value)
    row.updated_at = now
    if before is not None and before != _policy_inputs(row):
        _replan_open_invoices(store, row, now, policies)
    return row


def _details(data: ev.Debtor) -> dict[str, object]:
    """The debtor's columns an event's details set."""
    return {
        "name": data.name,
        "kind": data.kind,
        "email": data.email,
        "language": data.language,
        "timezone": data.timezone,
        "country": data.address.country,
        "address": data.address.model_dump(exclude_none=True),
        "siren": data.siren,
        "opt_out": data.opt_out,
        "segment": data.segment,
        "merchant": data.merchant,
        "phone": data.phone,
    }


def _policy_inputs(debtor: DebtorRecord) -> tuple[str | None, ...]:
    """What of a debtor chooses its policy (the attributes a segment may match on)."""
    return tuple(getattr(debtor, key, None) for key in MATCH_KEYS)


def _replan_open_invoices(store: Store, debtor: DebtorRecord, now: datetime, policies: PolicySet) -> None:
    """The debtor moved to another segment (or may have): its open invoices follow the
    policy that applies to them now, in this transaction (docs/policy.md)."""
    for invoice in store.open_invoices(debtor.id, lock=True):
        replan_invoice(store, invoice, debtor, policies.for_debtor(debtor, invoice.number), now)


def on_debtor_updated(store: Store, event: ev.DebtorUpdated, now: datetime, policies: PolicySet) -> list[str]:
    upsert_debtor(store, event.debtor, now, policies)
    return [f"debtor:{event.debtor.id}"]


def on_insolvency_opened(
    store: Store, event: ev.InsolvencyOpened, now: datetime, policies: PolicySet
) -> list[str]:
    """Freeze every open claim born before the judgment (by its delivery, else its issue
    date, reported as presumed) and have them declared; release the later stages parked."""
    debtor = debtor_by_id(store, event.debtor_id)
    debtor.insolvency_procedure = event.procedure
    debtor.insolvency_judgment_date = event.judgment_date
    debtor.insolvency_stage = insolvency.stage_of(event.procedure)
    debtor.insolvency_administrator = event.administrator.model_dump() if event.administrator else None
    debtor.insolvency_closed_on = None
    ours = [i for i in store.open_invoices(debtor.id) if not holds.factored(i)]
    for invoice in ours:
        if holds.origin_presumed(invoice):
            insolvency.report_presumed_origin(store, invoice, debtor, now)
    frozen = [i for i in ours if holds.frozen_by_insolvency(i, debtor)]
    for invoice in frozen:
        cancel_pending(store, invoice.id, f"insolvency ({event.procedure})")
    if frozen:  # the claim-declaration case is opened by the deadline handler, at once
        schedule(store, frozen[0], CLAIM_DECLARATION, "deadline.expired", now)
    return [f"insolvency:{debtor.id}"]


def _under_judgment(store: Store, debtor_id: str, on_day: date, what: str, event_id: str) -> DebtorRecord:
    """The debtor a later stage is about: parked until its opening judgment is known,
    rejected when the procedure is closed or the date precedes the opening."""
    debtor = debtor_by_id(store, debtor_id)
    if debtor.insolvency_judgment_date is None:
        raise Parked(f"insolvency:{debtor_id}")
    problem = insolvency.check_after_opening(debtor, on_day, what)
    if problem is not None:
        raise ev.EventRejected(problem, event_id)
    return debtor


def on_insolvency_converted(
    store: Store, event: ev.InsolvencyConverted, now: datetime, policies: PolicySet
) -> list[str]:
    """A conversion to liquidation: the liquidator now receives the declaration (L641-3);
    the frozen claims stay frozen, those born after the opening are chased as before."""
    debtor = _under_judgment(store, event.debtor_id, event.judgment_date, "judgment_date", event.event_id)
    if debtor.insolvency_procedure == "liquidation" or debtor.insolvency_procedure == event.procedure:
        raise ev.EventRejected(
            f"procedure: the {debtor.insolvency_procedure} of {debtor.id} cannot become a {event.procedure}",
            event.event_id,
        )
    debtor.insolvency_procedure = event.procedure
    debtor.insolvency_stage = insolvency.stage_of(event.procedure)
    receiver = event.liquidator or event.administrator
    if receiver is not None:
        debtor.insolvency_administrator = receiver.model_dump()
    note = insolvency.conversion_note(event.procedure, event.judgment_date, insolvency.receiver(debtor))
    cases = insolvency.note_on_declarations(store, debtor, note, now, reasons=True)
    facts = {"judgment_date": event.judgment_date.isoformat(), "receiver": debtor.insolvency_administrator}
    insolvency.record_stage(store, debtor, "insolvency.converted", now, note, cases, facts)
    return []


def on_insolvency_plan_adopted(
    store: Store, event: ev.InsolvencyPlanAdopted, now: datetime, policies: PolicySet
) -> list[str]:
    """A plan of sauvegarde or redressement: the declared claims are paid under the plan
    (L626-10 ff.), so the frozen claims stay frozen."""
    debtor = _under_judgment(store, event.debtor_id, event.judgment_date, "judgment_date", event.event_id)
    if debtor.insolvency_procedure == "liquidation":
        raise ev.EventRejected(
            f"debtor_id: {debtor.id} is in liquidation: no plan (L626-10) is adopted", event.event_id
        )
    debtor.insolvency_stage = insolvency.PLAN
    note = insolvency.plan_note(event.judgment_date)
    cases = insolvency.note_on_declarations(store, debtor, note, now)
    facts = {"judgment_date": event.judgment_date.isoformat()}
    insolvency.record_stage(store, debtor, "insolvency.plan_adopted", now, note, cases, facts)
    return []


def on_insolvency_closed(
    store: Store, event: ev.InsolvencyClosed, now: datetime, policies: PolicySet
) -> list[str]:
    """The procedure is closed: the frozen claims are never chased again on their own; a
    note and an evidence record say what the outcome means, for a person to decide."""
    debtor = _under_judgment(store, event.debtor_id, event.closed_on, "closed_on", event.event_id)
    debtor.insolvency_stage, debtor.insolvency_closed_on = insolvency.CLOSED, event.closed_on
    note = insolvency.closure_note(event.outcome, event.closed_on)
    cases = insolvency.note_on_declarations(store, debtor, note, now)
    facts = {"closed_on": event.closed_on.isoformat(), "outcome": event.outcome}
    insolvency.record_stage(store, debtor, "insolvency.closed", now, note, cases, facts)
    return []


# the statuses a channel can have: a bounce comes from a mail server, a receipt signed,
# refused or not claimed from the post office
_STATUS_CHANNELS = {
    "bounced": ("email", "an e-mail"),
    "acknowledged": ("registered_letter", "a registered letter"),
    "refused": ("registered_letter", "a registered letter"),
    "unclaimed": ("registered_letter", "a registered letter"),
}
_CHANNEL_NAMES = {"email": "email", "letter": "letter", "registered_letter": "registered letter"}


def _status_problem(status: str, channel: str) -> str | None:
    """Why ``status`` cannot be about a message sent on ``channel``, or None."""
    if status not in _STATUS_CHANNELS or _STATUS_CHANNELS[status][0] == channel:
        return None
    return (
        f"status: {status!r} is only for {_STATUS_CHANNELS[status][1]}; "
        f"this message went by {_CHANNEL_NAMES.get(channel, channel)}"
    )


def on_delivery_status(
    store: Store, event: ev.DeliveryStatus, now: datetime, policies: PolicySet
) -> list[str]:
    """Record the status as evidence; a bounced e-mail sends the next steps by post; a
    registered formal notice presented later than expected moves its deadline later.
    Rejected for a Message-ID relance did not send, or a status its channel cannot have."""
    message = store.sent_message(event.message_id)
    if message is None:  # forged, or from another system: kept as rejected, never applied
        raise ev.EventRejected(
            f"message_id: no message sent by relance has the Message-ID {event.message_id}", event.event_id
        )
    if (problem := _status_problem(event.status, message.channel)) is not None:
        raise ev.EventRejected(problem, event.event_id)
    if event.status == "bounced":
        debtor = store.debtor(message.debtor_id, lock=True)
        if debtor is not None:
            debtor.email_bounced = True
    evidence.append(
        store,
        "delivery.status",
        now,
        {
            "message_id": event.message_id,
            "status": event.status,
            "at": event.at.isoformat(),
            "channel": message.channel,
            "known_message": True,
        },
        debtor_id=message.debtor_id,
        message_id=event.message_id,
    )
    if message.channel == "registered_letter":
        follow_presentation(store, event, message.debtor_id, policies, now)
    return []
