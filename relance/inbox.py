"""``relance inbox replay``: run a stored rejected event again, as stored or corrected."""

from __future__ import annotations

from adapters.orm import RejectedEvent
from adapters.store import transaction
from config.bootstrap import App
from handlers.service import IngestResult, ingest_one


def replay(app: App, row_id: int, replacement: str | bytes | None = None) -> IngestResult:
    """Ingest rejected event ``row_id`` again (or ``replacement`` in its place).

    On acceptance (also parked, or a duplicate) the row gets ``replayed_at`` and stays as
    history; a new rejection is stored as a new row. Raises LookupError for an unknown id
    and ValueError for a row already replayed.
    """
    now = app.clock.now()
    with transaction(app.sessions) as session:
        row = session.get(RejectedEvent, row_id)
        if row is None:
            raise LookupError(f"no rejected event {row_id}")
        if row.replayed_at is not None:
            raise ValueError(f"rejected event {row_id} was already replayed at {row.replayed_at.isoformat()}")
        raw = row.raw if replacement is None else replacement
        result = ingest_one(session, raw, now, app.ctx, source=f"inbox replay {row_id}")
        if result.status != "rejected":
            row.replayed_at = now
    return result
