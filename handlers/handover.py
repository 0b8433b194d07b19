"""Hand an escalated case to the partner configured for its recommended procedure.

When a case is opened or escalated and the partners file maps its procedure to a partner,
a ``pending`` hand-over row is inserted in the same transaction and a ``handover_case``
task is published after commit. The task takes attempt *n* by compare-and-set on
``attempts`` (as message deliveries do), builds the case dossier, and sends it: an e-mail
with the dossier ZIP attached, or a signed webhook POST. On success the hand-over is
``delivered``, the case ``handed_over`` and ``case.handed_over`` goes into the evidence. A
transient failure stores the error and a back-off in the database; the scheduler tick
re-emits the hand-over once it has passed. A permanent failure, or ``max_attempts``
transient ones, marks it ``failed`` and leaves the case open for a person.

The hand-over row's life is the leased outbox's (``handlers.outbox``), the same as a
message's: this module decides what each outcome means for the case, and the outbox port
of the store keeps the row's state.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from handlers import evidence
from handlers.calendar import local_date
from handlers.context import Context
from handlers.messages import HandoverCase, stable_id
from handlers.outbox import Item, Outbox, Refusal, gives_up, is_permanent, refusal
from handlers.partners import Partner
from handlers.ports import (
    Outgoing,
    PermanentFailure,
    TransientFailure,
    Transport,
    UnitOfWork,
    UnitsOfWork,
    units_of_row,
)
from handlers.procedure_views import case_options
from handlers.records import CaseRecord, HandoverRecord
from handlers.store import NewHandover, Store

log = structlog.get_logger("relance.handover")


class PartnerLink(Protocol):
    """How a case's dossier is built and reaches a partner (``adapters.handover.PartnerLinks``)."""

    def dossier(self, uow: UnitOfWork, case_id: int, ctx: Context, now: datetime) -> bytes:
        """The case's dossier as a ZIP, read in ``uow``."""

    def post(self, partner: Partner, body: bytes, timestamp: int, idempotency_key: str) -> int:
        """POST ``body`` to the partner's webhook, signed; the HTTP status of a success.

        Raises ``TransientFailure`` or ``PermanentFailure`` (with ``status`` when answered).
        """

    def email(
        self,
        *,
        sender: str,
        recipient: str,
        subject: str,
        body_text: str,
        message_id: str,
        at: datetime,
        idempotency_key: str,
        case_id: int,
        filename: str,
        archive: bytes,
    ) -> bytes:
        """The exact bytes of the e-mail carrying the dossier."""


def _handovers(store: Store) -> Outbox:
    return store.handovers()


DEFAULT_MAX_ATTEMPTS = 10


# --- requesting a hand-over (inside the transaction that opens or escalates the case) ----


def request_handover(store: Store, case: CaseRecord, now: datetime, ctx: Context) -> HandoverCase | None:
    """Insert a pending hand-over when a partner is configured for the case's procedure.

    The task is returned and also handed to the unit of work, which gives it to the caller
    to publish once the transaction has committed. A case that already has a
    hand-over to that partner gets no second one; a pending hand-over to another partner
    (the recommended procedure changed) is cancelled.
    """
    partner = ctx.partners.for_procedure(case.recommended_procedure) if ctx.partners else None
    if partner is None or case.status != "open":
        return None
    # no lock: the unique (case, partner) key prevents a second row, and this transaction
    # already holds the case, while the delivery path locks a hand-over, then its case
    rows = store.handovers_of(case.id)
    if any(row.partner == partner.name for row in rows):
        return None
    for row in rows:
        if row.status == "pending":
            _cancel(
                store,
                row,
                case,
                now,
                f"recommended procedure is now {case.recommended_procedure}: "
                f"handed to {partner.name} instead",
            )
    new = NewHandover(
        case_id=case.id,
        partner=partner.name,
        partner_kind=partner.kind,
        channel=partner.channel,
        idempotency_key=stable_id("handover", case.id, partner.name, now.isoformat()),
        lease_until=now + ctx.lease,
    )
    row = store.add_handover(new, now)
    numbers = _invoice_numbers(store, case.id)
    evidence.append(
        store,
        "handover.requested",
        now,
        {
            "action": "handover.requested",
            "case_id": case.id,
            "debtor_id": case.debtor_id,
            "handover_id": row.id,
            "idempotency_key": row.idempotency_key,
            "partner": partner.name,
            "partner_kind": partner.kind,
            "channel": partner.channel,
            "recommended_procedure": case.recommended_procedure,
            "invoice_numbers": numbers,
        },
        debtor_id=case.debtor_id,
        invoice_numbers=numbers,
        case_id=case.id,
    )
    log.info(
        "handover.requested",
        handover_id=row.id,
        case_id=case.id,
        debtor_id=case.debtor_id,
        partner=partner.name,
        channel=partner.channel,
        recommended_procedure=case.recommended_procedure,
    )
    task = HandoverCase(row.id, 0)
    store.after_commit(task)
    return task


