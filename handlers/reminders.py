"""Send the steps of the ladder: one message per debtor, channel, currency and day.

``handle_step_due`` runs when a scheduler event arrives. Under a lock on the debtor it takes
every step of that debtor due by now, builds a snapshot of the debtor from those rows, asks
the pure decision (``handlers.decide``) what to send, skip, postpone or mark done, then
applies it: records the messages with their exact bytes, marks the steps, writes evidence
and logs, all in the caller's transaction. The records are transmitted after commit
(handlers.delivery).

Everything stored is read and written through the dunning store and every message's bytes
come from the composer (``handlers.dunning``), both given by the context.
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import structlog

from handlers import evidence, plans
from handlers.amounts import InvoiceAmounts, amounts_on, penalties_run
from handlers.calendar import local_date
from handlers.compact import InvoiceTable, StepTable
from handlers.context import Context
from handlers.deadlines import deadline_after, formal_notice_deadline
from handlers.decide import Claim, Decision, Done, Message, PassedOver, decide
from handlers.dunning import DebtorFacts, DunningStore, InvoiceFacts, NewMessage, StepFacts
from handlers.manual import record_task
from handlers.messages import DeliverMessage, keyed_id
from handlers.money import ZERO, MissingRate
from handlers.parts import pass_over, passes_over
from handlers.planning import PENDING, end_of_day
from handlers.policy import ESCALATION, FORMAL_NOTICE, Policy, Step
from handlers.ports import Outgoing
from handlers.render import helpers
from handlers.snapshot import DebtorSnapshot, DueStep, InvoiceView, Snapshot
from handlers.statement import Statement, StatementBuilder

log = structlog.get_logger("relance.reminders")


@dataclass(frozen=True, slots=True)
class Due:
    """A due step kept for the decision and its messages: its id and stored name and event
    (shared strings), not the step's stored row."""

    step_id: int
    stored_step: str
    event: str
    invoice: InvoiceFacts
    step: Step
    policy: Policy  # the invoice's policy (segment, overrides)


def handle_step_due(uow: object, step_id: int, now: datetime, ctx: Context) -> list[object]:
    """Send what is due for the debtor of ``step_id``; return tasks to publish after commit."""
    return send_due(ctx.dunning_store(uow), step_id, now, ctx)


def send_due(store: DunningStore, step_id: int, now: datetime, ctx: Context) -> list[object]:
    """``handle_step_due`` on a dunning store: everything stored goes through ``store``."""
    first = store.step(step_id)
    if first is None or first.status not in PENDING:
        return []
    debtor = store.lock_debtor(first.debtor_id)
    if debtor is None:
        return []
    head = _head(store, debtor, ctx)
    read = _read_due(store, debtor, head, first.id, now, ctx)  # re-reads ``first`` too, under the lock
    if not read.has_first:
        again = store.reread_step(first.id)  # done meanwhile, or not due yet by this worker's clock
        if again.status in PENDING and again.due_at > now:
            store.release_step(first.id)  # leave it to a later emission
        return []
    for message_id, held_back in read.behind_drafts.items():
        _postpone(store, held_back, now + timedelta(days=1), f"awaiting approval of message {message_id}")
    if not read.due:
        return []
    snapshot = _snapshot(store, debtor, head, read, now)
    decision = decide(snapshot, now, read.passed_over)
    read.passed_over = PassedOver()  # the decision holds them as done
    # the decision taken, the due steps it claims are known by their claims: the snapshot's
    # views go before the messages are built; a message's claims are made again from the
    # steps read (kept as columns), and a big message's invoices read again from the store,
    # a batch at a time (``_claimed_batches``)
    kept = _Kept.of(read.due, decision)
    del snapshot
    return _apply(store, debtor, kept, decision, now, ctx)


@dataclass(frozen=True)
class _Kept:
    """What applying the decision needs of the due steps read, once it is taken: the steps
    read (compact, ``handlers.compact``: skipped, postponed, mentioned and given to a person
    are found there by id); the lead step of each message; the formal notice of each invoice
    whose escalation starts. The messages read their claims' invoices again from the store:
    a catch-up of 20 000 invoices holds no value per invoice while its messages are built."""

    steps: StepTable[Due]
    leads: tuple[Due, ...]  # of each message of the decision, in order
    notices: dict[int, Due]  # by invoice id: its formal notice step, first in the order read

    @classmethod
    def of(cls, due: StepTable[Due], decision: Decision) -> _Kept:
        leads = tuple(due.find(_lead_id(due, m.claims)) for m in decision.messages)
        escalate = set(decision.escalate)
        notices: dict[int, Due] = {}
        if escalate:
            for item in due:
                if item.invoice.id in escalate and item.step.name == FORMAL_NOTICE:
                    notices.setdefault(item.invoice.id, item)
        return cls(due, leads, notices)


