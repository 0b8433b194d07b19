"""Read-only views for operators: status, cases, rejected events, evidence verification."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import datetime, time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from adapters.chains import chain_creditors, verify_creditor_chain
from adapters.dossier import dossier_archive, write_dossier
from adapters.orm import (
    DEFAULT_CREDITOR,
    CaseRow,
    DebtorRow,
    EvidenceRecord,
    HandoverRow,
    InvoiceRow,
    MessageItem,
    MessageRow,
    RejectedEvent,
    SignalRow,
)
from adapters.store import transaction
from config.bootstrap import App
from handlers.approval import DRAFT, NOT_SENT
from handlers.calendar import local_date, zone
from handlers.cases import PENALTIES_OUTSTANDING
from handlers.evidence import ChainCheck
from handlers.rates import rates_due_soon

BUCKETS = (("not_due", None, 0), ("1-30", 1, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("over_90", 91, None))


def _bucket(days_late: int) -> str:
    for name, low, high in BUCKETS:
        if (low is None or days_late >= low) and (high is None or days_late <= high):
            return name
    return "not_due"


def status(app: App, creditor: str | None = None) -> dict[str, object]:
    """Figures for operators, every amount per currency; days are those of the policy's
    time zone."""
    now = app.clock.now()
    tz = app.ctx.policy.timezone
    today = local_date(now, tz)
    day_start = datetime.combine(today, time(0), tzinfo=zone(tz))
    with transaction(app.sessions) as session:
        session.scope(creditor)  # None: every creditor's
        invoices = session.execute(
            select(
                InvoiceRow.creditor_id,
                InvoiceRow.number,
                InvoiceRow.debtor_id,
                InvoiceRow.currency,
                InvoiceRow.due_date,
                InvoiceRow.amount_due,
                InvoiceRow.paid,
                InvoiceRow.credited,
            ).where(InvoiceRow.status == "open")
        ).all()
        below = _below_minimum(
            session,
            app,
            [
                (i.creditor_id, i.number, i.debtor_id, i.currency, i.amount_due - i.paid - i.credited)
                for i in invoices
            ],
        )
        penalties = _penalties_outstanding(session)
        sent_today = session.execute(
            select(func.count())
            .select_from(MessageItem)
            .join(MessageRow, MessageRow.id == MessageItem.message_pk)
            .where(MessageRow.created_at >= day_start, MessageRow.status.not_in(NOT_SENT))
        ).scalar_one()
        drafts = session.execute(
            select(func.count()).select_from(MessageRow).where(MessageRow.status == DRAFT)
        ).scalar_one()
        open_cases = session.execute(
            select(func.count()).select_from(CaseRow).where(CaseRow.status == "open")
        ).scalar_one()
        rejected_query = (
            select(func.count()).select_from(RejectedEvent).where(RejectedEvent.replayed_at.is_(None))
        )
        if creditor is not None:  # not filtered by the scope: see list_rejected
            rejected_query = rejected_query.where(
                or_(RejectedEvent.creditor_id == creditor, RejectedEvent.creditor_id.is_(None))
            )
        rejected = session.execute(rejected_query).scalar_one()
        handovers = dict(
            session.execute(
                select(HandoverRow.status, func.count())
                .where(HandoverRow.status.in_(("pending", "failed")))
                .group_by(HandoverRow.status)
            ).all()
        )
        signals = dict(
            session.execute(
                select(SignalRow.status, func.count())
                .where(SignalRow.status.in_(("pending", "failed")))
                .group_by(SignalRow.status)
            ).all()
        )
    currencies = sorted({i.currency for i in invoices} | set(below) | set(penalties)) or ["EUR"]
    amounts = {c: {name: Decimal("0.00") for name, _, _ in BUCKETS} for c in currencies}
    for invoice in invoices:
        amounts[invoice.currency][_bucket((today - invoice.due_date).days)] += (
            invoice.amount_due - invoice.paid - invoice.credited
        )
    report: dict[str, object] = {"open_invoices": len(invoices)}
    for currency in currencies:
        report.update({f"balance_{currency}_{k}": str(v) for k, v in amounts[currency].items()})
    for currency in currencies:
        count, total = below.get(currency, (0, Decimal("0.00")))
        report[f"below_minimum_{currency}_invoices"] = count
        report[f"below_minimum_{currency}_amount"] = str(total)
    for currency in currencies:
        count, total = penalties.get(currency, (0, Decimal("0.00")))
        report[f"penalties_outstanding_{currency}_invoices"] = count
        report[f"penalties_outstanding_{currency}_amount"] = str(total)
    return {
        **report,
        "steps_sent_today": sent_today,
        "drafts_awaiting_approval": drafts,
        "open_cases": open_cases,
        "rejected_events": rejected,
        "handovers_pending": handovers.get("pending", 0),
        "handovers_failed": handovers.get("failed", 0),
        "signals_pending": signals.get("pending", 0),
        "signals_failed": signals.get("failed", 0),
        "rates_missing": rates_missing(app),
    }


def rates_missing(app: App) -> str:
    """The half-years without a rate that have started or start within 30 days, or "none"."""
    found = rates_due_soon(app.ctx.rates, app.clock.now(), app.ctx.policy.timezone)
    return "; ".join(each.describe() for each in found) or "none"


def _below_minimum(
    session: Session, app: App, balances: list[tuple[str, str, str, str, Decimal]]
) -> dict[str, tuple[int, Decimal]]:
    """Open invoices whose balance is above zero but below their policy's minimum (not
    chased), per currency: how many and their total. Only the invoices below the largest
    minimum of any policy need their debtor read to know which policy applies."""
    policies = app.ctx.policies

    def largest(currency: str) -> Decimal:
        return max(p.money.minimum_for(currency) for p in policies.all)

    candidates = [b for b in balances if Decimal(0) < b[4] < largest(b[3])]
    debtors: dict[tuple[str, str], DebtorRow] = {}
    for chunk in _chunks(sorted({b[2] for b in candidates})):
        debtors.update(
            ((d.creditor_id, d.id), d)
            for d in session.execute(select(DebtorRow).where(DebtorRow.id.in_(chunk))).scalars()
        )
    found: dict[str, tuple[int, Decimal]] = {}
    for creditor, number, debtor_id, currency, balance in candidates:
        policy = policies.for_debtor(debtors.get((creditor, debtor_id)), number)
        if balance < policy.money.minimum_for(currency):
            count, total = found.get(currency, (0, Decimal("0.00")))
            found[currency] = (count + 1, total + balance)
    return found


def _chunks(values: list[str], size: int = 1000) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _penalties_outstanding(session: Session) -> dict[str, tuple[int, Decimal]]:
    """Penalties and indemnities reported when an invoice's principal was paid, for the
    invoices still settled, per currency: how many invoices and the total owed (the latest
    report of each invoice)."""
    latest: dict[tuple[str, str], dict[str, str]] = {}
    for creditor, payload in session.execute(
        select(EvidenceRecord.creditor_id, EvidenceRecord.payload)
        .where(EvidenceRecord.kind == PENALTIES_OUTSTANDING)
        .order_by(EvidenceRecord.creditor_id, EvidenceRecord.seq)
    ).all():
        data = json.loads(payload)
        for number in data.get("invoice_numbers", []):
            latest[(creditor, number)] = data
    settled: set[tuple[str, str]] = set()
    for chunk in _chunks(sorted({number for _, number in latest})):
        settled.update(
            (row.creditor_id, row.number)
            for row in session.execute(
                select(InvoiceRow.creditor_id, InvoiceRow.number).where(
                    InvoiceRow.number.in_(chunk), InvoiceRow.status == "settled"
                )
            ).all()
        )
    found: dict[str, tuple[int, Decimal]] = {}
    for key in sorted(settled & set(latest)):
        data = latest[key]
        count, total = found.get(data["currency"], (0, Decimal("0.00")))
        found[data["currency"]] = (count + 1, total + Decimal(data["amount_owed"]))
    return found


def verify_chain(app: App, creditor: str = DEFAULT_CREDITOR) -> ChainCheck:
    """Recompute one creditor's evidence chain."""
    with transaction(app.sessions) as uow:
        return verify_creditor_chain(uow, creditor)


