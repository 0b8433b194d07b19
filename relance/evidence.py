"""``relance evidence anchor`` and ``relance evidence verify --anchor``: the chain head kept
outside the store (docs/dossier.md#anchoring-the-chain)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy import select

from adapters.chains import chain_head
from adapters.orm import DEFAULT_CREDITOR, EvidenceRecord
from adapters.store import transaction
from adapters.tsa import timestamp
from config.bootstrap import App
from config.errors import ConfigError
from handlers.anchor import Anchor, AnchorError, head_statement, read_statement
from handlers.evidence import ChainCheck, canonical

log = structlog.get_logger("relance.evidence")


class AnchorProblem(Exception):
    """An anchor that cannot be made or read: one line for the operator."""


@dataclass(frozen=True)
class Anchored:
    """The files ``relance evidence anchor`` wrote."""

    anchor: Anchor
    statement: Path
    token: Path | None


def anchor_key(app: App) -> bytes:
    """The key signing head statements (``RELANCE_ANCHOR_KEY``)."""
    key = app.settings.anchor_key
    if key is None or not key.get_secret_value():
        raise ConfigError("RELANCE_ANCHOR_KEY is not set: head statements are signed with it")
    return key.get_secret_value().encode("utf-8")


def anchor_head(app: App, out_dir: Path, creditor: str = DEFAULT_CREDITOR) -> Anchored:
    """Write the signed statement of the chain head into ``out_dir`` (``head-SEQ.json``) and,
    when ``RELANCE_TSA_URL`` is set, the authority's time-stamp response over the head hash
    beside it (``head-SEQ.tsr``). The chain is not verified here: ``evidence verify`` does."""
    key = anchor_key(app)
    with transaction(app.sessions) as session:
        session.scope(creditor)
        head = chain_head(session, creditor)
        if head is None or head.seq == 0:
            raise AnchorProblem(f"the evidence chain of {creditor} is empty: there is no head to anchor")
        record = session.get(EvidenceRecord, (creditor, head.seq))
        if record is None:
            raise AnchorProblem(f"the chain head names record {head.seq}, which is missing")
        anchor = Anchor(
            seq=head.seq, hash=head.hash, record_at=record.at, anchored_at=app.clock.now(), creditor=creditor
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"head-{anchor.seq}" if creditor == DEFAULT_CREDITOR else f"head-{creditor}-{anchor.seq}"
    statement = out_dir / f"{stem}.json"
    token = None
    if app.settings.tsa_url:
        try:
            reply = timestamp(app.settings.tsa_url, anchor.hash)
        except RuntimeError as exc:
            raise AnchorProblem(str(exc)) from exc
        token = out_dir / f"{stem}.tsr"
        token.write_bytes(reply)
    statement.write_text(canonical(head_statement(anchor, key)) + "\n", encoding="utf-8")
    log.info("evidence.anchored", seq=anchor.seq, hash=anchor.hash, timestamped=token is not None)
    return Anchored(anchor, statement, token)


def check_anchor(
    app: App, statement: Path, check: ChainCheck, creditor: str = DEFAULT_CREDITOR
) -> str | None:
    """Why the chain does not hold the head of ``statement``; None when it does.

    ``check`` is the chain's own verification: a chain that holds the anchored record but is
    broken is reported by it, not here.
    """
    try:
        anchor = read_statement(statement.read_text(encoding="utf-8"), anchor_key(app))
    except OSError as exc:
        raise AnchorProblem(f"cannot read {statement}: {exc.strerror}") from exc
    except AnchorError as exc:
        raise AnchorProblem(f"{statement}: {exc}") from exc
    if anchor.creditor != creditor:
        return f"the statement anchors the chain of {anchor.creditor}, not of {creditor}"
    with transaction(app.sessions) as session:
        session.scope(creditor)
        found = session.execute(select(EvidenceRecord.hash).where(EvidenceRecord.seq == anchor.seq)).scalar()
    if found is None:
        problem = f"anchored record {anchor.seq} is missing"
    elif found != anchor.hash:
        problem = f"anchored record {anchor.seq} does not have the anchored hash"
    else:
        problem = None
    if problem is not None:
        log.warning("evidence.anchor_mismatch", seq=anchor.seq, reason=problem, records=check.records)
    return problem