class _ByStep(Mapping[int, Due]):
    """The due steps read, by step id (each one made again when asked)."""

    def __init__(self, steps: StepTable[Due]) -> None:
        self._steps = steps

    def __getitem__(self, step_id: int) -> Due:
        return self._steps.find(step_id)

    def __iter__(self) -> Iterator[int]:
        return (item.step_id for item in self._steps)

    def __len__(self) -> int:
        return len(self._steps)


def _due_table() -> StepTable[Due]:
    """The kept due steps of a debtor, compact until the decision is taken."""
    return StepTable(InvoiceTable(), _split_due, _make_due)


def _split_due(item: Due) -> tuple[int, InvoiceFacts, tuple[Any, ...]]:
    return item.step_id, item.invoice, (item.stored_step, item.event, item.step, item.policy)


def _make_due(step_id: int, invoice: InvoiceFacts, shared: tuple[Any, ...]) -> Due:
    stored_step, event, step, policy = shared
    return Due(step_id, stored_step, event, invoice, step, policy)


def _lead_id(due: StepTable[Due], claims: Iterable[Claim]) -> int:
    """The id of the lead step of a message: the most severe of its claims, the first of
    equals (found from the steps' shared parts: no invoice made per claim)."""

    def severity(claim: Claim) -> int:
        _stored, _event, step, policy = due.shared_of(claim.step_id)
        found: int = policy.severity(step.name)
        return found

    return max(claims, key=severity).step_id


@dataclass
class _Read:
    """The debtor's due steps, folded batch by batch: the steps kept for the decision, the
    milder steps already passed over, and the steps of invoices a draft claims (postponed,
    by draft). The decision's view of a kept step (``DueStep``) is made when the snapshot is
    taken, not kept from its batch; what the payment plans say of an installment reminder
    is read with its batch (``blockers``)."""

    due: StepTable[Due] = field(default_factory=_due_table)
    blockers: dict[int, str | None] = field(default_factory=dict)  # installment reminders only
    passed_over: PassedOver = field(default_factory=PassedOver)  # ids, not 80 000 values
    behind_drafts: dict[str, list[Due]] = field(default_factory=dict)
    has_first: bool = False


def _read_due(
    store: DunningStore, debtor: DebtorFacts, head: Snapshot, first_id: int, now: datetime, ctx: Context
) -> _Read:
    """Read the due steps in batches of whole invoices and reduce each batch as it comes: a
    milder step passed over for a more severe one of its invoice keeps its id only
    (``handlers.parts``); what the batch read goes before the next batch is read."""
    read = _Read()
    early = passes_over(head, now)
    for batch in store.due_step_batches(debtor.id, now):
        batch.sort(key=_in_order)
        part = _due_steps(store, batch, debtor, now, ctx)
        read.has_first = read.has_first or any(item.step_id == first_id for item in part)
        part = _behind_drafts(store, part, read.behind_drafts)
        read.blockers.update(_installment_blockers(store, part, debtor))
        if early:
            part = _passed_over(part, read, head.debtor, now)
        read.due.extend(part)
    return read


def _installment_blockers(
    store: DunningStore, part: Iterable[Due], debtor: DebtorFacts
) -> dict[int, str | None]:
    """Why the payment plan forbids each installment reminder of ``part`` (None: it does not)."""
    return {
        item.step_id: store.installment_blocker(item.step_id, debtor.id)
        for item in part
        if isinstance(item.step, plans.InstallmentStep)
    }


def _passed_over(part: list[Due], read: _Read, debtor: DebtorSnapshot, now: datetime) -> list[Due]:
    """The steps of ``part`` kept for the decision; the milder steps passed over go to
    ``read.passed_over`` as ids (``handlers.parts``). The views made here are dropped."""
    steps = [
        _step_view(i.step_id, i.invoice.id, i.invoice.currency, i.step, i.policy, read.blockers) for i in part
    ]
    invoices = {item.invoice.id: item.invoice for item in part}
    steps, passed = pass_over(steps, invoices.__getitem__, debtor, now)
    if not passed:
        return part
    kept = {step.step_id for step in steps}
    read.passed_over.extend(passed)
    return [item for item in part if item.step_id in kept]


def _in_order(pair: tuple[StepFacts, InvoiceFacts]) -> tuple[date, str, int]:
    """The order of the decision within a batch: by due date, number, then step id."""
    step, invoice = pair
    return invoice.due_date, invoice.number, step.id


def _due_steps(
    store: DunningStore,
    batch: Iterable[tuple[StepFacts, InvoiceFacts]],
    debtor: DebtorFacts,
    now: datetime,
    ctx: Context,
) -> list[Due]:
    found = []
    for step_row, invoice in batch:  # invoices locked: re-checked below
        policy = ctx.policy_for(debtor, invoice.number)
        step = _step_of(policy, step_row.step)
        if step is None:
            _skip(
                store,
                step_row.id,
                step_row.step,
                step_row.event,
                invoice,
                debtor,
                now,
                "step no longer in the policy",
            )
        else:
            found.append(Due(step_row.id, step_row.step, step_row.event, invoice, step, policy))
    return found


