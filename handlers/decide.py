"""Which reminders one debtor is sent now: a pure decision on a snapshot.

``decide(snapshot, now)`` reads only the snapshot and the clock and returns a ``Decision``:
the messages to record (one per channel and currency), the steps skipped and why, the steps
postponed and until when, the steps already recorded, and the invoices whose formal notice
starts an escalation deadline. The store applies it in the transaction that holds the
debtor's lock. Every hold rule is asked of ``handlers.holds``; business days and sending
windows of ``handlers.calendar``.

Groups of one currency, in this order (the earlier a group, the more severe):

1. installment reminders of payment plans, on their own, as they always were;
2. the formal notice: exactly the invoices whose ``formal_notice`` step is due;
3. the other overdue steps, under the most severe of them;
4. the pre-due and due reminders.

Steps done by a person (channels ``call`` or ``task``) are no message: the steps of one
kind due together become one ``Task`` for the debtor, whatever their currency. They pass
the same holds as a message, but never pass over, nor are passed over by, a message's step,
and use no channel of the day.

A group goes out on every channel any of its steps asks for, with the same claims on each.
When a channel of a group is already used that day (by an earlier group, or by a message
recorded earlier today), an overdue group waits whole for the next sending opening; a
pre-due/due group is mentioned in the "coming due" section of the earlier overdue group's
messages when there is one on that channel, and waits for the next opening otherwise.

Contact pressure (``handlers.pressure``): the courtesy steps due fewer than the policy's
``min_days_between_messages`` after the last message to the debtor wait, whole, for the first
day allowed; the formal notice and installment reminders never do.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from itertools import chain
from typing import overload

from handlers import holds, pressure
from handlers.calendar import local_date, next_sending_time, zone
from handlers.snapshot import DebtorSnapshot, DueStep, InvoiceView, Snapshot

OVERDUE = "invoice.overdue"
OUTSIDE_WINDOW = "outside the sending window"
ONE_A_DAY = "one message per debtor, channel and currency per day"
NO_CONTACT = "no valid contact details"
NO_PHONE = "no phone number known: no call"

INSTALLMENTS, FORMAL, OVERDUE_STEPS, COMING_DUE = "installments", "formal_notice", "overdue", "coming_due"
_KINDS = (INSTALLMENTS, FORMAL, OVERDUE_STEPS, COMING_DUE)
MANUAL_KINDS = ("call", "task")


@dataclass(frozen=True, slots=True)
class Claim:
    """An invoice demanded in a message by its own step."""

    step_id: int
    invoice_id: int
    step: str


class Claims(Sequence[Claim]):
    """The claims of a message, kept compact: a catch-up's message claims 20 000 invoices,
    held as arrays of step and invoice ids and the index of each step's name rather than as
    20 000 ``Claim`` values (made again, equal, when read). Equal to any sequence of the
    same claims in the same order."""

    __slots__ = ("_invoices", "_name_of", "_names", "_steps")

    def __init__(self, claims: Iterable[Claim] = ()) -> None:
        self._steps = array("q")
        self._invoices = array("q")
        self._name_of = array("H")
        self._names: list[str] = []
        index: dict[str, int] = {}
        for claim in claims:
            self._steps.append(claim.step_id)
            self._invoices.append(claim.invoice_id)
            name = index.get(claim.step)
            if name is None:
                name = index[claim.step] = len(self._names)
                self._names.append(claim.step)
            self._name_of.append(name)

    def __len__(self) -> int:
        return len(self._steps)

    @overload
    def __getitem__(self, index: int) -> Claim: ...

    @overload
    def __getitem__(self, index: slice) -> Claims: ...

    def __getitem__(self, index: int | slice) -> Claim | Claims:
        if isinstance(index, slice):
            return Claims(self[i] for i in range(*index.indices(len(self))))
        return Claim(self._steps[index], self._invoices[index], self._names[self._name_of[index]])

    def __iter__(self) -> Iterator[Claim]:
        names, name_of = self._names, self._name_of
        return (
            Claim(step_id, invoice_id, names[name])
            for step_id, invoice_id, name in zip(self._steps, self._invoices, name_of, strict=True)
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Claims):
            return (self._steps, self._invoices) == (other._steps, other._invoices) and all(
                a.step == b.step for a, b in zip(self, other, strict=True)
            )
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Claims({list(self)!r})"


@dataclass(frozen=True, slots=True)
class Mention:
    """A not-yet-due invoice listed in a message's "coming due" section, not demanded."""

    step_id: int
    invoice_id: int
    step: str