def verify_chains(app: App, creditor: str | None = None) -> dict[str, ChainCheck]:
    """Recompute the chain of ``creditor``, or of every creditor that has one."""
    with transaction(app.sessions) as uow:
        creditors = [creditor] if creditor is not None else chain_creditors(uow)
    return {name: verify_chain(app, name) for name in creditors or [DEFAULT_CREDITOR]}


def list_cases(
    app: App, status_filter: str | None, procedure: str | None, creditor: str | None = None
) -> Iterator[str]:
    """One line per case; a case of a creditor other than ``default`` names it after its
    debtor (``D-1 (atelier)``)."""
    query = select(CaseRow).order_by(CaseRow.id)
    tz = app.ctx.policy.timezone  # dates as the operator reads them
    if status_filter:
        query = query.where(CaseRow.status == status_filter)
    if procedure:
        query = query.where(CaseRow.recommended_procedure == procedure)
    with transaction(app.sessions) as session:
        session.scope(creditor)  # None: every creditor's
        cases = session.execute(query).scalars().all()
        handovers: dict[int, list[HandoverRow]] = {}
        for row in session.execute(select(HandoverRow).order_by(HandoverRow.id)).scalars():
            handovers.setdefault(row.case_id, []).append(row)
        for case in cases:
            yield (
                f"{case.id}\t{case.status}\t{_debtor_of(case)}\t{case.recommended_procedure}\t"
                f"{case.amount_claimed} {case.currency}\topened {local_date(case.opened_at, tz)}\t"
                f"{_handover_text(handovers.get(case.id, []))}"
            )


def _debtor_of(case: CaseRow) -> str:
    return (
        case.debtor_id if case.creditor_id == DEFAULT_CREDITOR else f"{case.debtor_id} ({case.creditor_id})"
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


def list_rejected(app: App, *, everything: bool = False, creditor: str | None = None) -> Iterator[str]:
    """Rejected events not replayed yet; with ``everything``, all with their replay time;
    with ``creditor``, those of that creditor and those whose creditor could not be read."""
    query = select(RejectedEvent).order_by(RejectedEvent.id)
    if creditor is not None:
        query = query.where(or_(RejectedEvent.creditor_id == creditor, RejectedEvent.creditor_id.is_(None)))
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
