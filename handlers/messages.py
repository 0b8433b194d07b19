"""Task messages between the scheduler and the workers: small frozen values, stable ids.

The scheduler emits one of the three scheduler events per claimed step, or, when the
worker batch is above 1, several claimed steps of one creditor in one ``StepsDue`` message
(``batch_steps``). A step's id is derived from the step, its due instant and the emission
count, a batch's from its steps' ids: the broker's own redeliveries and retries keep the id
(the workers' inbox discards them), while a deliberate re-emission after a lease ran out is
a new message, judged by the step's state.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from handlers.ports import Outgoing

_NAMESPACE = uuid.UUID("5b0f4a8e-2a3c-4f6e-9a51-6d1e0c7b9a10")

ACTOR_OF_EVENT = {
    "invoice.due": "invoice_due",
    "invoice.overdue": "invoice_overdue",
    "deadline.expired": "deadline_expired",
}


def stable_id(*parts: object) -> str:
    """``str(uuid.uuid5(namespace, "|".join(str(p) for p in parts)))``."""
    return _uuid5("|".join([str(part) for part in parts]))


_NAMESPACE_BYTES = _NAMESPACE.bytes
# the variant digit of a UUID (10xx) from the digest's digit there
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(_NAMESPACE, name))`` without the ``UUID`` object: the same SHA-1, the
    same version and variant bits, the same text (a step's id is computed per claimed step)."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).hexdigest()
    return (
        f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{_VARIANT[digest[16]]}{digest[17:20]}-{digest[20:32]}"
    )


def _step_id(step_id: int, due_at: str, emission: int) -> str:
    """A step's message id, its due instant already in ISO form: ``stable_id("step", …)``."""
    return _uuid5(f"step|{step_id}|{due_at}|{emission}")


def keyed_id(key: bytes, *parts: object) -> str:
    """``stable_id`` of ``parts`` under a secret ``key``, in the same UUID form: the same
    parts give the same id under one key, but nobody without the key can compute it."""
    digest = hmac.new(key, stable_id(*parts).encode("ascii"), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16]))


@dataclass(frozen=True, slots=True)
class StepDue:
    """A planned step reached its instant: ``event`` is the scheduler event name.

    ``creditor_id`` and ``debtor_id`` are whose step it is, as the claim read it; they are
    not part of the message id nor of the payload (the worker reads the step's row)."""

    event: str
    step_id: int
    due_at: datetime
    emission: int = 1
    # whose step it is, as the claim read it (None when not known): what a batch is made of
    creditor_id: str | None = field(default=None, compare=False)
    debtor_id: str | None = field(default=None, compare=False)

    @property
    def actor(self) -> str:
        return ACTOR_OF_EVENT[self.event]

    @property
    def message_id(self) -> str:
        return _step_id(self.step_id, self.due_at.isoformat(), self.emission)

    def payload(self) -> dict:
        return {"step_id": self.step_id, "due_at": self.due_at.isoformat()}

    def as_item(self) -> list:
        """The step inside a ``StepsDue`` payload: ``[event, step_id, due_at, emission]``."""
        return [self.event, self.step_id, self.due_at.isoformat(), self.emission]

    @classmethod
    def from_item(cls, item: Sequence[Any], creditor_id: str) -> StepDue:
        """The step of an item of a ``StepsDue`` payload (``as_item``)."""
        event, step_id, due_at, emission = item
        return cls(
            event, int(step_id), datetime.fromisoformat(due_at), int(emission), creditor_id=creditor_id
        )


@dataclass(frozen=True)
class StepsDue:
    """Several claimed steps of one creditor, handled by one worker in one transaction.

    A debtor's steps of one claim travel together. The id is derived from the steps' own
    ids (step, due instant, emission), in order: a redelivery keeps it, a re-emission after
    a lease ran out makes new ones. Each step keeps its own ``StepDue`` id too: the worker's
    fallback (one transaction per step) is deduplicated by it.
    """

    creditor_id: str
    steps: tuple[StepDue, ...]

    actor = "steps_due"

    @property
    def message_id(self) -> str:
        return self._encoded[0]

    def payload(self) -> dict:
        return {"creditor_id": self.creditor_id, "steps": [list(item) for item in self._encoded[1]]}

    @cached_property
    def _encoded(self) -> tuple[str, tuple[tuple[Any, ...], ...]]:
        """The message id and the payload's items, each step's due instant formatted once:
        ``stable_id("steps", *(step.message_id …))`` and ``step.as_item()`` of each step."""
        seen: dict[datetime, str] = {}
        items = tuple((s.event, s.step_id, _iso(s.due_at, seen), s.emission) for s in self.steps)
        ids = [_step_id(step_id, due_at, emission) for _event, step_id, due_at, emission in items]
        return _uuid5("|".join(["steps", *ids])), items


