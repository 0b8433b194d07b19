"""The read side of the case dossier: one case and all it shows, from the store.

Everything is read in the caller's transaction and nothing is written, except that the
evidence records this transaction queued are chained first (they are part of what it sees).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapters.orm import (
    CaseRow,
    DebtorRow,
    EvidenceHead,
    EvidenceRecord,
    InvoiceRow,
    MessageItem,
    MessageRow,
    PaymentRow,
    case_invoices,
    debtor_salts,
)
from handlers.approval import NOT_SENT
from handlers.dossier.data import (
    CaseData,
    DebtorData,
    DossierData,
    InvoiceData,
    MessageData,
    PaymentData,
    RecordData,
)
from handlers.evidence import ChainCheck, needs_salt, sealed_payload, verify, write_pending


def read_dossier(session: Session, case_id: int) -> DossierData:
    """The snapshot of case ``case_id`` (raises LookupError for an unknown case), read as
    the case's creditor: a unit of work is scoped to it here."""
    _scope_to_case(session, case_id)
    case = session.get(CaseRow, case_id)
    if case is None:
        raise LookupError(f"no case {case_id}")
    debtor = session.get(DebtorRow, (case.creditor_id, case.debtor_id))
    if debtor is None:  # pragma: no cover - a case always has its debtor
        raise LookupError(f"case {case_id}: debtor {case.debtor_id} is unknown")
    if debtor.erased_at is not None:  # the messages and the debtor's details are gone
        raise LookupError(
            f"case {case_id}: its debtor {debtor.id} was erased on {debtor.erased_at.date()}: "
            "there is no dossier to build"
        )
    # a factored invoice left the case: the factor collects it (a note of the case says so)
    invoices = [i for i in case_invoices(session, case.id) if i.factored_by is None]
    messages = _messages(session, [i.id for i in invoices])
    numbers = {i.number for i in invoices}
    message_ids = {m.message_id for m, _ in messages}
    check, head, records = _chain(session, case, numbers, message_ids)
    return DossierData(
        case=_case(case),
        debtor=_debtor(debtor),
        invoices=tuple(_invoice(session, i) for i in invoices),
        messages=tuple(_message(row, covered, records) for row, covered in messages),
        records=records,
        check=check,
        head=head,
    )


def _case(case: CaseRow) -> CaseData:
    return CaseData(
        id=case.id,
        debtor_id=case.debtor_id,
        kind=case.kind,
        status=case.status,
        recommended_procedure=case.recommended_procedure,
        currency=case.currency,
        principal=case.principal,
        late_interest=case.late_interest,
        indemnities=case.indemnities,
        amount_claimed=case.amount_claimed,
        opened_at=case.opened_at,
        updated_at=case.updated_at,
        deadline=case.deadline,
        reasons=tuple(case.reasons or ()),
        alternatives=tuple(case.alternatives or ()),
        notes=tuple(case.notes or ()),
    )


def _debtor(debtor: DebtorRow) -> DebtorData:
    return DebtorData(
        id=debtor.id,
        name=debtor.name,
        kind=debtor.kind,
        address=dict(debtor.address or {}),
        email=debtor.email,
        language=debtor.language,
        timezone=debtor.timezone,
        country=debtor.country,
        siren=debtor.siren,
        segment=debtor.segment,
        insolvency_procedure=debtor.insolvency_procedure,
        insolvency_judgment_date=debtor.insolvency_judgment_date,
        insolvency_stage=debtor.insolvency_stage,
        insolvency_administrator=debtor.insolvency_administrator,
        merchant=debtor.merchant,
    )


def _invoice(session: Session, invoice: InvoiceRow) -> InvoiceData:
    movements = session.execute(
        select(PaymentRow)
        # a reversed payment or cancelled credit note never paid: not counted, as in amounts
        .where(PaymentRow.invoice_id == invoice.id, PaymentRow.reversed_on.is_(None))
        .order_by(PaymentRow.on_day, PaymentRow.id)
    ).scalars()
    return InvoiceData(
        id=invoice.id,
        number=invoice.number,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        currency=invoice.currency,
        amount_due=invoice.amount_due,
        paid=invoice.paid,
        credited=invoice.credited,
        status=invoice.status,
        late_penalty_rate=invoice.late_penalty_rate,
        delivered_on=invoice.delivered_on,
        disputed=invoice.disputed,
        ever_disputed=invoice.ever_disputed,
        payments=tuple(PaymentData(p.kind, p.on_day, p.amount, p.reference) for p in movements),
    )