@dataclass(frozen=True)
class Message:
    """One message to record: one channel, one currency, one lead step.

    The messages of one ``group`` carry the same claims and mentions on every channel.
    """

    group: str
    lead_step: str
    currency: str
    channel: str
    claims: Sequence[Claim]  # ``Claims``, or a tuple
    mentions: tuple[Mention, ...] = ()
    others: tuple[int, ...] = ()  # ids of other overdue invoices, listed as a statement
    installment: bool = False

    @property
    def claimed_invoice_ids(self) -> tuple[int, ...]:
        return tuple(c.invoice_id for c in self.claims)


@dataclass(frozen=True)
class Task:
    """One task for a person: a call or another manual action, for one debtor, covering
    every invoice whose manual step of that kind is due."""

    kind: str  # "call" or "task"
    lead_step: str
    claims: tuple[Claim, ...]

    @property
    def claimed_invoice_ids(self) -> tuple[int, ...]:
        return tuple(c.invoice_id for c in self.claims)


@dataclass(frozen=True, slots=True)
class Skip:
    step_id: int
    invoice_id: int
    step: str
    reason: str


@dataclass(frozen=True)
class Postpone:
    step_ids: tuple[int, ...]
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Done:
    """A due step that needs no new message: already recorded, or overdue and listed."""

    step_id: int
    reason: str
    lead_step_id: int | None = None  # passed over for this step of the same invoice


class PassedOver(Sequence[Done]):
    """Steps passed over, kept compact: a catch-up of 20 000 invoices passes over 80 000
    milder steps, held as arrays of ids and the index of their shared reason rather than as
    80 000 ``Done`` values. Reads as the sequence of their ``Done``, in the order added."""

    __slots__ = ("_index", "_leads", "_reason_of", "_reasons", "_steps")

    def __init__(self, passed: Iterable[Done] = ()) -> None:
        self._steps = array("q")
        self._leads = array("q")  # -1: no lead step
        self._reason_of = array("I")
        self._reasons: list[str] = []
        self._index: dict[str, int] = {}
        self.extend(passed)

    def extend(self, passed: Iterable[Done]) -> None:
        for done in passed:
            self._steps.append(done.step_id)
            self._leads.append(-1 if done.lead_step_id is None else done.lead_step_id)
            reason = self._index.get(done.reason)
            if reason is None:
                reason = self._index[done.reason] = len(self._reasons)
                self._reasons.append(done.reason)
            self._reason_of.append(reason)

    def __len__(self) -> int:
        return len(self._steps)

    @overload
    def __getitem__(self, index: int) -> Done: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Done]: ...

    def __getitem__(self, index: int | slice) -> Done | Sequence[Done]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        lead = self._leads[index]
        return Done(self._steps[index], self._reasons[self._reason_of[index]], None if lead < 0 else lead)

    def __iter__(self) -> Iterator[Done]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"PassedOver({list(self)!r})"