def _cancel(store: Store, row: HandoverRecord, case: CaseRecord, now: datetime, reason: str) -> None:
    row.status, row.lease_until, row.last_error = "cancelled", None, reason[:500]
    evidence.append(
        store,
        "handover.cancelled",
        now,
        {
            "action": "handover.cancelled",
            "case_id": case.id,
            "debtor_id": case.debtor_id,
            "handover_id": row.id,
            "partner": row.partner,
            "reason": reason,
        },
        debtor_id=case.debtor_id,
        case_id=case.id,
    )
    log.info("handover.cancelled", handover_id=row.id, case_id=case.id, partner=row.partner, reason=reason)


# --- delivering it (the handover_case actor) ------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    handover_pk: int
    case_id: int
    debtor_id: str
    idempotency_key: str
    attempts: int
    partner: Partner


def deliver_handover(
    units: UnitsOfWork,
    handover_pk: int,
    attempt: int,
    clock: Callable[[], datetime],
    transports: Mapping[str, Transport],
    ctx: Context,
) -> str:
    """Hand one case over; return 'delivered', 'skipped', 'cancelled', 'retry' or 'failed'."""
    units, creditor = units_of_row(units, "handovers", handover_pk)
    if creditor is not None:  # its own partners and channels
        ctx = ctx.for_creditor(creditor)
        transports = ctx.channels(transports)
    with units() as uow:
        claimed = _claim(uow.store, handover_pk, attempt, clock(), ctx)
    if isinstance(claimed, str):
        return claimed
    try:
        with units() as uow:
            archive, document = _dossier(uow, claimed, ctx, clock())
    except Exception as exc:  # a dossier that cannot be built is retried, and logged
        return _record_failure(
            units,
            handover_pk,
            clock(),
            ctx,
            f"dossier: {type(exc).__name__}: {exc}",
            None,
            permanent=False,
        )
    digest = hashlib.sha256(archive).hexdigest()
    try:
        code = _send(claimed, archive, digest, document, clock(), transports, ctx)
    except (TransientFailure, PermanentFailure) as exc:
        permanent = is_permanent(exc)
        return _record_failure(units, handover_pk, clock(), ctx, str(exc), _code(exc), permanent=permanent)
    with units() as uow:
        _mark_delivered(uow.store, handover_pk, clock(), code, digest, len(archive))
    return "delivered"


def _claim(store: Store, handover_pk: int, attempt: int, now: datetime, ctx: Context) -> Claimed | str:
    """Take attempt number ``attempt`` (compare-and-set on the count), or say why not.

    The row is locked first: a case that is no longer open cancels the hand-over, and a
    partner gone from the partners file fails it (that attempt counted), before any claim.
    """
    outbox = _handovers(store)
    current = outbox.get(handover_pk)
    why = refusal(current.status, current.attempts, attempt) if current else Refusal.MISSING
    if why is not None:  # unknown, settled, or a duplicate or stale task
        return why.outcome
    assert current is not None
    case = store.case(_Facts(current).case_id)
    assert case is not None  # foreign key
    if case.status != "open":  # paid, closed or handed over meanwhile: nothing to hand over
        row = store.handover(handover_pk)
        assert row is not None  # locked above
        _cancel(store, row, case, now, f"case {case.status}")
        return "cancelled"
    name = current.details["partner"]
    partner = ctx.partners.get(str(name)) if ctx.partners else None
    if partner is None:
        reason = f"partner {name!r} is no longer in the partners file"
        _fail(store, outbox, handover_pk, case, now, reason, count_attempt=True)
        return "failed"
    taken = outbox.claim(handover_pk, attempt, now, ctx.lease, channel=partner.channel)
    if isinstance(taken, Refusal):
        return taken.outcome
    key = str(taken.details["idempotency_key"])
    return Claimed(taken.id, case.id, case.debtor_id, key, taken.attempts, partner)


