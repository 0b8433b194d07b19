"""The files that prove the dossier: message names, deliveries.json, evidence.jsonl,
verification.txt and manifest.json (docs/dossier.md, "How to check it")."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from handlers.dossier.data import MessageData, RecordData
from handlers.evidence import ChainCheck

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def to_json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def instant(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _safe(text: str, limit: int = 60) -> str:
    return _UNSAFE.sub("_", text).strip("._-")[:limit] or "x"


def message_files(messages: tuple[MessageData, ...]) -> list[str]:
    """``messages/<day>_<step>_<channel>_<Message-ID>.eml|.pdf`` for each message, in order;
    only safe characters, and distinct even when two Message-IDs differ only in unsafe ones."""
    used: set[str] = set()
    names = []
    for m in messages:
        extension = ".eml" if m.channel == "email" else ".pdf" if "letter" in m.channel else ".bin"
        stem = (
            f"{m.local_day.isoformat()}_{_safe(m.step, 40)}_{_safe(m.channel, 20)}_"
            f"{_safe(m.message_id.strip('<>'))}"
        )
        name = f"messages/{stem}{extension}"
        if name in used:
            digest = hashlib.sha256(m.message_id.encode("utf-8")).hexdigest()[:12]
            name = f"messages/{stem}-{digest}{extension}"
        used.add(name)
        names.append(name)
    return names


def record_ref(record: RecordData) -> dict[str, Any]:
    return {"seq": record.seq, "at": instant(record.at), "hash": record.hash}


def status_view(record: RecordData) -> dict[str, Any]:
    """A ``delivery.status`` record: the provider's status and time, and the record itself."""
    payload = json.loads(record.payload)
    return {"status": payload.get("status"), "status_at": payload.get("at"), **record_ref(record)}


def deliveries(messages: tuple[MessageData, ...], files: list[str]) -> list[dict[str, Any]]:
    return [_delivery(m, file) for m, file in zip(messages, files, strict=True)]


def _delivery(m: MessageData, file: str) -> dict[str, Any]:
    digest = sha256(m.content)
    return {
        "file": file,
        "message_id": m.message_id,
        "step": m.step,
        "channel": m.channel,
        "recipient": m.recipient,
        "subject": m.subject,
        "invoice_numbers": list(m.invoice_numbers),
        "status": m.status,
        "attempts": m.attempts,
        "created_at": instant(m.created_at),
        "sent_at": instant(m.sent_at),
        "tracking_id": m.tracking_id,
        "last_error": m.last_error,
        "content_sha256": digest,
        "content_matches_evidence": (
            m.sent_record is not None and json.loads(m.sent_record.payload).get("content_sha256") == digest
        ),
        "sent_record": record_ref(m.sent_record) if m.sent_record else None,
        "transmissions": [record_ref(r) | {"kind": r.kind} for r in m.outcomes],
        "delivery_statuses": [status_view(r) for r in m.statuses],
    }


def evidence_lines(records: tuple[RecordData, ...]) -> bytes:
    """One record per line, as hashed: ``at`` in UTC ISO 8601, ``payload`` the canonical text."""
    return "".join(json.dumps(_record_view(r), ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def _record_view(record: RecordData) -> dict[str, Any]:
    return (
        {
            "seq": record.seq,
            "at": record.at.astimezone(UTC).isoformat(),
            "kind": record.kind,
            "debtor_id": record.debtor_id,
            "invoice_numbers": list(record.invoice_numbers) if record.invoice_numbers is not None else None,
            "case_id": record.case_id,
            "message_id": record.message_id,
            "payload": record.payload,
            "prev_hash": record.prev_hash,
            "hash": record.hash,
            "version": record.version,
        }
        | ({"sealed_payload": record.sealed_payload, "salt": record.salt} if record.version >= 3 else {})
        | ({"creditor_id": record.creditor_id} if record.version >= 4 else {})
    )


def verification_text(check: ChainCheck, head: tuple[int, str] | None, now: datetime) -> str:
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
        f"checked at: {instant(now)}",
        "",
        "The whole evidence chain was recomputed with handlers.evidence.verify, from record 1",
        "to the chain head above: hash = SHA-256 of prev_hash, seq, at (UTC ISO 8601), kind",
        "and payload, joined by newlines. To check this dossier later against the live",
        "chain, run `relance evidence verify` and look up the record of this seq in the",
        "evidence table: its hash must still be the head hash above, and every record of",
        "evidence.jsonl must be there with the same hash.",
    ]
    return "\n".join(lines) + "\n"


def manifest(case_id: int, files: dict[str, bytes], now: datetime) -> bytes:
    """Every file given (already sorted by name) with its SHA-256 and size."""
    return to_json(
        {
            "case_id": case_id,
            "generated_at": instant(now),
            "files": [
                {"path": name, "sha256": sha256(content), "bytes": len(content)}
                for name, content in files.items()
            ],
        }
    )