@dataclass(frozen=True)
class Decision:
    """What ``decide`` says. ``passed_over`` holds the steps passed over before the
    decision (``handlers.parts``), as given: they are done too, before ``done``
    (``all_done``), and are not copied into it."""

    today: date
    messages: tuple[Message, ...] = ()
    skipped: tuple[Skip, ...] = ()
    postponed: tuple[Postpone, ...] = ()
    done: tuple[Done, ...] = ()
    escalate: tuple[int, ...] = ()  # invoice ids whose formal notice deadline starts today
    tasks: tuple[Task, ...] = ()
    passed_over: Sequence[Done] = ()

    def all_done(self) -> Iterator[Done]:
        """Every step done: those passed over before the decision, then ``done``."""
        return chain(self.passed_over, self.done)

    def flattened(self) -> Decision:
        """The same decision with the steps passed over before it listed in ``done``: the
        decision taken on every due step at once."""
        if not self.passed_over:
            return replace(self, passed_over=()) if self.passed_over != () else self
        return replace(self, done=tuple(self.all_done()), passed_over=())

    @property
    def claimed_step_ids(self) -> frozenset[int]:
        return frozenset(c.step_id for m in self.messages for c in m.claims)

    @property
    def task_step_ids(self) -> frozenset[int]:
        return frozenset(c.step_id for t in self.tasks for c in t.claims)

    @property
    def mentioned_step_ids(self) -> frozenset[int]:
        return frozenset(x.step_id for m in self.messages for x in m.mentions)

    @property
    def postponed_step_ids(self) -> frozenset[int]:
        return frozenset(i for p in self.postponed for i in p.step_ids)


@dataclass
class _Group:
    kind: str
    currency: str
    steps: list[DueStep]
    channels: tuple[str, ...]
    mentions: list[DueStep] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.currency}"

    @property
    def lead(self) -> DueStep:
        return max(self.steps, key=lambda s: s.severity)  # the first of equals


def decide(snapshot: Snapshot, now: datetime, passed_over: Sequence[Done] = ()) -> Decision:
    """What to send, skip, postpone or mark done for this debtor at ``now``.

    ``passed_over``: the milder steps already passed over part by part (``handlers.parts``),
    left out of ``snapshot.due``; the decision is the one taken with them in it, with
    ``passed_over`` given back as it is in ``Decision.passed_over`` rather than copied into
    ``done`` (``Decision.flattened`` lists them there)."""
    debtor = snapshot.debtor
    today = local_date(now, debtor.timezone)
    if not snapshot.due:
        return Decision(today)
    opening = next_sending_time(now, debtor.timezone, debtor.country, snapshot.window)
    if opening > now:
        return Decision(today, postponed=(Postpone(_ids(snapshot.due), opening, OUTSIDE_WINDOW),))
    skipped: list[Skip] = []
    escalate: list[int] = []
    sendable: list[DueStep] = []
    passed: list[Done] = []  # manual steps not for this debtor: passed before any hold
    for step in snapshot.due:
        invoice = snapshot.invoice(step.invoice_id)
        not_for = _not_for(step, debtor) if step.manual else None
        if not_for is not None:
            passed.append(Done(step.step_id, not_for))
            continue
        reason = send_hold(step, invoice, debtor, today)
        if reason is None:
            sendable.append(step)
            continue
        skipped.append(Skip(step.step_id, step.invoice_id, step.name, reason))
        if step.formal_notice and debtor.opt_out and invoice.status == "open":
            escalate.append(invoice.id)  # no automatic contact, but the case still reaches a person
    later = _next_day_opening(today, snapshot)
    tasks = _tasks_of([s for s in sendable if s.manual], snapshot)
    sendable = [s for s in sendable if not s.manual]
    messages: list[Message] = []
    postponed: list[Postpone] = []
    sendable, done = _most_severe_per_invoice(sendable)
    done = [*done, *passed]  # after ``passed_over``, kept apart: not copied step by step
    if pressure.too_soon(snapshot, today):  # never when passed over early (``handlers.parts``)
        done, passed_over = [*passed_over, *done], ()
        sendable, done, held = _held_back(snapshot, sendable, done)
        postponed.extend(held)
    by_currency: dict[str, list[DueStep]] = {}  # each invoice read once, the order kept
    for step in sendable:
        by_currency.setdefault(_currency(step, snapshot), []).append(step)
    for currency, of_currency in sorted(by_currency.items()):
        groups, waiting, listed = _groups_of_currency(snapshot, of_currency, currency, today, later)
        for group in groups:
            built = _messages_of(group, snapshot, today)
            if not built and group.mentions:  # nothing new to carry them: they wait too
                waiting.append(Postpone(_ids(group.mentions), later, ONE_A_DAY))
            messages.extend(built)
            done.extend(_already_recorded(group, built))
            if group.kind == FORMAL:  # sent now or earlier: its deadline is planned once
                escalate.extend(s.invoice_id for s in group.steps)
        postponed.extend(waiting)
        done.extend(listed)
    if messages and snapshot.min_days_between_messages > 0:
        postponed = _one_contact_a_day(snapshot, postponed, today)
    return Decision(
        today,
        messages=tuple(messages),
        skipped=tuple(skipped),
        postponed=tuple(postponed),
        done=tuple(done),
        escalate=tuple(dict.fromkeys(escalate)),
        tasks=tasks,
        passed_over=passed_over if passed_over else (),
    )


