"""The leased outbox: rows that must leave once, taken attempt by attempt under a lease.

Messages to transmit, hand-overs to partners and signals to subscribers follow one
mechanism. A row is ``pending``
with a count of ``attempts`` and a ``lease_until``; attempt *n* is taken by compare-and-set
on the count, which also leases the row; success marks it done; a transient failure keeps
it pending with the error and a back-off (stored in ``lease_until``); a permanent failure
marks it ``failed``. The scheduler tick claims again the pending rows whose lease or
back-off ran out and emits their next attempt.

This module is the pure part: the decisions (back-off schedule, transient or permanent,
what a refused claim means) and the port (``Outbox``) that the store implements, once
for every kind of row. An ``Outbox`` works inside its caller's transaction, so a status
change and the evidence it goes with commit together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Literal, Protocol

from handlers.ports import PermanentFailure, TransientFailure

Kind = Literal["messages", "handovers", "signals"]
KINDS: tuple[Kind, ...] = ("messages", "handovers", "signals")
DONE_STATUS: Mapping[Kind, str] = {"messages": "sent", "handovers": "delivered", "signals": "delivered"}

ERROR_LIMIT = 500  # the width of ``last_error``
BACKOFF_FIRST_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600


# --- decisions ------------------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: 30 s doubling up to one hour."""
    doublings = min(max(attempts - 1, 0), 16)  # 30 s * 2**7 already passes the cap
    return timedelta(seconds=min(BACKOFF_FIRST_SECONDS * 2**doublings, BACKOFF_MAX_SECONDS))


def retry_at(now: datetime, attempts: int) -> datetime:
    """When a row that failed on its attempt number ``attempts`` may be tried again."""
    return now + backoff(attempts)


def is_permanent(error: TransientFailure | PermanentFailure) -> bool:
    """A refusal for good (5xx, bad address, 4xx webhook answer) ends the row; any other waits."""
    return isinstance(error, PermanentFailure)


def gives_up(attempts: int, limit: int | None, *, permanent: bool) -> bool:
    """Whether a failure ends the row: a permanent one, or the last transient one allowed."""
    return permanent or (limit is not None and attempts >= limit)


def clip(error: str) -> str:
    return error[:ERROR_LIMIT]


class Refusal(Enum):
    """Why attempt *n* of a row was not taken. None of these is an error: nothing is done."""

    MISSING = "missing"  # no such row
    SETTLED = "settled"  # sent, delivered, failed or cancelled already
    STALE = "stale"  # the count moved on: a duplicate task, or one a later attempt overtook

    @property
    def outcome(self) -> str:
        """What the task reports: a refused claim is always a skipped task."""
        return "skipped"


def refusal(status: str | None, attempts: int | None, attempt: int) -> Refusal | None:
    """Whether attempt ``attempt`` may be taken on a row in ``status`` with ``attempts`` done."""
    if status is None or attempts is None:
        return Refusal.MISSING
    if status != "pending":
        return Refusal.SETTLED
    if attempts != attempt:
        return Refusal.STALE
    return None


# --- what the port exchanges ----------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One outbox row as the core sees it; ``details`` are the kind's own columns.

    ``details`` holds what the caller needs to act or to write evidence (a message's
    Message-ID, channel, recipient and, on a claim, its bytes; a hand-over's case, partner
    and key), never the whole row.
    """

    id: int
    status: str
    attempts: int
    lease_until: datetime | None
    last_error: str | None = None
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Due:
    """A pending row whose lease or back-off ran out: emit attempt ``attempt`` again."""

    id: int
    attempt: int


class Outbox(Protocol):
    """The rows of one kind, inside the caller's transaction.

    Every write names the attempt it concerns only through the count already stored:
    ``count_attempt=True`` adds the attempt being finished to ``attempts`` (the first attempt
    of a message is made without a claim, by the process that recorded it). ``changes`` are
    values for the kind's own columns (a tracking id, an HTTP status, a dossier digest);
    an implementation refuses a column that is not one of them.
    """

    kind: Kind

    def claim_expired(self, now: datetime, lease: timedelta, limit: int) -> list[Due]:
        """Up to ``limit`` pending rows whose lease ran out, oldest lease first, leased again.

        Rows another claimer holds are skipped; no row comes twice in one answer.
        """

    def get(self, item_id: int) -> Item | None:
        """The row, locked for the rest of the transaction."""

    def claim(
        self, item_id: int, attempt: int, now: datetime, lease: timedelta, **changes: object
    ) -> Item | Refusal:
        """Take attempt ``attempt``: if the row is pending with ``attempts == attempt``, count
        it and lease the row until ``now + lease``; otherwise say why not and change nothing."""

    def mark_done(
        self, item_id: int, now: datetime, *, count_attempt: bool = False, **changes: object
    ) -> Item | None:
        """Mark it sent or delivered at ``now``, lease cleared; None if unknown or done already."""

    def record_retry(
        self, item_id: int, now: datetime, error: str, *, count_attempt: bool = False, **changes: object
    ) -> Item | None:
        """Keep a pending row pending with ``error`` and a back-off (``retry_at``) as its lease.

        None if the row is unknown or no longer pending.
        """

    def record_failure(
        self, item_id: int, now: datetime, error: str, *, count_attempt: bool = False, **changes: object
    ) -> Item | None:
        """Mark a pending row ``failed`` with ``error``, lease cleared; None if not pending."""