def _link(ctx: Context) -> PartnerLink:
    if ctx.partner_link is None:
        raise RuntimeError("this context has no partner link (config.bootstrap.make_context gives one)")
    link: PartnerLink = ctx.partner_link
    return link


def _dossier(uow: UnitOfWork, claimed: Claimed, ctx: Context, now: datetime) -> tuple[bytes, dict]:
    archive = _link(ctx).dossier(uow, claimed.case_id, ctx, now)
    return archive, _summary(uow.store, claimed, ctx, now)


def _summary(store: Store, claimed: Claimed, ctx: Context, now: datetime) -> dict:
    """The case as the partner receives it; amounts as decimal strings; the procedures with
    their basis and conditions, and the competent court, on the debtor's day ``now``."""
    case = store.case(claimed.case_id)
    debtor = store.debtor(claimed.debtor_id)
    assert case is not None and debtor is not None
    # a factored invoice left the case: the factor collects it (a note of the case says so)
    invoices = [i for i in store.case_invoices(case.id) if i.factored_by is None]
    policy = ctx.policy_for(debtor)
    creditor = policy.creditor
    options = case_options(case, debtor, invoices, policy, local_date(now, debtor.timezone))
    return {
        "case": {
            "id": case.id,
            "kind": case.kind,
            "status": case.status,
            "recommended_procedure": case.recommended_procedure,
            "reasons": list(case.reasons),
            "alternatives": list(case.alternatives),
            "procedures": options["procedures"],
            "competent_court": options["competent_court"],
            "notes": list(case.notes),
            "deadline": case.deadline.isoformat() if case.deadline else None,
            "opened_at": case.opened_at.isoformat(),
            "currency": case.currency,
            "principal": str(case.principal),
            "late_interest": str(case.late_interest),
            "recovery_indemnity": str(case.indemnities),
            "amount_claimed": str(case.amount_claimed),
        },
        "debtor": {
            "id": debtor.id,
            "name": debtor.name,
            "kind": debtor.kind,
            "siren": debtor.siren,
            "email": debtor.email,
            "address": debtor.address,
            "insolvency_procedure": debtor.insolvency_procedure,
            "insolvency_judgment_date": debtor.insolvency_judgment_date.isoformat()
            if debtor.insolvency_judgment_date
            else None,
            "insolvency_stage": debtor.insolvency_stage,
            # who receives the claim declaration: the mandataire, or the liquidator (L641-3)
            "insolvency_administrator": debtor.insolvency_administrator,
        },
        "creditor": {
            "name": creditor.name,
            "siren": creditor.siren,
            "address": list(creditor.address),
            "email": creditor.email,
        },
        "invoices": [
            {
                "number": i.number,
                "issue_date": i.issue_date.isoformat(),
                "due_date": i.due_date.isoformat(),
                "currency": i.currency,
                "amount_due": str(i.amount_due),
                "paid": str(i.paid),
                "credited": str(i.credited),
                "balance": str(i.balance),
                "status": i.status,
                "ever_disputed": i.ever_disputed,
            }
            for i in invoices
        ],
    }


