"""The case dossier: what a lawyer or commissaire de justice needs, as files (docs/dossier.md).

One case gives ``summary.md`` / ``summary.json`` (parties, invoices, payments, the penalty
computation per half-year segment, the recommended procedure), ``messages/`` (the exact
stored bytes of every e-mail and letter sent about the case's invoices), ``deliveries.json``,
``evidence.jsonl`` (the case's records of the evidence chain, with their hashes),
``verification.txt`` (the whole chain recomputed), ``injonction_de_payer.md`` when that is the
recommended procedure, and ``manifest.json`` (the SHA-256 of every other file).

Everything is read in the caller's transaction; nothing is written to the store.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.numbers import format_decimal
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapters.orm import (
    CaseInvoice,
    CaseRow,
    DebtorRow,
    EvidenceHead,
    EvidenceRecord,
    InvoiceRow,
    MessageItem,
    MessageRow,
    PaymentRow,
)
from handlers.amounts import InvoiceAmounts, amounts_on
from handlers.calendar import local_date, zone
from handlers.context import Context
from handlers.evidence import ChainCheck, verify, write_pending
from handlers.money import ZERO, MissingRate, format_money, format_rate
from handlers.policy import FORMAL_NOTICE
from handlers.reminders import address_lines
from handlers.render import helpers

INJONCTION = "injonction_de_payer"
LIVE = ("open", "handed_over")

PROCEDURES = {
    "injonction_de_payer": "Injonction de payer (CPC art. 1405 et s.)",
    "procedure_simplifiee": "Procédure simplifiée de recouvrement des petites créances (CPCE art. L125-1)",
    "assignation_en_paiement": "Assignation en paiement",
    "declaration_de_creance": "Déclaration de créance au mandataire judiciaire (C. com. art. L622-24)",
    "refere_provision": "Référé-provision (CPC art. 835 / 873)",
}
STEPS = {
    "pre_due": "Rappel avant échéance",
    "due": "Rappel d'échéance",
    "notice": "Avis d'impayé",
    "reminder_1": "1re relance",
    "reminder_2": "2e relance",
    "reminder_3": "3e relance",
    FORMAL_NOTICE: "Mise en demeure",
}
CHANNELS = {"email": "e-mail", "letter": "lettre simple", "registered_letter": "lettre recommandée avec AR"}
CASE_STATUSES = {"open": "ouvert", "handed_over": "transmis", "paid": "payé", "closed": "clos"}
KINDS = {
    "escalation": "escalade après mise en demeure",
    "claim_declaration": "déclaration de créance (procédure collective)",
}
MESSAGE_STATUSES = {
    "sent": "envoyé",
    "pending": "en attente d'envoi",
    "failed": "échec",
    "cancelled": "annulé",
}
DELIVERY_STATUSES = {
    "delivered": "distribué",
    "bounced": "rejeté (adresse invalide)",
    "acknowledged": "accusé de réception signé",
    "refused": "refusé",
    "unclaimed": "non réclamé",
}
MOVEMENTS = {"payment": "paiement", "credit_note": "avoir", "plan_payment": "paiement (échéancier)"}

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


# --------------------------------------------------------------------------- public API


def write_dossier(session: Session, case_id: int, folder: Path, ctx: Context, now: datetime) -> list[Path]:
    """Write the dossier of case ``case_id`` into ``folder`` (new or empty); return the files."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise FileExistsError(f"{folder}: folder is not empty; give a new or empty folder")
    files = _build(session, case_id, ctx, now)  # before creating anything: may raise
    written = []
    for name, content in files.items():
        path = folder.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written


def dossier_archive(session: Session, case_id: int, ctx: Context, now: datetime) -> bytes:
    """The same files as a ZIP: sorted names, every entry dated ``now`` (deterministic)."""
    files = _build(session, case_id, ctx, now)
    stamp = now.astimezone(UTC).timetuple()[:6]
    if stamp[0] < 1980:  # the earliest date a ZIP entry can carry
        stamp = (1980, 1, 1, 0, 0, 0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            entry = zipfile.ZipInfo(name, date_time=stamp)
            entry.create_system = 3
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, files[name], compresslevel=9)
    return buffer.getvalue()


# --------------------------------------------------------------------------- gathering


@dataclass
class _Message:
    row: MessageRow
    file: str
    invoice_numbers: list[str]
    sha256: str
    sent_record: EvidenceRecord | None = None
    outcomes: list[EvidenceRecord] = field(default_factory=list)  # transmitted / failed
    statuses: list[EvidenceRecord] = field(default_factory=list)  # delivery.status


@dataclass
class _Invoice:
    row: InvoiceRow
    movements: list[PaymentRow]
    amounts: InvoiceAmounts | None
    problem: str | None  # why the amounts could not be recomputed


