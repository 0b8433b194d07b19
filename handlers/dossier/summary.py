"""The data of ``summary.json``, which the two markdown files are rendered from.

Money is a string decimal and dates are ISO 8601, so the JSON reads the same in any
language; the layout of these keys is part of the dossier's format (docs/dossier.md).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from handlers.dossier.computation import InvoiceDetail, rate_unconfirmed
from handlers.dossier.data import DossierData, MessageData, RecordData
from handlers.dossier.proofs import instant, sha256, status_view
from handlers.money import ZERO
from handlers.policy import Creditor, RateTable
from handlers.reminders import address_lines


def summary_data(
    data: DossierData,
    files: list[str],
    creditor: Creditor,
    details: list[InvoiceDetail],
    computed_on: date,
    live: dict[str, Any] | None,
    live_day: date,
    now: datetime,
    rates: RateTable,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """summary.json: ``files`` are the messages' names in the dossier, ``details`` the invoices'
    amounts on ``computed_on``, ``live`` the update to the export day ``live_day`` (or None),
    ``options`` the procedures and the competent court (``handlers.dossier.options``)."""
    case, debtor, check, head = data.case, data.debtor, data.check, data.head
    invoices = [_invoice_data(d, computed_on, rates) for d in details]
    statuses = lifecycle_statuses(data.records)
    for invoice in invoices:
        invoice["lifecycle_statuses"] = statuses.get(invoice["number"], [])
    computed = {
        "principal": sum((Decimal(i["balance"]) for i in invoices if i["balance"]), ZERO),
        "late_interest": sum((Decimal(i["late_interest"]) for i in invoices if i["late_interest"]), ZERO),
        "indemnities": sum((Decimal(i["indemnity"]) for i in invoices if i["indemnity"]), ZERO),
    }
    computed["amount_claimed"] = sum(computed.values(), ZERO)
    notes = list(case.notes)
    stored = {
        "principal": case.principal,
        "late_interest": case.late_interest,
        "indemnities": case.indemnities,
        "amount_claimed": case.amount_claimed,
    }
    if any(stored[k] != computed[k] for k in stored):
        notes.append(recorded_amounts_note(computed_on))
    return {
        "generated_at": instant(now),
        "case": {
            "id": case.id,
            "kind": case.kind,
            "status": case.status,
            "recommended_procedure": case.recommended_procedure,
            "reasons": list(case.reasons),
            "alternatives": list(case.alternatives),
            "procedures": (options or {}).get("procedures", []),
            "competent_court": (options or {}).get("competent_court"),
            "deadline": case.deadline.isoformat() if case.deadline else None,
            "notes": notes,
            "opened_at": instant(case.opened_at),
            "updated_at": instant(case.updated_at),
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
            "address_lines": address_lines(debtor)[1:],  # type: ignore[arg-type]  # reads name and address
            "siren": debtor.siren,
            "language": debtor.language,
            "timezone": debtor.timezone,
            "insolvency_procedure": debtor.insolvency_procedure,
            "insolvency_judgment_date": (
                debtor.insolvency_judgment_date.isoformat() if debtor.insolvency_judgment_date else None
            ),
            "insolvency_stage": debtor.insolvency_stage,
            "insolvency_administrator": (
                dict(debtor.insolvency_administrator) if debtor.insolvency_administrator else None
            ),
        },
        "invoices": invoices,
        "totals": {k: str(v) for k, v in computed.items()},
        "update": _update_data(live),
        "messages": [_message_data(m, name) for m, name in zip(data.messages, files, strict=True)],
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


def recorded_amounts_note(computed_on: date) -> str:
    """The note the summary adds when the case's recorded amounts are not those computed."""
    return (
        "the case's recorded amounts differ from the computation shown on "
        f"{computed_on.isoformat()} (payments or credit notes recorded after it, "
        "or a changed policy or rate table): the recorded amounts are the claim"
    )


def _update_data(live: dict[str, Any] | None) -> dict[str, Any] | None:
    if live is None:
        return None
    return {
        "day": live["day"].isoformat(),
        "problem": live["problem"],
        "invoices": [
            {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()} for row in live["invoices"]
        ],
        "total": str(live["total"]) if live.get("total") is not None else None,
    }


def _message_data(m: MessageData, file: str) -> dict[str, Any]:
    return {
        "file": file,
        "day": m.local_day.isoformat(),
        "step": m.step,
        "channel": m.channel,
        "subject": m.subject,
        "recipient": m.recipient,
        "message_id": m.message_id,
        "invoice_numbers": list(m.invoice_numbers),
        "status": m.status,
        "sent_at": instant(m.sent_at),
        "content_sha256": sha256(m.content),
        "delivery_statuses": [status_view(r)["status"] for r in m.statuses],
    }


def _interest_data(detail: InvoiceDetail, rates: RateTable) -> dict[str, Any] | None:
    a = detail.amounts
    if a is None or a.interest is None:
        return None
    segments = a.interest.segments
    accrued = sum((s.amount for s in segments), Decimal(0))
    return {
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
                "rate_unconfirmed": rate_unconfirmed(s.half_year, rates),
            }
            for s in segments
        ],
        "accrued": str(a.interest.total),
        "accrued_unrounded": str(accrued),
        "paid_by_payments": str(a.interest_paid),
        "due": str(a.late_interest),
    }


def lifecycle_statuses(records: tuple[RecordData, ...]) -> dict[str, list[dict[str, Any]]]:
    """The e-invoicing lifecycle statuses of each invoice, oldest first, from the evidence
    records ``invoice.status_changed`` (handlers/statuses.py)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record.kind != "invoice.status_changed":
            continue
        payload = json.loads(record.payload)
        entry = {
            k: payload.get(k) for k in ("status_code", "label", "at", "reason_code", "amount", "outcome")
        }
        entry["seq"] = record.seq
        for number in record.invoice_numbers or ():
            found.setdefault(number, []).append(entry)
    return found


def _invoice_data(detail: InvoiceDetail, computed_on: date, rates: RateTable) -> dict[str, Any]:
    invoice, a = detail.invoice, detail.amounts
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
            for p in invoice.payments
        ],
        "paid": str(invoice.paid),
        "credited": str(invoice.credited),
        "balance_today": str(invoice.balance),
        "balance": str(a.balance) if a else None,
        "interest": _interest_data(detail, rates),
        "late_interest": str(a.late_interest) if a else None,
        "indemnity": str(a.indemnity) if a else None,
        "claimed": str(a.claimed) if a else None,
        "problem": detail.problem,
    }
