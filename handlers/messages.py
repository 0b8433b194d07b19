"""Task messages between the scheduler and the workers: small frozen values, stable ids.

The scheduler emits one of the three scheduler events per claimed step. Its id is derived
from the step, its due instant and the emission count: the broker's own redeliveries and
retries keep the id (the workers' inbox discards them), while a deliberate re-emission after
a lease ran out is a new message, judged by the step's state.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from handlers.ports import Outgoing

_NAMESPACE = uuid.UUID("5b0f4a8e-2a3c-4f6e-9a51-6d1e0c7b9a10")

ACTOR_OF_EVENT = {
    "invoice.due": "invoice_due",
    "invoice.overdue": "invoice_overdue",
    "deadline.expired": "deadline_expired",
}


def stable_id(*parts: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, "|".join(str(p) for p in parts)))


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
    creditor_id: str | None = None
    debtor_id: str | None = None

    @property
    def actor(self) -> str:
        return ACTOR_OF_EVENT[self.event]

    @property
    def message_id(self) -> str:
        return stable_id("step", self.step_id, self.due_at.isoformat(), self.emission)

    def payload(self) -> dict:
        return {"step_id": self.step_id, "due_at": self.due_at.isoformat()}


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