def _held_back(
    snapshot: Snapshot, sendable: list[DueStep], done: list[Done]
) -> tuple[list[DueStep], list[Done], list[Postpone]]:
    """Courtesy steps too close to the last contact wait for the first day allowed, with the
    steps passed over for them (they come back together and are merged again)."""
    assert snapshot.last_contact is not None
    recorded = pressure.recorded_pairs(snapshot)
    passed = ((d.step_id, d.lead_step_id) for d in done)
    kept, held, waiting = pressure.split_held(sendable, passed, recorded)
    if not held:
        return sendable, done, []
    until = pressure.allowed_from(snapshot, snapshot.last_contact)
    wait = Postpone((*held, *sorted(waiting)), until, pressure.reason(snapshot, snapshot.last_contact))
    return kept, [d for d in done if d.step_id not in waiting], [wait]


def _one_contact_a_day(snapshot: Snapshot, postponed: list[Postpone], today: date) -> list[Postpone]:
    """Messages go today: the courtesy steps waiting for a channel used today wait for the
    first day allowed after today's contact rather than for tomorrow."""
    recorded = pressure.recorded_pairs(snapshot)
    courtesy = {s.step_id for s in snapshot.due if pressure.is_courtesy(s, recorded)}
    until = pressure.allowed_from(snapshot, today)
    moved: list[Postpone] = []
    for wait in postponed:
        held = tuple(i for i in wait.step_ids if i in courtesy) if wait.reason == ONE_A_DAY else ()
        rest = tuple(i for i in wait.step_ids if i not in held)
        if rest:
            moved.append(replace(wait, step_ids=rest) if held else wait)
        if held:
            moved.append(Postpone(held, max(until, wait.until), pressure.reason(snapshot, today)))
    return moved


def _tasks_of(steps: Sequence[DueStep], snapshot: Snapshot) -> tuple[Task, ...]:
    """One task per kind (call, task) for the manual steps due: the debtor is called once
    about every invoice whose call is due, its most severe step leading."""
    tasks = []
    for kind in MANUAL_KINDS:
        members = [s for s in steps if _manual_kind(s) == kind]
        if members:
            lead = max(members, key=lambda s: s.severity)
            claims = tuple(Claim(s.step_id, s.invoice_id, s.name) for s in _by_due_date(members, snapshot))
            tasks.append(Task(kind, lead.name, claims))
    return tuple(tasks)


def _not_for(step: DueStep, debtor: DebtorSnapshot) -> str | None:
    """Why a manual step is not for this debtor (None: it is): another kind of debtor, or a
    call with no phone number known. Such a step is passed: done with this reason, and no
    skip, task or evidence is recorded, since nothing was done or held back."""
    if step.debtor_kinds and debtor.kind not in step.debtor_kinds:
        return f"{step.name} is for {' and '.join(step.debtor_kinds)} debtors only"
    if _manual_kind(step) == "call" and not debtor.has_phone:
        return NO_PHONE
    return None


