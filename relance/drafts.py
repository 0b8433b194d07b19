"""``relance drafts``, ``relance approve`` and ``relance reject``: the messages held for a
person's approval (``handlers.approval``), listed and acted on from the command line.

Each draft is acted on in its own transaction, in its creditor's scope; an approved one is
published to the broker after that transaction commits when RELANCE_REDIS_URL is set. Without
a broker (or if the publish is lost) its lease is already over or runs out, and the
scheduler's tick emits its delivery: the database says what is to be sent, not the broker.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import cast

from config.bootstrap import App
from handlers.approval import ApprovalStore, DraftFacts, NotAwaiting, Outcome, awaiting, reject
from handlers.context import Context
from handlers.policy import FORMAL_NOTICE
from handlers.ports import units_of_row
from handlers.service import approve_draft


def _store(ctx: Context, uow: object) -> ApprovalStore:
    """The dunning store of ``uow``: the SQL one is an approval store too."""
    return cast(ApprovalStore, ctx.dunning_store(uow))


def operator(by: str | None) -> str:
    """Who acts: ``--by``, else the login name, else ``$USER``, else ``unknown``."""
    if by and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return os.environ.get("USER") or "unknown"


def list_drafts(app: App, creditor: str | None, step: str | None = None) -> list[DraftFacts]:
    """The drafts awaiting approval, oldest first: of ``creditor``, or of every creditor."""
    with app.units() as uow:
        uow.scope(creditor)
        return _store(app.ctx, uow).drafts(step)


def draft_lines(app: App, creditor: str | None) -> list[str]:
    """``relance drafts``: a header, one tab-separated line per draft, and the count. The
    amounts are those the message states: the principal, and the total it demands
    (principal, penalties and indemnities), in its currency."""
    now = app.clock.now()
    drafts = list_drafts(app, creditor)
    lines = ["id\tcreditor\tdebtor\tstep\tchannel\tinvoices\tprincipal\tclaimed\tage_days"]
    for d in drafts:
        currency = d.amounts.get("currency", "")
        principal = f"{d.amounts.get('balance', '?')} {currency}".strip()
        claimed = f"{d.amounts.get('claimed', d.amounts.get('balance', '?'))} {currency}".strip()
        numbers = ",".join(d.invoice_numbers)
        fields = [
            d.id,
            d.creditor_id,
            d.debtor_id,
            d.step,
            d.channel,
            numbers,
            principal,
            claimed,
            d.age_days(now),
        ]
        lines.append("\t".join(str(f) for f in fields))
    lines.append(f"{len(drafts)} draft(s) awaiting approval")
    return lines


def chosen(app: App, ids: Sequence[int], every: bool, step: str | None, creditor: str | None) -> list[int]:
    """The drafts to act on: ``ids``, each checked before any is acted on, or with ``every``
    all those awaiting (of ``step``, of ``creditor``). NotAwaiting names the first one wrong."""
    if every:
        return [d.id for d in list_drafts(app, creditor, step)]
    for draft_id in ids:
        units, owner = units_of_row(app.units, "messages", draft_id)
        if owner is None or (creditor is not None and owner != creditor):
            raise NotAwaiting(f"no draft {draft_id}")
        with units() as uow:
            found = awaiting(_store(app.ctx, uow), draft_id)
        if step is not None and found.step != step:
            raise NotAwaiting(f"draft {draft_id} is a {found.step}, not a {step}")
    return list(ids)


def approve_drafts(app: App, ids: Iterable[int], by: str) -> list[Outcome]:
    """Approve each draft, one transaction each; publish the approved ones after commit."""
    outcomes = []
    for draft_id in ids:
        units, owner = units_of_row(app.units, "messages", draft_id)
        ctx = app.ctx.for_creditor(owner) if owner else app.ctx
        with units() as uow:
            publishing = app.publisher is not None
            outcome = approve_draft(uow, draft_id, by, app.clock.now(), ctx, publishing=publishing)
        if outcome.task is not None and app.publisher is not None:
            outcome = _published(app, outcome)
        outcomes.append(outcome)
    return outcomes


def _published(app: App, outcome: Outcome) -> Outcome:
    """Publish an approved draft's delivery; a broker gone since the start leaves it to the
    scheduler (the approval is committed: its lease runs out and the tick emits it)."""
    from relance.errors import describe_service_error

    assert app.publisher is not None and outcome.task is not None
    try:
        app.publisher.publish([outcome.task])
    except Exception as exc:
        problem = describe_service_error(exc)
        if problem is None:
            raise
        return replace(outcome, reason=f"not published ({problem}): the scheduler will emit it")
    return outcome


def reject_drafts(app: App, ids: Iterable[int], by: str, reason: str) -> list[Outcome]:
    """Reject each draft with ``reason``, one transaction each."""
    outcomes = []
    for draft_id in ids:
        units, _ = units_of_row(app.units, "messages", draft_id)
        with units() as uow:
            outcomes.append(reject(_store(app.ctx, uow), draft_id, by, reason, app.clock.now()))
    return outcomes


def outcome_line(outcome: Outcome, now: datetime | None = None) -> str:
    """One line per draft acted on: what became of it, and why when it did not leave. A
    formal notice approved a day or more after it was drafted says that the last day it
    states was counted from its drafting day (docs/policy.md, "Approval before sending")."""
    d = outcome.draft
    what = f"draft {d.id} ({d.step} by {d.channel} to {d.debtor_id}: {', '.join(d.invoice_numbers)})"
    if outcome.status == "approved":
        line = f"approved {what}: " + (outcome.reason or "queued for sending")
        late = d.age_days(now) if now is not None and d.step == FORMAL_NOTICE else 0
        if late:
            line += f" (drafted {late} day(s) ago: the last day to pay it states counts from then)"
        return line
    if outcome.status == "withdrawn":
        return f"not sent {what}: {outcome.reason}"
    return f"rejected {what}: {outcome.reason}"