def _step_of(policy: Policy, stored: str) -> Step | None:
    """The step of the policy a stored step name stands for (None: no longer in it)."""
    try:
        return policy.step(stored)
    except KeyError:  # a payment plan's installment reminder, or a step since removed
        return plans.installment_step(stored, policy)


def _behind_drafts(store: DunningStore, due: list[Due], waiting_by_draft: dict[str, list[Due]]) -> list[Due]:
    """The due steps free to go: those of an invoice a draft still claims are put in
    ``waiting_by_draft`` to wait a day, and again each day until the draft is approved,
    rejected or withdrawn (handlers.approval): a later step never overtakes a message a
    person has not yet decided on."""
    waiting = store.awaiting_drafts({item.invoice.id for item in due})
    if not waiting:
        return due
    for item in due:
        if item.invoice.id in waiting:
            waiting_by_draft.setdefault(waiting[item.invoice.id], []).append(item)
    return [item for item in due if item.invoice.id not in waiting]


def _postpone(store: DunningStore, due: list[Due], until: datetime, reason: str) -> None:
    store.postpone_steps([item.step_id for item in due], until)
    for item in due:
        log.info(
            "reminder.postponed",
            debtor_id=item.invoice.debtor_id,
            step=item.step.name,
            invoice_number=item.invoice.number,
            until=until.isoformat(),
            reason=reason,
        )


def _skip(
    store: DunningStore,
    step_id: int,
    step: str,
    event: str,
    invoice: InvoiceFacts,
    debtor: DebtorFacts,
    now: datetime,
    reason: str,
) -> None:
    store.skip_step(step_id, reason, now)
    payload = {
        "action": "reminder.skipped",
        "step": step,
        "reason": reason,
        "event": event,
        "debtor_id": debtor.id,
        "invoice_numbers": [invoice.number],
    }
    evidence.append(
        store, "reminder.skipped", now, payload, debtor_id=debtor.id, invoice_numbers=[invoice.number]
    )
    log.info(
        "reminder.skipped",
        debtor_id=debtor.id,
        invoice_number=invoice.number,
        step=step,
        reason=reason,
    )


def _head(store: DunningStore, debtor: DebtorFacts, ctx: Context) -> Snapshot:
    """The snapshot's debtor, window and contact history, before any step is read."""
    policy = ctx.policy_for(debtor)
    return Snapshot(
        debtor=DebtorSnapshot(
            id=debtor.id,
            timezone=debtor.timezone,
            country=debtor.country,
            opt_out=debtor.opt_out,
            insolvency_judgment_date=debtor.insolvency_judgment_date,
            insolvency_procedure=debtor.insolvency_procedure,
            hold_reason=debtor.hold_reason,
            held_until=debtor.held_until,
            has_email=bool(debtor.email) and not debtor.email_bounced,
            has_address=bool(debtor.address),
            has_phone=bool(debtor.phone),
            kind=debtor.kind,
        ),
        invoices=(),
        due=(),
        window=policy.window,
        last_contact=store.last_message_day(debtor.id),
        min_days_between_messages=policy.contact.min_days_between_messages,
    )


def _snapshot(
    store: DunningStore, debtor: DebtorFacts, head: Snapshot, read: _Read, now: datetime
) -> Snapshot:
    """The debtor as the decision sees it, from what the store read under its lock."""
    today = local_date(now, debtor.timezone)
    invoices = read.due.invoices  # the invoices of the due steps, compact
    due_invoices = {invoices.id_at(row) for row in read.due.invoice_rows()}
    for other in store.other_open_invoices(debtor.id, invoices.held_ids()):
        invoices.add(other)
    return replace(
        head,
        invoices=invoices,  # the facts read under the lock, kept as columns
        due=tuple(
            _due_snapshot(step_id, invoices, row, shared, read.blockers)
            for step_id, row, shared in read.due.parts()
        ),
        recorded=frozenset(store.recorded_claims(due_invoices)),
        used_today=_used_today(store, debtor.id, today, invoices.currencies()),
    )


def _due_snapshot(
    step_id: int, invoices: InvoiceTable, row: int, shared: tuple[Any, ...], blockers: dict[int, str | None]
) -> DueStep:
    """The decision's view of a due step kept in a table (``_split_due``: its shared part),
    its invoice at ``row`` of ``invoices``; ``blockers``: what the payment plans say of the
    installment reminders read (``_installment_blockers``)."""
    _stored, _event, step, policy = shared
    return _step_view(step_id, invoices.id_at(row), invoices.currency_at(row), step, policy, blockers)


def _step_view(
    step_id: int, invoice_id: int, currency: str, step: Step, policy: Policy, blockers: dict[int, str | None]
) -> DueStep:
    installment = isinstance(step, plans.InstallmentStep)
    return DueStep(
        step_id=step_id,
        invoice_id=invoice_id,
        name=step.name,
        event=step.event,
        severity=policy.severity(step.name),
        channels=tuple(step.channels),
        minimum_balance=policy.money.minimum_for(currency),
        formal_notice=step.name == FORMAL_NOTICE,
        installment=installment,
        manual=not installment and step.manual,
        debtor_kinds=tuple(step.debtor_kinds),
        installment_blocker=blockers[step_id] if installment else None,
        currency=currency,
    )