def _manual_kind(step: DueStep) -> str:
    return "call" if "call" in step.channels else "task"


def send_hold(step: DueStep, invoice: InvoiceView, debtor: DebtorSnapshot, today: date) -> str | None:
    """Why this step may not go out today, or None when it may."""
    if step.installment:  # judged on the plan, not the invoice
        reason = step.installment_blocker
    else:
        reason = holds.chase_hold(invoice, debtor, today, step.minimum_balance)
        if reason is None and step.event == OVERDUE:
            reason = holds.overdue_step_hold(invoice.due_date, today)
    if reason is None and not channels_for(step.channels, debtor):
        reason = NO_CONTACT
    return reason


def channels_for(channels: Iterable[str], debtor: DebtorSnapshot) -> tuple[str, ...]:
    """The channels asked for, e-mail replaced by a letter when there is no usable address.

    A letter is dropped when a registered letter goes out anyway, and every postal channel
    when no postal address is known. A person's channel (call, task) is kept as it is: the
    task says what is known of the debtor.
    """
    found: list[str] = []
    for channel in channels:
        if channel in MANUAL_KINDS:
            found.extend([] if channel in found else [channel])
            continue
        if channel == "email" and not debtor.has_email:
            channel = "letter"
        if channel != "email" and not debtor.has_address:
            continue
        if channel not in found:
            found.append(channel)
    if "registered_letter" in found and "letter" in found:
        found.remove("letter")
    return tuple(found)


def _most_severe_per_invoice(steps: Sequence[DueStep]) -> tuple[list[DueStep], list[Done]]:
    """One ladder step per invoice: a milder step due with a more severe one is passed over.

    Two steps of one invoice are due together only when the invoice caught up late (a pause,
    an outage); the debtor gets the more severe one, never both on the same day or one after
    the other: the invoice is listed once, with one indemnity, and the milder steps are done
    with the lead's message (their ``Done`` names the lead step).
    """
    strongest: dict[int, DueStep] = {}
    for step in steps:
        if step.installment:
            continue
        current = strongest.get(step.invoice_id)
        if current is None or step.severity > current.severity:
            strongest[step.invoice_id] = step
    kept: list[DueStep] = []
    passed: list[Done] = []
    reasons: dict[str, str] = {}  # one string per lead step name, not one per step passed over
    for step in steps:
        lead = strongest.get(step.invoice_id)
        if step.installment or lead is None or lead.step_id == step.step_id:
            kept.append(step)
        else:
            reason = reasons.setdefault(lead.name, f"passed over for {lead.name}, due the same day")
            passed.append(Done(step.step_id, reason, lead.step_id))
    return kept, passed


def kind_of(step: DueStep) -> str:
    if step.installment:
        return INSTALLMENTS
    if step.formal_notice:
        return FORMAL
    return OVERDUE_STEPS if step.event == OVERDUE else COMING_DUE


def _groups_of_currency(
    snapshot: Snapshot, steps: Sequence[DueStep], currency: str, today: date, later: datetime
) -> tuple[list[_Group], list[Postpone], list[Done]]:
    used = {channel for channel, cur in snapshot.used_today if cur == currency}
    formed: list[_Group] = []
    waiting: list[Postpone] = []
    listed: list[Done] = []
    for kind in _KINDS:
        members = [s for s in steps if kind_of(s) == kind]
        if not members:
            continue
        channels = channels_for((c for s in members for c in s.channels), snapshot.debtor)
        group = _Group(kind, currency, members, channels)
        clash = set(channels) & used
        if not clash:
            used |= set(channels)
            formed.append(group)
            continue
        host = _host_for(group, formed, clash)
        if host is None:
            waiting.append(Postpone(_ids(members), later, ONE_A_DAY))
            continue
        for step in members:
            invoice = snapshot.invoice(step.invoice_id)
            if holds.overdue_on(invoice.due_date, today):  # a late due reminder: listed as overdue
                listed.append(Done(step.step_id, f"overdue by now, listed among the others in {host.key}"))
            else:
                host.mentions.append(step)
    return formed, waiting, listed