def _build(session: Session, case_id: int, ctx: Context, now: datetime) -> dict[str, bytes]:
    """Every file of the dossier, by relative name (``/``-separated), manifest last."""
    case = session.get(CaseRow, case_id)
    if case is None:
        raise LookupError(f"no case {case_id}")
    debtor = session.get(DebtorRow, case.debtor_id)
    if debtor is None:  # pragma: no cover - a case always has its debtor
        raise LookupError(f"case {case_id}: debtor {case.debtor_id} is unknown")
    invoices = (
        session.execute(
            select(InvoiceRow)
            .join(CaseInvoice, CaseInvoice.invoice_id == InvoiceRow.id)
            .where(CaseInvoice.case_id == case.id)
            .order_by(InvoiceRow.due_date, InvoiceRow.number)
        )
        .scalars()
        .all()
    )
    messages = _messages(session, [i.id for i in invoices])
    numbers = {i.number for i in invoices}
    check, head, records = _chain(session, case, numbers, messages)
    computed_on = _computed_on(case, debtor, records)
    policy = ctx.policy_for(debtor)
    details = [_invoice(session, i, debtor, computed_on, ctx) for i in invoices]
    live_day = local_date(now, debtor.timezone)
    live = (
        _live(session, invoices, debtor, live_day, ctx)
        if case.kind == "escalation" and case.status in LIVE and live_day > computed_on
        else None
    )

    data = _summary_data(
        case, debtor, policy.creditor, details, messages, computed_on, live, live_day, check, head, now, ctx
    )
    files: dict[str, bytes] = {}
    for message in messages:
        files[message.file] = message.row.content
    files["summary.md"] = _summary_md(data).encode("utf-8")
    files["summary.json"] = _json(data)
    files["deliveries.json"] = _json(_deliveries(messages))
    files["evidence.jsonl"] = "".join(
        json.dumps(_record_view(r), ensure_ascii=False) + "\n" for r in records
    ).encode("utf-8")
    files["verification.txt"] = _verification_text(check, head, now).encode("utf-8")
    if case.recommended_procedure == INJONCTION:
        files["injonction_de_payer.md"] = _injonction_md(data, messages).encode("utf-8")
    files = dict(sorted(files.items()))
    manifest = {
        "case_id": case.id,
        "generated_at": _instant(now),
        "files": [
            {"path": name, "sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
            for name, content in files.items()
        ],
    }
    files["manifest.json"] = _json(manifest)
    return files


def _messages(session: Session, invoice_ids: list[int]) -> list[_Message]:
    """Every message recorded for the case's invoices, oldest first, with a safe file name."""
    if not invoice_ids:
        return []
    rows = (
        session.execute(
            select(MessageRow)
            .where(
                MessageRow.id.in_(
                    select(MessageItem.message_pk).where(MessageItem.invoice_id.in_(invoice_ids))
                )
            )
            .order_by(MessageRow.created_at, MessageRow.id)
        )
        .scalars()
        .all()
    )
    covered: dict[int, list[str]] = {}
    if rows:
        for pk, number in session.execute(
            select(MessageItem.message_pk, InvoiceRow.number)
            .join(InvoiceRow, InvoiceRow.id == MessageItem.invoice_id)
            .where(MessageItem.message_pk.in_([r.id for r in rows]))
        ).all():
            covered.setdefault(pk, []).append(number)
    used: set[str] = set()
    found = []
    for row in rows:
        found.append(
            _Message(
                row,
                _file_name(row, used),
                sorted(set(covered.get(row.id, []))),
                hashlib.sha256(row.content).hexdigest(),
            )
        )
    return found


def _safe(text: str, limit: int = 60) -> str:
    return _UNSAFE.sub("_", text).strip("._-")[:limit] or "x"


def _file_name(row: MessageRow, used: set[str]) -> str:
    """``messages/<day>_<step>_<channel>_<Message-ID>.eml|.pdf``, only safe characters."""
    extension = ".eml" if row.channel == "email" else ".pdf" if "letter" in row.channel else ".bin"
    stem = (
        f"{row.local_day.isoformat()}_{_safe(row.step, 40)}_{_safe(row.channel, 20)}_"
        f"{_safe(row.message_id.strip('<>'))}"
    )
    name = f"messages/{stem}{extension}"
    if name in used:  # two Message-IDs that differ only in unsafe characters
        digest = hashlib.sha256(row.message_id.encode("utf-8")).hexdigest()[:12]
        name = f"messages/{stem}-{digest}{extension}"
    used.add(name)
    return name


def _chain(
    session: Session, case: CaseRow, numbers: set[str], messages: list[_Message]
) -> tuple[ChainCheck, tuple[int, str] | None, list[EvidenceRecord]]:
    """Recompute the whole chain once; keep the records that concern the case on the way.

    The records are checked up to the chain head read first: appends committed while the
    export reads (PostgreSQL, read committed) are not part of this snapshot. Records beyond
    the head that no head covers are still reported as added after it.
    """
    by_id = {m.row.message_id: m for m in messages}
    write_pending(session)  # what this transaction appended so far is part of it
    start = session.execute(
        select(EvidenceHead.seq, EvidenceHead.hash).where(EvidenceHead.id == 1)
    ).one_or_none()
    head = EvidenceHead(id=1, seq=start.seq, hash=start.hash) if start is not None else None
    kept: list[EvidenceRecord] = []

    def stream() -> Iterator[EvidenceRecord]:
        query = select(EvidenceRecord).order_by(EvidenceRecord.seq)
        if head is not None:
            query = query.where(EvidenceRecord.seq <= head.seq)
        for record in session.execute(query.execution_options(yield_per=1000)).scalars():
            message = by_id.get(record.message_id) if record.message_id else None
            if (
                record.debtor_id == case.debtor_id
                or record.case_id == case.id
                or message is not None
                or numbers.intersection(record.invoice_numbers or ())
            ):
                kept.append(record)
                if message is not None:
                    _attach(message, record)
            yield record

    check = verify(stream(), head)
    if check.ok and head is not None:
        last = session.execute(select(func.max(EvidenceRecord.seq))).scalar()
        now_head = session.execute(select(EvidenceHead.seq).where(EvidenceHead.id == 1)).scalar()
        if last is not None and last > (now_head or 0):
            check = ChainCheck(
                False, check.records, (now_head or 0) + 1, "records after the chain head were added"
            )
    return check, (head.seq, head.hash) if head is not None else None, kept


def _attach(message: _Message, record: EvidenceRecord) -> None:
    if record.kind == "reminder.sent":
        message.sent_record = record
    elif record.kind in ("message.transmitted", "message.failed"):
        message.outcomes.append(record)
    elif record.kind == "delivery.status":
        message.statuses.append(record)


def _computed_on(case: CaseRow, debtor: DebtorRow, records: list[EvidenceRecord]) -> date:
    """The day the case's penalties were computed: its last opening / escalation record."""
    if case.kind == "claim_declaration" and debtor.insolvency_judgment_date is not None:
        return debtor.insolvency_judgment_date  # penalties stop at the opening judgment
    opened = [r for r in records if r.case_id == case.id and r.kind in ("case.escalated", "case.opened")]
    return local_date(opened[-1].at if opened else case.opened_at, debtor.timezone)


def _invoice(session: Session, invoice: InvoiceRow, debtor: DebtorRow, day: date, ctx: Context) -> _Invoice:
    movements = (
        session.execute(
            select(PaymentRow)
            .where(PaymentRow.invoice_id == invoice.id)
            .order_by(PaymentRow.on_day, PaymentRow.id)
        )
        .scalars()
        .all()
    )
    try:
        amounts = amounts_on(
            session,
            invoice,
            debtor,
            day,
            ctx.policy_for(debtor, invoice.number),
            ctx.rates,
            with_penalties=True,
        )
    except MissingRate as exc:
        return _Invoice(invoice, list(movements), None, str(exc))
    return _Invoice(invoice, list(movements), amounts, None)


def _live(
    session: Session, invoices: Iterable[InvoiceRow], debtor: DebtorRow, day: date, ctx: Context
) -> dict[str, Any]:
    """What the open invoices owe on the export day: penalties keep running until paid."""
    rows = []
    try:
        for invoice in invoices:
            if invoice.status != "open" or invoice.balance <= 0:
                continue
            a = amounts_on(
                session,
                invoice,
                debtor,
                day,
                ctx.policy_for(debtor, invoice.number),
                ctx.rates,
                with_penalties=True,
            )
            rows.append(
                {
                    "number": invoice.number,
                    "balance": a.balance,
                    "late_interest": a.late_interest,
                    "indemnity": a.indemnity,
                    "claimed": a.claimed,
                    "unconfirmed_rates": _unconfirmed(a, ctx),
                }
            )
    except MissingRate as exc:
        return {"day": day, "problem": str(exc), "invoices": []}
    return {"day": day, "problem": None, "invoices": rows, "total": sum((r["claimed"] for r in rows), ZERO)}


def _unconfirmed(amounts: InvoiceAmounts, ctx: Context) -> list[str]:
    if amounts.interest is None:
        return []
    flagged = {
        s.half_year
        for s in amounts.interest.segments
        if (entry := ctx.rates.rates.get(s.half_year)) is not None and entry.unconfirmed
    }
    return sorted(flagged)


# --------------------------------------------------------------------------- summary data


def _summary_data(
    case: CaseRow,
    debtor: DebtorRow,
    creditor: Any,
    details: list[_Invoice],
    messages: list[_Message],
    computed_on: date,
    live: dict | None,
    live_day: date,
    check: ChainCheck,
    head: tuple[int, str] | None,
    now: datetime,
    ctx: Context,
) -> dict[str, Any]:
    invoices = [_invoice_data(d, computed_on, ctx) for d in details]
    computed = {
        "principal": sum((Decimal(i["balance"]) for i in invoices if i["balance"]), ZERO),
        "late_interest": sum((Decimal(i["late_interest"]) for i in invoices if i["late_interest"]), ZERO),
        "indemnities": sum((Decimal(i["indemnity"]) for i in invoices if i["indemnity"]), ZERO),
    }
    computed["amount_claimed"] = sum(computed.values(), ZERO)
    notes = list(case.notes or [])
    stored = {
        "principal": case.principal,
        "late_interest": case.late_interest,
        "indemnities": case.indemnities,
        "amount_claimed": case.amount_claimed,
    }
    if any(stored[k] != computed[k] for k in stored):
        notes.append(
            "the case's recorded amounts differ from the computation shown on "
            f"{computed_on.isoformat()} (payments or credit notes recorded after it, "
            "or a changed policy or rate table): the recorded amounts are the claim"
        )
    return {
        "generated_at": _instant(now),
        "case": {
            "id": case.id,
            "kind": case.kind,
            "status": case.status,
            "recommended_procedure": case.recommended_procedure,
            "reasons": list(case.reasons or []),
            "alternatives": list(case.alternatives or []),
            "deadline": case.deadline.isoformat() if case.deadline else None,
            "notes": notes,
            "opened_at": _instant(case.opened_at),
            "updated_at": _instant(case.updated_at),
            "currency": case.currency,
            "amounts_computed_on": computed_on.isoformat(),
            "principal": str(case.principal),
            "late_interest": str(case.late_interest),
            "indemnities": str(case.indemnities),
            "amount_claimed": str(case.amount_claimed),
        },
        "creditor": {
            "name": creditor.name,
            "address": list(creditor.address),
            "siren": creditor.siren,
            "email": creditor.email,
            "phone": creditor.phone,
        },
        "debtor": {
            "id": debtor.id,
            "name": debtor.name,
            "kind": debtor.kind,
            "email": debtor.email,
            "address": dict(debtor.address or {}),
            "address_lines": address_lines(debtor)[1:],
            "siren": debtor.siren,
            "language": debtor.language,
            "timezone": debtor.timezone,
            "insolvency_procedure": debtor.insolvency_procedure,
            "insolvency_judgment_date": (
                debtor.insolvency_judgment_date.isoformat() if debtor.insolvency_judgment_date else None
            ),
        },
        "invoices": invoices,
        "totals": {k: str(v) for k, v in computed.items()},
        "update": None
        if live is None
        else {
            "day": live["day"].isoformat(),
            "problem": live["problem"],
            "invoices": [
                {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}
                for row in live["invoices"]
            ],
            "total": str(live["total"]) if live.get("total") is not None else None,
        },
        "messages": [
            {
                "file": m.file,
                "day": m.row.local_day.isoformat(),
                "step": m.row.step,
                "channel": m.row.channel,
                "subject": m.row.subject,
                "recipient": m.row.recipient,
                "message_id": m.row.message_id,
                "invoice_numbers": m.invoice_numbers,
                "status": m.row.status,
                "sent_at": _instant(m.row.sent_at),
                "content_sha256": m.sha256,
                "delivery_statuses": [_status_view(r)["status"] for r in m.statuses],
            }
            for m in messages
        ],
        "verification": {
            "ok": check.ok,
            "records": check.records,
            "broken_seq": check.broken_seq,
            "reason": check.reason,
            "head_seq": head[0] if head else None,
            "head_hash": head[1] if head else None,
        },
        "export_day": live_day.isoformat(),
    }


def _invoice_data(detail: _Invoice, computed_on: date, ctx: Context) -> dict[str, Any]:
    invoice, a = detail.row, detail.amounts
    interest = None
    if a is not None and a.interest is not None:
        segments = a.interest.segments
        accrued = sum((s.amount for s in segments), Decimal(0))
        interest = {
            "from": segments[0].first_day.isoformat() if segments else None,
            "until": segments[-1].last_day.isoformat() if segments else None,
            "segments": [
                {
                    "half_year": s.half_year,
                    "first_day": s.first_day.isoformat(),
                    "last_day": s.last_day.isoformat(),
                    "days": s.days,
                    "balance": str(s.balance),
                    "rate": str(s.rate),
                    "amount": str(s.amount),
                    "amount_rounded": str(s.amount_rounded),
                    "rate_unconfirmed": bool((e := ctx.rates.rates.get(s.half_year)) and e.unconfirmed),
                }
                for s in segments
            ],
            "accrued": str(a.interest.total),
            "accrued_unrounded": str(accrued),
            "paid_by_payments": str(a.interest_paid),
            "due": str(a.late_interest),
        }
    return {
        "number": invoice.number,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "delivered_on": invoice.delivered_on.isoformat() if invoice.delivered_on else None,
        "currency": invoice.currency,
        "amount_due": str(invoice.amount_due),
        "status": invoice.status,
        "disputed": invoice.disputed,
        "ever_disputed": invoice.ever_disputed,
        "late_penalty_rate": (
            str(invoice.late_penalty_rate) if invoice.late_penalty_rate is not None else None
        ),
        "payments": [
            {
                "kind": p.kind,
                "on_day": p.on_day.isoformat(),
                "amount": str(p.amount),
                "reference": p.reference,
                "after_computation": p.on_day > computed_on,
            }
            for p in detail.movements
        ],
        "paid": str(invoice.paid),
        "credited": str(invoice.credited),
        "balance_today": str(invoice.balance),
        "balance": str(a.balance) if a else None,
        "interest": interest,
        "late_interest": str(a.late_interest) if a else None,
        "indemnity": str(a.indemnity) if a else None,
        "claimed": str(a.claimed) if a else None,
        "problem": detail.problem,
    }


def _deliveries(messages: list[_Message]) -> list[dict[str, Any]]:
    return [
        {
            "file": m.file,
            "message_id": m.row.message_id,
            "step": m.row.step,
            "channel": m.row.channel,
            "recipient": m.row.recipient,
            "subject": m.row.subject,
            "invoice_numbers": m.invoice_numbers,
            "status": m.row.status,
            "attempts": m.row.attempts,
            "created_at": _instant(m.row.created_at),
            "sent_at": _instant(m.row.sent_at),
            "tracking_id": m.row.tracking_id,
            "last_error": m.row.last_error,
            "content_sha256": m.sha256,
            "content_matches_evidence": (
                m.sent_record is not None
                and json.loads(m.sent_record.payload).get("content_sha256") == m.sha256
            ),
            "sent_record": _record_ref(m.sent_record) if m.sent_record else None,
            "transmissions": [_record_ref(r) | {"kind": r.kind} for r in m.outcomes],
            "delivery_statuses": [_status_view(r) for r in m.statuses],
        }
        for m in messages
    ]


def _record_ref(record: EvidenceRecord) -> dict[str, Any]:
    return {"seq": record.seq, "at": _instant(record.at), "hash": record.hash}


def _status_view(record: EvidenceRecord) -> dict[str, Any]:
    payload = json.loads(record.payload)
    return {"status": payload.get("status"), "status_at": payload.get("at"), **_record_ref(record)}


def _record_view(record: EvidenceRecord) -> dict[str, Any]:
    """A record as hashed: ``at`` is the UTC ISO time and ``payload`` the canonical JSON text."""
    return {
        "seq": record.seq,
        "at": record.at.astimezone(UTC).isoformat(),
        "kind": record.kind,
        "debtor_id": record.debtor_id,
        "invoice_numbers": record.invoice_numbers,
        "case_id": record.case_id,
        "message_id": record.message_id,
        "payload": record.payload,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    }


def _verification_text(check: ChainCheck, head: tuple[int, str] | None, now: datetime) -> str:
    if check.ok:
        result = f"ok {check.records} records"
    else:
        result = (
            f"broken at record {check.broken_seq}: {check.reason} "
            f"({check.records} records verified before it)"
        )
    lines = [
        result,
        f"chain head: seq {head[0]} hash {head[1]}" if head else "chain head: none",
        f"checked at: {_instant(now)}",
        "",
        "The whole evidence chain was recomputed with handlers.evidence.verify, from record 1",
        "to the chain head above: hash = SHA-256 of prev_hash, seq, at (UTC ISO 8601), kind",
        "and payload, joined by newlines. To check this dossier later against the live",
        "chain, run `relance evidence verify` and look up the record of this seq in the",
        "evidence table: its hash must still be the head hash above, and every record of",
        "evidence.jsonl must be there with the same hash.",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- rendering


def _summary_md(data: dict[str, Any]) -> str:
    case, debtor, creditor = data["case"], data["debtor"], data["creditor"]
    currency, tz = case["currency"], debtor["timezone"]
    out: list[str] = [
        f"# Dossier de recouvrement n° {case['id']} — {_text(debtor['name'])}",
        "",
        f"Dossier établi le {_when(data['generated_at'], tz)}.",
        "",
        "## Dossier",
        "",
        f"- Type : {KINDS.get(case['kind'], case['kind'])}",
        f"- Statut : {CASE_STATUSES.get(case['status'], case['status'])} (`{case['status']}`)",
        f"- Ouvert le : {_when(case['opened_at'], tz)}",
        f"- Date limite : {_day(case['deadline']) if case['deadline'] else '—'}",
        f"- Procédure recommandée : {_procedure(case['recommended_procedure'])} "
        f"(`{case['recommended_procedure']}`)",
    ]
    out += [f"  - motif : {_text(r)}" for r in case["reasons"]]
    alternatives = ", ".join(f"{_procedure(a)} (`{a}`)" for a in case["alternatives"])
    out.append(f"- Alternatives : {alternatives or 'aucune'}")
    out.append("- Notes :" if case["notes"] else "- Notes : aucune")
    out += [f"  - {_text(n)}" for n in case["notes"]]
    out += [
        "",
        "## Créancier",
        "",
        f"{_text(creditor['name'])}  ",
        *(f"{_text(line)}  " for line in creditor["address"]),
    ]
    if creditor["siren"]:
        out.append(f"SIREN : {creditor['siren']}  ")
    if creditor["email"]:
        out.append(f"E-mail : {_text(creditor['email'])}")
    kind = "professionnel" if debtor["kind"] == "business" else "consommateur"
    out += [
        "",
        "## Débiteur",
        "",
        f"{_text(debtor['name'])} (`{_text(debtor['id'])}`), {kind}  ",
        *(f"{_text(line)}  " for line in debtor["address_lines"]),
        f"SIREN : {debtor['siren'] or 'non renseigné'}  ",
        f"E-mail : {_text(debtor['email']) if debtor['email'] else 'aucun'}",
    ]
    if debtor["insolvency_procedure"]:
        out.append(
            f"\nProcédure collective : {_text(debtor['insolvency_procedure'])}, jugement "
            f"d'ouverture du {_day(debtor['insolvency_judgment_date'])}."
        )
    computed_on = case["amounts_computed_on"]
    why = (
        "jugement d'ouverture : les pénalités s'arrêtent à cette date"
        if case["kind"] == "claim_declaration"
        else "date d'ouverture ou de mise à jour du dossier"
    )
    out += ["", "## Factures", "", f"Montants calculés au {_day(computed_on)} ({why}).", ""]
    for invoice in data["invoices"]:
        out += _invoice_md(invoice)
    totals = data["totals"]
    out += [
        "## Montant réclamé",
        "",
        "| | montant |",
        "|---|---:|",
        f"| Principal restant dû (TTC) | {_money(case['principal'], currency)} |",
        f"| Pénalités de retard (C. com. L441-10 II) | {_money(case['late_interest'], currency)} |",
        f"| Indemnités forfaitaires (C. com. D441-5) | {_money(case['indemnities'], currency)} |",
        f"| **Total réclamé** | **{_money(case['amount_claimed'], currency)}** |",
        "",
    ]
    if totals["amount_claimed"] != case["amount_claimed"]:
        out += [
            f"Total du calcul ci-dessus au {_day(computed_on)} : "
            f"{_money(totals['amount_claimed'], currency)} (voir les notes).",
            "",
        ]
    update = data["update"]
    if update is not None:
        out += [f"### Actualisation au {_day(update['day'])}", ""]
        if update["problem"]:
            out += [f"Actualisation impossible : {_text(update['problem'])}.", ""]
        elif update["invoices"]:
            out += [
                "Les pénalités courent jusqu'au complet paiement ; à la date de l'export :",
                "",
                "| facture | principal | pénalités | indemnité | total |",
                "|---|---:|---:|---:|---:|",
            ]
            for row in update["invoices"]:
                flag = (
                    " (taux non confirmé : " + ", ".join(row["unconfirmed_rates"]) + ")"
                    if row["unconfirmed_rates"]
                    else ""
                )
                out.append(
                    f"| {_cell(row['number'])} | {_money(row['balance'], currency)} | "
                    f"{_money(row['late_interest'], currency)}{flag} | "
                    f"{_money(row['indemnity'], currency)} | "
                    f"{_money(row['claimed'], currency)} |"
                )
            out += [f"| **Total** | | | | **{_money(update['total'], currency)}** |", ""]
        else:
            out += ["Plus aucune facture ouverte.", ""]
    out += ["## Messages et lettres envoyés", ""]
    if data["messages"]:
        out += ["| date | étape | canal | objet | statut | fichier |", "|---|---|---|---|---|---|"]
        for m in data["messages"]:
            status = MESSAGE_STATUSES.get(m["status"], m["status"])
            delivered = [DELIVERY_STATUSES.get(s, s) for s in m["delivery_statuses"]]
            if delivered:
                status += " ; " + ", ".join(delivered)
            out.append(
                f"| {_day(m['day'])} | {_cell(STEPS.get(m['step'], m['step']))} | "
                f"{CHANNELS.get(m['channel'], _cell(m['channel']))} | {_cell(m['subject'])} | "
                f"{_cell(status)} | `{m['file']}` |"
            )
    else:
        out.append("Aucun message n'a été envoyé au sujet de ces factures.")
    check = data["verification"]
    result = (
        f"chaîne intègre, {check['records']} enregistrements recalculés"
        if check["ok"]
        else f"chaîne ROMPUE à l'enregistrement {check['broken_seq']} : {check['reason']}"
    )
    out += [
        "",
        "## Preuves",
        "",
        f"- Vérification de la chaîne de preuves : {result} (`verification.txt`).",
        f"- Tête de chaîne : n° {check['head_seq']}, empreinte `{check['head_hash']}`.",
        "- Enregistrements du dossier : `evidence.jsonl` ; statuts de distribution : "
        "`deliveries.json` ; empreintes SHA-256 de chaque fichier : `manifest.json`.",
        "- Mode d'emploi : docs/dossier.md.",
        "",
    ]
    return "\n".join(out)


def _invoice_md(invoice: dict[str, Any]) -> list[str]:
    currency = invoice["currency"]
    out = [
        f"### Facture {_text(invoice['number'])}",
        "",
        f"- Émise le {_day(invoice['issue_date'])}, échue le {_day(invoice['due_date'])}"
        + (f", livrée le {_day(invoice['delivered_on'])}" if invoice["delivered_on"] else ""),
        f"- Montant TTC : {_money(invoice['amount_due'], currency)}",
    ]
    if invoice["late_penalty_rate"]:
        out.append(
            f"- Taux de pénalité contractuel : {format_rate(Decimal(invoice['late_penalty_rate']), 'fr')}"
        )
    if invoice["ever_disputed"]:
        out.append(
            "- Facture contestée"
            + (" (contestation en cours)" if invoice["disputed"] else " (contestation tranchée)")
        )
    if invoice["payments"]:
        out.append("- Paiements et avoirs reçus :")
        for p in invoice["payments"]:
            reference = f" (réf. {_text(p['reference'])})" if p["reference"] else ""
            later = " — reçu après la date de calcul" if p["after_computation"] else ""
            out.append(
                f"  - {_day(p['on_day'])} : {MOVEMENTS.get(p['kind'], p['kind'])} de "
                f"{_money(p['amount'], currency)}{reference}{later}"
            )
    else:
        out.append("- Paiements et avoirs reçus : aucun")
    out.append(
        f"- Statut actuel : `{invoice['status']}`, solde actuel {_money(invoice['balance_today'], currency)}"
    )
    if invoice["problem"]:
        return [*out, f"- Calcul impossible : {_text(invoice['problem'])}", ""]
    out.append(f"- Principal restant dû à la date de calcul : {_money(invoice['balance'], currency)}")
    interest = invoice["interest"]
    if interest is None:
        out.append(
            "- Pénalités de retard : aucune (débiteur consommateur, facture non échue "
            "ou devise hors pénalités)"
        )
    elif not interest["segments"]:
        out.append("- Pénalités de retard : aucune (rien n'était dû en retard)")
    else:
        out += [
            "",
            "Pénalités de retard (C. com. L441-10 II) : intérêts simples sur le montant TTC "
            "impayé, jours exacts / 365, un taux par semestre civil ; chaque segment est "
            "calculé sans arrondi, le total est arrondi au centime une seule fois.",
            "",
            "| semestre | du | au | jours | base | taux | montant |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for s in interest["segments"]:
            rate = format_rate(Decimal(s["rate"]), "fr") + (
                " (non confirmé)" if s["rate_unconfirmed"] else ""
            )
            out.append(
                f"| {s['half_year']} | {_day(s['first_day'])} | {_day(s['last_day'])} | "
                f"{s['days']} | {_money(s['balance'], currency)} | {rate} | "
                f"{_precise(s['amount'], currency)} |"
            )
        out += [f"| **Total arrondi** | | | | | | **{_money(interest['accrued'], currency)}** |", ""]
        if Decimal(interest["paid_by_payments"]) > 0:
            out.append(
                f"- Pénalités déjà réglées par imputation des paiements (C. civ. 1343-1) : "
                f"{_money(interest['paid_by_payments'], currency)}"
            )
        out.append(f"- Pénalités dues : {_money(invoice['late_interest'], currency)}")
    out += [
        f"- Indemnité forfaitaire pour frais de recouvrement (C. com. D441-5) : "
        f"{_money(invoice['indemnity'], currency)}",
        f"- **Total pour cette facture : {_money(invoice['claimed'], currency)}**",
        "",
    ]
    return out


def _injonction_md(data: dict[str, Any], messages: list[_Message]) -> str:
    case, debtor, creditor = data["case"], data["debtor"], data["creditor"]
    currency, tz = case["currency"], debtor["timezone"]
    computed_on = case["amounts_computed_on"]
    count = sum(1 for i in data["invoices"] if i["indemnity"] and Decimal(i["indemnity"]) > 0)
    out = [
        f"# Requête en injonction de payer — dossier n° {case['id']}",
        "",
        "Éléments prêts à reporter dans la requête (CPC art. 1405 et s.), établis le "
        f"{_when(data['generated_at'], tz)}. La requête est déposée auprès de la juridiction du "
        "lieu où demeure le débiteur (CPC art. 1406).",
        "",
        "## Créancier (requérant)",
        "",
        f"{_text(creditor['name'])}  ",
        *(f"{_text(line)}  " for line in creditor["address"]),
    ]
    if creditor["siren"]:
        out.append(f"SIREN : {creditor['siren']}  ")
    out += [
        "",
        "## Débiteur",
        "",
        f"{_text(debtor['name'])}  ",
        *(f"{_text(line)}  " for line in debtor["address_lines"]),
        f"SIREN : {debtor['siren'] or 'non renseigné'}",
        "",
        "## Montant demandé",
        "",
        "| | montant |",
        "|---|---:|",
        f"| Principal : factures TTC restant dues | {_money(case['principal'], currency)} |",
        f"| Pénalités de retard au {_day(computed_on)} (C. com. L441-10 II) | "
        f"{_money(case['late_interest'], currency)} |",
        f"| Indemnité forfaitaire pour frais de recouvrement, 40 € par facture "
        f"({count} facture{'s' if count > 1 else ''}) (C. com. L441-10 II et D441-5) | "
        f"{_money(case['indemnities'], currency)} |",
        f"| **Total** | **{_money(case['amount_claimed'], currency)}** |",
        "",
        "Outre les pénalités de retard qui continuent de courir du lendemain de cette date "
        "jusqu'au complet paiement (C. com. L441-10 II). Le détail du calcul, par semestre, "
        "est dans `summary.md`.",
        "",
        "## Fondement",
        "",
        "- Créance contractuelle d'un montant déterminé (CPC art. 1405) : les factures "
        "ci-dessous, émises en exécution du contrat ou des conditions générales de vente.",
        "- Pénalités de retard : C. com. art. L441-10 II, exigibles sans rappel, au taux "
        "indiqué pour chaque semestre dans `summary.md`.",
        "- Indemnité forfaitaire pour frais de recouvrement : C. com. art. L441-10 II et "
        "D441-5 (40 € par facture payée en retard).",
        "- Mise en demeure préalable restée sans effet : C. civ. art. 1344.",
        "",
        "## Factures",
        "",
        "| n° | date | échéance | montant TTC | restant dû |",
        "|---|---|---|---:|---:|",
    ]
    for i in data["invoices"]:
        out.append(
            f"| {_cell(i['number'])} | {_day(i['issue_date'])} | {_day(i['due_date'])} | "
            f"{_money(i['amount_due'], currency)} | "
            f"{_money(i['balance'] or i['balance_today'], currency)} |"
        )
    out += ["", "## Pièces", ""]
    pieces = [
        f"Facture {_text(i['number'])} du {_day(i['issue_date'])} : copie de la facture "
        "(à joindre, elle n'est pas contenue dans ce dossier)."
        for i in data["invoices"]
    ]
    pieces.append(
        "Contrat ou conditions générales de vente acceptées par le débiteur, avec la "
        "clause de pénalités de retard et l'indemnité de 40 € (à joindre)."
    )
    notices = [m for m in messages if m.row.step == FORMAL_NOTICE]
    letters = [m for m in notices if m.row.channel == "registered_letter"] or [
        m for m in notices if m.row.channel == "letter"
    ]
    for m in letters:
        pieces.append(
            f"Mise en demeure du {_day(m.row.local_day.isoformat())} "
            f"({CHANNELS.get(m.row.channel, m.row.channel)}) : `{m.file}`."
        )
        receipts = [
            _status_view(r) for r in m.statuses if json.loads(r.payload).get("status") == "acknowledged"
        ]
        if receipts:
            for receipt in receipts:
                signed = receipt["status_at"] or receipt["at"]
                pieces.append(
                    f"Accusé de réception de la mise en demeure, signé le "
                    f"{_when(signed, tz)} : statut `acknowledged` dans `deliveries.json` "
                    f"(enregistrement n° {receipt['seq']} de la chaîne de preuves, "
                    f"`evidence.jsonl`) ; joindre l'avis de réception original."
                )
        else:
            pieces.append(
                "Accusé de réception de la mise en demeure : non enregistré à ce jour "
                "(joindre l'avis de réception du prestataire)."
            )
    for m in notices:
        if m not in letters:
            pieces.append(
                f"Copie de la mise en demeure ({CHANNELS.get(m.row.channel, m.row.channel)}"
                f") du {_day(m.row.local_day.isoformat())} : `{m.file}`."
            )
    if not notices:
        pieces.append("Mise en demeure : aucune n'a été envoyée par relance (à joindre).")
    earlier = [m for m in messages if m.row.step != FORMAL_NOTICE]
    if earlier:
        pieces.append("Relances préalables : " + ", ".join(f"`{m.file}`" for m in earlier) + ".")
    pieces.append(
        "Décompte des sommes réclamées (principal, pénalités par semestre, indemnités) : `summary.md`."
    )
    pieces.append(
        "Preuve des envois et de leur intégrité : `evidence.jsonl`, "
        "`verification.txt`, `deliveries.json`, `manifest.json`."
    )
    out += [f"{n}. {p}" for n, p in enumerate(pieces, start=1)]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- formatting


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _instant(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


_DAY = helpers("fr")["day"]


def _day(text: str) -> str:
    return _DAY(date.fromisoformat(text))


def _when(text: str, tz: str) -> str:
    """An instant as a French date and time in ``tz`` (the debtor's time zone)."""
    instant = datetime.fromisoformat(text).astimezone(zone(tz))
    return f"{_DAY(instant.date())} à {instant:%H:%M} ({tz})"


def _money(amount: str | Decimal, currency: str) -> str:
    return format_money(Decimal(amount), currency, "fr")


def _precise(amount: str, currency: str) -> str:
    """An unrounded segment amount, to 5 decimals, in French."""
    value = Decimal(amount).quantize(Decimal("0.00001"))
    text = format_decimal(value, format="#,##0.00000", locale="fr_FR")
    return f"{text} {currency if currency != 'EUR' else '€'}".replace("\u202f", " ").replace("\xa0", " ")


def _procedure(name: str) -> str:
    return PROCEDURES.get(name, _text(name))


def _text(value: str) -> str:
    """Stored text on one line (it comes from events: no line breaks into the layout)."""
    return " ".join(str(value).split())


def _cell(value: str) -> str:
    return _text(value).replace("|", "\\|")
