"""The evidence chains as stored: one per creditor, each with its head (``evidence_head``)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from adapters.orm import EvidenceHead, EvidenceRecord, debtor_salts
from adapters.uow import ALL_CREDITORS, UnitOfWork
from handlers.evidence import ChainCheck, verify


def chain_creditors(session: Session) -> list[str]:
    """The creditors that have a chain (a head or a record), in order."""
    query = union(select(EvidenceHead.creditor_id), select(EvidenceRecord.creditor_id).distinct())
    return sorted(session.execute(query.execution_options(**ALL_CREDITORS)).scalars())


def chain_head(session: Session, creditor: str) -> EvidenceHead | None:
    return session.execute(
        select(EvidenceHead).where(EvidenceHead.creditor_id == creditor).execution_options(**ALL_CREDITORS)
    ).scalar_one_or_none()


def chain_records(session: Session, creditor: str) -> Iterator[EvidenceRecord]:
    """The creditor's records in order, read a thousand at a time."""
    query = (
        select(EvidenceRecord)
        .where(EvidenceRecord.creditor_id == creditor)
        .order_by(EvidenceRecord.seq)
        .execution_options(yield_per=1000, **ALL_CREDITORS)
    )
    return session.execute(query).scalars()


def verify_creditor_chain(uow: UnitOfWork, creditor: str) -> ChainCheck:
    """Recompute the creditor's chain, with its debtors' salts."""
    uow.scope(creditor)
    return verify(chain_records(uow, creditor), chain_head(uow, creditor), debtor_salts(uow))