def _send(
    claimed: Claimed,
    archive: bytes,
    digest: str,
    document: dict,
    now: datetime,
    transports: Mapping[str, Transport],
    ctx: Context,
) -> int | None:
    partner = claimed.partner
    filename = f"dossier-{claimed.case_id}.zip"
    if partner.channel == "webhook":
        assert partner.url is not None and partner.secret is not None
        timestamp = int(now.timestamp())
        dossier: dict[str, object] = {
            "filename": filename,
            "media_type": "application/zip",
            "sha256": digest,
            "size": len(archive),
        }
        if len(archive) <= partner.max_dossier_bytes:
            dossier["content_base64"] = base64.b64encode(archive).decode("ascii")
        else:
            dossier["omitted"] = f"larger than {partner.max_dossier_bytes} bytes"
        body = json.dumps(
            {
                "handover_id": claimed.idempotency_key,
                "attempt": claimed.attempts,
                "sent_at": timestamp,
                "partner": {"name": partner.name, "kind": partner.kind},
                **document,
                "dossier": dossier,
            },
            ensure_ascii=False,
            sort_keys=True,
        ).encode("utf-8")
        return _link(ctx).post(partner, body, timestamp, claimed.idempotency_key)
    message_id = f"<handover-{claimed.idempotency_key}@{ctx.message_domain}>"
    subject, text = _email_text(claimed, document, digest)
    content = _link(ctx).email(
        sender=ctx.sender,
        recipient=partner.email or "",
        subject=subject,
        body_text=text,
        message_id=message_id,
        at=now,
        idempotency_key=claimed.idempotency_key,
        case_id=claimed.case_id,
        filename=filename,
        archive=archive,
    )
    transports["email"].transmit(
        Outgoing(message_id, "email", partner.email or "", subject, content, claimed.debtor_id)
    )
    return None


def _email_text(claimed: Claimed, document: dict, digest: str) -> tuple[str, str]:
    case, debtor = document["case"], document["debtor"]
    subject = f"Dossier n° {case['id']} – {debtor['name']} – {case['recommended_procedure']}"
    numbers = ", ".join(i["number"] for i in document["invoices"])
    lines = [
        "Bonjour,",
        "",
        f"Veuillez trouver ci-joint le dossier n° {case['id']} concernant {debtor['name']} ({debtor['id']}).",
        "",
        f"Procédure recommandée : {_named(case, 'recommended') or case['recommended_procedure']}",
        f"Alternatives (options, détaillées dans le dossier) : {_named(case, 'alternative') or 'aucune'}",
        f"Factures : {numbers}",
        f"Principal : {case['principal']} {case['currency']}",
        f"Pénalités de retard : {case['late_interest']} {case['currency']}",
        f"Indemnités forfaitaires : {case['recovery_indemnity']} {case['currency']}",
        f"Montant réclamé : {case['amount_claimed']} {case['currency']}",
    ]
    if case["deadline"]:
        lines.append(f"Date limite : {case['deadline']}")
    lines += [
        "",
        f"Référence de transmission : {claimed.idempotency_key}",
        f"Empreinte SHA-256 du dossier : {digest}",
        "",
        "Message envoyé automatiquement par relance.",
    ]
    return " ".join(subject.split()), "\n".join(lines) + "\n"


def _named(case: dict, role: str) -> str:
    """The procedures of ``role`` by their French name and basis, as the e-mail lists them."""
    return ", ".join(
        f"{p['name_fr']} ({p['basis']})" if p["basis"] else p["code"]
        for p in case.get("procedures", [])
        if p["role"] == role
    )