def _apply(
    store: DunningStore,
    debtor: DebtorFacts,
    kept: _Kept,
    decision: Decision,
    now: datetime,
    ctx: Context,
) -> list[object]:
    """Record what the decision says, in the caller's transaction; the tasks to publish."""
    by_step = _ByStep(kept.steps)  # the steps the decision names, made again when asked
    skipped = {skip.step_id for skip in decision.skipped}  # no longer pending
    for skip in decision.skipped:
        item = by_step[skip.step_id]
        _skip(store, item.step_id, item.stored_step, item.event, item.invoice, debtor, now, skip.reason)
    for wait in decision.postponed:
        _postpone(store, [by_step[i] for i in wait.step_ids], wait.until, wait.reason)
    tasks: list[object] = []
    first_of_group: dict[str, str] = {}
    covering = _Covering()  # why the steps passed over for a claimed lead step are done
    drafted: set[int] = set()  # the invoices of drafts: their escalation waits for approval
    try:
        for message, lead in zip(decision.messages, kept.leads, strict=True):
            message_id, task = _record_message(
                store, debtor, message, lead, kept.steps, now, decision.today, ctx
            )
            covering.add(message.claims, first_of_group.setdefault(message.group, message_id))
            if task is None:
                drafted |= {claim.invoice_id for claim in message.claims}
            else:
                tasks.append(task)
    except MissingRate as exc:
        log.error("reminder.failed", debtor_id=debtor.id, reason=str(exc), half_year=exc.half_year)
        raise
    finished = _Finished(decision.claimed_step_ids)  # finished as their messages were recorded
    reasons: dict[str, str] = {}  # one string per distinct reason, not one per step
    for manual in decision.tasks:
        reason = record_task(store, debtor, manual, by_step, now, decision.today, ctx.message_key)
        for claim in manual.claims:
            finished.add(claim.step_id, reason)
    for message in decision.messages:
        for mention in message.mentions:
            if mention.step_id not in skipped and mention.step_id not in finished:
                reason = _mention(store, by_step[mention.step_id], debtor, first_of_group[message.group], now)
                finished.add(mention.step_id, reason)
    for done in decision.done:
        reason = _done_reason(done, covering)
        finished.add(done.step_id, reasons.setdefault(reason, reason))
    finished.write(store, now)
    _finish_passed_over(store, decision.passed_over, covering, now)
    for invoice_id in decision.escalate:
        if invoice_id in drafted:  # planned when the notice is approved (handlers.approval)
            continue
        notice = kept.notices[invoice_id]
        posted = notice.step_id not in skipped  # an opted-out debtor's notice is not sent
        plan_escalation(store, notice.invoice, debtor, decision.today, notice.policy, posted=posted)
    return tasks


class _Finished:
    """The steps to mark done, by reason, written as one set per reason: a catch-up of
    20 000 invoices finishes 100 000 steps under a handful of reasons.

    A step finished twice keeps the last reason given (None keeps the one it had), as
    when each finish was written in turn. The steps finished already (``recorded``: by
    the messages claiming them, ``NewMessage.finishes``) are written again only with a
    reason."""

    def __init__(self, recorded: Container[int] = frozenset()) -> None:
        self._reasons: dict[int, str | None] = {}
        self._recorded = recorded

    def __contains__(self, step_id: int) -> bool:
        return step_id in self._reasons or step_id in self._recorded

    def add(self, step_id: int, reason: str | None) -> None:
        if reason is None and step_id not in self._reasons and step_id in self._recorded:
            return  # done as written already
        self._reasons[step_id] = reason if reason is not None else self._reasons.get(step_id)

    def write(self, store: DunningStore, now: datetime) -> None:
        by_reason: dict[str | None, list[int]] = {}
        for step_id, reason in self._reasons.items():
            by_reason.setdefault(reason, []).append(step_id)
        for reason, step_ids in by_reason.items():
            store.finish_steps(sorted(step_ids), now, reason)


def _finish_passed_over(
    store: DunningStore, passed_over: Iterable[Done], covering: _Covering, now: datetime
) -> None:
    """The steps passed over before the decision, finished as one set of ids per reason
    (the message of their lead step): 80 000 steps of a catch-up are kept as arrays of ids,
    not as a mapping of each step to its reason. None of them is claimed, mentioned, skipped
    or given to a person: they are written apart from the other steps finished."""
    by_reason: dict[str, array[int]] = {}
    for done in passed_over:
        reason = _done_reason(done, covering)
        by_reason.setdefault(reason, array("q")).append(done.step_id)
    for reason, step_ids in by_reason.items():
        store.finish_steps(sorted(step_ids), now, reason)


def _done_reason(finished: Done, covering: _Covering) -> str:
    """Why a step is done: a catch-up step names the message of its invoice's lead step
    (``covering``: the reason of each lead step claimed)."""
    lead = finished.lead_step_id
    found = covering.reason(lead) if lead is not None else None
    return finished.reason if found is None else found


