"""The time-stamping authority: one RFC 3161 request over HTTP (``RELANCE_TSA_URL``)."""

from __future__ import annotations

import urllib.error
import urllib.request

from handlers.anchor import timestamp_request, timestamp_status


class TimestampError(RuntimeError):
    """The authority could not be reached or refused the request (one line)."""


def timestamp(url: str, head_hash: str, timeout: float = 30.0) -> bytes:
    """The authority's DER ``TimeStampResp`` (holding the token) over ``head_hash``."""
    request = urllib.request.Request(
        url,
        data=timestamp_request(head_hash),
        headers={"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            body = reply.read()
    except (urllib.error.URLError, OSError) as exc:
        raise TimestampError(f"time-stamping authority {url}: {exc}") from exc
    try:
        status = timestamp_status(body)
    except ValueError as exc:
        raise TimestampError(f"time-stamping authority {url}: {exc}") from exc
    if status not in (0, 1):
        raise TimestampError(f"time-stamping authority {url} refused the request (status {status})")
    return body