def _iso(when: datetime, seen: dict[datetime, str]) -> str:
    """``when.isoformat()``, remembered in ``seen`` when in UTC (the claim's steps are, and a
    batch's steps often share their due instant): two equal UTC instants read the same."""
    if when.tzinfo is not UTC:
        return when.isoformat()
    text = seen.get(when)
    if text is None:
        text = seen[when] = when.isoformat()
    return text


def batch_steps(steps: Sequence[StepDue], size: int) -> list[StepDue | StepsDue]:
    """The claimed ``steps`` as broker messages of up to ``size`` steps each.

    One creditor per message; a debtor's steps kept in one message when they fit in one
    (a debtor with more than ``size`` steps fills messages of its own). Debtors and
    creditors come in the order of their first step in ``steps`` (the claim's order). A
    message of one step is that step's own ``StepDue``, so ``size`` 1 is one message per
    step. A step whose creditor or debtor is not known goes alone.
    """
    if size <= 1:
        return list(steps)
    debtors: dict[tuple[str, str], list[StepDue]] = {}
    alone: list[StepDue] = []
    for step in steps:
        if step.creditor_id is None or step.debtor_id is None:
            alone.append(step)
        else:
            debtors.setdefault((step.creditor_id, step.debtor_id), []).append(step)
    open_batches: dict[str, list[StepDue]] = {}
    done: list[list[StepDue]] = []
    for (creditor, _debtor), own in debtors.items():
        for start in range(0, len(own), size):
            chunk = own[start : start + size]
            current = open_batches.setdefault(creditor, [])
            if current and len(current) + len(chunk) > size:
                done.append(current)
                current = open_batches[creditor] = []
            current.extend(chunk)
    done.extend(batch for batch in open_batches.values() if batch)
    return [*(_message(batch) for batch in done), *alone]


def _message(steps: list[StepDue]) -> StepDue | StepsDue:
    if len(steps) == 1:
        return steps[0]
    creditor = steps[0].creditor_id
    assert creditor is not None  # batch_steps groups known creditors only
    return StepsDue(creditor, tuple(steps))


@dataclass(frozen=True)
class DeliverMessage:
    """A recorded message must be transmitted on its channel."""

    message_pk: int
    attempt: int
    # the recorded bytes, in the process that recorded them (never sent through the broker)
    recorded: Outgoing | None = field(default=None, compare=False, repr=False)

    actor = "deliver_message"

    @property
    def message_id(self) -> str:
        return stable_id("deliver", self.message_pk, self.attempt)

    def payload(self) -> dict:
        return {"message_pk": self.message_pk, "attempt": self.attempt}


@dataclass(frozen=True)
class HandoverCase:
    """A case must be handed to its partner: attempt ``attempt`` of the hand-over row."""

    handover_pk: int
    attempt: int

    actor = "handover_case"

    @property
    def message_id(self) -> str:
        return stable_id("handover", self.handover_pk, self.attempt)

    def payload(self) -> dict:
        return {"handover_pk": self.handover_pk, "attempt": self.attempt}


@dataclass(frozen=True)
class DeliverSignal:
    """A recorded signal must be posted to its subscriber: attempt ``attempt`` of the row."""

    signal_pk: int
    attempt: int

    actor = "deliver_signal"

    @property
    def message_id(self) -> str:
        return stable_id("signal", self.signal_pk, self.attempt)

    def payload(self) -> dict:
        return {"signal_pk": self.signal_pk, "attempt": self.attempt}


@dataclass(frozen=True)
class AccountingEventReceived:
    """A raw accounting event sent by a producer to the ``accounting_event`` actor."""

    raw: str
    source: str | None = None

    actor = "accounting_event"

    @property
    def message_id(self) -> str:
        return stable_id("event", self.raw)

    def payload(self) -> dict:
        return {"raw": self.raw, "source": self.source}