def _host_for(group: _Group, formed: Sequence[_Group], clash: set[str]) -> _Group | None:
    """The earlier overdue group a pre-due/due group may be mentioned in, if any."""
    if group.kind != COMING_DUE:
        return None
    for candidate in formed:
        if candidate.kind in (FORMAL, OVERDUE_STEPS) and clash & set(candidate.channels):
            return candidate
    return None


def _messages_of(group: _Group, snapshot: Snapshot, today: date) -> list[Message]:
    lead = group.lead
    mentions = tuple(Mention(s.step_id, s.invoice_id, s.name) for s in _by_due_date(group.mentions, snapshot))
    built = []
    # one claim per step, shared by the messages of every channel that claims it
    every = [Claim(s.step_id, s.invoice_id, s.name) for s in _by_due_date(group.steps, snapshot)]
    overdue: tuple[int, ...] | None = None  # the other overdue invoices: read once per group
    for channel in group.channels:
        claims = Claims(c for c in every if (c.invoice_id, c.step, channel) not in snapshot.recorded)
        if not claims:
            continue
        excluded = {c.invoice_id for c in claims} | {m.invoice_id for m in mentions}
        if overdue is None:
            overdue = _overdue(snapshot, group.currency, today)
        built.append(
            Message(
                group=group.key,
                lead_step=lead.name,
                currency=group.currency,
                channel=channel,
                claims=claims,
                mentions=mentions,
                others=tuple(i for i in overdue if i not in excluded),
                installment=group.kind == INSTALLMENTS,
            )
        )
    return built


def _overdue(snapshot: Snapshot, currency: str, today: date) -> tuple[int, ...]:
    """The overdue invoices of the currency that may be listed as a statement (never
    demanded), in order; a message lists those it does not claim or mention.

    Each invoice found keeps its due date, number and id only, not the invoice: a debtor
    of 20 000 overdue invoices (made one at a time from ``handlers.compact``'s columns)
    held them all at once to sort them."""
    found = [
        (i.due_date, i.number, i.id)
        for i in snapshot.invoices
        if i.currency == currency
        and holds.overdue_on(i.due_date, today)
        and i.balance > 0
        and holds.listed_as_other(i, snapshot.debtor)
    ]
    found.sort(key=_date_and_number)  # stable: equal dates and numbers keep their order
    return tuple(invoice_id for _due, _number, invoice_id in found)


def _date_and_number(found: tuple[date, str, int]) -> tuple[date, str]:
    return found[0], found[1]


def _already_recorded(group: _Group, built: Sequence[Message]) -> list[Done]:
    claimed = {c.step_id for m in built for c in m.claims}
    return [
        Done(s.step_id, "already recorded on every channel") for s in group.steps if s.step_id not in claimed
    ]


def _by_due_date(steps: Iterable[DueStep], snapshot: Snapshot) -> list[DueStep]:
    def key(step: DueStep) -> tuple[date, str, int]:
        invoice = snapshot.invoice(step.invoice_id)
        return invoice.due_date, invoice.number, step.severity

    return sorted(steps, key=key)


def _next_day_opening(today: date, snapshot: Snapshot) -> datetime:
    debtor = snapshot.debtor
    midnight = datetime.combine(today + timedelta(days=1), time(0, 0), tzinfo=zone(debtor.timezone))
    return next_sending_time(midnight, debtor.timezone, debtor.country, snapshot.window)


def _currency(step: DueStep, snapshot: Snapshot) -> str:
    """The currency of the step's invoice: as the step carries it, else its invoice's."""
    return step.currency if step.currency is not None else snapshot.invoice(step.invoice_id).currency


def _ids(steps: Iterable[DueStep]) -> tuple[int, ...]:
    return tuple(s.step_id for s in steps)