class _Covering:
    """Why a step passed over for a claimed lead step is done: "covered by message M, sent
    for S", M the first message of the group of the first message that claims the lead
    step, S the step of that claim. Kept as each message's claimed step ids (sorted, with
    the index of their step name), not as a mapping of every claimed step id to its reason:
    a catch-up of 20 000 invoices held 20 000 entries through the messages and the steps
    finished (1.2 MB)."""

    def __init__(self) -> None:
        self._messages: list[tuple[array[int], array[int], list[str], str]] = []
        self._reasons: dict[tuple[str, str], str] = {}  # one string per message and step name

    def add(self, claims: Sequence[Claim], first: str) -> None:
        """The claims of the next message recorded, ``first`` the first message of its group."""
        step_ids = array("q", (claim.step_id for claim in claims))
        names: dict[str, int] = {}
        name_of = array("H", (names.setdefault(claim.step, len(names)) for claim in claims))
        order = sorted(range(len(step_ids)), key=step_ids.__getitem__)
        self._messages.append(
            (
                array("q", (step_ids[p] for p in order)),
                array("H", (name_of[p] for p in order)),
                list(names),
                first,
            )
        )

    def reason(self, step_id: int) -> str | None:
        """Why the steps passed over for ``step_id`` are done (None: no message claims it)."""
        for step_ids, name_of, names, first in self._messages:
            at = bisect_left(step_ids, step_id)
            if at < len(step_ids) and step_ids[at] == step_id:
                name = names[name_of[at]]
                found = self._reasons.get((first, name))
                if found is None:
                    found = self._reasons[(first, name)] = f"covered by message {first}, sent for {name}"
                return found
        return None


def _mention(store: DunningStore, item: Due, debtor: DebtorFacts, message_id: str, now: datetime) -> str:
    """A coming-due step carried by a more severe message's "coming due" section: its
    evidence and log; the reason it is done (written with the other finished steps)."""
    reason = f"mentioned as coming due in message {message_id}"
    evidence.append(
        store,
        "reminder.mentioned",
        now,
        {
            "action": "reminder.mentioned",
            "step": item.step.name,
            "event": item.step.event,
            "reason": reason,
            "debtor_id": debtor.id,
            "invoice_numbers": [item.invoice.number],
            "message_id": message_id,
        },
        debtor_id=debtor.id,
        invoice_numbers=[item.invoice.number],
        message_id=message_id,
    )
    log.info(
        "reminder.mentioned",
        debtor_id=debtor.id,
        invoice_number=item.invoice.number,
        step=item.step.name,
        message_id=message_id,
    )
    return reason


def _used_today(
    store: DunningStore, debtor_id: str, today: date, currencies: set[str]
) -> frozenset[tuple[str, str]]:
    """The (channel, currency) of the messages recorded for the debtor on its local day."""
    used: set[tuple[str, str]] = set()
    for channel, currency in store.messages_on(debtor_id, today):
        # a record without its currency holds the channel for every currency
        used |= {(channel, currency)} if currency else {(channel, c) for c in currencies}
    return frozenset(used)


def plan_escalation(
    store: DunningStore,
    invoice: InvoiceFacts,
    debtor: DebtorFacts,
    today: date,
    policy: Policy,
    *,
    posted: bool = True,
) -> None:
    """Plan the formal notice's deadline, once: a notice re-sent by post keeps the first one.

    It is the date the notice states: ``deadline_days`` after the registered letter's
    expected presentation, on a business day (``handlers.deadlines``). A notice not sent
    (``posted`` false: the debtor opted out) is presented to nobody: the case reaches a
    person ``deadline_days`` after its day, on a business day.
    """
    rules = policy.escalation
    if posted:
        deadline = formal_notice_deadline(today, debtor.country, rules)
    else:
        deadline = deadline_after(today, debtor.country, rules.deadline_days)
    store.plan_deadline(invoice.id, ESCALATION, "deadline.expired", end_of_day(deadline, debtor.timezone))


def message_id_for(
    channel: str, claims: Iterable[tuple[str, str]], domain: str, key: bytes, creditor: str = "default"
) -> str:
    """Stable for a creditor, a channel and a set of (invoice number, step) claimed,
    whatever else is shown; keyed by the installation's ``key``, so that it cannot be
    computed offline. The creditor ``default`` is left out: its Message-IDs stay those
    made before there were several creditors."""
    parts = sorted(f"{number}/{step}" for number, step in claims)
    if creditor != "default":
        parts.insert(0, f"creditor:{creditor}")  # every other part ends in "/" and a step
    return f"<{keyed_id(key, channel, *parts)}@{domain}>"


CLAIMS_AT_ONCE = 500  # the claims of a message folded at a time, their invoices read again


