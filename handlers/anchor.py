"""Anchoring the evidence chain outside the store: the signed head statement and the
RFC 3161 time-stamp request over the head hash (pure: bytes and values only).

A statement pins the chain down to one head (its sequence number and hash). Kept where the
database's administrators cannot write, it makes a later rewrite of the whole chain
detectable: the rewritten chain no longer holds that hash at that sequence number. It is
signed with HMAC-SHA256 under the anchor key, and, when a time-stamping authority is
configured, the head hash is also time-stamped by it (RFC 3161), which dates the head
independently of relance.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handlers.evidence import canonical

STATEMENT = "relance evidence head"
SIGNATURE_ALGORITHM = "HMAC-SHA256"

# DER of AlgorithmIdentifier { id-sha256 (2.16.840.1.101.3.4.2.1), NULL }
_SHA256_ALGORITHM = bytes.fromhex("300d06096086480165030402010500")


class AnchorError(ValueError):
    """A statement that cannot be read or whose signature does not hold (one line)."""


@dataclass(frozen=True)
class Anchor:
    """The head a statement pins the chain to."""

    seq: int
    hash: str
    record_at: datetime  # the time of the head record
    anchored_at: datetime  # when the statement was made
    creditor: str = "default"  # whose chain (each creditor has its own)


def head_statement(anchor: Anchor, key: bytes) -> dict[str, Any]:
    """The signed statement of ``anchor``, as JSON-ready values."""
    body = _body(anchor)
    return body | {"signature": {"algorithm": SIGNATURE_ALGORITHM, "value": _sign(body, key)}}


def read_statement(text: str, key: bytes) -> Anchor:
    """The anchor of a statement, once its signature under ``key`` is checked."""
    try:
        data = json.loads(text)
        signature = data.pop("signature")
        anchor = Anchor(
            seq=int(data["seq"]),
            hash=str(data["hash"]),
            record_at=datetime.fromisoformat(data["record_at"]),
            anchored_at=datetime.fromisoformat(data["anchored_at"]),
            creditor=str(data.get("creditor", "default")),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AnchorError(f"not a head statement ({exc})") from exc
    if data.get("statement") != STATEMENT or signature.get("algorithm") != SIGNATURE_ALGORITHM:
        raise AnchorError("not a head statement of relance")
    if not hmac.compare_digest(str(signature.get("value")), _sign(_body(anchor), key)):
        raise AnchorError("its signature does not hold under the anchor key")
    return anchor


def _body(anchor: Anchor) -> dict[str, Any]:
    body = {
        "statement": STATEMENT,
        "seq": anchor.seq,
        "hash": anchor.hash,
        "record_at": anchor.record_at.astimezone(UTC).isoformat(),
        "anchored_at": anchor.anchored_at.astimezone(UTC).isoformat(),
    }
    # the chain of ``default`` is named by no key: its statements stay those made before
    return body if anchor.creditor == "default" else body | {"creditor": anchor.creditor}


def _sign(body: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(body).encode("utf-8"), hashlib.sha256).hexdigest()


# -- RFC 3161 --------------------------------------------------------------------------------


def timestamp_request(head_hash: str) -> bytes:
    """The DER ``TimeStampReq`` (RFC 3161, version 1) over the head hash as a SHA-256
    imprint, asking for the authority's certificate in the token."""
    digest = bytes.fromhex(head_hash)
    if len(digest) != 32:
        raise ValueError("a head hash is 32 bytes of SHA-256")
    imprint = _der(0x30, _SHA256_ALGORITHM + _der(0x04, digest))
    version = _der(0x02, b"\x01")
    cert_req = _der(0x01, b"\xff")
    return _der(0x30, version + imprint + cert_req)


def timestamp_status(response: bytes) -> int:
    """The status of a DER ``TimeStampResp`` (0 granted, 1 granted with modifications;
    2 and above refused). Raises ValueError for bytes that are not one."""
    tag, body, _ = _read(response)
    if tag != 0x30:
        raise ValueError("not a time-stamp response")
    tag, status_info, rest = _read(body)
    if tag != 0x30:
        raise ValueError("not a time-stamp response")
    tag, status, _ = _read(status_info)
    if tag != 0x02 or not status:
        raise ValueError("not a time-stamp response")
    code = int.from_bytes(status, "big", signed=True)
    if code in (0, 1) and not rest:
        raise ValueError("a granted time-stamp response without its token")
    return code


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _read(data: bytes) -> tuple[int, bytes, bytes]:
    """One DER element: its tag, its content and the bytes after it."""
    if len(data) < 2:
        raise ValueError("truncated DER")
    tag, first = data[0], data[1]
    if first < 0x80:
        start, size = 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            raise ValueError("bad DER length")
        start, size = 2 + count, int.from_bytes(data[2 : 2 + count], "big")
    if len(data) < start + size:
        raise ValueError("truncated DER")
    return tag, data[start : start + size], data[start + size :]
