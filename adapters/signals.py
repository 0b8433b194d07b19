"""Edge code of signals: the signed POST to a webhook subscriber.

``X-Relance-Signature: sha256=<hex>`` is HMAC-SHA256, under the subscriber's key, of
``"<X-Relance-Timestamp>.<body>"`` (the exact bytes sent): a receiver checks it and refuses
an old timestamp, so a captured request cannot be replayed later. The key never appears in
an error message or a log line. The HTTP exchange is the hand-overs' (``adapters.handover``):
redirects are not followed; 408, 429, 5xx and network errors are transient.
"""

from __future__ import annotations

import hashlib
import hmac

from adapters.handover import post_webhook
from handlers.webhooks import Subscriber

USER_AGENT = "relance-signals/1"


def signal_signature(key: str, timestamp: int, body: bytes) -> str:
    """The value of ``X-Relance-Signature`` for ``body`` sent at ``timestamp``."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(key.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signal_headers(key: str, body: bytes, timestamp: int, idempotency_key: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Relance-Timestamp": str(timestamp),
        "X-Relance-Signature": signal_signature(key, timestamp, body),
        "Idempotency-Key": idempotency_key,
    }


class SignalPoster:
    """``handlers.signals.SignalLink``: the signed POST above."""

    def post(self, subscriber: Subscriber, body: bytes, timestamp: int, idempotency_key: str) -> int:
        headers = signal_headers(subscriber.secret.get_secret_value(), body, timestamp, idempotency_key)
        return post_webhook(subscriber.url, body, headers, subscriber.timeout)