def _record_message(
    store: DunningStore,
    debtor: DebtorFacts,
    message: Message,
    lead: Due,
    held: StepTable[Due],
    now: datetime,
    today: date,
    ctx: Context,
) -> tuple[str, DeliverMessage | None]:
    """Record ``message``; its Message-ID, and its delivery (None: a draft awaiting approval).

    Its claims are folded ``CLAIMS_AT_ONCE`` at a time (``_claimed_batches``: from the steps
    read, ``held``, when they fit in one batch, else their invoices read again from the
    store): the amounts, statement lines and totals of each batch are
    worked out and the batch dropped before the next is read. What is kept of every claim
    until the message is recorded is what its Message-ID and its evidence name: the invoice
    number and step of each claim."""
    channel = message.channel
    policy = lead.policy
    limit = policy.messages.max_listed_invoices
    unseen = {claim.invoice_id for claim in message.claims}  # one line per invoice
    folded = ClaimedInvoices.for_message(message, len(unseen), limit, f"{debtor.id}-{today}")
    claimed: list[tuple[str, str]] = []  # (invoice number, step) of each claim: its Message-ID
    steps: dict[str, str] = {}  # invoice number -> step: its evidence
    numbers: list[str] = []  # the invoices, once each, in order
    listed: list[InvoiceFacts] = []  # the invoices whose views are kept: their payment pages
    dispute_rejected = draft = False
    for batch in _claimed_batches(store, message.claims, held):
        invoices = []
        for invoice, step in batch:
            claimed.append((invoice.number, step.name))
            steps[invoice.number] = step.name
            draft = draft or step.requires_approval
            if invoice.id in unseen:
                unseen.discard(invoice.id)
                invoices.append(invoice)
        running = [i.id for i in invoices if penalties_run(i, debtor, today, policy)]
        moved = store.movements(running) if running else {}
        for invoice in invoices:  # one at a time: the penalty segments behind each view are dropped
            amounts = amounts_on(
                invoice,
                debtor,
                today,
                policy,
                ctx.rates,
                with_penalties=lead.step.states_penalties,
                movements=moved.get(invoice.id, ()),
            )
            kept_views = len(folded.views)
            folded.add(_invoice_view(invoice, amounts))
            if len(folded.views) > kept_views:
                listed.append(invoice)
            numbers.append(invoice.number)
            dispute_rejected = dispute_rejected or (invoice.ever_disputed and not invoice.disputed)
        del batch, invoices, moved
    del unseen  # emptied, yet a set keeps its table: 1 MB for 20 000 invoices, through the composition
    others = _invoices(store, held.invoices, message.others)
    upcoming = _invoices(store, held.invoices, [m.invoice_id for m in message.mentions])
    context = template_context(
        debtor,
        folded,
        message,
        today,
        policy,
        listed=listed,
        dispute_rejected=dispute_rejected,
        others=others,
        upcoming=upcoming,
    )
    context, statement = bounded(context, folded, limit)
    del folded, listed
    if message.installment:
        context |= store.installment_context([c.step_id for c in message.claims])
    rendered = ctx.renderer.render(lead.step.template, debtor.language, context)
    message_id = message_id_for(channel, claimed, ctx.message_domain, ctx.message_key, debtor.creditor_id)
    del claimed
    recipient, content = _compose(
        channel,
        debtor,
        rendered,
        message_id,
        now,
        lead.step,
        ctx,
        helpers(debtor.language)["day"](today),
        policy,
        statement,
    )
    if statement is not None:
        log.info(
            "reminder.summarised",
            debtor_id=debtor.id,
            step=lead.step.name,
            channel=channel,
            invoices=len(numbers),
            listed=len(context["invoices"]),
            statement_lines=statement.line_count - 2,  # without the header and the total
            size=len(content),
        )
    del statement
    totals = context["totals"]
    row = NewMessage(
        message_id=message_id,
        debtor_id=debtor.id,
        channel=channel,
        step=lead.step.name,
        local_day=today,
        recipient=recipient,
        subject=rendered.subject,
        body_text=rendered.body_text,
        content=content,
        content_sha256=hashlib.sha256(content).hexdigest(),
        amounts={k: str(v) for k, v in totals.items()} | {"currency": message.currency},
        lease_until=now + ctx.lease,
        created_at=now,
        claims=tuple((claim.invoice_id, claim.step) for claim in message.claims),
        draft=draft,
        finishes=tuple(claim.step_id for claim in message.claims),
    )
    key = store.record_message(row)
    kind = "message.drafted" if row.draft else "reminder.sent"
    mentioned = [invoice.number for invoice in upcoming]
    evidence.append(
        store,
        kind,
        now,
        {
            "action": kind,
            "step": lead.step.name,
            "event": lead.step.event,
            "steps": steps,
            "channel": channel,
            "to": recipient,
            "subject": rendered.subject,
            "message_id": message_id,
            "content_sha256": row.content_sha256,
            "currency": message.currency,
            "amount_due": str(totals["balance"]),
            "late_interest": str(totals["late_interest"]),
            "recovery_indemnity": str(totals["indemnity"]),
            "debtor_id": debtor.id,
            "invoice_numbers": numbers,
            "mentioned_invoice_numbers": mentioned,
        },
        debtor_id=debtor.id,
        invoice_numbers=numbers,
        message_id=message_id,
    )
    shown = policy.messages.max_listed_invoices  # a log line stays short: the evidence has them all
    log.info(
        kind,
        debtor_id=debtor.id,
        step=lead.step.name,
        channel=channel,
        message_id=message_id,
        invoice_numbers=numbers[:shown],
        mentioned_invoice_numbers=mentioned[:shown],
        invoice_count=len(numbers),
    )
    if row.draft:
        return message_id, None
    if len(content) > RECORDED_WITH_ITS_TASK:
        return message_id, DeliverMessage(key, 0)  # its delivery reads it back
    return message_id, DeliverMessage(
        key, 0, Outgoing(message_id, channel, recipient, rendered.subject, content, debtor.id)
    )


