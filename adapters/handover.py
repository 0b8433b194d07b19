"""Edge code of the hand-over to partners: the signed webhook POST and the dossier e-mail.

The webhook body is signed with HMAC-SHA256 under the partner's key
(``X-Relance-Signature: sha256=<hex>`` over the exact bytes sent); the key is only used to
compute that header and never appears in an error message. Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ssl
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from adapters.compose import new_email
from adapters.dossier import dossier_archive as dossier_archive  # the hand-over sends the dossier
from handlers.context import Context
from handlers.partners import Partner
from handlers.ports import PermanentFailure, TransientFailure, UnitOfWork

USER_AGENT = "relance-handover/1"
_READ_LIMIT = 64 * 1024


def signature(key: str, body: bytes) -> str:
    """The value of ``X-Relance-Signature`` for ``body``."""
    return "sha256=" + hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def webhook_headers(key: str, body: bytes, timestamp: int, idempotency_key: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Relance-Signature": signature(key, body),
        "X-Relance-Timestamp": str(timestamp),
        "Idempotency-Key": idempotency_key,
    }


class WebhookRetry(TransientFailure):
    """The partner's endpoint answered 408, 429 or 5xx, or could not be reached."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.status = status


class WebhookRefused(PermanentFailure):
    """The partner's endpoint refused the request for good (4xx other than 408 and 429)."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.status = status


def classify(status: int, reason: str) -> None:
    """Raise for anything but 2xx: 408, 429 and 5xx are transient, other codes permanent."""
    if 200 <= status < 300:
        return
    detail = f"HTTP {status} {reason}".strip()
    if status in (408, 429) or status >= 500:
        raise WebhookRetry(detail, status)
    if 300 <= status < 400:
        detail += " (redirects are not followed: configure the final URL)"
    raise WebhookRefused(detail, status)


def post_webhook(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` to ``url``; return the HTTP status of a 2xx answer.

    Raises TransientFailure for timeouts, connection and TLS errors, 408, 429 and 5xx;
    PermanentFailure for any other answer.
    """
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    where = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(_READ_LIMIT)
        status, reason = response.status, response.reason
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise WebhookRetry(f"{where}: {type(exc).__name__}: {exc}"[:300]) from exc
    finally:
        connection.close()
    classify(status, reason)
    return status


def dossier_email(
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
    """A plain-text e-mail with the dossier ZIP attached."""
    message = new_email(
        sender=sender,
        recipient=recipient,
        subject=subject,
        message_id=message_id,
        at=at,
        X_Relance_Case=str(case_id),
        X_Relance_Handover=idempotency_key,
    )
    message.set_content(body_text, charset="utf-8")
    message.add_attachment(archive, maintype="application", subtype="zip", filename=filename)
    return message.as_bytes()


class PartnerLinks:
    """``handlers.handover.PartnerLink``: the dossier read from the store, the signed
    webhook POST and the dossier e-mail above."""

    def dossier(self, uow: UnitOfWork, case_id: int, ctx: Context, now: datetime) -> bytes:
        if not isinstance(uow, Session):
            raise TypeError(f"the dossier is read from a SQL unit of work, not a {type(uow).__name__}")
        return dossier_archive(uow, case_id, ctx, now)

    def post(self, partner: Partner, body: bytes, timestamp: int, idempotency_key: str) -> int:
        if partner.url is None or partner.secret is None:
            raise PermanentFailure(f"partner {partner.name!r} has no webhook url or secret")
        headers = webhook_headers(partner.secret.get_secret_value(), body, timestamp, idempotency_key)
        return post_webhook(partner.url, body, headers, partner.timeout)

    def email(self, **parts: Any) -> bytes:
        return dossier_email(**parts)