def _code(exc: Exception) -> int | None:
    """The HTTP status of a webhook answer that failed, if there was an answer."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _mark_delivered(
    store: Store, handover_pk: int, now: datetime, code: int | None, digest: str, size: int
) -> None:
    done = _handovers(store).mark_done(handover_pk, now, response_code=code, dossier_sha256=digest)
    if done is None:  # unknown, or already delivered
        return
    row = _Facts(done)
    case = store.case(row.case_id, lock=True)
    assert case is not None
    if case.status == "open":
        case.status, case.updated_at = "handed_over", now
    numbers = _invoice_numbers(store, case.id)
    evidence.append(
        store,
        "case.handed_over",
        now,
        {
            "action": "case.handed_over",
            "case_id": case.id,
            "debtor_id": case.debtor_id,
            "invoice_numbers": numbers,
            "handover_id": row.id,
            "idempotency_key": row.idempotency_key,
            "partner": row.partner,
            "partner_kind": row.partner_kind,
            "channel": row.channel,
            "recommended_procedure": case.recommended_procedure,
            "dossier_sha256": digest,
            "dossier_size": size,
            "response_code": code,
            "attempts": row.attempts,
        },
        debtor_id=case.debtor_id,
        invoice_numbers=numbers,
        case_id=case.id,
    )
    log.info(
        "case.handed_over",
        case_id=case.id,
        debtor_id=case.debtor_id,
        handover_id=row.id,
        partner=row.partner,
        channel=row.channel,
        response_code=code,
        attempts=row.attempts,
        dossier_sha256=digest,
    )


def _record_failure(
    units: UnitsOfWork,
    handover_pk: int,
    now: datetime,
    ctx: Context,
    error: str,
    code: int | None,
    *,
    permanent: bool,
) -> str:
    limit = ctx.partners.max_attempts if ctx.partners else DEFAULT_MAX_ATTEMPTS
    with units() as uow:
        store = uow.store
        outbox = _handovers(store)
        current = outbox.get(handover_pk)
        if current is None or current.status != "pending":
            return "skipped"
        if gives_up(current.attempts, limit, permanent=permanent):
            case = store.case(_Facts(current).case_id)
            assert case is not None
            reason = error if permanent else f"{error} (after {current.attempts} attempts)"
            _fail(store, outbox, handover_pk, case, now, reason, response_code=code)
            return "failed"
        retry = outbox.record_retry(handover_pk, now, error, response_code=code)
        assert retry is not None and retry.lease_until is not None  # locked and pending above
        row = _Facts(retry)
        facts = {
            "handover_id": row.id,
            "case_id": row.case_id,
            "partner": row.partner,
            "channel": row.channel,
            "attempts": row.attempts,
            "response_code": code,
            "next_attempt_at": retry.lease_until.isoformat(),
        }
    log.warning("handover.retry", error=error[:200], **facts)
    return "retry"


class _Facts:
    """A hand-over as the outbox returned it, read like the row it comes from."""

    def __init__(self, item: Item) -> None:
        self.id, self.attempts = item.id, item.attempts
        d: dict[str, Any] = dict(item.details)
        self.case_id: int = d["case_id"]
        self.partner: str = d["partner"]
        self.partner_kind: str = d["partner_kind"]
        self.channel: str = d["channel"]
        self.idempotency_key: str = d["idempotency_key"]
        self.response_code: int | None = d["response_code"]


def _fail(
    store: Store,
    outbox: Outbox,
    handover_pk: int,
    case: CaseRecord,
    now: datetime,
    error: str,
    *,
    count_attempt: bool = False,
    **changes: object,
) -> None:
    """Give up: the hand-over is failed, the case stays open for a person.

    ``changes`` are the attempt's own facts (the HTTP status of the answer, None if none).
    """
    failed = outbox.record_failure(handover_pk, now, error, count_attempt=count_attempt, **changes)
    assert failed is not None  # the callers hold the pending row
    row = _Facts(failed)
    evidence.append(
        store,
        "handover.failed",
        now,
        {
            "action": "handover.failed",
            "case_id": case.id,
            "debtor_id": case.debtor_id,
            "handover_id": row.id,
            "partner": row.partner,
            "channel": row.channel,
            "attempts": row.attempts,
            "response_code": row.response_code,
            "error": error[:500],
        },
        debtor_id=case.debtor_id,
        case_id=case.id,
    )
    log.error(
        "handover.failed",
        handover_id=row.id,
        case_id=case.id,
        debtor_id=case.debtor_id,
        partner=row.partner,
        channel=row.channel,
        attempts=row.attempts,
        response_code=row.response_code,
        error=error[:200],
    )


def _invoice_numbers(store: Store, case_id: int) -> list[str]:
    return sorted(i.number for i in store.case_invoices(case_id))


# --- the scheduler's part -------------------------------------------------------------------


def claim_overdue_handovers(store: Store, now: datetime, lease: timedelta, limit: int) -> list[HandoverCase]:
    """Pending hand-overs whose lease or back-off ran out (lost task, crash): emit again."""
    overdue = _handovers(store).claim_expired(now, lease, limit)
    return [HandoverCase(due.id, due.attempt) for due in overdue]