# A message's bytes go with its delivery, sent as recorded by the worker that recorded them,
# up to this size. A bigger one (a catch-up's statement: 1.9 MB for 20 000 invoices) is
# read back by its delivery: it is not held while the send's next messages are made (the
# letter with its annex), nor beside the copy its delivery reads.
RECORDED_WITH_ITS_TASK = 256 * 1024


def _claimed_batches(
    store: DunningStore, claims: Sequence[Claim], held: StepTable[Due]
) -> Iterator[list[tuple[InvoiceFacts, Step]]]:
    """The claims of a message with their invoices and their steps, ``CLAIMS_AT_ONCE`` at a
    time, in order. Claims that fit in one batch are taken from the due steps read
    (``held``), with no second read; a bigger message's invoices are read again from the
    store, a batch at a time, their steps as read (no policy looked up again)."""
    if len(claims) <= CLAIMS_AT_ONCE:
        found = [held.find(claim.step_id) for claim in claims]
        yield [(item.invoice, item.step) for item in found]
        return
    for start in range(0, len(claims), CLAIMS_AT_ONCE):
        part = claims[start : start + CLAIMS_AT_ONCE]
        facts = {f.id: f for f in store.invoices(list(dict.fromkeys(c.invoice_id for c in part)))}
        batch = []
        for claim in part:
            _stored, _event, step, _policy = held.shared_of(claim.step_id)  # as read
            batch.append((facts[claim.invoice_id], step))  # locked: still there
        yield batch


def _invoices(store: DunningStore, held: InvoiceTable, invoice_ids: Sequence[int]) -> list[InvoiceFacts]:
    """The facts of these invoices, in order: from those read under the lock (``held``: the
    due steps' and the other open ones), else read from the store."""
    found = {i: held.by_id(i) for i in invoice_ids if i in held}
    missing = [i for i in invoice_ids if i not in found]
    if missing:
        found |= {invoice.id: invoice for invoice in store.invoices(missing)}
    return [found[i] for i in invoice_ids if i in found]


class ClaimedInvoices:
    """The invoices a message claims, folded one by one as their amounts are worked out:
    the totals, the oldest due date and the statement lines (when the message is to carry
    one) of every invoice; the views of the first ``keep`` only (all when None).

    A message claiming 20 000 invoices lists 50 of them: the other views are dropped as soon
    as they are counted and written in the statement.
    """

    def __init__(self, keep: int | None = None, statement: StatementBuilder | None = None) -> None:
        self.views: list[dict] = []
        self.count = 0
        self.balance = self.late_interest = self.indemnity = ZERO
        self.oldest_due: date | None = None
        self.statement = statement
        self._keep = keep

    @classmethod
    def for_message(cls, message: Message, claims: int, limit: int, reference: str) -> ClaimedInvoices:
        """Folded for ``message`` claiming ``claims`` invoices: the whole statement kept when
        a list of the message is longer than ``limit``, every view otherwise."""
        if max(claims, len(message.others), len(message.mentions)) <= limit:
            return cls()
        return cls(limit, StatementBuilder(reference, message.currency))

    def add(self, view: dict) -> None:
        self.count += 1
        self.balance += view["balance"]
        self.late_interest += view["late_interest"]
        self.indemnity += view["indemnity"]
        due = view["due_date"]
        self.oldest_due = due if self.oldest_due is None else min(self.oldest_due, due)
        if self.statement is not None:
            self.statement.claim(view)
        if self._keep is None or len(self.views) < self._keep:
            self.views.append(view)