def _messages(session: Session, invoice_ids: list[int]) -> list[tuple[MessageRow, list[str]]]:
    """Every message recorded for the case's invoices to be sent (not a draft, not rejected
    or withdrawn), oldest first, with the invoices it covers."""
    if not invoice_ids:
        return []
    rows = (
        session.execute(
            select(MessageRow)
            .where(
                MessageRow.id.in_(
                    select(MessageItem.message_pk).where(MessageItem.invoice_id.in_(invoice_ids))
                ),
                MessageRow.status.not_in(NOT_SENT),  # a draft, or one never sent, proves nothing
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
    return [(row, covered.get(row.id, [])) for row in rows]


def _message(row: MessageRow, covered: list[str], records: Sequence[RecordData]) -> MessageData:
    own = [r for r in records if r.message_id == row.message_id]
    sent = [r for r in own if r.kind == "reminder.sent"]
    return MessageData(
        message_id=row.message_id,
        channel=row.channel,
        step=row.step,
        local_day=row.local_day,
        recipient=row.recipient,
        subject=row.subject,
        status=row.status,
        content=row.content,
        created_at=row.created_at,
        invoice_numbers=tuple(sorted(set(covered))),
        attempts=row.attempts,
        sent_at=row.sent_at,
        tracking_id=row.tracking_id,
        last_error=row.last_error,
        sent_record=sent[-1] if sent else None,
        outcomes=tuple(r for r in own if r.kind in ("message.transmitted", "message.failed")),
        statuses=tuple(r for r in own if r.kind == "delivery.status"),
    )


def _record(record: EvidenceRecord, salts: dict[str, bytes] | None = None) -> RecordData:
    salt = (salts or {}).get(record.debtor_id or "") if record.version >= 3 else None
    sealed = sealed_payload(record.payload, salt) if record.version >= 3 and record.debtor_id else None
    return RecordData(
        sealed_payload=sealed if sealed is not None else (record.payload if record.version >= 3 else None),
        salt=salt.hex() if salt is not None and needs_salt(record.debtor_id, record.payload) else None,
        seq=record.seq,
        at=record.at,
        kind=record.kind,
        payload=record.payload,
        prev_hash=record.prev_hash,
        hash=record.hash,
        debtor_id=record.debtor_id,
        invoice_numbers=tuple(record.invoice_numbers) if record.invoice_numbers is not None else None,
        case_id=record.case_id,
        message_id=record.message_id,
        version=record.version or 1,
        creditor_id=record.creditor_id,
    )


def _scope_to_case(session: Session, case_id: int) -> None:
    if not hasattr(session, "scope"):
        return
    creditor = session.execute(
        select(CaseRow.creditor_id).where(CaseRow.id == case_id).execution_options(all_creditors=True)
    ).scalar()
    if creditor is not None:
        session.scope(creditor)


def _chain(
    session: Session, case: CaseRow, numbers: set[str], message_ids: set[str]
) -> tuple[ChainCheck, tuple[int, str] | None, tuple[RecordData, ...]]:
    """Recompute the whole chain once; keep the records that concern the case on the way.

    The records are checked up to the chain head read first: appends committed while the
    export reads (PostgreSQL, read committed) are not part of this snapshot. Records beyond
    the head that no head covers are still reported as added after it.
    """
    write_pending(session)  # what this transaction appended so far is part of it
    creditor = case.creditor_id
    start = session.execute(
        select(EvidenceHead.seq, EvidenceHead.hash).where(EvidenceHead.creditor_id == creditor)
    ).one_or_none()
    head = EvidenceHead(creditor_id=creditor, seq=start.seq, hash=start.hash) if start is not None else None
    kept: list[RecordData] = []
    salts = debtor_salts(session)

    def stream() -> Iterator[EvidenceRecord]:
        query = (
            select(EvidenceRecord).where(EvidenceRecord.creditor_id == creditor).order_by(EvidenceRecord.seq)
        )
        if head is not None:
            query = query.where(EvidenceRecord.seq <= head.seq)
        for record in session.execute(query.execution_options(yield_per=1000)).scalars():
            if (
                record.debtor_id == case.debtor_id
                or record.case_id == case.id
                or (bool(record.message_id) and record.message_id in message_ids)
                or numbers.intersection(record.invoice_numbers or ())
            ):
                kept.append(_record(record, salts))
            yield record

    check = verify(stream(), head, salts)
    if check.ok and head is not None:
        last = session.execute(
            select(func.max(EvidenceRecord.seq)).where(EvidenceRecord.creditor_id == creditor)
        ).scalar()
        now_head = session.execute(
            select(EvidenceHead.seq).where(EvidenceHead.creditor_id == creditor)
        ).scalar()
        if last is not None and last > (now_head or 0):
            check = ChainCheck(
                False, check.records, (now_head or 0) + 1, "records after the chain head were added"
            )
    return check, (head.seq, head.hash) if head is not None else None, tuple(kept)
