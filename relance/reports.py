"""Read-only views for operators: status, cases, rejected events, evidence verification."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import datetime, time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from adapters.dossier import dossier_archive, write_dossier
from adapters.orm import (
    CaseRow,
    EvidenceHead,
    EvidenceRecord,
    HandoverRow,
    InvoiceRow,
    MessageItem,
    MessageRow,
    RejectedEvent,
)
from adapters.store import transaction
from config.bootstrap import App
from handlers.calendar import local_date, zone
from handlers.evidence import ChainCheck, verify

BUCKETS = (("not_due", None, 0), ("1-30", 1, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("over_90", 91, None))


def _bucket(days_late: int) -> str:
    for name, low, high in BUCKETS:
        if (low is None or days_late >= low) and (high is None or days_late <= high):
            return name
    return "not_due"


def status(app: App) -> dict[str, object]:
    """Figures for operators; days are those of the policy's time zone."""
    now = app.clock.now()
    tz = app.ctx.policy.timezone
    today = local_date(now, tz)
    day_start = datetime.combine(today, time(0), tzinfo=zone(tz))
    amounts: dict[str, Decimal] = {name: Decimal("0.00") for name, _, _ in BUCKETS}
    with transaction(app.sessions) as session:
        invoices = session.execute(
            select(InvoiceRow.due_date, InvoiceRow.amount_due, InvoiceRow.paid, InvoiceRow.credited).where(
                InvoiceRow.status == "open"
            )
        ).all()
        sent_today = session.execute(
            select(func.count())
            .select_from(MessageItem)
            .join(MessageRow, MessageRow.id == MessageItem.message_pk)
            .where(MessageRow.created_at >= day_start)
        ).scalar_one()
        open_cases = session.execute(
            select(func.count()).select_from(CaseRow).where(CaseRow.status == "open")
        ).scalar_one()
        rejected = session.execute(
            select(func.count()).select_from(RejectedEvent).where(RejectedEvent.replayed_at.is_(None))
        ).scalar_one()
        handovers = dict(
            session.execute(
                select(HandoverRow.status, func.count())
                .where(HandoverRow.status.in_(("pending", "failed")))
                .group_by(HandoverRow.status)
            ).all()
        )
    for due_date, amount, paid, credited in invoices:
        amounts[_bucket((today - due_date).days)] += amount - paid - credited
    return {
        "open_invoices": len(invoices),
        **{f"balance_{k}": str(v) for k, v in amounts.items()},
        "steps_sent_today": sent_today,
        "open_cases": open_cases,
        "rejected_events": rejected,
        "handovers_pending": handovers.get("pending", 0),
        "handovers_failed": handovers.get("failed", 0),
    }


def verify_chain(app: App) -> ChainCheck:
    with transaction(app.sessions) as session:
        head = session.get(EvidenceHead, 1)
        records = session.execute(
            select(EvidenceRecord).order_by(EvidenceRecord.seq).execution_options(yield_per=1000)
        ).scalars()
        return verify(records, head)


def list_cases(app: App, status_filter: str | None, procedure: str | None) -> Iterator[str]:
    query = select(CaseRow).order_by(CaseRow.id)
    tz = app.ctx.policy.timezone  # dates as the operator reads them
    if status_filter:
        query = query.where(CaseRow.status == status_filter)
    if procedure:
        query = query.where(CaseRow.recommended_procedure == procedure)
    with transaction(app.sessions) as session:
        cases = session.execute(query).scalars().all()
        handovers: dict[int, list[HandoverRow]] = {}
        for row in session.execute(select(HandoverRow).order_by(HandoverRow.id)).scalars():
            handovers.setdefault(row.case_id, []).append(row)
        for case in cases:
            yield (
                f"{case.id}\t{case.status}\t{case.debtor_id}\t{case.recommended_procedure}\t"
                f"{case.amount_claimed} {case.currency}\topened {local_date(case.opened_at, tz)}\t"
                f"{_handover_text(handovers.get(case.id, []))}"
            )


def _handover_text(rows: list[HandoverRow]) -> str:
    """The latest hand-over of a case: ``handover: STATUS PARTNER (CHANNEL, ...)``."""
    if not rows:
        return "handover: none"
    row = rows[-1]
    detail = [row.channel, f"attempts {row.attempts}"]
    if row.response_code is not None:
        detail.append(f"HTTP {row.response_code}")
    if row.status == "delivered" and row.delivered_at is not None:
        detail.append(f"delivered {row.delivered_at.isoformat(timespec='seconds')}")
    elif row.status == "pending" and row.lease_until is not None:
        detail.append(f"next {row.lease_until.isoformat(timespec='seconds')}")
    if row.status in ("pending", "failed", "cancelled") and row.last_error:
        detail.append(f"last error: {' '.join(row.last_error.split())[:120]}")
    return f"handover: {row.status} {row.partner} ({', '.join(detail)})"


def case_summary(app: App, case_id: int) -> str:
    """The text of the case's summary.md (raises LookupError for an unknown case)."""
    with transaction(app.sessions) as session:
        archive = dossier_archive(session, case_id, app.ctx, app.clock.now())
    with zipfile.ZipFile(io.BytesIO(archive)) as files:
        return files.read("summary.md").decode("utf-8")


def export_case(app: App, case_id: int, target: Path, *, as_zip: bool) -> list[Path]:
    """Write the case's dossier into the folder ``target``, or as the zip file ``target``.

    Raises LookupError for an unknown case and OSError (FileExistsError) when the target
    is a non-empty folder or an existing file.
    """
    now = app.clock.now()
    with transaction(app.sessions) as session:
        if not as_zip:
            return write_dossier(session, case_id, target, app.ctx, now)
        archive = dossier_archive(session, case_id, app.ctx, now)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:  # never overwrite an existing file
        out.write(archive)
    return [target]


def list_rejected(app: App, *, everything: bool = False) -> Iterator[str]:
    """Rejected events not replayed yet; with ``everything``, all with their replay time."""
    query = select(RejectedEvent).order_by(RejectedEvent.id)
    if not everything:
        query = query.where(RejectedEvent.replayed_at.is_(None))
    with transaction(app.sessions) as session:
        for row in session.execute(query).scalars():
            where = f"{row.source or '?'}:{row.line_no}" if row.line_no else (row.source or "?")
            line = f"{row.id}\t{row.received_at.isoformat()}\t{where}\t{row.reason}"
            if everything:
                replayed = row.replayed_at.isoformat() if row.replayed_at else "-"
                line += f"\treplayed {replayed}"
            yield line