def template_context(
    debtor: DebtorFacts,
    claimed: ClaimedInvoices,
    message: Message,
    today: date,
    policy: Policy,
    *,
    listed: Sequence[InvoiceFacts],
    dispute_rejected: bool,
    others: Sequence[InvoiceView],
    upcoming: Sequence[InvoiceView],
) -> dict:
    """What the templates show: the invoices claimed (``claimed``, the ``_invoice_view`` of
    each invoice claimed folded in order; ``listed``, the invoices of the views it kept) and
    their totals, in one currency; the coming-due invoices (``upcoming``) and the other
    overdue ones (``others``), outside the amount demanded. ``dispute_rejected``: an invoice
    claimed had a dispute, since rejected."""
    totals = {
        "balance": claimed.balance,
        "late_interest": claimed.late_interest,
        "indemnity": claimed.indemnity,
    }
    totals["claimed"] = totals["balance"] + totals["late_interest"] + totals["indemnity"]
    return {
        "debtor": {"name": debtor.name, "address": debtor.address, "id": debtor.id},
        "creditor": policy.creditor,
        "invoices": claimed.views,
        "totals": totals,
        "currency": message.currency,
        "today": today,
        "deadline": formal_notice_deadline(today, debtor.country, policy.escalation),
        "consumer": debtor.kind == "consumer",
        "public": debtor.kind == "public",
        # L616-1: once a consumer's dispute was not settled, the mediator's details follow
        "mediator": policy.mediator if debtor.kind == "consumer" and dispute_rejected else None,
        "others": [_listed(invoice) for invoice in others],
        "upcoming": [_listed(invoice) for invoice in upcoming],
        # the pages of the invoices listed only: a message claiming 20 000 invoices lists 50
        "payment_urls": payment_urls(listed, policy.creditor.payment_link),
    }


def payment_urls(invoices: Sequence[InvoiceFacts], link: str | None) -> list[str]:
    """Each invoice's payment page: its own, else the creditor's ``payment_link`` made for
    it (``{invoice_number}`` replaced by its number, URL-quoted)."""
    urls = []
    for invoice in invoices:
        if invoice.payment_url:
            urls.append(invoice.payment_url)
        elif link:
            urls.append(link.replace("{invoice_number}", quote(invoice.number, safe="")))
    return urls


def bounded(context: dict, claimed: ClaimedInvoices, limit: int) -> tuple[dict, Statement | None]:
    """The context to render, its lists cut to ``limit`` invoices, and the full statement
    when a list was cut (None otherwise: ``claimed`` was folded without one).

    The amounts demanded (``totals``) stay those of every invoice claimed; ``count`` is the
    number claimed and ``summary`` what the templates say of the invoices not listed.
    """
    others, upcoming = context["others"], context["upcoming"]
    context = context | {"count": claimed.count, "summary": None}
    if claimed.statement is None:
        return context, None
    statement = claimed.statement.finish(others, upcoming)
    summary = {
        "count": claimed.count,
        "unlisted": max(claimed.count - limit, 0),
        "oldest_due": claimed.oldest_due,
        "others_count": len(others),
        "others_unlisted": max(len(others) - limit, 0),
        "others_balance": sum((i["balance"] for i in others), ZERO),
        "upcoming_unlisted": max(len(upcoming) - limit, 0),
        "statement": statement.filename,
    }
    listed = {"invoices": claimed.views[:limit], "others": others[:limit], "upcoming": upcoming[:limit]}
    return context | listed | {"summary": summary}, statement


def _listed(invoice: InvoiceView) -> dict:
    return {
        "number": invoice.number,
        "due_date": invoice.due_date,
        "balance": invoice.balance,
        "currency": invoice.currency,
    }


def _invoice_view(invoice: InvoiceFacts, a: InvoiceAmounts) -> dict:
    return {
        "number": invoice.number,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "currency": invoice.currency,
        "amount_due": invoice.amount_due,
        "balance": a.balance,
        "paid_so_far": invoice.paid + invoice.credited,
        "paid_on_penalties": a.interest_paid,
        "late_interest": a.late_interest,
        "indemnity": a.indemnity,
        "rate": a.rate,
    }


def address_lines(debtor: DebtorFacts) -> list[str]:
    address = debtor.address or {}
    lines = [debtor.name, address.get("line1", "")]
    if address.get("line2"):
        lines.append(address["line2"])
    lines.append(f"{address.get('postal_code', '')} {address.get('city', '')}".strip())
    if address.get("country", "FR") != "FR":
        lines.append(address["country"])
    return [line for line in lines if line]


def _compose(
    channel: str,
    debtor: DebtorFacts,
    rendered,
    message_id: str,
    now: datetime,
    step: Step,
    ctx: Context,
    today_text: str,
    policy: Policy,
    statement: Statement | None = None,
) -> tuple[str, bytes]:
    composer = ctx.message_composer()
    if channel == "email":
        content = composer.email(
            sender=ctx.sender,
            recipient=debtor.email or "",
            subject=rendered.subject,
            body_text=rendered.body_text,
            body_html=rendered.body_html,
            message_id=message_id,
            at=now,
            step=step.name,
            statement=statement,
            reply_to=ctx.reply_to,
        )
        return debtor.email or "", content
    lines = address_lines(debtor)
    creditor = policy.creditor
    city = creditor.address[-1].split(" ", 1)[-1] if creditor.address else ""
    content = composer.letter(
        creditor=creditor,
        recipient_lines=lines,
        subject=rendered.subject,
        body_text=rendered.body_text,
        reference=message_id.strip("<>"),
        at=now,
        place_date=f"{city}, le {today_text}" if city else today_text,
        registered=channel == "registered_letter",
        statement=statement,
    )
    return ", ".join(lines), content
